package dps

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/jackc/pglogrepl"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/pgcluster"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/schemas"
)

// Integration tests of the capture's life: schema changes while running,
// --resnapshot, a lost slot, an interrupted snapshot, what it refuses to
// start with, PostgreSQL restarting under it, heartbeats and metrics.

// TestSchemaChangeWhileRunning: after ALTER TABLE alert ADD COLUMN, the
// running capture registers a new, backward-compatible version of the value
// schema and publishes the new column, without restarting its session.
func TestSchemaChangeWhileRunning(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	h.waitRunning(t, r)
	const a, b = "0190a3f4-0000-7000-8000-000000005001", "0190a3f4-0000-7000-8000-000000005002"
	insertAlert(t, h.db, a, "F6666FF", "XA")
	h.db.Exec(t, "ALTER TABLE alert ADD COLUMN x text")
	h.db.Exec(t, `INSERT INTO alert (id, alert_code_id, prison_number, active_from, created_at, x)
		SELECT $1, id, 'F6666FF', '2024-01-02', '2024-06-01 12:00:00', 'hello' FROM alert_code WHERE code = 'XA'`, b)
	h.db.Exec(t, "UPDATE alert SET x = 'later', version = 2 WHERE id = $1", a)

	recs := byKey(h.consume(t, 3, 30*time.Second, h.topic("alert")))
	require.Equal(t, []string{"c", "u"}, ops(recs[a]))
	require.Equal(t, []string{"c"}, ops(recs[b]))
	require.NotContains(t, recs[a][0].row("after"), "x", "written before the change: old schema")
	require.Equal(t, "hello", recs[b][0].field("after", "x"))
	require.Contains(t, recs[a][1].row("before"), "x")
	require.Nil(t, recs[a][1].field("before", "x"))
	require.Equal(t, "later", recs[a][1].field("after", "x"))
	require.Equal(t, int32(2), recs[a][1].field("after", "version"))

	ctx := context.Background()
	subject := schemas.ValueSubject(h.topic("alert"))
	versions, err := h.srcl.SubjectVersions(ctx, subject)
	require.NoError(t, err)
	require.Len(t, versions, 2, "a new version of %s", subject)
	keyVersions, err := h.srcl.SubjectVersions(ctx, schemas.KeySubject(h.topic("alert")))
	require.NoError(t, err)
	require.Len(t, keyVersions, 1, "the key did not change")
	old, err := h.srcl.SchemaByVersion(ctx, subject, versions[0])
	require.NoError(t, err)
	cur, err := h.srcl.SchemaByVersion(ctx, subject, versions[1])
	require.NoError(t, err)
	oldS, err := avro.ParseWithCache(old.Schema.Schema, "", &avro.SchemaCache{})
	require.NoError(t, err)
	curS, err := avro.ParseWithCache(cur.Schema.Schema, "", &avro.SchemaCache{})
	require.NoError(t, err)
	require.NoError(t, avro.NewSchemaCompatibility().Compatible(curS, oldS), "BACKWARD: the new schema reads records of the old")

	require.Equal(t, admin.Running, r.c.comp.Status().State)
	require.Nil(t, h.metric(t, "alertsync_capture_dps_errors_total", nil), "no error, no reconnection")
}

// TestResnapshot covers the ways to a new snapshot: --resnapshot on request,
// a slot dropped behind the capture's back (refused, with --resnapshot as the
// way out), and a snapshot interrupted before it was recorded as done (taken
// again by itself).
func TestResnapshot(t *testing.T) {
	t.Parallel()
	const one, two, three = "0190a3f4-0000-7000-8000-000000006001", "0190a3f4-0000-7000-8000-000000006002", "0190a3f4-0000-7000-8000-000000006003"
	// first runs a capture that snapshots one and streams two, then stops it.
	first := func(t *testing.T) *harness {
		t.Helper()
		h := newHarness(t)
		insertAlert(t, h.db, one, "G7777GG", "XA")
		r := h.start(t)
		h.waitRunning(t, r)
		insertAlert(t, h.db, two, "G7777GG", "XA")
		h.waitCaughtUp(t, 30*time.Second)
		require.NoError(t, r.stop(t))
		return h
	}
	// after checks the alert records once a capture has run again: keys one
	// and two each published first as in the first run, then once more as r;
	// three (written while stopped) once as r.
	after := func(t *testing.T, h *harness) {
		t.Helper()
		h.waitCaughtUp(t, 30*time.Second)
		groups := byKey(h.consumeAll(t, h.topic("alert")))
		require.Equal(t, []string{"r", "r"}, ops(groups[one]))
		require.Equal(t, []string{"c", "r"}, ops(groups[two]))
		require.Equal(t, []string{"r"}, ops(groups[three]))
		require.True(t, pgtest.QueryValue[bool](t, h.db, "SELECT snapshot_done FROM alertsync.capture_state WHERE slot_name = $1", h.cfg.Capture.Slot))
	}
	resnapshot := func(c *Capture) { c.Resnapshot = true }

	t.Run("on request", func(t *testing.T) {
		t.Parallel()
		h := first(t)
		insertAlert(t, h.db, three, "G7777GG", "XA")
		r := h.start(t, resnapshot)
		h.waitRunning(t, r)
		after(t, h)
		// Streaming goes on after the new snapshot, without repeats.
		h.db.Exec(t, "UPDATE alert SET version = 5 WHERE id = $1", three)
		h.waitCaughtUp(t, 30*time.Second)
		require.Equal(t, []string{"r", "u"}, ops(byKey(h.consumeAll(t, h.topic("alert")))[three]))
	})

	t.Run("slot dropped behind its back", func(t *testing.T) {
		t.Parallel()
		h := first(t)
		h.db.Exec(t, "SELECT pg_drop_replication_slot($1)", h.cfg.Capture.Slot)
		insertAlert(t, h.db, three, "G7777GG", "XA")
		err := h.start(t).exited(t, 30*time.Second)
		require.ErrorIs(t, err, ErrSlotLost)
		require.ErrorContains(t, err, h.cfg.Capture.Slot)
		require.ErrorContains(t, err, "--resnapshot")
		require.ErrorContains(t, err, "changes since may be lost")
		require.InDelta(t, 1, h.metric(t, "alertsync_capture_dps_errors_total", map[string]string{"kind": "fatal"}).GetCounter().GetValue(), 0)
		// It neither made a new slot nor published anything.
		require.False(t, pgtest.QueryValue[bool](t, h.db, "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", h.cfg.Capture.Slot))
		require.Len(t, h.consumeAll(t, h.topic("alert")), 2)

		// The documented way out.
		r := h.start(t, resnapshot)
		h.waitRunning(t, r)
		after(t, h)
	})

	t.Run("interrupted snapshot", func(t *testing.T) {
		t.Parallel()
		h := first(t)
		// As a crash between creating the slot and finishing the snapshot
		// leaves it: the slot exists, the snapshot is not recorded as done.
		h.db.Exec(t, "UPDATE alertsync.capture_state SET snapshot_done = false, snapshot_done_at = NULL WHERE slot_name = $1", h.cfg.Capture.Slot)
		insertAlert(t, h.db, three, "G7777GG", "XA")
		oldSlot := pgtest.QueryValue[string](t, h.db, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", h.cfg.Capture.Slot)
		r := h.start(t)
		h.waitRunning(t, r)
		after(t, h)
		newPoint := pgtest.QueryValue[string](t, h.db, "SELECT consistent_lsn::text FROM alertsync.capture_state WHERE slot_name = $1", h.cfg.Capture.Slot)
		o, err := pglogrepl.ParseLSN(oldSlot)
		require.NoError(t, err)
		n, err := pglogrepl.ParseLSN(newPoint)
		require.NoError(t, err)
		require.Greater(t, n, o, "a new slot, created after the old one's position")
	})
}

// TestRefusesWithInstructions: what a human must fix stops the capture at
// once with an error naming the problem and the statement a DBA must run;
// running that statement fixes it.
func TestRefusesWithInstructions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		setup    func(t *testing.T, h *harness)
		noCreate bool
		wantErr  error
		// wantStmt returns the statement the error must quote.
		wantStmt func(h *harness) string
		// check runs after the statement, to see that it fixed the problem.
		check func(t *testing.T, h *harness)
	}{
		{
			name:     "no publication, capture.create false",
			noCreate: true,
			wantErr:  ErrNotPermitted,
			wantStmt: func(h *harness) string {
				return fmt.Sprintf(`CREATE PUBLICATION "%s" FOR TABLE "public"."alert", "public"."alert_code", "public"."alert_type", "public"."audit_event"`, h.cfg.Capture.Publication)
			},
			check: publicationComplete,
		},
		{
			name: "publication without some tables, capture.create false",
			setup: func(t *testing.T, h *harness) {
				h.db.Exec(t, fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE alert, alert_type", h.cfg.Capture.Publication))
			},
			noCreate: true,
			wantErr:  ErrNotPermitted,
			wantStmt: func(h *harness) string {
				return fmt.Sprintf(`ALTER PUBLICATION "%s" ADD TABLE "public"."alert_code", "public"."audit_event"`, h.cfg.Capture.Publication)
			},
			check: publicationComplete,
		},
		{
			name: "REPLICA IDENTITY DEFAULT on alert",
			setup: func(t *testing.T, h *harness) {
				h.db.Exec(t, "ALTER TABLE alert REPLICA IDENTITY DEFAULT")
			},
			wantErr:  ErrReplicaIdentity,
			wantStmt: func(*harness) string { return `ALTER TABLE "public"."alert" REPLICA IDENTITY FULL` },
			check: func(t *testing.T, h *harness) {
				r := h.start(t)
				h.waitRunning(t, r)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if tc.setup != nil {
				tc.setup(t, h)
			}
			r := h.start(t, func(c *Capture) { c.cfg.Capture.Create = !tc.noCreate })
			err := r.exited(t, 30*time.Second)
			require.ErrorIs(t, err, tc.wantErr)
			stmt := tc.wantStmt(h)
			require.ErrorContains(t, err, "a DBA must run: "+stmt)
			require.Equal(t, admin.Failed, r.c.comp.Status().State)
			require.False(t, pgtest.QueryValue[bool](t, h.db, "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", h.cfg.Capture.Slot),
				"no slot left behind")
			if tc.check != nil {
				h.db.Exec(t, stmt)
				tc.check(t, h)
			}
		})
	}
}

// TestCreateFalseCreatesItsSlot: with capture.create false and the
// publication made by a DBA, the capture still creates its own slot (its
// snapshot must be the one exported at the slot's creation) and runs.
func TestCreateFalseCreatesItsSlot(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.db.Exec(t, fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE alert, alert_code, alert_type, audit_event", h.cfg.Capture.Publication))
	insertAlert(t, h.db, "0190a3f4-0000-7000-8000-000000006101", "G7777GG", "XA")
	h.cfg.Capture.Create = false
	r := h.start(t)
	h.waitRunning(t, r)
	insertAlert(t, h.db, "0190a3f4-0000-7000-8000-000000006102", "G7777GG", "XA")
	recs := h.consume(t, 2, 30*time.Second, h.topic("alert"))
	require.Equal(t, []string{"r", "c"}, ops(recs))
}

// publicationComplete checks that the capture's publication has its tables.
func publicationComplete(t *testing.T, h *harness) {
	t.Helper()
	require.Equal(t, "alert,alert_code,alert_type,audit_event", pgtest.QueryValue[string](t, h.db,
		"SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = $1 AND schemaname = 'public'", h.cfg.Capture.Publication))
}

// TestPostgresRestart: PostgreSQL restarting under a streaming capture is
// retried with backoff; the capture resumes where it had confirmed and every
// committed change reaches Kafka (only the unacknowledged tail may repeat).
func TestPostgresRestart(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t, pgcluster.Options{})
	h := newHarnessOn(t, pgtest.NewDBOn(t, cluster))
	h.cfg.Capture.MaxBackoff = 2 * time.Second
	xa := alertCodeID(t, h.db, "XA")
	r := h.start(t)
	h.waitRunning(t, r)

	var (
		mu        sync.Mutex
		committed []string
		failed    atomic.Int64
	)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for n := 0; ; n++ {
			select {
			case <-done:
				return
			default:
			}
			id := fmt.Sprintf("0190a3f4-0000-7000-8000-%012d", 7_000_000+n)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := h.db.Pool.Exec(ctx, `INSERT INTO alert (id, alert_code_id, prison_number, active_from, created_at) VALUES ($1, $2, 'H8888HH', '2024-01-02', '2024-06-01 12:00:00')`, id, xa)
			cancel()
			if err != nil {
				failed.Add(1) // the server is away; this row may or may not be committed
				time.Sleep(20 * time.Millisecond)
				continue
			}
			mu.Lock()
			committed = append(committed, id)
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
	waitFor(300)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	begin := time.Now()
	require.NoError(t, cluster.Restart(ctx))
	t.Logf("PostgreSQL restarted in %s with %d rows written", time.Since(begin).Round(time.Millisecond), count())
	waitFor(count() + 200)
	close(done)
	<-stopped
	r.waitState(t, admin.Running, 60*time.Second)
	h.waitCaughtUp(t, 60*time.Second)

	groups := byKey(h.consumeAll(t, h.topic("alert")))
	dups := 0
	for _, id := range committed {
		got := groups[id]
		require.NotEmpty(t, got, "committed row %s lost", id)
		for _, x := range got {
			require.Equal(t, "c", x.op(), "row %s: streamed, not snapshotted again", id)
		}
		dups += len(got) - 1
	}
	t.Logf("%d committed rows, %d inserts failed while the server was away, %d records repeated", len(committed), failed.Load(), dups)
	// Only what Kafka had not acknowledged when the server went away may
	// repeat, not everything since the slot's last persisted position
	// (PostgreSQL 15 forgets a logical slot's confirmed LSN on restart).
	require.Less(t, dups, 100, "records repeated after the restart")
	retries := h.metric(t, "alertsync_capture_dps_errors_total", map[string]string{"kind": "postgresql"})
	require.NotNil(t, retries, "the outage was counted")
	require.GreaterOrEqual(t, retries.GetCounter().GetValue(), 1.0)
	require.Nil(t, h.metric(t, "alertsync_capture_dps_errors_total", map[string]string{"kind": "fatal"}))
}

// TestIdleSlotAdvances: with no writes to the database, heartbeats move the
// slot's confirmed flush LSN up to the server's WAL position, and after a
// checkpoint its restart LSN too, so an idle slot does not retain WAL. It
// runs on a private cluster, where no other test writes WAL.
func TestIdleSlotAdvances(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t, pgcluster.Options{})
	h := newHarnessOn(t, pgtest.NewDBOn(t, cluster))
	h.cfg.Capture.Heartbeat = 200 * time.Millisecond
	r := h.start(t)
	h.waitRunning(t, r)

	prev, restart0 := h.slotLSNs(t)
	advances := 0
	deadline := time.Now().Add(20 * time.Second)
	for advances < 3 {
		require.True(t, time.Now().Before(deadline), "confirmed flush LSN advanced %d times in 20s", advances)
		time.Sleep(150 * time.Millisecond)
		cur, _ := h.slotLSNs(t)
		require.GreaterOrEqual(t, cur, prev, "confirmed flush LSN never goes back")
		if cur > prev {
			advances++
			prev = cur
		}
	}
	h.waitCaughtUp(t, 20*time.Second)

	h.db.Exec(t, "CHECKPOINT")
	deadline = time.Now().Add(20 * time.Second)
	for {
		_, restart := h.slotLSNs(t)
		if restart > restart0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "restart LSN still %s after a checkpoint", restart)
		time.Sleep(100 * time.Millisecond)
	}
	require.Nil(t, h.metric(t, "alertsync_capture_dps_errors_total", nil))
	require.Equal(t, 0, streamedRecords(t, h), "heartbeats are never published")
}

// streamedRecords returns how many records other than snapshot ones the
// capture published to its topics.
func streamedRecords(t *testing.T, h *harness) int {
	t.Helper()
	var topics []string
	for _, table := range h.cfg.Capture.Tables {
		topics = append(topics, h.topic(table))
	}
	n := 0
	for _, x := range h.consumeAll(t, topics...) {
		if x.op() != "r" {
			n++
		}
	}
	return n
}

// TestMetrics: records by table and op, snapshot rows, lag 0 once caught up,
// retained WAL of the slot, and one produce latency observation per record
// produced, all on the admin registry.
func TestMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const one, two, three = "0190a3f4-0000-7000-8000-000000008001", "0190a3f4-0000-7000-8000-000000008002", "0190a3f4-0000-7000-8000-000000008003"
	insertAlert(t, h.db, one, "J9999JJ", "XA")
	insertAlert(t, h.db, two, "J9999JJ", "XA")
	types := pgtest.QueryValue[int64](t, h.db, "SELECT count(*) FROM alert_type")
	codes := pgtest.QueryValue[int64](t, h.db, "SELECT count(*) FROM alert_code")
	r := h.start(t)
	h.waitRunning(t, r)
	insertAlert(t, h.db, three, "J9999JJ", "XA")
	h.db.Exec(t, "UPDATE alert SET version = 2 WHERE id = $1", one)
	h.db.Exec(t, "DELETE FROM alert WHERE id = $1", two)
	h.db.Exec(t, `INSERT INTO audit_event (id, alert_id, action, description, actioned_at, actioned_by, actioned_by_display_name, source)
		VALUES ('0190a3f4-0000-7000-9000-000000008001', $1, 'CREATED', 'created', '2024-06-01 12:00:00', 'U', 'U', 'DPS')`, three)
	h.db.Exec(t, "TRUNCATE audit_event")
	h.waitCaughtUp(t, 30*time.Second)

	want := []struct {
		table, op string
		n         float64
	}{
		{"alert", "r", 2}, {"alert", "c", 1}, {"alert", "u", 1}, {"alert", "d", 1},
		{"audit_event", "c", 1}, {"audit_event", "t", 1},
		{"alert_type", "r", float64(types)}, {"alert_code", "r", float64(codes)},
	}
	var records float64
	for _, w := range want {
		m := h.metric(t, "alertsync_capture_dps_records_total", map[string]string{"table": w.table, "op": w.op})
		require.NotNil(t, m, "records_total{table=%s,op=%s}", w.table, w.op)
		require.InDelta(t, w.n, m.GetCounter().GetValue(), 0, "records_total{table=%s,op=%s}", w.table, w.op)
		records += w.n
	}
	mfs, err := h.admin.Registry().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "alertsync_capture_dps_records_total" {
			require.Len(t, mf.GetMetric(), len(want), "no other table or op counted")
		}
	}
	for table, n := range map[string]float64{"alert": 2, "alert_type": float64(types), "alert_code": float64(codes)} {
		m := h.metric(t, "alertsync_capture_dps_snapshot_rows_total", map[string]string{"table": table})
		require.NotNil(t, m, table)
		require.InDelta(t, n, m.GetCounter().GetValue(), 0, table)
	}

	// Lag: 0 once Kafka acknowledged everything.
	deadline := time.Now().Add(10 * time.Second)
	for h.metric(t, "alertsync_capture_dps_lag_seconds", nil).GetGauge().GetValue() != 0 {
		require.True(t, time.Now().Before(deadline), "lag_seconds %v after catching up",
			h.metric(t, "alertsync_capture_dps_lag_seconds", nil).GetGauge().GetValue())
		time.Sleep(50 * time.Millisecond)
	}
	// Retained WAL: measured with the heartbeat (every second here).
	deadline = time.Now().Add(10 * time.Second)
	for h.metric(t, "alertsync_capture_dps_slot_retained_wal_bytes", nil).GetGauge().GetValue() <= 0 {
		require.True(t, time.Now().Before(deadline), "slot_retained_wal_bytes not measured")
		time.Sleep(50 * time.Millisecond)
	}
	// One latency observation per record produced: each change, plus the
	// tombstone after the delete.
	lat := h.metric(t, "alertsync_capture_dps_produce_latency_seconds", nil)
	require.NotNil(t, lat)
	require.Equal(t, uint64(records)+1, lat.GetHistogram().GetSampleCount())
	require.Positive(t, lat.GetHistogram().GetSampleSum())
	require.Positive(t, h.metric(t, "alertsync_capture_dps_confirmed_lsn", nil).GetGauge().GetValue())
	require.Nil(t, h.metric(t, "alertsync_capture_dps_errors_total", nil), "no errors")
	require.NoError(t, r.stop(t))
}
