package dps

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/metrictest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/runtest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/encode"
	"github.com/alertsync/alertsync/transform/rules"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(kafkatest.Wrap(m))) }

// harness is apply dps's world: a DPS database (service tables and
// reference data), a Kafka cluster, a fake registry and a command producer.
type harness struct {
	cfg     Config
	db      *pgtest.DB
	brokers []string
	reg     *srfake.Registry
	srcl    *sr.Client
	cmds    *schemas.TopicCodec
	prod    *kgo.Client
	seq     int64
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessOn(t, kafkatest.Brokers(t))
}

// newHarnessOn is newHarness on the Kafka cluster at brokers.
func newHarnessOn(t testing.TB, brokers []string) *harness {
	t.Helper()
	h := &harness{db: pgtest.NewDB(t), brokers: brokers, reg: srfake.New()}
	t.Cleanup(h.reg.Close)
	h.db.Exec(t, deploy.DPSSchemaSQL())
	h.db.Exec(t, deploy.DPSSeedSQL())
	set, err := migrate.Named("dps")
	require.NoError(t, err)
	_, err = migrate.Up(context.Background(), h.db.SQL(t), set, migrate.Latest)
	require.NoError(t, err)
	h.srcl, err = sr.NewClient(sr.URLs(h.reg.URL()))
	require.NoError(t, err)
	require.NoError(t, config.Load(&h.cfg, config.Sources{LookupEnv: func(string) (string, bool) { return "", false }}))
	h.cfg.DPS.DSN = h.db.DSN
	h.cfg.Pipeline.Kafka.Brokers = h.brokers
	h.cfg.Pipeline.Topics.Prefix = kafkatest.Topic(t, "a") + "."
	h.cfg.Pipeline.Topics.Partitions = 3
	h.cfg.Pipeline.Topics.ReplicationFactor = 1
	h.cfg.Apply.MaxBackoff = time.Second
	h.cfg.Apply.OutboxInterval = 50 * time.Millisecond
	h.cfg.Apply.Owner = "test"
	require.NoError(t, config.Validate(&h.cfg))
	ctx := context.Background()
	adm := kadm.NewClient(kafkatest.Client(t, h.brokers))
	require.NoError(t, kafka.EnsureTopics(ctx, adm, h.cfg.Pipeline.Topics.Specs(kafka.CommandsDPS, kafka.Outcomes, kafka.DLQ)...))
	codec := schemas.New(h.srcl, schemas.WithTopicPrefix(h.cfg.Pipeline.Topics.Prefix))
	h.cmds, err = codec.Bind(ctx, schemas.TopicCommandsDPS)
	require.NoError(t, err)
	h.prod = kafkatest.Client(t, h.brokers, kgo.ProducerLinger(0))
	return h
}

// send produces commands in order.
func (h *harness) send(t *testing.T, cmds ...rules.Command) {
	t.Helper()
	for i := range cmds {
		k, v := encode.Native(&cmds[i])
		rec, err := h.cmds.Record(k, v)
		require.NoError(t, err)
		require.NoError(t, h.prod.ProduceSync(context.Background(), rec).FirstErr())
	}
}

// nomisState returns an alert state as NOMIS would send it.
func nomisState(code string, from rules.Date, desc string) *rules.AlertState {
	return &rules.AlertState{Code: code, TypeCode: code[:1], ActiveFrom: from, Status: rules.StatusActive,
		Description: &desc, CreatedBy: "JSMITH", CreatedAt: time.Date(2024, 3, 1, 10, 30, 0, 0, time.UTC)}
}

// cmd returns a command of kind for the NOMIS alert (book, seq) of prisoner
// number, with a position and commit time later than every one before it.
func (h *harness) cmd(kind rules.Kind, number string, book int64, seq int32, before, after *rules.AlertState) rules.Command {
	h.seq++
	pos := rules.Position{Commit: 1_000_000 + h.seq, Change: h.seq}
	return rules.Command{
		ID: rules.CommandID(rules.SideNOMIS, pos, kind, number), Kind: kind, PrisonNumber: number,
		Origin: rules.SideNOMIS, Target: rules.SideDPS, SourcePosition: pos,
		SourceCommitTime: time.Now().UTC().Truncate(time.Microsecond),
		NOMISBookingID:   &book, NOMISAlertSeq: &seq, Before: before, After: after,
	}
}

// running is an apply running in this process.
type running struct {
	*runtest.Running
	a   *Apply
	srv *admin.Server
}

func (h *harness) start(t *testing.T) *running {
	t.Helper()
	srv := admin.New("127.0.0.1:0", time.Second, nil)
	var log *slog.Logger
	if os.Getenv("ALERTSYNC_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	a, err := New(h.cfg, Deps{Registry: h.srcl, Admin: srv, Logger: log})
	require.NoError(t, err)
	return &running{Running: runtest.Start(t, a.Run), a: a, srv: srv}
}

func (r *running) halt(t *testing.T) error { t.Helper(); return r.Halt(t) }

// outcomes reads want outcomes, read committed, and returns them by command id.
func (h *harness) outcomes(t *testing.T, want int) map[string][]topictest.Record {
	t.Helper()
	rd := topictest.Reader{Brokers: h.brokers, Registry: h.srcl, ReadCommitted: true}
	// The relay may publish an outbox row twice (after a partial failure or
	// a crash): count each row once.
	recs := rd.UntilDistinct(t, want, 30*time.Second, func(r topictest.Record) string {
		return r.Headers[apply.HeaderOutboxID]
	}, h.cfg.Pipeline.Topics.Prefix+schemas.TopicOutcomes)
	require.GreaterOrEqual(t, len(recs), want, "outcomes")
	out := map[string][]topictest.Record{}
	for _, r := range recs {
		id := r.Value["command_id"].(string)
		out[id] = append(out[id], r)
	}
	return out
}

// waitApplied waits until the stored offsets of the command topic add up
// to n commands.
func (h *harness) waitApplied(t *testing.T, r *running, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := pgtest.QueryValue[int64](t, h.db, "SELECT coalesce(sum(next_offset), 0)::bigint FROM alertsync.consumer_offsets WHERE topic = $1",
			h.cfg.Pipeline.Topics.Prefix+schemas.TopicCommandsDPS)
		if got >= int64(n) {
			return
		}
		select {
		case <-r.Done():
			t.Fatalf("apply stopped: %v", r.Err())
		case <-time.After(20 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "%d of %d commands applied after 30s", got, n)
	}
}

func (r *running) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	return metrictest.Value(t, r.srv.Registry(), name, labels)
}

func outcomeOf(recs []topictest.Record) (apply.Result, string) {
	v := recs[0].Value
	reason := ""
	if u, ok := v["reason"].(map[string]any); ok {
		reason, _ = u["string"].(string)
	}
	return apply.Result(v["outcome"].(string)), reason
}

// ends returns the end offsets of topic (its catalogue name).
func (h *harness) ends(t *testing.T, topic string) map[int32]int64 {
	t.Helper()
	return topictest.EndOffsets(context.Background(), t, kadm.NewClient(kafkatest.Client(t, h.brokers)), h.cfg.Pipeline.Topics.Prefix+topic)
}
