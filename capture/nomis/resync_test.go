package nomis

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/schemas"
)

// nativeSnapshot is the reference (goavro native) form of a prisoner
// snapshot.
func nativeSnapshot(b *builder, s *prisonerSnapshot, src *origin, now time.Time) map[string]any {
	alerts := b.tables[TableOffenderAlerts]
	bookings := make([]any, len(s.bookings))
	for i, id := range s.bookings {
		bookings[i] = id
	}
	items := make([]any, len(s.alerts))
	for i, a := range s.alerts {
		items[i] = map[string]any{
			"position":     map[string]any{"commit": src.pos.Commit, "change": src.pos.ID},
			"dps_alert_id": schemas.OptString(a.dpsID),
			"row":          alerts.native(a.row),
		}
	}
	reason := s.reason
	if reason == "" {
		reason = "UNKNOWN"
	}
	return map[string]any{
		"offender_no": s.offenderNo,
		"reason":      reason,
		"source": map[string]any{
			"version": b.version, "connector": "oracle", "name": "nomis", "ts_ms": src.pos.CommitTime.UnixMilli(),
			"snapshot": "true", "db": b.db, "schema": "alertsync", "table": "prisoner_alerts", "txId": nil,
			"position": map[string]any{"commit": src.pos.Commit, "change": src.pos.ID},
			"lsn":      nil, "origin": nil, "sync": false,
		},
		"ts_ms":       now.UnixMilli(),
		"booking_ids": bookings,
		"alerts":      items,
	}
}

// TestSnapshotEncodingMatchesGoavro: prisoner snapshots, empty and with
// alerts, every reason, encode as goavro encodes the reference form.
func TestSnapshotEncodingMatchesGoavro(t *testing.T) {
	t.Parallel()
	tables := mustTables(t)
	b := &builder{tables: tables, loc: london(t), version: "1.2.3", db: "NOMIS"}
	alerts := tables[TableOffenderAlerts]
	a1, err := alerts.image("row", alertRow(10, 1), b.loc)
	require.NoError(t, err)
	a2, err := alerts.image("row", alertRow(10, 2), b.loc)
	require.NoError(t, err)
	a2 = withNulls(alerts, a2)
	commit := time.Date(2024, 6, 2, 10, 0, 0, 123456000, time.UTC)
	src := &origin{pos: JournalKey{Commit: commit.UnixMicro(), CommitTime: commit}, snapshot: true}
	now := commit.Add(time.Second)
	_, valueCodec := codecs(t, schemas.TopicNOMISPrisonerAlerts)
	for _, reason := range reasonSymbols {
		for _, s := range []*prisonerSnapshot{
			{offenderNo: "A1234BC", reason: reason},
			{offenderNo: "A1234BC", reason: reason, bookings: []int64{10},
				alerts: []snapshotAlert{{row: a1, dpsID: str("0190a3f4-0000-7000-8000-00000000a001")}, {row: a2}}},
			{offenderNo: "B2345CD", reason: reason, bookings: []int64{20, 21}},
		} {
			want, err := valueCodec.BinaryFromNative(nil, nativeSnapshot(b, s, src, now))
			require.NoError(t, err, reason)
			got, err := b.appendSnapshot(nil, s, src, now)
			require.NoError(t, err)
			require.Equal(t, want, got, "%s with %d alerts", reason, len(s.alerts))
		}
	}
}

func TestResyncTriggers(t *testing.T) {
	t.Parallel()
	b := &builder{tables: mustTables(t), loc: london(t)}
	offender := func(id int, no string, root int) []byte {
		return []byte(`{"offender_id":` + itoa(id) + `,"offender_id_display":"` + no + `","root_offender_id":` + itoa(root) +
			`,"last_name":"X","first_name":"Y","birth_date":null,"create_datetime":"2024-01-01T00:00:00","create_user_id":"U"}`)
	}
	seq1 := int32(1)
	contexts := map[AlertKey]AlertContext{{10, 3}: {OffenderNo: str("A1234BC"), BookingSeq: &seq1}}
	tests := []struct {
		name string
		row  JournalRow
		want []resyncTrigger
	}{
		{"new current booking", JournalRow{Table: TableOffenderBookings, Operation: "I", New: bookingJSON(1, 7)},
			[]resyncTrigger{{offenderID: 7, reason: ReasonNewBooking}}},
		{"older booking inserted", JournalRow{Table: TableOffenderBookings, Operation: "I", New: bookingJSON(2, 7)}, nil},
		{"recall switch to 1", JournalRow{Table: TableOffenderBookings, Operation: "U", Old: bookingJSON(2, 7), New: bookingJSON(1, 7)},
			[]resyncTrigger{{offenderID: 7, reason: ReasonBookingSwitched}}},
		{"older booking renumbered", JournalRow{Table: TableOffenderBookings, Operation: "U", Old: bookingJSON(2, 7), New: bookingJSON(3, 7)}, nil},
		{"booking moved", JournalRow{Table: TableOffenderBookings, Operation: "U", Old: bookingJSON(1, 7), New: bookingJSON(1, 8)},
			[]resyncTrigger{{offenderID: 7, reason: ReasonBookingMoved}, {offenderID: 8, reason: ReasonBookingMoved}}},
		{"current booking deleted", JournalRow{Table: TableOffenderBookings, Operation: "D", Old: bookingJSON(1, 7)},
			[]resyncTrigger{{offenderID: 7, reason: ReasonBookingRemoved}}},
		{"offender merged away", JournalRow{Table: TableOffenders, Operation: "D", Old: offender(7, "B2345CD", 7)},
			[]resyncTrigger{{offenderNo: "B2345CD", reason: ReasonMerge}}},
		{"offender root changed", JournalRow{Table: TableOffenders, Operation: "U", Old: offender(7, "B2345CD", 7), New: offender(7, "B2345CD", 1)},
			[]resyncTrigger{{offenderNo: "B2345CD", reason: ReasonMerge}}},
		{"prison number changed", JournalRow{Table: TableOffenders, Operation: "U", Old: offender(7, "B2345CD", 7), New: offender(7, "A1234BC", 7)},
			[]resyncTrigger{{offenderNo: "B2345CD", reason: ReasonMerge}, {offenderNo: "A1234BC", reason: ReasonMerge}}},
		{"offender inserted", JournalRow{Table: TableOffenders, Operation: "I", New: offender(7, "B2345CD", 7)}, nil},
		{"booking copy insert", JournalRow{Table: TableOffenderAlerts, Operation: "I", New: alertRow(10, 3), AdditionalInfo: str(CopyBookingInfo)},
			[]resyncTrigger{{offenderNo: "A1234BC", reason: ReasonBookingCopy}}},
		{"user alert insert", JournalRow{Table: TableOffenderAlerts, Operation: "I", New: alertRow(10, 3), AdditionalInfo: str("OIDALERT")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ch, err := b.decode(&tt.row)
			require.NoError(t, err)
			require.Equal(t, tt.want, ch.resyncTriggers(contexts))
		})
	}
	due := time.Date(2024, 6, 2, 10, 0, 0, 0, time.UTC)
	got := resolveResyncs([]resyncTrigger{{offenderID: 7, reason: ReasonBookingMoved}, {offenderID: 9, reason: ReasonBookingMoved},
		{offenderNo: "C3456DE", reason: ReasonMerge}}, map[int64]string{7: "B2345CD"}, due)
	require.Equal(t, []Resync{{OffenderNo: "B2345CD", Due: due, Reason: ReasonBookingMoved}, {OffenderNo: "C3456DE", Due: due, Reason: ReasonMerge}}, got,
		"an offender id that no longer exists is left out")
	nos, dues, reasons := resyncColumns([]Resync{{"A", due, "X"}, {"B", due, "Y"}, {"A", due.Add(time.Second), "Z"}})
	require.Equal(t, []string{"A", "B"}, nos)
	require.Equal(t, []time.Time{due.Add(time.Second), due}, dues, "the later due of a number given twice")
	require.Equal(t, []string{"X", "Y"}, reasons, "the first reason")
}
