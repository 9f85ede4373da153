package nomis

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
)

// Integration tests of the capture's records against a real PostgreSQL
// stand-in of NOMIS and Kafka (kfake, or the broker of ALERTSYNC_TEST_KAFKA):
// alerts, bookings and offenders, the session markers, the alert context.
// See order_integration_test.go for concurrent writers and commit order,
// lifecycle_integration_test.go for locks, restarts, outages, the DLQ and
// metrics.

const dpsID = "0190a3f4-0000-7000-8000-00000000a001"

// TestAlertChanges: an insert, update and delete of an alert arrive as c, u,
// d and a tombstone, with their before and after images, the shared source
// block and the alert's context (prison number, booking sequence, DPS id
// when mapped, as known when captured).
func TestAlertChanges(t *testing.T) {
	t.Parallel()
	t.Logf("kafka: %s", kafkatest.Kind())
	h := newHarness(t)
	h.fixture(t)
	h.db.Exec(t, `INSERT INTO alertsync.alertsync_alert_mapping (dps_alert_id, offender_book_id, alert_seq, offender_no, mapping_type)
		VALUES ($1, 10, 1, 'A1234BC', 'DPS_CREATED')`, dpsID)
	r := h.start(t)
	r.waitRunning(t)

	user := map[string]string{setModule: "OIDALERT", setUser: "JSMITH_GEN"}
	txIns := h.inSession(t, user, insertAlert(10, 1), insertAlert(20, 1))
	txUpd := h.inSession(t, user, `UPDATE oms_owner.offender_alerts SET comment_text = 'changed', authorize_person_text = 'Dr Who',
		expiry_date = TIMESTAMP '2024-12-01 00:00:00', modify_datetime = TIMESTAMP '2024-06-03 14:15:16.123456' WHERE offender_book_id = 10 AND alert_seq = 1`)
	txDel := h.inSession(t, user, "DELETE FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 1")
	h.waitCaughtUp(t, 30*time.Second)

	groups := byKey(h.consumeAll(t, h.topic(TableOffenderAlerts)))
	mapped := groups["10/1"]
	require.Equal(t, []string{"c", "u", "d", "tombstone"}, ops(mapped))
	require.Equal(t, []string{"c"}, ops(groups["20/1"]))
	require.Len(t, groups, 2)

	bst := func(s string) int64 { // Europe/London summer time → UTC
		ts, err := time.Parse("2006-01-02 15:04:05.999999", s)
		require.NoError(t, err)
		return ts.Add(-time.Hour).UnixMicro()
	}
	cases := []struct {
		name           string
		x              rec
		txid           int64
		op             string
		before, after  map[string]any // expected columns (unwrapped); nil: no image
		offenderNo     any
		bookingSeq     any
		dpsAlertID     any
		wantKeyBook    int64
		wantKeySeq     int32
		wantCommentNil bool
	}{
		{name: "insert of a mapped alert", x: mapped[0], txid: txIns, op: "c",
			after:      map[string]any{"offender_book_id": int64(10), "alert_seq": int32(1), "alert_code": "XA", "alert_type": "X", "alert_status": "ACTIVE", "comment_text": "text", "verified_flag": "N", "caseload_type": "INST", "expiry_date": nil, "alert_date": time.UnixMicro(bst("2024-06-02 00:00:00")).UTC()},
			offenderNo: "A1234BC", bookingSeq: int32(1), dpsAlertID: dpsID, wantKeyBook: 10, wantKeySeq: 1},
		{name: "update", x: mapped[1], txid: txUpd, op: "u",
			before:     map[string]any{"comment_text": "text", "authorize_person_text": nil, "expiry_date": nil},
			after:      map[string]any{"comment_text": "changed", "authorize_person_text": "Dr Who", "expiry_date": time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC), "modify_datetime": time.UnixMicro(bst("2024-06-03 14:15:16.123456")).UTC()},
			offenderNo: "A1234BC", bookingSeq: int32(1), dpsAlertID: dpsID, wantKeyBook: 10, wantKeySeq: 1},
		{name: "delete", x: mapped[2], txid: txDel, op: "d",
			before:     map[string]any{"comment_text": "changed", "alert_seq": int32(1)},
			offenderNo: "A1234BC", bookingSeq: int32(1), dpsAlertID: dpsID, wantKeyBook: 10, wantKeySeq: 1},
		{name: "insert of an unmapped alert", x: groups["20/1"][0], txid: txIns, op: "c",
			after:      map[string]any{"offender_book_id": int64(20), "alert_seq": int32(1)},
			offenderNo: "B2345CD", bookingSeq: int32(1), dpsAlertID: nil, wantKeyBook: 20, wantKeySeq: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := tc.x
			require.Equal(t, tc.op, x.op())
			require.Equal(t, map[string]any{"offender_book_id": tc.wantKeyBook, "alert_seq": tc.wantKeySeq}, x.Key)
			for which, want := range map[string]map[string]any{"before": tc.before, "after": tc.after} {
				if want == nil {
					require.Nil(t, x.row(which), "no %s image", which)
					continue
				}
				require.NotNil(t, x.row(which), "%s image", which)
				for col, v := range want {
					got := x.field(which, col)
					if tv, ok := got.(time.Time); ok {
						got = tv.UTC()
					}
					require.Equal(t, v, got, "%s.%s", which, col)
				}
			}
			src := x.source()
			require.Equal(t, "oracle", src["connector"])
			require.Equal(t, "nomis", src["name"])
			require.Equal(t, h.db.Name, src["db"])
			require.Equal(t, "oms_owner", src["schema"])
			require.Equal(t, TableOffenderAlerts, src["table"])
			require.Equal(t, "false", src["snapshot"])
			require.Equal(t, "test", src["version"])
			require.Nil(t, src["lsn"])
			require.Equal(t, map[string]any{"string": strconv.FormatInt(tc.txid, 10)}, src["txId"])
			commit, change := x.position()
			require.Equal(t, h.commitMicros(t, tc.txid), commit, "position.commit is the commit time in µs")
			require.Positive(t, change)
			require.Equal(t, commit/1000, src["ts_ms"], "source.ts_ms is the commit time")
			require.Equal(t, map[string]any{"string": "OIDALERT"}, src["origin"])
			require.Equal(t, false, src["sync"])
			require.Equal(t, "OIDALERT", x.field("session", "module"))
			require.Equal(t, "JSMITH_GEN", x.field("session", "user"))
			require.Nil(t, x.field("session", "additional_info"))
			require.Equal(t, tc.offenderNo, x.field("context", "offender_no"))
			require.Equal(t, tc.bookingSeq, x.field("context", "booking_seq"))
			require.Equal(t, tc.dpsAlertID, x.field("context", "dps_alert_id"))
			tsMs, _ := x.Value["ts_ms"].(int64)
			require.InDelta(t, time.Now().UnixMilli(), tsMs, float64(time.Minute.Milliseconds()), "ts_ms is the capture time")
		})
	}
	require.Nil(t, mapped[3].Value, "tombstone after the delete")
	require.Equal(t, mapped[2].Key, mapped[3].Key)
	require.Equal(t, mapped[2].Partition, mapped[3].Partition)

	// Positions grow along the key.
	var prevCommit, prevChange int64
	for _, x := range mapped[:3] {
		c, ch := x.position()
		require.True(t, c > prevCommit || (c == prevCommit && ch > prevChange), "positions grow")
		prevCommit, prevChange = c, ch
	}
}

// TestBookingAndOffenderChanges: bookings and offenders publish their
// inserts and the booking changes alerts depend on – a booking sequence
// change (recall switch), a booking moved to another offender – while a
// booking change of another column is not journalled. The alert context
// follows the booking as it is when captured.
func TestBookingAndOffenderChanges(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	r.waitRunning(t)
	h.fixture(t)
	admis := map[string]string{setModule: "OIDADMIS"}
	// Recall switch: the older booking 11 becomes current.
	h.inSession(t, admis,
		"UPDATE oms_owner.offender_bookings SET booking_seq = 3 WHERE offender_book_id = 10",
		"UPDATE oms_owner.offender_bookings SET booking_seq = 1 WHERE offender_book_id = 11",
		"UPDATE oms_owner.offender_bookings SET booking_seq = 2 WHERE offender_book_id = 10")
	// Not journalled: a change of another column.
	h.inSession(t, admis, "UPDATE oms_owner.offender_bookings SET agy_loc_id = 'LEI', active_flag = 'N' WHERE offender_book_id = 20")
	// Booking 20 moved from offender 2 to offender 1.
	h.inSession(t, map[string]string{setModule: "OCUMOVEB"}, "UPDATE oms_owner.offender_bookings SET offender_id = 1, root_offender_id = 1 WHERE offender_book_id = 20")
	h.inSession(t, nil, insertAlert(20, 1))
	h.inSession(t, map[string]string{setModule: "OIDINMAT"}, "UPDATE oms_owner.offenders SET offender_id_display = 'C3456DE' WHERE offender_id = 2")
	h.inSession(t, nil, "DELETE FROM oms_owner.offenders WHERE offender_id = 2")
	h.waitCaughtUp(t, 30*time.Second)

	bookings := byKey(h.consumeAll(t, h.topic(TableOffenderBookings)))
	require.Equal(t, []string{"c", "u", "u"}, ops(bookings["10"]))
	require.Equal(t, []string{"c", "u"}, ops(bookings["11"]))
	require.Equal(t, []string{"c", "u"}, ops(bookings["20"]), "the agy_loc_id change is not journalled")
	require.Equal(t, int32(1), bookings["10"][0].field("after", "booking_seq"))
	require.Equal(t, int32(3), bookings["10"][1].field("after", "booking_seq"))
	require.Equal(t, int32(2), bookings["11"][1].field("before", "booking_seq"))
	require.Equal(t, int32(1), bookings["11"][1].field("after", "booking_seq"))
	require.Equal(t, int32(2), bookings["10"][2].field("after", "booking_seq"))
	_, c10 := bookings["10"][1].position()
	_, c11 := bookings["11"][1].position()
	_, c10b := bookings["10"][2].position()
	require.Less(t, c10, c11, "statement order within the transaction")
	require.Less(t, c11, c10b)
	moved := bookings["20"][1]
	require.Equal(t, int64(2), moved.field("before", "offender_id"))
	require.Equal(t, int64(1), moved.field("after", "offender_id"))
	require.Equal(t, "LEI", moved.field("after", "agy_loc_id"), "the image is the whole row")
	require.Equal(t, "OCUMOVEB", moved.field("session", "module"))
	require.Nil(t, moved.Value["context"], "no alert context on bookings")
	require.Equal(t, time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC), bookings["20"][0].field("after", "booking_begin_date"), "GMT wall clock")

	alerts := h.consumeAll(t, h.topic(TableOffenderAlerts))
	require.Len(t, alerts, 1)
	require.Equal(t, "A1234BC", alerts[0].field("context", "offender_no"), "the booking's offender when captured")

	offenders := byKey(h.consumeAll(t, h.topic(TableOffenders)))
	require.Equal(t, []string{"c"}, ops(offenders["1"]))
	require.Equal(t, []string{"c", "u", "d", "tombstone"}, ops(offenders["2"]))
	require.Equal(t, "B2345CD", offenders["2"][1].field("before", "offender_id_display"))
	require.Equal(t, "C3456DE", offenders["2"][1].field("after", "offender_id_display"))
	require.Equal(t, "OIDINMAT", offenders["2"][1].field("session", "module"))
	require.Equal(t, TableOffenders, offenders["2"][0].source()["table"])
	require.Nil(t, offenders["2"][2].field("session", "module"), "the deleting session set no module")
}

// TestSessionMarkers: the session block and source.origin/sync come from the
// session that wrote each change: the sync's own module DPS_SYNCHRONISATION
// sets sync, NOMIS's booking copy carries OMKCOPY.COPY_BOOKING_DATA, and a
// delete carries the deleting session's module, not the one the row holds.
func TestSessionMarkers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	r := h.start(t)
	r.waitRunning(t)

	steps := []struct {
		name     string
		settings map[string]string
		stmt     string
		key, op  string
		module   any
		info     any
		user     any
		sync     bool
		// rowModule is the audit_module_name the published image holds.
		rowModule any
	}{
		{"sync insert", map[string]string{setModule: SyncModule, setUser: "DPS_SYNC"}, insertAlert(10, 1), "10/1", "c",
			SyncModule, nil, "DPS_SYNC", true, SyncModule},
		{"booking copy", map[string]string{setModule: "OIDADMIS", setAdditional: "OMKCOPY.COPY_BOOKING_DATA"}, insertAlert(11, 1), "11/1", "c",
			"OIDADMIS", "OMKCOPY.COPY_BOOKING_DATA", nil, false, "OIDADMIS"},
		{"user update of the sync's alert", map[string]string{setModule: "OIDALERT"},
			"UPDATE oms_owner.offender_alerts SET alert_status = 'INACTIVE' WHERE offender_book_id = 10 AND alert_seq = 1", "10/1", "u",
			"OIDALERT", nil, nil, false, "OIDALERT"},
		{"sync delete of a user's row", map[string]string{setModule: SyncModule},
			"DELETE FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 1", "10/1", "d",
			SyncModule, nil, nil, true, "OIDALERT"},
		{"user delete of a copied row", map[string]string{setModule: "OIDALERT", setAdditional: "manual"},
			"DELETE FROM oms_owner.offender_alerts WHERE offender_book_id = 11 AND alert_seq = 1", "11/1", "d",
			"OIDALERT", "manual", nil, false, "OIDADMIS"},
	}
	su := h.sessionUser(t)
	for _, s := range steps {
		h.inSession(t, s.settings, s.stmt)
	}
	h.waitCaughtUp(t, 30*time.Second)
	groups := byKey(h.consumeAll(t, h.topic(TableOffenderAlerts)))
	seen := map[string]int{}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			x := groups[s.key][seen[s.key]]
			seen[s.key]++
			if s.op == "d" {
				seen[s.key]++ // tombstone
			}
			require.Equal(t, s.op, x.op())
			require.Equal(t, s.module, x.field("session", "module"))
			require.Equal(t, s.info, x.field("session", "additional_info"))
			wantUser := s.user
			if wantUser == nil {
				wantUser = su
			}
			require.Equal(t, wantUser, x.field("session", "user"))
			require.Equal(t, s.sync, x.source()["sync"])
			require.Equal(t, map[string]any{"string": s.module}, x.source()["origin"])
			image := "after"
			if s.op == "d" {
				image = "before"
			}
			require.Equal(t, s.rowModule, x.field(image, "audit_module_name"))
		})
	}
}

// sessionUser returns the database user of the harness's sessions.
func (h *harness) sessionUser(t *testing.T) string {
	t.Helper()
	var su string
	require.NoError(t, h.db.Pool.QueryRow(t.Context(), "SELECT session_user::text").Scan(&su))
	return su
}
