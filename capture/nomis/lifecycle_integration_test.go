package nomis

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/pgcluster"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
)

// Integration tests of the capture's life: one writer per journal, restarts
// of the capture and of PostgreSQL, Kafka away or slow, a crash between
// Kafka's acknowledgement and the journal delete, what it refuses to start
// with, and its metrics.

// TestSecondCaptureRefused: the journal's lock keeps a second capture from
// running; it exits with ErrLocked (after trying for lockGrace, which covers
// a predecessor's session still ending), naming the holder and the way to
// wait instead.
func TestSecondCaptureRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	r.waitRunning(t)
	second := h.start(t)
	err := second.exited(t, 30*time.Second)
	require.ErrorIs(t, err, ErrLocked)
	require.ErrorContains(t, err, "backend pid")
	require.ErrorContains(t, err, "alertsync capture nomis")
	require.ErrorContains(t, err, "capture.lock_wait=true")
	require.Equal(t, admin.Failed, second.c.comp.Status().State)
	require.InDelta(t, 1, h.metric(t, "alertsync_capture_nomis_errors_total", map[string]string{"kind": "fatal"}).GetCounter().GetValue(), 0)
	require.Equal(t, admin.Running, r.c.comp.Status().State, "the first goes on")
}

// TestLockWait: with capture.lock_wait a second capture waits while the
// first runs, publishes nothing meanwhile, and takes over when it stops.
func TestLockWait(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	first := h.start(t)
	first.waitRunning(t)
	second := h.start(t, func(c *Config, _ *Deps) { c.Capture.LockWait = true })
	second.waitState(t, admin.Starting, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for second.c.comp.Status().Detail != "waiting for the capture lock" {
		require.True(t, time.Now().Before(deadline), "second capture: %+v", second.c.comp.Status())
		time.Sleep(20 * time.Millisecond)
	}
	h.inSession(t, nil, insertAlert(10, 1))
	h.waitCaughtUp(t, 30*time.Second)
	require.NoError(t, first.stop(t))

	second.waitRunning(t)
	h.inSession(t, nil, insertAlert(10, 2))
	h.waitCaughtUp(t, 30*time.Second)
	groups := byKey(h.consumeAll(t, h.topic(TableOffenderAlerts)))
	require.Equal(t, map[string][]string{"10/1": {"c"}, "10/2": {"c"}}, map[string][]string{"10/1": ops(groups["10/1"]), "10/2": ops(groups["10/2"])})
	require.Len(t, groups, 2)
	require.NoError(t, second.stop(t))
}

// TestResumeAfterRestart: a capture stopped cleanly and started again
// publishes what was committed while it was away, and repeats nothing.
func TestResumeAfterRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	r := h.start(t)
	r.waitRunning(t)
	h.inSession(t, nil, insertAlert(10, 1))
	h.waitCaughtUp(t, 30*time.Second)
	require.NoError(t, r.stop(t))

	h.inSession(t, nil, insertAlert(10, 2), "UPDATE oms_owner.offender_alerts SET comment_text = 'while away' WHERE offender_book_id = 10 AND alert_seq = 1")
	require.Equal(t, 2, h.journalRows(t), "journalled while the capture is away")
	r2 := h.start(t)
	r2.waitRunning(t)
	h.inSession(t, nil, insertAlert(10, 3))
	h.waitCaughtUp(t, 30*time.Second)
	groups := byKey(h.consumeAll(t, h.topic(TableOffenderAlerts)))
	require.Equal(t, []string{"c", "u"}, ops(groups["10/1"]))
	require.Equal(t, "while away", groups["10/1"][1].field("after", "comment_text"))
	require.Equal(t, []string{"c"}, ops(groups["10/2"]))
	require.Equal(t, []string{"c"}, ops(groups["10/3"]))
	require.Len(t, byKey(h.consumeAll(t, h.topic(TableOffenderBookings))), 3, "the fixture's bookings once each")
}

// faultyDialect wraps the stand-in's dialect to fail the first
// failDeletes deletes, as a crash between Kafka's acknowledgement and the
// journal delete would.
type faultyDialect struct {
	Dialect
	failDeletes atomic.Int32
	deletes     atomic.Int32
}

var errInjected = errors.New("injected: connection lost")

func (f *faultyDialect) Delete(ctx context.Context, conn *sql.Conn, ids []int64, resyncs []Resync) error {
	f.deletes.Add(1)
	if f.failDeletes.Add(-1) >= 0 {
		return errInjected
	}
	return f.Dialect.Delete(ctx, conn, ids, resyncs)
}

// TestAcknowledgedButNotDeletedRepeats: when the journal delete after
// Kafka's acknowledgement fails (as with a crash at that moment), the
// batch's rows stay in the journal and are published again, in the same
// order, once the capture has reconnected; only that batch repeats.
func TestAcknowledgedButNotDeletedRepeats(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	h.inSession(t, nil, insertAlert(10, 1), insertAlert(10, 2), "UPDATE oms_owner.offender_alerts SET comment_text = 'u' WHERE offender_book_id = 10")
	h.waitReadable(t, 10*time.Second) // one first batch
	f := &faultyDialect{Dialect: newPostgres(h.cfg.Capture)}
	f.failDeletes.Store(1)
	r := h.start(t, func(c *Config, d *Deps) {
		c.Capture.MaxBackoff = 200 * time.Millisecond
		d.Dialect = f
	})
	r.waitRunning(t)
	h.waitCaughtUp(t, 30*time.Second)
	h.inSession(t, nil, insertAlert(10, 3))
	h.waitCaughtUp(t, 30*time.Second)

	alerts := byKey(h.consumeAll(t, h.topic(TableOffenderAlerts)))
	require.Equal(t, []string{"c", "u", "c", "u"}, ops(alerts["10/1"]), "the first batch twice")
	require.Equal(t, []string{"c", "u", "c", "u"}, ops(alerts["10/2"]))
	require.Equal(t, []string{"c"}, ops(alerts["10/3"]), "later batches once")
	for _, key := range []string{"10/1", "10/2"} {
		c1, ch1 := alerts[key][0].position()
		c2, ch2 := alerts[key][2].position()
		require.Equal(t, [2]int64{c1, ch1}, [2]int64{c2, ch2}, "the repeat is the same change")
	}
	require.Len(t, h.consumeAll(t, h.topic(TableOffenders)), 4, "the fixture's offenders were in the repeated batch")
	require.GreaterOrEqual(t, f.deletes.Load(), int32(3))
	require.InDelta(t, 1, h.metric(t, "alertsync_capture_nomis_errors_total", map[string]string{"kind": "nomis"}).GetCounter().GetValue(), 0)
}

// TestKafkaSlowKeepsJournal: while Kafka does not acknowledge a batch, its
// rows stay in the journal, the capture reports itself degraded and its lag
// grows; once Kafka answers, the rows are published once and deleted.
func TestKafkaSlowKeepsJournal(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	var hold atomic.Bool
	cluster.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		for hold.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		return nil, nil, false
	})
	h := newHarness(t)
	h.brokers = cluster.ListenAddrs()
	h.cfg.Pipeline.Kafka.Brokers = h.brokers
	h.tweak = func(c *Capture) { c.patience = 300 * time.Millisecond }
	r := h.start(t)
	r.waitRunning(t)

	hold.Store(true)
	h.fixture(t)
	r.waitState(t, admin.Degraded, 10*time.Second)
	require.Equal(t, "waiting for Kafka", r.c.comp.Status().Detail)
	time.Sleep(1200 * time.Millisecond)
	require.Equal(t, 5, h.journalRows(t), "nothing deleted that Kafka has not acknowledged")
	require.GreaterOrEqual(t, h.metric(t, "alertsync_capture_nomis_lag_seconds", nil).GetGauge().GetValue(), 1.0)
	hold.Store(false)

	h.waitCaughtUp(t, 30*time.Second)
	r.waitRunning(t)
	require.Len(t, h.consumeAll(t, h.topic(TableOffenderBookings)), 3)
	require.Len(t, h.consumeAll(t, h.topic(TableOffenders)), 2)
	require.InDelta(t, 1, h.metric(t, "alertsync_capture_nomis_errors_total", map[string]string{"kind": "kafka"}).GetCounter().GetValue(), 0)
}

// TestKafkaAwayAtStart: with no broker reachable the capture waits with
// backoff, degraded, leaving the journal alone; when a broker comes up it
// creates its topics and publishes everything.
func TestKafkaAwayAtStart(t *testing.T) {
	t.Parallel()
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	h := newHarness(t)
	h.brokers = []string{fmt.Sprintf("127.0.0.1:%d", port)}
	h.cfg.Pipeline.Kafka.Brokers = h.brokers
	h.cfg.Pipeline.Kafka.RetryTimeout = 500 * time.Millisecond
	h.cfg.Pipeline.Kafka.DialTimeout = 200 * time.Millisecond
	h.cfg.Capture.MaxBackoff = 500 * time.Millisecond
	h.fixture(t)
	r := h.start(t)
	r.waitState(t, admin.Degraded, 30*time.Second)
	require.Equal(t, "waiting for Kafka", r.c.comp.Status().Detail)
	require.Equal(t, 5, h.journalRows(t))

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	r.waitRunning(t)
	h.waitCaughtUp(t, 30*time.Second)
	require.Len(t, h.consumeAll(t, h.topic(TableOffenderBookings)), 3)
	require.GreaterOrEqual(t, h.metric(t, "alertsync_capture_nomis_errors_total", map[string]string{"kind": "kafka"}).GetCounter().GetValue(), 1.0)
}

// TestNOMISRestart: PostgreSQL restarting under a running capture is retried
// with backoff; every committed change reaches Kafka, and only the
// unconfirmed tail may repeat.
func TestNOMISRestart(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t, pgcluster.Options{})
	h := newBareHarnessOn(t, pgtest.NewDBOn(t, cluster))
	h.migrate(t)
	h.fixture(t)
	h.cfg.Capture.MaxBackoff = time.Second
	r := h.start(t)
	r.waitRunning(t)

	var (
		mu        sync.Mutex
		committed []int
		failed    atomic.Int64
	)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := h.db.Pool.Exec(ctx, insertAlert(10, n))
			cancel()
			if err != nil {
				failed.Add(1) // the server is away; this row may or may not be committed
				time.Sleep(20 * time.Millisecond)
				continue
			}
			mu.Lock()
			committed = append(committed, n)
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(committed) }
	waitFor := func(n int) {
		deadline := time.Now().Add(60 * time.Second)
		for count() < n {
			require.True(t, time.Now().Before(deadline), "writer stuck at %d rows", count())
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(200)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, cluster.Restart(ctx))
	waitFor(count() + 200)
	close(done)
	<-stopped
	r.waitState(t, admin.Running, 60*time.Second)
	h.waitCaughtUp(t, 60*time.Second)

	groups := byKey(h.consumeAll(t, h.topic(TableOffenderAlerts)))
	dups := 0
	for _, n := range committed {
		got := groups[fmt.Sprintf("10/%d", n)]
		require.NotEmpty(t, got, "committed alert 10/%d lost", n)
		for _, x := range got {
			require.Equal(t, "c", x.op())
		}
		dups += len(got) - 1
	}
	t.Logf("%d committed alerts, %d inserts failed while the server was away, %d records repeated", len(committed), failed.Load(), dups)
	require.Less(t, dups, 2*h.cfg.Capture.BatchSize, "at most the batch in flight repeats")
	retries := h.metric(t, "alertsync_capture_nomis_errors_total", map[string]string{"kind": "nomis"})
	require.NotNil(t, retries, "the outage was counted")
	require.Nil(t, h.metric(t, "alertsync_capture_nomis_errors_total", map[string]string{"kind": "fatal"}))
}

// TestRefusesWithInstructions: what a human must fix stops the capture at
// once with an error that says what to do; fixing it lets it run.
func TestRefusesWithInstructions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		harness func(t *testing.T) *harness
		mutate  func(*Config, *Deps)
		wantErr error
		wantMsg string
		fix     func(t *testing.T, h *harness)
	}{
		{
			name:    "no journal with capture.migrate false",
			harness: func(t *testing.T) *harness { return newBareHarnessOn(t, pgtest.NewDB(t)) },
			mutate:  func(c *Config, _ *Deps) { c.Capture.Migrate = false },
			wantErr: ErrNoJournal,
			wantMsg: "run `alertsync migrate nomis`",
			fix:     func(t *testing.T, h *harness) { h.migrate(t) },
		},
		{
			name: "no NOMIS tables",
			harness: func(t *testing.T) *harness {
				h := newBareHarnessOn(t, pgtest.NewDB(t))
				h.db.Exec(t, "DROP SCHEMA oms_owner CASCADE")
				return h
			},
			wantErr: ErrNoNOMISTables,
			wantMsg: "oms_owner.offenders, oms_owner.offender_bookings, oms_owner.offender_alerts",
		},
		{
			name: "commit timestamps not tracked",
			harness: func(t *testing.T) *harness {
				cluster := pgtest.NewCluster(t, pgcluster.Options{Settings: map[string]string{"track_commit_timestamp": "off"}})
				return newBareHarnessOn(t, pgtest.NewDBOn(t, cluster))
			},
			wantErr: ErrCommitOrder,
			wantMsg: "set track_commit_timestamp = on",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := tc.harness(t)
			var mutate []func(*Config, *Deps)
			if tc.mutate != nil {
				mutate = append(mutate, tc.mutate)
			}
			r := h.start(t, mutate...)
			err := r.exited(t, 30*time.Second)
			require.ErrorIs(t, err, tc.wantErr)
			require.ErrorContains(t, err, tc.wantMsg)
			require.Equal(t, admin.Failed, r.c.comp.Status().State)
			require.InDelta(t, 1, h.metric(t, "alertsync_capture_nomis_errors_total", map[string]string{"kind": "fatal"}).GetCounter().GetValue(), 0)
			if tc.fix != nil {
				tc.fix(t, h)
				r := h.start(t, mutate...)
				r.waitRunning(t)
			}
		})
	}
}

// TestMigratesAtStart: with capture.migrate (the default) the capture
// applies the nomis migrations itself, once, and captures.
func TestMigratesAtStart(t *testing.T) {
	t.Parallel()
	h := newBareHarnessOn(t, pgtest.NewDB(t))
	r := h.start(t)
	r.waitRunning(t)
	set, err := migrate.Named("nomis")
	require.NoError(t, err)
	require.Equal(t, set.Latest(), pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.schema_migrations WHERE set_name = 'nomis'"))
	h.fixture(t)
	h.waitCaughtUp(t, 30*time.Second)
	require.Len(t, h.consumeAll(t, h.topic(TableOffenders)), 2)
	require.NoError(t, r.stop(t))
	r2 := h.start(t)
	r2.waitRunning(t)
	set, err = migrate.Named("nomis")
	require.NoError(t, err)
	require.Equal(t, set.Latest(), pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.schema_migrations WHERE set_name = 'nomis'"))
}

// TestMetrics: records by table and op, DLQ entries by kind, an empty
// backlog and no lag once caught up, one poll observation per journal read,
// no errors.
func TestMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	r.waitRunning(t)
	h.fixture(t)
	h.inSession(t, nil, insertAlert(10, 1), insertAlert(10, 2))
	h.inSession(t, nil, "UPDATE oms_owner.offender_alerts SET comment_text = 'x' WHERE offender_book_id = 10 AND alert_seq = 1")
	h.inSession(t, nil, "DELETE FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 2")
	h.db.Exec(t, `INSERT INTO alertsync.alertsync_journal (table_name, operation, new_row, txid) VALUES ('offender_notes', 'I', '{}', txid_current())`)
	h.waitCaughtUp(t, 30*time.Second)

	want := []struct {
		table, op string
		n         float64
	}{
		{TableOffenders, "c", 2}, {TableOffenderBookings, "c", 3},
		{TableOffenderAlerts, "c", 2}, {TableOffenderAlerts, "u", 1}, {TableOffenderAlerts, "d", 1},
	}
	for _, w := range want {
		m := h.metric(t, "alertsync_capture_nomis_records_total", map[string]string{"table": w.table, "op": w.op})
		require.NotNil(t, m, "records_total{table=%s,op=%s}", w.table, w.op)
		require.InDelta(t, w.n, m.GetCounter().GetValue(), 0, "records_total{table=%s,op=%s}", w.table, w.op)
	}
	mfs, err := h.admin.Registry().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "alertsync_capture_nomis_records_total" {
			require.Len(t, mf.GetMetric(), len(want), "no other table or op counted")
		}
	}
	require.InDelta(t, 1, h.metric(t, "alertsync_capture_nomis_dlq_total", map[string]string{"kind": KindUnknownTable}).GetCounter().GetValue(), 0)
	deadline := time.Now().Add(10 * time.Second)
	for h.metric(t, "alertsync_capture_nomis_journal_backlog_rows", nil).GetGauge().GetValue() != 0 ||
		h.metric(t, "alertsync_capture_nomis_lag_seconds", nil).GetGauge().GetValue() != 0 {
		require.True(t, time.Now().Before(deadline), "backlog %v, lag %v after catching up",
			h.metric(t, "alertsync_capture_nomis_journal_backlog_rows", nil).GetGauge().GetValue(),
			h.metric(t, "alertsync_capture_nomis_lag_seconds", nil).GetGauge().GetValue())
		time.Sleep(50 * time.Millisecond)
	}
	polls := h.metric(t, "alertsync_capture_nomis_poll_duration_seconds", nil).GetHistogram()
	require.Positive(t, polls.GetSampleCount())
	require.Positive(t, polls.GetSampleSum())
	require.Nil(t, h.metric(t, "alertsync_capture_nomis_errors_total", nil), "no errors")
	require.True(t, strings.HasPrefix(r.c.comp.Status().Position, "commit "), r.c.comp.Status().Position)
	require.NoError(t, r.stop(t))
	require.Equal(t, admin.Stopped, r.c.comp.Status().State)
}

// TestWokenByNotify: with polls a minute apart, a change leaves the journal
// (published and acknowledged) within seconds: the capture holds the wait
// lock while it waits, the journal's writers notify it, and it releases the
// lock when woken (so busy writers do not notify a busy capture).
func TestWokenByNotify(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cfg.Capture.PollMin = time.Minute
	h.cfg.Capture.PollMax = time.Minute
	r := h.start(t)
	r.waitRunning(t)
	waiting := func() bool {
		return pgtest.QueryValue[bool](t, h.db, `SELECT EXISTS (SELECT 1 FROM pg_locks
			WHERE locktype = 'advisory' AND granted AND mode = 'ExclusiveLock'
			  AND ((classid::bigint << 32) | objid::bigint) = $1)`, pgWaitKey)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !waiting() {
		require.True(t, time.Now().Before(deadline), "the capture never took the wait lock")
		time.Sleep(20 * time.Millisecond)
	}
	h.fixture(t)
	h.waitCaughtUp(t, 20*time.Second) // the next poll is a minute away
	require.Len(t, h.consumeAll(t, h.topic(TableOffenders), h.topic(TableOffenderBookings)), 5)
}
