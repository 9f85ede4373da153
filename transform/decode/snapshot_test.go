package decode

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/rules"
)

func snapshotNatives(t *testing.T, s rules.NOMISSnapshot) (any, any) {
	t.Helper()
	alerts := make([]any, 0, len(s.Alerts))
	books := []any{}
	for _, a := range s.Alerts {
		var id any
		if a.DPSAlertID != nil {
			id = schemas.Union(schemas.BranchUUID, *a.DPSAlertID)
		}
		alerts = append(alerts, map[string]any{
			"position":     map[string]any{"commit": a.Position.Commit, "change": a.Position.Change},
			"dps_alert_id": id, "row": nomisRowNative(a.Row),
		})
		books = []any{a.Row.OffenderBookID}
	}
	v := map[string]any{
		"offender_no": s.OffenderNo, "reason": s.Reason, "source": sourceNative("nomis", s.Source),
		"ts_ms": int64(1_700_000_000_000), "booking_ids": books, "alerts": alerts,
	}
	return roundTrip(t, schemas.TopicNOMISPrisonerAlerts, map[string]any{"offender_no": s.OffenderNo}, v)
}

func snapshots() map[string]rules.NOMISSnapshot {
	pos := rules.Position{Commit: 5_000_100, Change: 0}
	src := rules.Source{Position: pos, CommitTime: nomisSource(false).CommitTime}
	second := nomisRow(2)
	second.CommentText, second.ExpiryDate, second.AlertStatus = nil, ptr(ts(2024, 6, 1, 0, 0)), "INACTIVE"
	return map[string]rules.NOMISSnapshot{
		"two alerts": {OffenderNo: "A1234BC", Reason: "NEW_BOOKING", Source: src, Alerts: []rules.NOMISSnapshotAlert{
			{Position: pos, DPSAlertID: ptr("0190a3c4-1b2c-7d8e-9f00-112233445566"), Row: nomisRow(1)},
			{Position: pos, Row: second},
		}},
		"merged away, empty": {OffenderNo: "A9999ZZ", Reason: "MERGE", Source: src, Alerts: []rules.NOMISSnapshotAlert{}},
	}
}

func TestNOMISSnapshot(t *testing.T) {
	t.Parallel()
	for name, want := range snapshots() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			key, value := snapshotNatives(t, want)
			got, err := NOMISSnapshot(key, value)
			require.NoError(t, err)
			require.Equal(t, want, got)
			require.NotNil(t, got.Alerts)
		})
	}
	t.Run("tombstone", func(t *testing.T) {
		t.Parallel()
		_, err := NOMISSnapshot(map[string]any{"offender_no": "A1234BC"}, nil)
		require.ErrorIs(t, err, ErrTombstone)
	})
}

func TestNOMISSnapshotShapeErrors(t *testing.T) {
	t.Parallel()
	alert0 := func(v map[string]any) map[string]any { return v["alerts"].([]any)[0].(map[string]any) }
	tests := []struct {
		name  string
		edit  func(k, v map[string]any)
		field string
	}{
		{"key of another prisoner", func(k, _ map[string]any) { k["offender_no"] = "B1111BB" }, "key.offender_no"},
		{"reason missing", func(_, v map[string]any) { delete(v, "reason") }, "reason"},
		{"alerts not an array", func(_, v map[string]any) { v["alerts"] = map[string]any{} }, "alerts"},
		{"alert not a record", func(_, v map[string]any) { v["alerts"].([]any)[1] = secret }, "alerts[1]"},
		{"alert row missing", func(_, v map[string]any) { delete(alert0(v), "row") }, "alerts[0].row"},
		{"alert row column", func(_, v map[string]any) { alert0(v)["row"].(map[string]any)["alert_seq"] = int64(1) }, "alerts[0].row.alert_seq"},
		{"alert position", func(_, v map[string]any) { delete(alert0(v), "position") }, "alerts[0].position"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, value := snapshotNatives(t, snapshots()["two alerts"])
			tt.edit(key.(map[string]any), value.(map[string]any))
			_, err := NOMISSnapshot(key, value)
			wantShapeErr(t, err, tt.field)
		})
	}
}
