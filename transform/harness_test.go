package transform

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/metrictest"
	"github.com/alertsync/alertsync/internal/testenv/runtest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/internal/fixture"
	"github.com/alertsync/alertsync/transform/rules"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.Run(m)) }

// harness is a transformer's world: a Kafka cluster (kfake, or the real
// broker of ALERTSYNC_TEST_KAFKA), a fake registry, topics under a prefix
// of the test's own, and a producer of source records.
type harness struct {
	cfg     Config
	brokers []string
	reg     *srfake.Registry
	srcl    *sr.Client
	codec   *schemas.Codec
	prod    *kgo.Client
	bound   map[string]*schemas.TopicCodec
	seq     int64
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessOn(t, kafkatest.Brokers(t))
}

// newHarnessOn is newHarness on the cluster at brokers.
func newHarnessOn(t *testing.T, brokers []string) *harness {
	t.Helper()
	h := &harness{brokers: brokers, reg: srfake.New(), bound: map[string]*schemas.TopicCodec{}}
	t.Cleanup(h.reg.Close)
	var err error
	h.srcl, err = sr.NewClient(sr.URLs(h.reg.URL()))
	require.NoError(t, err)
	require.NoError(t, config.Load(&h.cfg, config.Sources{LookupEnv: func(string) (string, bool) { return "", false }}))
	h.cfg.Pipeline.Kafka.Brokers = h.brokers
	h.cfg.Pipeline.Topics.Prefix = kafkatest.Topic(t, "t") + "."
	h.cfg.Pipeline.Topics.Partitions = 3
	h.cfg.Pipeline.Topics.ReplicationFactor = 1
	h.cfg.Pipeline.Registry.URL = h.reg.URL()
	h.cfg.Transform.ReplicaID = "r1"
	h.cfg.Transform.Group = h.cfg.Pipeline.Topics.Prefix + "transform"
	h.cfg.Transform.TransactionalID = h.cfg.Pipeline.Topics.Prefix + "tx-"
	h.cfg.Transform.MaxBackoff = time.Second
	h.cfg.Transform.ReferenceWait = time.Second
	require.NoError(t, config.Validate(&h.cfg))
	h.codec = schemas.New(h.srcl, schemas.WithTopicPrefix(h.cfg.Pipeline.Topics.Prefix))
	h.prod = kafkatest.Client(t, h.brokers, kgo.DefaultProduceTopic("unused"), kgo.ProducerLinger(0))

	ctx := context.Background()
	adm := kadm.NewClient(kafkatest.Client(t, h.brokers))
	tc := h.cfg.Pipeline.Topics
	require.NoError(t, kafka.EnsureTopics(ctx, adm, tc.Specs(kafka.NOMISOffenderAlerts, kafka.NOMISPrisonerAlerts, kafka.DPSAlert,
		kafka.DPSAlertCode, kafka.DPSAlertType, kafka.CommandsDPS, kafka.CommandsNOMIS, kafka.DLQ)...))
	for _, name := range []string{schemas.TopicNOMISOffenderAlerts, schemas.TopicNOMISPrisonerAlerts, schemas.TopicDPSAlert,
		schemas.TopicDPSAlertCode, schemas.TopicDPSAlertType} {
		b, err := h.codec.Bind(ctx, name)
		require.NoError(t, err)
		h.bound[name] = b
	}
	return h
}

// produce encodes key and value for topic (its catalogue name) and writes
// the record synchronously.
func (h *harness) produce(t testing.TB, topic string, key, value map[string]any) {
	t.Helper()
	var v any
	if value != nil {
		v = value
	}
	rec, err := h.bound[topic].Record(key, v)
	require.NoError(t, err)
	require.NoError(t, h.prod.ProduceSync(context.Background(), rec).FirstErr())
}

// produceRaw writes a record with raw bytes to topic.
func (h *harness) produceRaw(t testing.TB, topic string, key, value []byte) {
	t.Helper()
	rec := &kgo.Record{Topic: h.cfg.Pipeline.Topics.Prefix + topic, Key: key, Value: value}
	require.NoError(t, h.prod.ProduceSync(context.Background(), rec).FirstErr())
}

// seedReference writes alert type X (1) with code XA (10), and type H (2)
// with HA (20).
func (h *harness) seedReference(t testing.TB) {
	t.Helper()
	for _, ty := range []struct {
		id   int64
		code string
	}{{1, "X"}, {2, "H"}} {
		k, v := fixture.AlertType(ty.id, ty.code)
		h.produce(t, schemas.TopicDPSAlertType, k, v)
	}
	for _, c := range []struct {
		id, typ int64
		code    string
	}{{10, 1, "XA"}, {20, 2, "HA"}} {
		k, v := fixture.AlertCode(c.id, c.typ, c.code)
		h.produce(t, schemas.TopicDPSAlertCode, k, v)
	}
}

// nextSource returns a source position and commit time later than every
// one before it.
func (h *harness) nextSource(sync bool) rules.Source {
	h.seq++
	return rules.Source{Position: rules.Position{Commit: 1_000_000 + h.seq, Change: h.seq},
		CommitTime: time.Now().UTC().Truncate(time.Millisecond), Sync: sync}
}

// nomisAlert writes a NOMIS alert change on booking book (current unless
// bookingSeq says otherwise) of prisoner number.
func (h *harness) nomisAlert(t testing.TB, op rules.Op, number string, book int64, seq int32, code string, session *rules.NOMISSession, bookingSeq int32) rules.NOMISAlertChange {
	t.Helper()
	row := fixture.NOMISRowOf(book, seq, code, "")
	ch := rules.NOMISAlertChange{Op: op, Source: h.nextSource(false), Session: session,
		Context: &rules.NOMISContext{OffenderNo: &number, BookingSeq: &bookingSeq}}
	if session == nil {
		ch.Session = &rules.NOMISSession{Module: fixture.Ptr("OCDALERT"), User: fixture.Ptr("JSMITH")}
	} else if session.Module != nil && *session.Module == "DPS_SYNCHRONISATION" {
		ch.Source.Sync = true
	}
	switch op {
	case rules.OpCreate, rules.OpRead:
		ch.After = &row
	case rules.OpUpdate:
		before := row
		row.AlertStatus = "INACTIVE"
		row.ExpiryDate = fixture.Ptr(time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC))
		ch.Before, ch.After = &before, &row
	case rules.OpDelete:
		ch.Before = &row
	}
	k, v := fixture.NOMISAlert(&ch)
	h.produce(t, schemas.TopicNOMISOffenderAlerts, k, v)
	return ch
}

// dpsAlert writes a DPS alert change of id for prisoner number.
func (h *harness) dpsAlert(t testing.TB, op rules.Op, id, number string, codeID int64, sync bool) {
	t.Helper()
	row := fixture.DPSRowOf(id, number, codeID)
	ch := rules.DPSAlertChange{Op: op, Source: h.nextSource(sync)}
	switch op {
	case rules.OpCreate:
		ch.After = &row
	case rules.OpUpdate:
		before := row
		row.DeletedAt = fixture.Ptr(time.Now().UTC().Truncate(time.Microsecond))
		row.Version = 2
		ch.Before, ch.After = &before, &row
	}
	k, v := fixture.DPSAlert(&ch)
	h.produce(t, schemas.TopicDPSAlert, k, v)
}

// startSeeded makes a harness whose reference data is seeded and whose
// transformer waits refWait for a missing code, and starts it.
func startSeeded(t *testing.T, refWait time.Duration) (*harness, *run) {
	t.Helper()
	h := newHarness(t)
	h.cfg.Transform.ReferenceWait = refWait
	h.seedReference(t)
	return h, h.start(t)
}

// run is a transformer running in this process.
type run struct {
	*runtest.Running
	t   *Transformer
	srv *admin.Server
}

func (h *harness) start(t *testing.T) *run {
	t.Helper()
	srv := admin.New("127.0.0.1:0", time.Second, nil)
	var log *slog.Logger
	if os.Getenv("ALERTSYNC_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	tr, err := New(h.cfg, Deps{Registry: h.srcl, Admin: srv, Logger: log})
	require.NoError(t, err)
	return &run{Running: runtest.Start(t, tr.Run), t: tr, srv: srv}
}

// halt stops the transformer and returns Run's error.
func (r *run) halt(t *testing.T) error { t.Helper(); return r.Halt(t) }

// metric returns the value of a transformer metric, 0 when absent.
func (r *run) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	return metrictest.Value(t, r.srv.Registry(), name, labels)
}

// waitMetric waits until metric reaches want.
func (r *run) waitMetric(t *testing.T, name string, labels map[string]string, want float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := r.metric(t, name, labels)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v after %s, want %v", name, labels, got, timeout, want)
		}
		select {
		case <-r.Done():
			t.Fatalf("transformer stopped: %v", r.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// reader reads the output topics read-committed.
func (h *harness) reader() topictest.Reader {
	return topictest.Reader{Brokers: h.brokers, Registry: h.srcl, ReadCommitted: true}
}

func (h *harness) name(topic string) string { return h.cfg.Pipeline.Topics.Prefix + topic }

// commands reads want commands of both command topics.
func (h *harness) commands(t *testing.T, want int, timeout time.Duration) []topictest.Record {
	t.Helper()
	return h.reader().Until(t, want, timeout, h.name(schemas.TopicCommandsDPS), h.name(schemas.TopicCommandsNOMIS))
}

// ends returns the end offsets of topic.
func (h *harness) ends(t *testing.T, topic string) map[int32]int64 {
	t.Helper()
	return topictest.EndOffsets(context.Background(), t, kadm.NewClient(kafkatest.Client(t, h.brokers)), h.name(topic))
}

// all reads topic to its current end, read-committed.
func (h *harness) all(t *testing.T, topic string) []topictest.Record {
	t.Helper()
	return h.reader().ToEnds(t, h.name(topic), h.ends(t, topic))
}

func unionString(v any) string {
	if m, ok := v.(map[string]any); ok {
		for _, x := range m {
			return fmt.Sprint(x)
		}
	}
	return ""
}
