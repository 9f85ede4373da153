package dps

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/metrictest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
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
	return newHarnessOn(t, pgtest.NewDB(t))
}

// newHarnessOn is newHarness on db, a fresh database (for example on a
// private cluster from pgtest.NewCluster, which a test may restart).
func newHarnessOn(t *testing.T, db *pgtest.DB) *harness {
	t.Helper()
	h := &harness{db: db, brokers: kafkatest.Brokers(t), reg: srfake.New()}
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
type rec topictest.Record

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
	rd := topictest.Reader{Brokers: h.brokers, Registry: h.srcl, ReadCommitted: true}
	return topictest.As[rec](rd.Until(t, want, timeout, topics...))
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

// exited waits up to timeout for the capture to end by itself and returns
// its Run error; it fails the test if the capture is still running.
func (r *running) exited(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.stopped, r.err = true, err
		return err
	case <-time.After(timeout):
		t.Fatalf("capture still running after %s: %+v", timeout, r.c.comp.Status())
		return nil
	}
}

// waitState waits until the capture's component reports state.
func (r *running) waitState(t *testing.T, state admin.State, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for r.c.comp.Status().State != state {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("capture exited while waiting for state %s: %v", state, err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("capture not in state %s after %s: %+v", state, timeout, r.c.comp.Status())
		}
	}
}

// consumeAll reads every record of topics, up to their end offsets at the
// call; use it once the capture has caught up (waitCaughtUp).
func (h *harness) consumeAll(t *testing.T, topics ...string) []rec {
	t.Helper()
	start, end := topictest.Offsets(t, h.brokers, topics...)
	n := end - start
	if n == 0 {
		return nil
	}
	recs := h.consume(t, int(n), 60*time.Second, topics...)
	require.GreaterOrEqual(t, len(recs), int(n), "records up to the end offsets of %v", topics)
	return recs
}

// slotLSNs returns the slot's confirmed flush and restart LSNs.
func (h *harness) slotLSNs(t *testing.T) (confirmed, restart pglogrepl.LSN) {
	t.Helper()
	var c, r string
	require.NoError(t, h.db.Pool.QueryRow(context.Background(),
		"SELECT confirmed_flush_lsn::text, restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1", h.cfg.Capture.Slot).Scan(&c, &r))
	var err error
	confirmed, err = pglogrepl.ParseLSN(c)
	require.NoError(t, err)
	restart, err = pglogrepl.ParseLSN(r)
	require.NoError(t, err)
	return confirmed, restart
}

// waitCaughtUp waits until the slot's confirmed flush LSN reaches the
// server's WAL insert position at the call: Kafka has then acknowledged every
// change committed before the call.
func (h *harness) waitCaughtUp(t *testing.T, timeout time.Duration) {
	t.Helper()
	target := pgtest.QueryValue[string](t, h.db, "SELECT pg_current_wal_lsn()::text")
	deadline := time.Now().Add(timeout)
	for !pgtest.QueryValue[bool](t, h.db, `SELECT coalesce((SELECT confirmed_flush_lsn >= $2::pg_lsn
		FROM pg_replication_slots WHERE slot_name = $1), false)`, h.cfg.Capture.Slot, target) {
		if time.Now().After(deadline) {
			t.Fatalf("slot %s has not confirmed %s after %s", h.cfg.Capture.Slot, target, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// keyID returns the "id" field of a record's key (uuid string or bigint).
func (r rec) keyID() string {
	if r.Key == nil {
		return ""
	}
	return fmt.Sprint(r.Key["id"])
}

// position returns source.position of a record: (commit LSN, change LSN).
func (r rec) position() (commit, change int64) {
	p, _ := r.source()["position"].(map[string]any)
	commit, _ = p["commit"].(int64)
	change, _ = p["change"].(int64)
	return commit, change
}

// field returns column col of the before or after row with any union
// wrapper removed; nil for SQL NULL.
func (r rec) field(which, col string) any {
	return unwrapUnion(r.row(which)[col])
}

// unwrapUnion returns the member value of a goavro union ({"branch": v});
// other values as they are.
func unwrapUnion(v any) any {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for _, x := range m {
			return x
		}
	}
	return v
}

// metric returns the sample of the metric family name whose labels include
// labels, from the capture's admin registry; nil when there is none.
func (h *harness) metric(t *testing.T, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	return metrictest.Find(t, h.admin.Registry(), name, labels)
}
