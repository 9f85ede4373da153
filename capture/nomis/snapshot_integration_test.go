package nomis

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/schemas"
)

// snap is a decoded prisoner snapshot.
type snap struct {
	no       string
	reason   string
	bookings []int64
	alerts   []string // "book/seq code", in order
	commit   int64    // source.position.commit
	snapshot string   // source.snapshot
}

func snapOf(t *testing.T, r rec) snap {
	t.Helper()
	s := snap{}
	s.no, _ = r.Value["offender_no"].(string)
	s.reason, _ = r.Value["reason"].(string)
	for _, b := range r.Value["booking_ids"].([]any) {
		s.bookings = append(s.bookings, b.(int64))
	}
	for _, a := range r.Value["alerts"].([]any) {
		row := a.(map[string]any)["row"].(map[string]any)
		s.alerts = append(s.alerts, fmt.Sprintf("%d/%d %s", row["offender_book_id"], row["alert_seq"], row["alert_code"]))
	}
	src := r.source()
	s.snapshot, _ = src["snapshot"].(string)
	p, _ := src["position"].(map[string]any)
	s.commit, _ = p["commit"].(int64)
	return s
}

func (h *harness) prisonerTopic() string {
	return h.cfg.Pipeline.Topics.Prefix + schemas.TopicNOMISPrisonerAlerts
}

// snapshots waits until skip+want snapshots are on the topic, then waits
// settle more and returns every snapshot there positioned after after (so
// that an extra one shows), in position order.
func (h *harness) snapshots(t *testing.T, after int64, want int, settle time.Duration) []snap {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var out []snap
	for {
		out = out[:0]
		for _, r := range h.consumeAll(t, h.prisonerTopic()) {
			if s := snapOf(t, r); s.commit > after {
				out = append(out, s)
			}
		}
		if len(out) >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d snapshots after position %d, want %d: %+v", len(out), after, want, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if settle > 0 {
		time.Sleep(settle)
		return h.snapshots(t, after, want, 0)
	}
	slices.SortStableFunc(out, func(a, b snap) int { return cmp.Compare(a.commit, b.commit) })
	return out
}

// startSettled starts a capture of the fixture and waits until it has
// published the fixture's two snapshots (its bookings are new current
// bookings); it returns the position they were read at.
func (h *harness) startSettled(t *testing.T) int64 {
	t.Helper()
	r := h.start(t)
	r.waitRunning(t)
	h.waitCaughtUp(t, 30*time.Second)
	got := h.snapshots(t, 0, 2, 0)
	nos := []string{got[0].no, got[1].no}
	slices.Sort(nos)
	require.Equal(t, []string{"A1234BC", "B2345CD"}, nos)
	require.Equal(t, ReasonNewBooking, got[0].reason)
	return max(got[0].commit, got[1].commit)
}

func alertSQL(book, seq int, code string) string {
	return fmt.Sprintf(`INSERT INTO oms_owner.offender_alerts
    (offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text, caseload_type)
    VALUES (%d, %d, 'X', '%s', 'ACTIVE', TIMESTAMP '2024-06-02 00:00:00', 'text', 'INST')`, book, seq, code)
}

// TestResyncNewBookingWithCopies: a new booking, then the booking copy's
// inserts in a later transaction inside the debounce: one snapshot of the
// prisoner holding the copies, none for anyone else.
func TestResyncNewBookingWithCopies(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cfg.Capture.ResyncDelay = 2 * time.Second // the copy comes 100 ms later; a loaded machine may take a while to capture it
	h.fixture(t)
	h.inSession(t, nil, alertSQL(10, 1, "XA"), alertSQL(10, 2, "HA"), alertSQL(20, 1, "XA"))
	base := h.startSettled(t)

	h.inSession(t, map[string]string{setModule: "OIDADMIS"},
		"UPDATE oms_owner.offender_bookings SET booking_seq = booking_seq + 1 WHERE offender_id = 1",
		`INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
		 VALUES (12, TIMESTAMP '2024-07-01 10:00:00', 1, 1, 1, 'Y', 'MDI')`)
	time.Sleep(100 * time.Millisecond) // the copy commits later, inside capture.resync_delay
	h.inSession(t, map[string]string{setModule: "OIDADMIS", setAdditional: CopyBookingInfo},
		alertSQL(12, 1, "XA"), alertSQL(12, 2, "HA"))

	got := h.snapshots(t, base, 1, 2*h.cfg.Capture.ResyncDelay)
	require.Len(t, got, 1, "one snapshot: %+v", got)
	s := got[0]
	require.Equal(t, "A1234BC", s.no)
	require.Contains(t, []string{ReasonBookingSwitched, ReasonNewBooking}, s.reason)
	require.Equal(t, []int64{12}, s.bookings)
	require.Equal(t, []string{"12/1 XA", "12/2 HA"}, s.alerts, "the copies, not the old booking's alerts")
	require.Equal(t, "true", s.snapshot)
	require.Zero(t, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.alertsync_resync"), "cleared once published")
}

// TestResyncMerge: B2345CD merged into A1234BC (its booking moved over and
// made current, the old current booking renumbered, the offender removed):
// both prison numbers get a snapshot, the removed one empty.
func TestResyncMerge(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	h.inSession(t, nil, alertSQL(10, 1, "XA"), alertSQL(20, 1, "HA"), alertSQL(20, 2, "RSP"))
	base := h.startSettled(t)

	h.inSession(t, map[string]string{setModule: "MERGE"},
		"UPDATE oms_owner.offender_bookings SET booking_seq = booking_seq + 1 WHERE offender_id = 1",
		"UPDATE oms_owner.offender_bookings SET offender_id = 1, root_offender_id = 1 WHERE offender_book_id = 20",
		"DELETE FROM oms_owner.offenders WHERE offender_id = 2")

	got := h.snapshots(t, base, 2, 2*h.cfg.Capture.ResyncDelay)
	require.Len(t, got, 2, "%+v", got)
	slices.SortFunc(got, func(a, b snap) int { return cmp.Compare(a.no, b.no) })
	require.Equal(t, "A1234BC", got[0].no)
	require.Equal(t, []int64{20}, got[0].bookings)
	require.Equal(t, []string{"20/1 HA", "20/2 RSP"}, got[0].alerts)
	require.Equal(t, "B2345CD", got[1].no)
	require.Empty(t, got[1].bookings, "merged away: no current booking")
	require.Empty(t, got[1].alerts)
	require.Equal(t, ReasonMerge, got[1].reason)
}

// TestResyncBookingMoved: a booking moved from one prisoner to another
// (where it becomes an older booking): a snapshot of each.
func TestResyncBookingMoved(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	h.inSession(t, nil, alertSQL(10, 1, "XA"), alertSQL(20, 1, "HA"))
	base := h.startSettled(t)

	h.inSession(t, map[string]string{setModule: "OIDBOOKM"},
		"UPDATE oms_owner.offender_bookings SET offender_id = 1, root_offender_id = 1, booking_seq = 3 WHERE offender_book_id = 20")

	got := h.snapshots(t, base, 2, 2*h.cfg.Capture.ResyncDelay)
	require.Len(t, got, 2, "%+v", got)
	slices.SortFunc(got, func(a, b snap) int { return cmp.Compare(a.no, b.no) })
	require.Equal(t, snap{no: "A1234BC", reason: ReasonBookingMoved, bookings: []int64{10}, alerts: []string{"10/1 XA"},
		commit: got[0].commit, snapshot: "true"}, got[0])
	require.Equal(t, "B2345CD", got[1].no)
	require.Empty(t, got[1].bookings)
	require.Equal(t, ReasonBookingMoved, got[1].reason)
}

// TestResyncRecallSwitch: the older booking made current again (recall):
// the snapshot holds the older booking's alerts; its position is after the
// switch's change records.
func TestResyncRecallSwitch(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	h.inSession(t, nil, alertSQL(10, 1, "XA"), alertSQL(11, 1, "HA"), alertSQL(11, 2, "RSP"))
	base := h.startSettled(t)

	txid := h.inSession(t, map[string]string{setModule: "OIDADMIS"},
		"UPDATE oms_owner.offender_bookings SET booking_seq = CASE offender_book_id WHEN 10 THEN 2 ELSE 1 END WHERE offender_id = 1")

	got := h.snapshots(t, base, 1, 2*h.cfg.Capture.ResyncDelay)
	require.Len(t, got, 1, "%+v", got)
	require.Equal(t, "A1234BC", got[0].no)
	require.Equal(t, ReasonBookingSwitched, got[0].reason)
	require.Equal(t, []int64{11}, got[0].bookings)
	require.Equal(t, []string{"11/1 HA", "11/2 RSP"}, got[0].alerts)
	require.Greater(t, got[0].commit, h.commitMicros(t, txid), "the snapshot comes after the switch")
}

// TestResyncSurvivesRestart: a resync recorded but not yet due when the
// capture stops is published by the next capture, once due.
func TestResyncSurvivesRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	h.db.Exec(t, "DELETE FROM alertsync.alertsync_journal") // the fixture's resyncs are not this test's
	h.cfg.Capture.ResyncDelay = time.Hour
	r := h.start(t)
	r.waitRunning(t)
	h.inSession(t, nil, "UPDATE oms_owner.offender_bookings SET booking_seq = CASE offender_book_id WHEN 10 THEN 2 ELSE 1 END WHERE offender_id = 1")
	h.waitCaughtUp(t, 30*time.Second)
	require.NoError(t, r.stop(t))
	require.Equal(t, "A1234BC", pgtest.QueryValue[string](t, h.db, "SELECT offender_no FROM alertsync.alertsync_resync"))
	require.Empty(t, h.consumeAll(t, h.prisonerTopic()), "not due before the stop")

	// Time passes while no capture runs: the resync falls due.
	h.db.Exec(t, "UPDATE alertsync.alertsync_resync SET due_at = now()")
	r = h.start(t)
	r.waitRunning(t)
	got := h.snapshots(t, 0, 1, 500*time.Millisecond)
	require.Len(t, got, 1)
	require.Equal(t, []int64{11}, got[0].bookings)
	h.waitCaughtUp(t, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.alertsync_resync") != 0 {
		require.True(t, time.Now().Before(deadline), "the published resync is still pending")
		time.Sleep(20 * time.Millisecond)
	}
}

// TestResyncRequests: resync requests written to the journal (as dlq
// redrive does, through RequestResyncs) by prison number, offender id and
// booking id each bring one REDRIVE snapshot of their prisoner (two
// requests for one prisoner, one), a request for a booking NOMIS does not
// have is logged and dropped, and no change record is published for them.
func TestResyncRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	h.inSession(t, nil, alertSQL(10, 1, "XA"), alertSQL(20, 1, "HA"))
	base := h.startSettled(t)
	alertsBefore := len(h.consumeAll(t, h.topic(TableOffenderAlerts)))

	d, err := NewDialect("postgres", h.cfg.Capture)
	require.NoError(t, err)
	sqlDB, err := d.Open(h.cfg.NOMIS.NOMIS)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sqlDB.Close() })
	conn, err := sqlDB.Conn(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.ErrorContains(t, d.RequestResyncs(t.Context(), conn, []ResyncRequest{{Reason: ReasonRedrive}}), "names no prisoner")
	require.NoError(t, d.RequestResyncs(t.Context(), conn, []ResyncRequest{
		{OffenderNo: "A1234BC", Reason: ReasonRedrive},
		{BookID: 20, Reason: ReasonRedrive},
		{OffenderID: 1, Reason: ReasonRedrive},
		{BookID: 999, Reason: ReasonRedrive},
	}))

	got := h.snapshots(t, base, 2, 3*h.cfg.Capture.ResyncDelay)
	require.Len(t, got, 2, "one snapshot per prisoner: %+v", got)
	slices.SortFunc(got, func(a, b snap) int { return cmp.Compare(a.no, b.no) })
	require.Equal(t, snap{no: "A1234BC", reason: ReasonRedrive, bookings: []int64{10}, alerts: []string{"10/1 XA"}, commit: got[0].commit, snapshot: "true"}, got[0])
	require.Equal(t, snap{no: "B2345CD", reason: ReasonRedrive, bookings: []int64{20}, alerts: []string{"20/1 HA"}, commit: got[1].commit, snapshot: "true"}, got[1])
	h.waitCaughtUp(t, 30*time.Second)
	require.Zero(t, h.journalRows(t), "the requests leave the journal")
	require.Len(t, h.consumeAll(t, h.topic(TableOffenderAlerts)), alertsBefore, "no change record for a request")
	require.Empty(t, h.consumeAll(t, h.dlqTopic()))
	logs := h.logs.String()
	require.Equal(t, 1, strings.Count(logs, "resync request names no prisoner NOMIS has"), logs)
	require.Contains(t, logs, "booking 999")
	require.InDelta(t, 2, h.metric(t, "alertsync_capture_nomis_prisoner_snapshots_total", map[string]string{"reason": ReasonRedrive}).GetCounter().GetValue(), 0)
	require.InDelta(t, 3, h.metric(t, "alertsync_capture_nomis_resync_requests_total", map[string]string{"result": "resync"}).GetCounter().GetValue(), 0)
	require.InDelta(t, 1, h.metric(t, "alertsync_capture_nomis_resync_requests_total", map[string]string{"result": "no_prisoner"}).GetCounter().GetValue(), 0)
}
