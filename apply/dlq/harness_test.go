package dlq

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	applydps "github.com/alertsync/alertsync/apply/dps"
	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/runtest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/encode"
	"github.com/alertsync/alertsync/transform/rules"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(kafkatest.Wrap(m))) }

// world is a DPS database (service schema, reference data, sync-owned
// migrations), a Kafka cluster with the apply's topics, a fake registry, a
// command producer, and the configurations of apply dps and of dlq.
type world struct {
	db      *pgtest.DB
	brokers []string
	srcl    *sr.Client
	apply   applydps.Config
	cfg     Config
	cmds    *schemas.TopicCodec
	prod    *kgo.Client
	seq     int64
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{db: pgtest.NewDB(t), brokers: kafkatest.Brokers(t)}
	reg := srfake.New()
	t.Cleanup(reg.Close)
	migrated(t, w.db, "dps", deploy.DPSSchemaSQL(), deploy.DPSSeedSQL())
	var err error
	w.srcl, err = sr.NewClient(sr.URLs(reg.URL()))
	require.NoError(t, err)
	noEnv := config.Sources{LookupEnv: func(string) (string, bool) { return "", false }}
	prefix := kafkatest.Topic(t, "d") + "."

	require.NoError(t, config.Load(&w.apply, noEnv))
	w.apply.DPS.DSN = w.db.DSN
	w.apply.Pipeline.Kafka.Brokers = w.brokers
	w.apply.Pipeline.Topics.Prefix = prefix
	w.apply.Pipeline.Topics.Partitions = 3
	w.apply.Pipeline.Topics.ReplicationFactor = 1
	w.apply.Apply.MaxBackoff = time.Second
	w.apply.Apply.OutboxInterval = 50 * time.Millisecond
	w.apply.Apply.Owner = "test"
	require.NoError(t, config.Validate(&w.apply))

	require.NoError(t, config.Load(&w.cfg, noEnv))
	w.cfg.DPS.DSN = w.db.DSN
	w.cfg.Kafka.Brokers = w.brokers
	w.cfg.Topics = w.apply.Pipeline.Topics
	w.cfg.Own.Timeout = 30 * time.Second
	require.NoError(t, config.Validate(&w.cfg))

	ctx := context.Background()
	adm := kadm.NewClient(kafkatest.Client(t, w.brokers))
	require.NoError(t, kafka.EnsureTopics(ctx, adm, w.apply.Pipeline.Topics.Specs(kafka.CommandsDPS, kafka.Outcomes, kafka.DLQ)...))
	w.cmds, err = schemas.New(w.srcl, schemas.WithTopicPrefix(prefix)).Bind(ctx, schemas.TopicCommandsDPS)
	require.NoError(t, err)
	w.prod = kafkatest.Client(t, w.brokers, kgo.ProducerLinger(0))
	return w
}

// migrated runs the service's own SQL (schema, seed) on db, then the
// sync-owned migrations of set ("dps" or "nomis").
func migrated(t *testing.T, db *pgtest.DB, set string, serviceSQL ...string) {
	t.Helper()
	for _, q := range serviceSQL {
		db.Exec(t, q)
	}
	s, err := migrate.Named(set)
	require.NoError(t, err)
	_, err = migrate.Up(context.Background(), db.SQL(t), s, migrate.Latest)
	require.NoError(t, err)
}

// startApply runs apply dps in this process until the test ends.
func (w *world) startApply(t *testing.T) *runtest.Running {
	t.Helper()
	a, err := applydps.New(w.apply, applydps.Deps{Registry: w.srcl, Admin: admin.New("127.0.0.1:0", time.Second, nil)})
	require.NoError(t, err)
	return runtest.Start(t, a.Run)
}

// send produces commands in order.
func (w *world) send(t *testing.T, cmds ...rules.Command) {
	t.Helper()
	for i := range cmds {
		k, v := encode.Native(&cmds[i])
		rec, err := w.cmds.Record(k, v)
		require.NoError(t, err)
		require.NoError(t, w.prod.ProduceSync(context.Background(), rec).FirstErr())
	}
}

// state is an alert state as NOMIS would send it.
func state(code, desc string) *rules.AlertState {
	return &rules.AlertState{Code: code, TypeCode: code[:1], ActiveFrom: rules.DateOf(2024, time.March, 1), Status: rules.StatusActive,
		Description: &desc, CreatedBy: "JSMITH", CreatedAt: time.Date(2024, 3, 1, 10, 30, 0, 0, time.UTC)}
}

// cmd returns an UPSERT of the NOMIS alert (book, seq) of prisoner number,
// later in source order than every command before it.
func (w *world) cmd(number string, book int64, seq int32, before, after *rules.AlertState) rules.Command {
	w.seq++
	pos := rules.Position{Commit: 1_000_000 + w.seq, Change: w.seq}
	return rules.Command{
		ID: rules.CommandID(rules.SideNOMIS, pos, rules.KindUpsert, number), Kind: rules.KindUpsert, PrisonNumber: number,
		Origin: rules.SideNOMIS, Target: rules.SideDPS, SourcePosition: pos,
		SourceCommitTime: time.Now().UTC().Truncate(time.Microsecond),
		NOMISBookingID:   &book, NOMISAlertSeq: &seq, Before: before, After: after,
	}
}

// list runs List and returns its output and notes.
func (w *world) list(t *testing.T, cfg Config, opts ListOptions) (string, string) {
	t.Helper()
	var out, notes bytes.Buffer
	require.NoError(t, List(t.Context(), cfg, Deps{Registry: w.srcl}, opts, &out, &notes))
	return out.String(), notes.String()
}

// listJSON runs List with JSON output and decodes its lines.
func (w *world) listJSON(t *testing.T, opts ListOptions) []map[string]any {
	t.Helper()
	opts.JSON = true
	out, notes := w.list(t, w.cfg, opts)
	require.Empty(t, notes)
	var es []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		es = append(es, m)
	}
	return es
}

// waitEntries waits until List shows n entries of opts.
func (w *world) waitEntries(t *testing.T, n int, opts ListOptions) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		es := w.listJSON(t, opts)
		if len(es) >= n {
			require.Len(t, es, n)
			return es
		}
		require.True(t, time.Now().Before(deadline), "%d of %d DLQ entries after 30s", len(es), n)
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFor waits until query returns true.
func (w *world) waitFor(t *testing.T, what, query string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !pgtest.QueryValue[bool](t, w.db, query, args...) {
		require.True(t, time.Now().Before(deadline), "waiting for %s: not after 30s", what)
		time.Sleep(50 * time.Millisecond)
	}
}

// redrive runs Redrive and returns its output.
func (w *world) redrive(t *testing.T, opts RedriveOptions) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Redrive(t.Context(), w.cfg, Deps{Registry: w.srcl}, opts, &out)
	return out.String(), err
}
