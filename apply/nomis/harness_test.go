package nomis

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
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
	"github.com/alertsync/alertsync/internal/testenv/topictest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/encode"
	"github.com/alertsync/alertsync/transform/rules"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(kafkatest.Wrap(m))) }

// harness is apply nomis's world: a NOMIS stand-in database (OMS_OWNER
// tables, reference codes, the sync-owned schema, three prisoners), a Kafka
// cluster, a fake registry and a command producer.
type harness struct {
	cfg     Config
	db      *pgtest.DB
	dps     *pgtest.DB // the DPS-side mapping (read-only for apply nomis)
	brokers []string
	reg     *srfake.Registry
	srcl    *sr.Client
	cmds    *schemas.TopicCodec
	prod    *kgo.Client
	seq     int64
}

// fixtureSQL: A1234BC has current booking 10 and older booking 11;
// B2345CD has current booking 20; C3456DE only an older booking 30 (no
// current booking).
const fixtureSQL = `
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id)
VALUES (1, 'A1234BC', 1), (2, 'B2345CD', 2), (3, 'C3456DE', 3);
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
VALUES (10, TIMESTAMP '2024-03-01 10:00:00', 1, 1, 1, 'Y', 'MDI'),
       (11, TIMESTAMP '2020-01-01 09:00:00', 1, 1, 2, 'N', 'LEI'),
       (20, TIMESTAMP '2024-01-01 09:00:00', 2, 2, 1, 'Y', 'MDI'),
       (30, TIMESTAMP '2019-05-01 09:00:00', 3, 3, 2, 'N', 'LEI');`

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessOn(t, kafkatest.Brokers(t))
}

// newHarnessOn is newHarness on the Kafka cluster at brokers.
func newHarnessOn(t testing.TB, brokers []string) *harness {
	t.Helper()
	h := &harness{db: pgtest.NewDB(t), brokers: brokers, reg: srfake.New()}
	t.Cleanup(h.reg.Close)
	h.db.Exec(t, deploy.NOMISSchemaSQL())
	h.db.Exec(t, deploy.NOMISSeedSQL())
	set, err := migrate.Named("nomis")
	require.NoError(t, err)
	_, err = migrate.Up(context.Background(), h.db.SQL(t), set, migrate.Latest)
	require.NoError(t, err)
	h.db.Exec(t, fixtureSQL)
	h.dps = pgtest.NewDB(t)
	h.dps.Exec(t, deploy.DPSSchemaSQL()) // apply nomis reads public.alert
	dpsSet, err := migrate.Named("dps")
	require.NoError(t, err)
	_, err = migrate.Up(context.Background(), h.dps.SQL(t), dpsSet, migrate.Latest)
	require.NoError(t, err)
	h.srcl, err = sr.NewClient(sr.URLs(h.reg.URL()))
	require.NoError(t, err)
	require.NoError(t, config.Load(&h.cfg, config.Sources{LookupEnv: func(string) (string, bool) { return "", false }}))
	h.cfg.NOMIS.DSN = h.db.DSN
	h.cfg.DPS.DSN = h.dps.DSN
	h.cfg.Pipeline.Kafka.Brokers = h.brokers
	h.cfg.Pipeline.Topics.Prefix = kafkatest.Topic(t, "n") + "."
	h.cfg.Pipeline.Topics.Partitions = 3
	h.cfg.Pipeline.Topics.ReplicationFactor = 1
	h.cfg.Apply.MaxBackoff = time.Second
	h.cfg.Apply.OutboxInterval = 50 * time.Millisecond
	h.cfg.Apply.Owner = "test"
	require.NoError(t, config.Validate(&h.cfg))
	require.Equal(t, "postgres", h.cfg.NOMIS.Dialect)
	ctx := context.Background()
	adm := kadm.NewClient(kafkatest.Client(t, h.brokers))
	require.NoError(t, kafka.EnsureTopics(ctx, adm, h.cfg.Pipeline.Topics.Specs(kafka.CommandsNOMIS, kafka.Outcomes, kafka.DLQ)...))
	codec := schemas.New(h.srcl, schemas.WithTopicPrefix(h.cfg.Pipeline.Topics.Prefix))
	h.cmds, err = codec.Bind(ctx, schemas.TopicCommandsNOMIS)
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

// dpsState returns an alert state as the transformer maps a DPS alert for
// NOMIS.
func dpsState(code string, from rules.Date, desc string) *rules.AlertState {
	mdi := "MDI"
	return &rules.AlertState{Code: code, TypeCode: code[:1], ActiveFrom: from, Status: rules.StatusActive,
		Description: &desc, CreatedBy: "DPSUSER1", CreatedAt: time.Date(2024, 3, 1, 10, 30, 0, 0, time.UTC), PrisonCode: &mdi}
}

// modified returns st as changed by user.
func modified(st *rules.AlertState, user string) *rules.AlertState {
	c := *st
	c.ModifiedBy = &user
	return &c
}

// cmd returns a command of kind from DPS for DPS alert id of prisoner
// number, with a position and commit time later than every one before it.
func (h *harness) cmd(kind rules.Kind, number, id string, before, after *rules.AlertState) rules.Command {
	h.seq++
	pos := rules.Position{Commit: 5_000_000 + h.seq, Change: h.seq}
	return rules.Command{
		ID: rules.CommandID(rules.SideDPS, pos, kind, id), Kind: kind, PrisonNumber: number,
		Origin: rules.SideDPS, Target: rules.SideNOMIS, SourcePosition: pos,
		SourceCommitTime: time.Now().UTC().Truncate(time.Microsecond),
		DPSAlertID:       &id, Before: before, After: after,
	}
}

func newID(t *testing.T) string {
	t.Helper()
	u, err := uuid.NewV7()
	require.NoError(t, err)
	return u.String()
}

// asNOMISUser runs stmt in one transaction of a NOMIS user (module OCDALERT,
// user NOMISUSER), as a NOMIS screen would.
func (h *harness) asNOMISUser(t *testing.T, stmt string, args ...any) {
	t.Helper()
	ctx := context.Background()
	tx, err := h.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, "SELECT set_config('nomis.audit_module_name', 'OCDALERT', true), set_config('nomis.audit_user_id', 'NOMISUSER', true)")
	require.NoError(t, err)
	_, err = tx.Exec(ctx, stmt, args...)
	require.NoError(t, err, stmt)
	require.NoError(t, tx.Commit(ctx))
}

// rowCommit returns the commit time of the last change of alert (book, seq).
func (h *harness) rowCommit(t *testing.T, book, seq int) time.Time {
	t.Helper()
	return pgtest.QueryValue[time.Time](t, h.db,
		"SELECT pg_xact_commit_timestamp(xmin) FROM oms_owner.offender_alerts WHERE offender_book_id = $1 AND alert_seq = $2", book, seq).UTC()
}

// running is an apply running in this process.
type running struct {
	a    *Apply
	srv  *admin.Server
	stop context.CancelFunc
	done chan struct{}
	err  error
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
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, srv: srv, stop: cancel, done: make(chan struct{})}
	go func() { r.err = a.Run(ctx); close(r.done) }()
	t.Cleanup(func() { _ = r.halt(t) })
	return r
}

func (r *running) halt(t *testing.T) error {
	t.Helper()
	r.stop()
	select {
	case <-r.done:
		return r.err
	case <-time.After(30 * time.Second):
		t.Fatal("apply did not stop within 30s")
		return nil
	}
}

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

// applied returns how many commands the stored offsets of the command
// topic cover.
func (h *harness) applied(t *testing.T) int64 {
	t.Helper()
	return pgtest.QueryValue[int64](t, h.db,
		"SELECT coalesce(sum(next_offset), 0)::bigint FROM alertsync.alertsync_consumer_offsets WHERE topic = $1",
		h.cfg.Pipeline.Topics.Prefix+schemas.TopicCommandsNOMIS)
}

// waitApplied waits until the stored offsets of the command topic add up
// to n commands.
func (h *harness) waitApplied(t *testing.T, r *running, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := h.applied(t)
		if got >= int64(n) {
			return
		}
		select {
		case <-r.done:
			t.Fatalf("apply stopped: %v", r.err)
		case <-time.After(20 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "%d of %d commands applied after 30s", got, n)
	}
}

func (r *running) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	m := metrictest.Find(t, r.srv.Registry(), name, labels)
	if m == nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

func outcomeOf(rec topictest.Record) (apply.Result, string) {
	reason := ""
	if u, ok := rec.Value["reason"].(map[string]any); ok {
		reason, _ = u["string"].(string)
	}
	return apply.Result(rec.Value["outcome"].(string)), reason
}

// requireOutcome checks the (only) outcome of command c.
func requireOutcome(t *testing.T, outs map[string][]topictest.Record, c rules.Command, res apply.Result, reason string) {
	t.Helper()
	require.Len(t, outs[c.ID], 1, "one outcome of command %s", c.ID)
	got, why := outcomeOf(outs[c.ID][0])
	require.Equal(t, res, got, "outcome of command %s", c.ID)
	require.Equal(t, reason, why, "reason of command %s", c.ID)
}

// nomisKeyOf returns the NOMIS key an outcome names.
func nomisKeyOf(rec topictest.Record) (book int64, seq int32) {
	if u, ok := rec.Value["nomis_booking_id"].(map[string]any); ok {
		book, _ = u["long"].(int64)
	}
	if u, ok := rec.Value["nomis_alert_seq"].(map[string]any); ok {
		seq, _ = u["int"].(int32)
	}
	return book, seq
}
