package nomis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
	"github.com/alertsync/alertsync/schemas"
)

// Initial load workload: loadPrisoners prisoners with one current booking of
// loadPerBooking alerts each, the first loadOlder of them with an older
// booking (BOOKING_SEQ 2) of loadPerBooking alerts too, the first loadMapped
// current-booking alerts with seq 1 mapped to a DPS id, and one more prisoner
// (emptyPrisoner) whose current booking has no alert.
const (
	loadPrisoners  = 20_000
	loadPerBooking = 5
	loadOlder      = 1_000
	loadMapped     = 500
	olderBookBase  = 1_000_000 // older booking of prisoner i: olderBookBase + i
	emptyPrisoner  = loadPrisoners + 1
	loadWriters    = 4
	writerSeqBase  = 1_000 // inserted alerts: seq writerSeqBase + writer*writerSeqSpan + n
	writerSeqSpan  = 200_000
)

// prisonNo is the prison number of prisoner i of the workload.
func prisonNo(i int) string { return fmt.Sprintf("L%06d", i) }

// seedInitialLoad commits the workload. The journal trigger on
// OFFENDER_ALERTS is off while it inserts the alerts, to keep the test's
// time down (on, it doubles the seeding); the offenders' and bookings'
// journal rows (41,001) and the writers' are there for the load to fold.
func seedInitialLoad(t *testing.T, h *harness) {
	t.Helper()
	h.db.Exec(t, fmt.Sprintf(`
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id)
SELECT i, 'L' || lpad(i::text, 6, '0'), i FROM generate_series(1, %[1]d) i;
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
SELECT i, TIMESTAMP '2024-03-01 10:00:00', i, i, 1, 'Y', 'MDI' FROM generate_series(1, %[1]d) i;
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
SELECT %[3]d + i, TIMESTAMP '2020-03-01 10:00:00', i, i, 2, 'N', 'LEI' FROM generate_series(1, %[2]d) i;`,
		emptyPrisoner, loadOlder, olderBookBase))
	alerts := func(from, to, bookBase int) string {
		return fmt.Sprintf(`
SELECT set_config('nomis.audit_module_name', 'OIDALERT', true);
INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text, caseload_type)
SELECT %[3]d + b, s, 'X', 'XA', CASE WHEN s = 5 THEN 'INACTIVE' ELSE 'ACTIVE' END, TIMESTAMP '2024-06-02 00:00:00',
       'seeded ' || b || '/' || s, 'INST'
  FROM generate_series(%[1]d, %[2]d) b, generate_series(1, %[4]d) s;`, from, to, bookBase, loadPerBooking)
	}
	h.db.Exec(t, "ALTER TABLE oms_owner.offender_alerts DISABLE TRIGGER alertsync_journal")
	for from := 1; from <= loadPrisoners; from += 5_000 {
		h.db.Exec(t, alerts(from, min(from+4_999, loadPrisoners), 0))
	}
	h.db.Exec(t, alerts(1, loadOlder, olderBookBase))
	h.db.Exec(t, "ALTER TABLE oms_owner.offender_alerts ENABLE TRIGGER alertsync_journal")
	h.db.Exec(t, fmt.Sprintf(`INSERT INTO alertsync.alertsync_alert_mapping (dps_alert_id, offender_book_id, alert_seq, offender_no, mapping_type)
SELECT md5(i::text)::uuid, i, 1, 'L' || lpad(i::text, 6, '0'), 'MIGRATED' FROM generate_series(1, %d) i`, loadMapped))
}

// alertWriter is one NOMIS session changing alerts, one row per
// transaction: inserts on current bookings, updates and deletes of alerts on
// current bookings (seeded or inserted), and now and then an update of an
// alert on an older booking.
func alertWriter(ctx context.Context, h *harness, w int, ops *atomic.Int64) error {
	conn, err := h.db.Pool.Acquire(context.Background())
	if err != nil {
		return fmt.Errorf("writer %d: acquiring a connection: %w", w, err)
	}
	defer conn.Release()
	bg := context.Background() // a statement runs to its end once begun
	if _, err := conn.Exec(bg, "SELECT set_config('nomis.audit_module_name', 'OIDALERT', false)"); err != nil {
		return fmt.Errorf("writer %d: setting the module: %w", w, err)
	}
	rng := rand.New(rand.NewPCG(uint64(w), 42)) //nolint:gosec // a workload, not security
	var inserted []AlertKey
	pick := func() (int64, int32) {
		if len(inserted) > 0 && rng.IntN(3) == 0 {
			k := inserted[rng.IntN(len(inserted))]
			return k.BookID, k.Seq
		}
		return int64(1 + rng.IntN(loadPrisoners)), int32(1 + rng.IntN(loadPerBooking))
	}
	for n := 0; ctx.Err() == nil; n++ {
		var err error
		switch op := rng.IntN(10); {
		case op < 3: // insert
			k := AlertKey{BookID: int64(1 + rng.IntN(loadPrisoners)), Seq: int32(writerSeqBase + w*writerSeqSpan + n)}
			_, err = conn.Exec(bg, `INSERT INTO oms_owner.offender_alerts
				(offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text, caseload_type)
				VALUES ($1, $2, 'X', 'HA', 'ACTIVE', TIMESTAMP '2024-07-01 00:00:00', $3, 'INST')`,
				k.BookID, k.Seq, fmt.Sprintf("inserted by %d at %d", w, n))
			inserted = append(inserted, k)
		case op < 7: // update
			book, seq := pick()
			_, err = conn.Exec(bg, `UPDATE oms_owner.offender_alerts
				SET comment_text = $3, alert_status = CASE alert_status WHEN 'ACTIVE' THEN 'INACTIVE' ELSE 'ACTIVE' END,
				    modify_datetime = TIMESTAMP '2024-08-01 09:30:00'
				WHERE offender_book_id = $1 AND alert_seq = $2`, book, seq, fmt.Sprintf("updated by %d at %d", w, n))
		case op < 9: // delete
			book, seq := pick()
			_, err = conn.Exec(bg, "DELETE FROM oms_owner.offender_alerts WHERE offender_book_id = $1 AND alert_seq = $2", book, seq)
		default: // an alert on an older booking: never part of a load
			_, err = conn.Exec(bg, `UPDATE oms_owner.offender_alerts SET comment_text = $3
				WHERE offender_book_id = $1 AND alert_seq = $2`,
				olderBookBase+1+rng.IntN(loadOlder), 1+rng.IntN(loadPerBooking), fmt.Sprintf("older, updated by %d at %d", w, n))
		}
		if err != nil {
			return fmt.Errorf("writer %d, change %d: %w", w, n, err)
		}
		ops.Add(1)
		time.Sleep(2 * time.Millisecond) // about 1,000 changes a second from the four
	}
	return nil
}

// dbAlert is an alert as the database holds it.
type dbAlert struct {
	comment    string
	status     string
	bookingSeq int32
	offenderNo string
	dpsID      *string
}

// dbAlerts returns every alert by "book/seq".
func dbAlerts(t *testing.T, h *harness) map[string]dbAlert {
	t.Helper()
	rows, err := h.db.Pool.Query(context.Background(), `SELECT a.offender_book_id::bigint, a.alert_seq::int, coalesce(a.comment_text, ''),
			a.alert_status, b.booking_seq::int, o.offender_id_display, m.dps_alert_id::text
		  FROM oms_owner.offender_alerts a
		  JOIN oms_owner.offender_bookings b ON b.offender_book_id = a.offender_book_id
		  JOIN oms_owner.offenders o ON o.offender_id = b.offender_id
		  LEFT JOIN alertsync.alertsync_alert_mapping m ON m.offender_book_id = a.offender_book_id AND m.alert_seq = a.alert_seq`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]dbAlert{}
	for rows.Next() {
		var (
			book int64
			seq  int32
			a    dbAlert
		)
		require.NoError(t, rows.Scan(&book, &seq, &a.comment, &a.status, &a.bookingSeq, &a.offenderNo, &a.dpsID))
		out[fmt.Sprintf("%d/%d", book, seq)] = a
	}
	require.NoError(t, rows.Err())
	return out
}

// checkAlertRecords checks the records of one alert key in topic order:
// (b) the first is the r or, for an alert created after the snapshot, the
// c (an alert on an older booking may start with any change: it is in no
// load), and an r is only ever first and of a current booking; (c)
// positions strictly increase, every change after the snapshot's position;
// (a) the last is the alert as the database holds it now (db), or a
// tombstone when it is gone. It returns the r, if any, and how many of the
// records were committed by completedAt (while the load ran).
func checkAlertRecords(rs []rec, db map[string]dbAlert, snapPos [2]int64, completedAt int64) (*rec, int, error) {
	key := rs[0].keyString()
	book, _ := rs[0].Key["offender_book_id"].(int64)
	older := book > olderBookBase
	if first := rs[0].op(); !older && first != "r" && first != "c" {
		return nil, 0, fmt.Errorf("first record is a %s: the snapshot missed the alert", first)
	}
	var (
		r      *rec
		during int
		last   [2]int64
	)
	for i, x := range rs {
		op := x.op()
		if op == "tombstone" {
			if i == 0 || rs[i-1].op() != "d" {
				return nil, 0, fmt.Errorf("record %d: a tombstone not after a delete", i)
			}
			continue
		}
		commit, change := x.position()
		pos := [2]int64{commit, change}
		if i > 0 && !posBefore(last, pos) {
			return nil, 0, fmt.Errorf("record %d (%s) at position %v, not after %v", i, op, pos, last)
		}
		last = pos
		snapshot := x.source()["snapshot"]
		if op != "r" {
			if !posBefore(snapPos, pos) {
				return nil, 0, fmt.Errorf("record %d (%s) at position %v, not after the snapshot's %v", i, op, pos, snapPos)
			}
			if snapshot != "false" {
				return nil, 0, fmt.Errorf("record %d (%s): source.snapshot %v", i, op, snapshot)
			}
			if commit <= completedAt {
				during++
			}
			continue
		}
		switch {
		case i != 0:
			return nil, 0, fmt.Errorf("record %d is an r: only the first may be", i)
		case older:
			return nil, 0, errors.New("an r of an alert on an older booking")
		case snapshot != "true":
			return nil, 0, fmt.Errorf("r with source.snapshot %v", snapshot)
		case pos != snapPos:
			return nil, 0, fmt.Errorf("r at position %v, the snapshot is at %v", pos, snapPos)
		case x.field("context", "booking_seq") != int32(1):
			return nil, 0, fmt.Errorf("r with context booking_seq %v", x.field("context", "booking_seq"))
		}
		r = &rs[i]
	}
	final := rs[len(rs)-1]
	a, exists := db[key]
	switch {
	case !exists && final.op() != "tombstone":
		return nil, 0, fmt.Errorf("deleted in the database, last record a %s", final.op())
	case !exists:
		return r, during, nil
	case final.op() == "tombstone" || final.op() == "d":
		return nil, 0, errors.New("in the database, last record a delete")
	}
	var dpsID any
	if a.dpsID != nil {
		dpsID = *a.dpsID
	}
	got := []any{final.field("after", "comment_text"), final.field("after", "alert_status"),
		final.field("context", "booking_seq"), final.field("context", "offender_no"), final.field("context", "dps_alert_id")}
	want := []any{a.comment, a.status, a.bookingSeq, a.offenderNo, dpsID}
	for i := range want {
		if got[i] != want[i] {
			return nil, 0, fmt.Errorf("last record (%s) has comment, status, booking seq, prison number, DPS id %v; the database %v", final.op(), got, want)
		}
	}
	return r, during, nil
}

// loadState is the recorded initial load.
type loadState struct {
	commit, change    int64
	alerts, prisoners int64
	completedAtMicros int64
}

func recordedLoad(t *testing.T, h *harness) loadState {
	t.Helper()
	var s loadState
	require.NoError(t, h.db.Pool.QueryRow(context.Background(), `SELECT position_commit, position_change, alerts, prisoners,
			(extract(epoch FROM completed_at) * 1000000)::bigint
		  FROM alertsync.alertsync_capture_state WHERE name = 'initial_load'`).
		Scan(&s.commit, &s.change, &s.alerts, &s.prisoners, &s.completedAtMicros), "the recorded initial load")
	return s
}

// posBefore reports whether position a comes before position b.
func posBefore(a, b [2]int64) bool { return a[0] < b[0] || a[0] == b[0] && a[1] < b[1] }

// TestInitialLoadConcurrentWriters: an initial load of 100,000 alerts on
// current bookings (plus alerts on older bookings, which it leaves out, and
// a prisoner with no alert) while four NOMIS sessions keep inserting,
// updating and deleting alerts, one row per transaction, from before the
// capture starts until after the load is recorded. Per alert, the records
// on offender_alerts, replayed in topic order, end in the alert's state in
// the database (nothing missed, nothing resurrected); the first record of
// every alert is its op r or, for an alert created after the snapshot, its
// c; each alert has at most one r, and the r records are exactly the
// recorded load's count and exactly the alerts of the INITIAL_LOAD prisoner
// snapshots (one per prisoner with a current booking); positions strictly
// increase per alert, r included. A restart does not load again; a start
// with Snapshot does.
func TestInitialLoadConcurrentWriters(t *testing.T) {
	t.Parallel()
	began := time.Now()
	h := newHarness(t)
	h.cfg.Capture.InitialLoad = "auto"
	seedInitialLoad(t, h)
	seeded := time.Now()
	t.Logf("kafka: %s; seeded %d alerts in %s", kafkatest.Kind(), loadPrisoners*loadPerBooking+loadOlder*loadPerBooking,
		seeded.Sub(began).Round(time.Millisecond))

	// The writers start before the capture and run until 2s after the load
	// is recorded.
	var writes atomic.Int64
	wctx, stopWriters := context.WithCancel(context.Background())
	defer stopWriters()
	var g errgroup.Group
	for w := range loadWriters {
		g.Go(func() error { return alertWriter(wctx, h, w, &writes) })
	}
	time.Sleep(300 * time.Millisecond)
	opsAtStart := writes.Load()
	r := h.start(t)
	r.waitState(t, admin.Running, 3*time.Minute)
	loaded := time.Now()
	opsAtLoad := writes.Load()
	time.Sleep(2 * time.Second)
	stopWriters()
	require.NoError(t, g.Wait())
	t.Logf("initial load recorded %s after the start; writers: %d changes before the start, %d by the load's end, %d in all",
		loaded.Sub(seeded).Round(time.Millisecond), opsAtStart, opsAtLoad, writes.Load())
	require.Positive(t, opsAtStart, "the writers wrote before the start")
	require.Greater(t, writes.Load(), opsAtLoad, "the writers wrote after the load")
	h.waitCaughtUp(t, time.Minute)
	caught := time.Now()

	load := recordedLoad(t, h)
	alertsTopic, prisonersTopic := h.topic(TableOffenderAlerts), h.prisonerTopic()
	recs := h.consumeAll(t, alertsTopic)
	db := dbAlerts(t, h)
	snaps := h.consumeAll(t, prisonersTopic)
	_, dlq := topictest.Offsets(t, h.brokers, h.dlqTopic())
	require.Zero(t, dlq, "no DLQ entry")
	t.Logf("caught up %s after the load; %d records on offender_alerts, %d prisoner snapshots; load: %+v",
		caught.Sub(loaded).Round(time.Millisecond), len(recs), len(snaps), load)

	snapPos := [2]int64{load.commit, load.change}
	groups := byKey(recs)
	rKeys := map[string]rec{}
	var duringLoad int
	for key, rs := range groups {
		r, during, err := checkAlertRecords(rs, db, snapPos, load.completedAtMicros)
		if err != nil {
			t.Fatalf("alert %s: %v; its records: %v", key, err, ops(rs))
		}
		duringLoad += during
		if r != nil {
			rKeys[key] = *r
		}
	}
	// (a) every alert on a current booking has records.
	var current, mapped int
	for key, a := range db {
		if a.bookingSeq != 1 {
			continue
		}
		current++
		if a.dpsID != nil {
			mapped++
		}
		if _, ok := groups[key]; !ok {
			t.Fatalf("alert %s on a current booking has no record", key)
		}
	}
	require.Positive(t, mapped, "mapped alerts on current bookings (their DPS ids checked)")
	require.Positive(t, duringLoad, "changes committed while the load ran are published after it")

	// (b) as many r records as the load reports.
	require.Equal(t, load.alerts, int64(len(rKeys)), "r records against the recorded load")
	require.Greater(t, load.alerts, int64(loadPrisoners*loadPerBooking/2), "the load saw the seeded alerts")

	// (d) one INITIAL_LOAD snapshot per prisoner with a current booking,
	// holding exactly the prisoner's r records.
	byPrisoner := map[string][]string{}
	for key, x := range rKeys {
		no, _ := x.field("context", "offender_no").(string)
		byPrisoner[no] = append(byPrisoner[no], key)
	}
	require.Len(t, snaps, emptyPrisoner, "one snapshot per prisoner with a current booking")
	require.Equal(t, load.prisoners, int64(len(snaps)))
	seen := map[string]bool{}
	var inSnapshots int
	for _, x := range snaps {
		s := snapOf(t, x)
		require.False(t, seen[s.no], "one snapshot of %s", s.no)
		seen[s.no] = true
		require.Equal(t, ReasonInitialLoad, s.reason)
		require.Equal(t, "true", s.snapshot)
		require.Equal(t, load.commit, s.commit, s.no)
		var keys []string
		for _, a := range s.alerts {
			key, _, _ := strings.Cut(a, " ")
			keys = append(keys, key)
		}
		inSnapshots += len(keys)
		want := byPrisoner[s.no]
		slices.Sort(keys)
		slices.Sort(want)
		require.Equal(t, want, keys, "snapshot of %s against its r records", s.no)
		if s.no == prisonNo(emptyPrisoner) {
			require.Equal(t, []int64{emptyPrisoner}, s.bookings)
			require.Empty(t, s.alerts, "a current booking without alerts: an empty snapshot")
		}
	}
	require.Equal(t, int(load.alerts), inSnapshots, "alerts across the snapshots")
	require.True(t, seen[prisonNo(emptyPrisoner)])
	checked := time.Now()

	// (e) a restart does not load again; a start with Snapshot does.
	require.NoError(t, r.stop(t))
	adm := kadm.NewClient(kafkatest.Client(t, h.brokers))
	ends := func(topic string) map[int32]int64 {
		return topictest.EndOffsets(context.Background(), t, adm, topic)
	}
	alertEnds, snapEnds := ends(alertsTopic), ends(prisonersTopic)
	r = h.start(t)
	r.waitRunning(t)
	time.Sleep(time.Second)
	require.NoError(t, r.stop(t))
	require.Equal(t, alertEnds, ends(alertsTopic), "a restart publishes nothing")
	require.Equal(t, snapEnds, ends(prisonersTopic), "a restart publishes no snapshot")
	require.Equal(t, load, recordedLoad(t, h), "a restart records no load")

	h.tweak = func(c *Capture) { c.Snapshot = true }
	r = h.start(t)
	r.waitState(t, admin.Running, 3*time.Minute)
	require.False(t, r.c.Snapshot, "cleared once the load is acknowledged")
	reload := recordedLoad(t, h)
	require.True(t, posBefore(snapPos, [2]int64{reload.commit, reload.change}), "the second load is positioned after the first")
	require.Equal(t, int64(current), reload.alerts, "every alert on a current booking, no writer running")
	require.Equal(t, int64(emptyPrisoner), reload.prisoners)
	again := consumeFrom(t, h, alertsTopic, alertEnds)
	require.Len(t, again, int(reload.alerts), "the second load's records")
	for _, x := range again {
		key := x.keyString()
		require.Equal(t, "r", x.op(), key)
		c, ch := x.position()
		require.Equal(t, [2]int64{reload.commit, reload.change}, [2]int64{c, ch}, key)
		a, ok := db[key]
		require.True(t, ok, "%s reloaded but not in the database", key)
		require.Equal(t, a.comment, x.field("after", "comment_text"), key)
	}
	require.Len(t, consumeFrom(t, h, prisonersTopic, snapEnds), int(reload.prisoners), "the second load's snapshots")
	t.Logf("wall time: seed %s, load and catch-up %s, checks %s, restarts %s, total %s",
		seeded.Sub(began).Round(time.Millisecond), caught.Sub(seeded).Round(time.Millisecond),
		checked.Sub(caught).Round(time.Millisecond), time.Since(checked).Round(time.Millisecond),
		time.Since(began).Round(time.Millisecond))
}

// consumeFrom reads the records of topic from the offsets from up to the
// topic's end offsets now, decoded, in partition then offset order.
func consumeFrom(t *testing.T, h *harness, topic string, from map[int32]int64) []rec {
	t.Helper()
	adm := kadm.NewClient(kafkatest.Client(t, h.brokers))
	ends := topictest.EndOffsets(context.Background(), t, adm, topic)
	offsets := map[int32]kgo.Offset{}
	want := 0
	for p, end := range ends {
		offsets[p] = kgo.NewOffset().At(from[p])
		want += int(end - from[p])
	}
	cl := kafkatest.Client(t, h.brokers, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	codec := schemas.New(h.srcl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []rec
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s from %v: %v after %d of %d records", topic, from, err, len(out), want)
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				t.Fatalf("fetching %s[%d]: %v", e.Topic, e.Partition, e.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return
			}
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
