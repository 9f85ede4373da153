package dps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/schemas"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(kafkatest.Wrap(m))) }

// harness is one DPS database with the alerts schema and reference data, a
// Kafka cluster (kfake, or the broker of ALERTSYNC_TEST_KAFKA), a fake schema
// registry, and a capture configured for them.
type harness struct {
	db      *pgtest.DB
	brokers []string
	reg     *srfake.Registry
	srcl    *sr.Client
	cfg     Config
	admin   *admin.Server
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{db: pgtest.NewDB(t), brokers: kafkatest.Brokers(t), reg: srfake.New()}
	t.Cleanup(h.reg.Close)
	h.db.Exec(t, deploy.DPSSchemaSQL())
	h.db.Exec(t, deploy.DPSSeedSQL())
	var err error
	h.srcl, err = sr.NewClient(sr.URLs(h.reg.URL()))
	require.NoError(t, err)
	require.NoError(t, config.Load(&h.cfg, config.Sources{LookupEnv: func(string) (string, bool) { return "", false }}))
	h.cfg.DPS.DSN = h.db.DSN
	h.cfg.Pipeline.Kafka.Brokers = h.brokers
	h.cfg.Pipeline.Topics.Prefix = strings.TrimSuffix(kafkatest.Topic(t, "c"), "") + "."
	h.cfg.Pipeline.Topics.Partitions = 3
	h.cfg.Pipeline.Topics.ReplicationFactor = 1
	h.cfg.Capture.Slot = "s_" + strings.ToLower(h.db.Name)
	h.cfg.Capture.Publication = "p_" + strings.ToLower(h.db.Name)
	h.cfg.Capture.StatusInterval = 200 * time.Millisecond
	h.cfg.Capture.Heartbeat = time.Second
	h.cfg.Pipeline.Shutdown.Timeout = 10 * time.Second
	require.NoError(t, config.Validate(&h.cfg))
	return h
}

func (h *harness) topic(table string) string {
	return h.cfg.Pipeline.Topics.Prefix + "dps.public." + table
}

// running is a capture running in-process.
type running struct {
	cancel  context.CancelFunc
	done    chan error
	c       *Capture
	stopped bool
	err     error
}

// stop cancels the capture and returns its Run error; calling it again
// returns the same error.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	if r.stopped {
		return r.err
	}
	r.cancel()
	select {
	case err := <-r.done:
		r.stopped, r.err = true, err
		return err
	case <-time.After(30 * time.Second):
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatal("capture did not stop")
		return nil
	}
}

func (h *harness) start(t *testing.T, mutate ...func(*Capture)) *running {
	t.Helper()
	kcl, err := kafka.NewClient(h.cfg.Pipeline.Kafka, nil, nil, kgo.MaxBufferedRecords(h.cfg.Capture.MaxInFlight+1024))
	require.NoError(t, err)
	h.admin = admin.New("127.0.0.1:0", time.Second, slog.New(slog.DiscardHandler))
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := New(h.cfg, Deps{Kafka: kcl, Registry: h.srcl, Admin: h.admin, Logger: logger, Version: "test"})
	require.NoError(t, err)
	for _, m := range mutate {
		m(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), c: c}
	go func() {
		err := c.Run(ctx)
		kcl.Close()
		r.done <- err
	}()
	t.Cleanup(func() { _ = r.stop(t) })
	return r
}

// waitRunning waits until the capture streams; it fails if the capture exits.
func (h *harness) waitRunning(t *testing.T, r *running) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for r.c.comp.Status().State != admin.Running {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("capture exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("capture not running after 60s: %+v", r.c.comp.Status())
		}
	}
}

// rec is a decoded change record.
type rec struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       map[string]any
	Value     map[string]any // nil for a tombstone
}

func (r rec) op() string { v, _ := schemas.Get[string](r.Value, "op"); return v }

func (r rec) source() map[string]any {
	v, _ := schemas.Get[map[string]any](r.Value, "source")
	return v
}

func (r rec) row(which string) map[string]any {
	u, ok := r.Value[which].(map[string]any)
	if !ok {
		return nil
	}
	for _, v := range u {
		m, _ := v.(map[string]any)
		return m
	}
	return nil
}

// consume reads records of topics until want of them have arrived (or times out).
func (h *harness) consume(t *testing.T, want int, timeout time.Duration, topics ...string) []rec {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	require.NoError(t, err)
	defer cl.Close()
	codec := schemas.New(h.srcl)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []rec
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				require.NoError(t, e.Err, "fetching %s", e.Topic)
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			k, err := codec.DecodeKey(ctx, r)
			require.NoError(t, err)
			v, err := codec.DecodeValue(ctx, r)
			require.NoError(t, err)
			x := rec{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
			x.Key, _ = k.(map[string]any)
			x.Value, _ = v.(map[string]any)
			out = append(out, x)
		})
	}
	return out
}

func alertCodeID(t *testing.T, db *pgtest.DB, code string) int64 {
	t.Helper()
	return pgtest.QueryValue[int64](t, db, "SELECT id FROM alert_code WHERE code = $1", code)
}

func insertAlert(t *testing.T, db *pgtest.DB, id, prison, code string) {
	t.Helper()
	db.Exec(t, fmt.Sprintf(`INSERT INTO alert (id, alert_code_id, prison_number, description, authorised_by, active_from, created_at, version)
		VALUES ('%s', %d, '%s', 'desc', 'auth', '2024-01-02', '2024-06-01 12:00:00', 1)`, id, alertCodeID(t, db, code), prison))
}
