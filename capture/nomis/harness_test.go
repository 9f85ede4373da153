package nomis

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/metrictest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/syncbuf"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
	"github.com/alertsync/alertsync/schemas"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(kafkatest.Wrap(m))) }

// Session settings the stand-in's audit and journal triggers read.
const (
	setModule     = "nomis.audit_module_name"
	setAdditional = "nomis.audit_additional_info"
	setUser       = "nomis.audit_user_id"
)

// harness is one NOMIS stand-in database (tables, reference codes and,
// unless bare, the nomis migrations), a Kafka cluster (kfake, or the broker
// of ALERTSYNC_TEST_KAFKA), a fake schema registry, and a capture
// configured for them.
type harness struct {
	db      *pgtest.DB
	brokers []string
	reg     *srfake.Registry
	srcl    *sr.Client
	cfg     Config
	admin   *admin.Server
	logs    *syncbuf.Buffer // the capture's log output (warn and above)
	tweak   func(*Capture)  // run on each capture start builds, before Run
}

// newHarness returns a harness on a fresh database with the stand-in and
// every nomis migration.
func newHarness(t *testing.T) *harness {
	t.Helper()
	h := newBareHarnessOn(t, pgtest.NewDB(t))
	h.migrate(t)
	return h
}

// newBareHarnessOn is a harness on db with the stand-in tables and reference
// codes but no migrations (the capture applies them with capture.migrate).
func newBareHarnessOn(t *testing.T, db *pgtest.DB) *harness {
	t.Helper()
	h := &harness{db: db, brokers: kafkatest.Brokers(t), reg: srfake.New(), logs: &syncbuf.Buffer{}}
	t.Cleanup(h.reg.Close)
	h.db.Exec(t, deploy.NOMISSchemaSQL())
	h.db.Exec(t, deploy.NOMISSeedSQL())
	var err error
	h.srcl, err = sr.NewClient(sr.URLs(h.reg.URL()))
	require.NoError(t, err)
	require.NoError(t, config.Load(&h.cfg, config.Sources{LookupEnv: func(string) (string, bool) { return "", false }}))
	h.cfg.NOMIS.DSN = h.db.DSN
	h.cfg.Pipeline.Kafka.Brokers = h.brokers
	h.cfg.Pipeline.Topics.Prefix = kafkatest.Topic(t, "n") + "."
	h.cfg.Pipeline.Topics.Partitions = 3
	h.cfg.Pipeline.Topics.ReplicationFactor = 1
	h.cfg.Pipeline.Shutdown.Timeout = 10 * time.Second
	h.cfg.Capture.PollMax = 200 * time.Millisecond
	h.cfg.Capture.MaxBackoff = 2 * time.Second
	// Change-capture tests start without an initial load (it would fold the
	// changes they make before starting); the snapshot tests turn it on.
	h.cfg.Capture.InitialLoad = "never"
	h.cfg.Capture.ResyncDelay = 300 * time.Millisecond
	require.NoError(t, config.Validate(&h.cfg))
	return h
}

func (h *harness) migrate(t *testing.T) {
	t.Helper()
	set, err := migrate.Named("nomis")
	require.NoError(t, err)
	_, err = migrate.Up(context.Background(), h.db.SQL(t), set, migrate.Latest)
	require.NoError(t, err)
}

// fixture adds offenders 1 (A1234BC, bookings 10 current and 11 older) and
// 2 (B2345CD, booking 20): five journal rows (two offenders, three bookings).
func (h *harness) fixture(t *testing.T) {
	t.Helper()
	h.db.Exec(t, `
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id) VALUES (1, 'A1234BC', 1), (2, 'B2345CD', 2);
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
VALUES (10, TIMESTAMP '2024-03-01 10:00:00', 1, 1, 1, 'Y', 'MDI'),
       (11, TIMESTAMP '2020-01-01 09:00:00', 1, 1, 2, 'N', 'LEI'),
       (20, TIMESTAMP '2024-01-01 09:00:00', 2, 2, 1, 'Y', 'MDI');`)
}

func (h *harness) topic(table string) string {
	return h.cfg.Pipeline.Topics.Prefix + "nomis.oms_owner." + table
}

func (h *harness) dlqTopic() string { return h.cfg.Pipeline.Topics.Prefix + schemas.TopicDLQ }

const insertAlertSQL = `INSERT INTO oms_owner.offender_alerts
    (offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text, caseload_type)
    VALUES (%d, %d, 'X', 'XA', 'ACTIVE', TIMESTAMP '2024-06-02 00:00:00', 'text', 'INST')`

func insertAlert(book, seq int) string { return fmt.Sprintf(insertAlertSQL, book, seq) }

// inSession runs stmts in one transaction with the given nomis.* settings set
// locally, as a NOMIS writer would, and returns the transaction's
// txid_current().
func (h *harness) inSession(t *testing.T, settings map[string]string, stmts ...string) int64 {
	t.Helper()
	ctx := context.Background()
	tx, err := h.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }() // no-op after Commit
	setLocal(t, tx, settings)
	for _, s := range stmts {
		_, err := tx.Exec(ctx, s)
		require.NoError(t, err, s)
	}
	var txid int64
	require.NoError(t, tx.QueryRow(ctx, "SELECT txid_current()").Scan(&txid))
	require.NoError(t, tx.Commit(ctx))
	return txid
}

func setLocal(t *testing.T, tx pgx.Tx, settings map[string]string) {
	t.Helper()
	for k, v := range settings {
		_, err := tx.Exec(context.Background(), "SELECT set_config($1, $2, true)", k, v)
		require.NoError(t, err)
	}
}

// commitMicros returns the commit time of transaction txid in microseconds
// since the epoch, as the journal reader computes it.
func (h *harness) commitMicros(t *testing.T, txid int64) int64 {
	t.Helper()
	return pgtest.QueryValue[int64](t, h.db,
		"SELECT (extract(epoch FROM pg_xact_commit_timestamp(($1::bigint % 4294967296)::text::xid)) * 1000000)::bigint", txid)
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

// start runs a capture of h.cfg; mutate may adjust its config or deps first.
func (h *harness) start(t *testing.T, mutate ...func(*Config, *Deps)) *running {
	t.Helper()
	cfg := h.cfg
	h.admin = admin.New("127.0.0.1:0", time.Second, slog.New(slog.DiscardHandler))
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	deps := Deps{Registry: h.srcl, Admin: h.admin, Logger: logger, Version: "test"}
	for _, m := range mutate {
		m(&cfg, &deps)
	}
	kcl, err := kafka.NewClient(cfg.Pipeline.Kafka, nil, nil, kgo.MaxBufferedRecords(cfg.Capture.BufferedRecords()))
	require.NoError(t, err)
	deps.Kafka = kcl
	c, err := New(cfg, deps)
	require.NoError(t, err)
	if h.tweak != nil {
		h.tweak(c)
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

// waitState waits until the capture's component reports state; it fails if
// the capture exits first.
func (r *running) waitState(t *testing.T, state admin.State, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for r.c.comp.Status().State != state {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("capture exited while waiting for state %s: %v", state, err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("capture not in state %s after %s: %+v", state, timeout, r.c.comp.Status())
		}
	}
}

func (r *running) waitRunning(t *testing.T) {
	t.Helper()
	r.waitState(t, admin.Running, 60*time.Second)
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

// journalRows returns how many rows the journal holds.
func (h *harness) journalRows(t *testing.T) int {
	t.Helper()
	return pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.alertsync_journal")
}

// waitReadable waits until every journal row is below the commit horizon
// of a journal read (capture.settle behind the commit), so that a capture
// started now reads them all in its first batch.
func (h *harness) waitReadable(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if pgtest.QueryValue[bool](t, h.db, `SELECT (SELECT count(*) FROM alertsync.alertsync_journal_read(1000000, $1::interval))
			 = (SELECT count(*) FROM alertsync.alertsync_journal)`, h.cfg.Capture.Settle.String()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("journal rows still above the commit horizon after %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCaughtUp waits until the journal is empty: every change committed
// before the call has been acknowledged by Kafka (rows leave the journal only
// then).
func (h *harness) waitCaughtUp(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := h.journalRows(t)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("journal still holds %d rows after %s", n, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rec is a decoded record.
type rec topictest.Record

func (r rec) op() string {
	if r.Value == nil {
		return "tombstone"
	}
	v, _ := schemas.Get[string](r.Value, "op")
	return v
}

func (r rec) source() map[string]any {
	v, _ := schemas.Get[map[string]any](r.Value, "source")
	return v
}

// block returns the record of a nullable envelope field (session, context,
// before, after), nil when null.
func (r rec) block(name string) map[string]any {
	u, ok := r.Value[name].(map[string]any)
	if !ok {
		return nil
	}
	for _, v := range u {
		m, _ := v.(map[string]any)
		return m
	}
	return nil
}

func (r rec) row(which string) map[string]any { return r.block(which) }

// field returns column col of the before or after row, or field col of
// another block, without its union wrapper; nil for null.
func (r rec) field(which, col string) any { return unwrapUnion(r.block(which)[col]) }

// position returns source.position: (commit, change).
func (r rec) position() (commit, change int64) {
	p, _ := r.source()["position"].(map[string]any)
	commit, _ = p["commit"].(int64)
	change, _ = p["change"].(int64)
	return commit, change
}

// keyString returns the key as text: "offender_id", "offender_book_id" or
// "offender_book_id/alert_seq".
func (r rec) keyString() string {
	parts := make([]string, 0, 2)
	for _, k := range []string{"offender_id", "offender_book_id", "alert_seq"} {
		if v, ok := r.Key[k]; ok {
			parts = append(parts, fmt.Sprint(v))
		}
	}
	return strings.Join(parts, "/")
}

func unwrapUnion(v any) any {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for _, x := range m {
			return x
		}
	}
	return v
}

// byKey groups records by key, each group in offset order (per key one
// partition).
func byKey(recs []rec) map[string][]rec {
	out := map[string][]rec{}
	for _, x := range recs {
		out[x.keyString()] = append(out[x.keyString()], x)
	}
	return out
}

func ops(recs []rec) []string {
	out := make([]string, len(recs))
	for i, x := range recs {
		out[i] = x.op()
	}
	return out
}

// consumeAll reads every record of topics up to their end offsets at the
// call (records produced meanwhile are left out), topic by topic, each in
// partition and offset order; use it once the capture has caught up
// (waitCaughtUp).
func (h *harness) consumeAll(t *testing.T, topics ...string) []rec {
	t.Helper()
	adm := kadm.NewClient(kafkatest.Client(t, h.brokers))
	rd := topictest.Reader{Brokers: h.brokers, Registry: h.srcl}
	var out []rec
	for _, topic := range topics {
		ends := topictest.EndOffsets(context.Background(), t, adm, topic)
		out = append(out, topictest.As[rec](rd.ToEnds(t, topic, ends))...)
	}
	return out
}

// metric returns the sample of the metric family name whose labels include
// labels, from the capture's admin registry; nil when there is none.
func (h *harness) metric(t *testing.T, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	return metrictest.Find(t, h.admin.Registry(), name, labels)
}
