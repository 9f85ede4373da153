package decode

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/rules"
)

const dpsRowType = "alertsync.dps.public.alert.Value"

const dpsID = "0190a3c4-1b2c-7d8e-9f00-112233445566"

func dpsRow() rules.DPSAlertRow {
	return rules.DPSAlertRow{
		ID: dpsID, AlertCodeID: 1, PrisonNumber: "A1234BC", Description: ptr(secret), AuthorisedBy: ptr("AUTH-PERSON"),
		ActiveFrom: rules.DateOf(2024, time.April, 1), CreatedAt: ts(2024, time.April, 1, 9, 30),
		PrisonCodeWhenCreated: ptr("MDI"), Version: 1,
	}
}

func dpsRowNative(r *rules.DPSAlertRow) any {
	if r == nil {
		return nil
	}
	var to any
	if r.ActiveTo != nil {
		to = schemas.Union(schemas.BranchDate, int32(*r.ActiveTo))
	}
	return schemas.OptRecord(dpsRowType, map[string]any{
		"id": r.ID, "alert_code_id": r.AlertCodeID, "prison_number": r.PrisonNumber,
		"description": optStr(r.Description), "authorised_by": optStr(r.AuthorisedBy),
		"active_from": int32(r.ActiveFrom), "active_to": to, "created_at": r.CreatedAt,
		"last_modified_at": optTS(r.LastModifiedAt), "deleted_at": optTS(r.DeletedAt),
		"prison_code_when_created": optStr(r.PrisonCodeWhenCreated), "version": r.Version,
	})
}

func dpsNatives(t *testing.T, ch rules.DPSAlertChange) (any, any) {
	t.Helper()
	v := map[string]any{
		"before": dpsRowNative(ch.Before), "after": dpsRowNative(ch.After), "source": sourceNative("dps", ch.Source),
		"op": ch.Op.String(), "ts_ms": int64(1_700_000_000_000),
	}
	return roundTrip(t, schemas.TopicDPSAlert, map[string]any{"id": dpsID}, v)
}

func dpsChanges() map[string]rules.DPSAlertChange {
	src := rules.Source{Position: rules.Position{Commit: 0x16B3748, Change: 0x16B3700}, CommitTime: time.UnixMilli(1_712_000_000_456).UTC()}
	syncSrc := src
	syncSrc.Sync = true
	after := dpsRow()
	before := dpsRow()
	before.Description, before.AuthorisedBy, before.PrisonCodeWhenCreated = nil, nil, nil
	ended := dpsRow()
	ended.ActiveTo, ended.LastModifiedAt, ended.Version = ptr(rules.DateOf(2024, time.May, 1)), ptr(ts(2024, time.May, 1, 8, 0)), 2
	deleted := ended
	deleted.DeletedAt, deleted.Version = ptr(ts(2024, time.May, 3, 12, 0)), 3
	return map[string]rules.DPSAlertChange{
		"create":                   {Op: rules.OpCreate, After: &after, Source: src},
		"update, NULLs to values":  {Op: rules.OpUpdate, Before: &before, After: &ended, Source: src},
		"soft delete":              {Op: rules.OpUpdate, Before: &ended, After: &deleted, Source: src},
		"hard delete":              {Op: rules.OpDelete, Before: &deleted, Source: src},
		"snapshot read":            {Op: rules.OpRead, After: &after, Source: src},
		"sync write":               {Op: rules.OpCreate, After: &after, Source: syncSrc},
		"truncate, left for rules": {Op: rules.OpTruncate, Source: src},
	}
}

func TestDPSAlert(t *testing.T) {
	t.Parallel()
	for name, want := range dpsChanges() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			key, value := dpsNatives(t, want)
			got, err := DPSAlert(key, value)
			require.NoError(t, err)
			require.Equal(t, want, got)
			require.Nil(t, got.User, "the alert record carries no user")
		})
	}
	t.Run("tombstone", func(t *testing.T) {
		t.Parallel()
		_, err := DPSAlert(map[string]any{"id": dpsID}, nil)
		require.ErrorIs(t, err, ErrTombstone)
	})
}

func TestDPSAlertShapeErrors(t *testing.T) {
	t.Parallel()
	after := func(v map[string]any) map[string]any { return v["after"].(map[string]any)[dpsRowType].(map[string]any) }
	tests := []struct {
		name  string
		edit  func(k, v map[string]any)
		field string
	}{
		{"key of another alert", func(k, _ map[string]any) { k["id"] = "0190a3c4-0000-7000-8000-000000000000" }, "key.id"},
		{"active_from as int", func(_, v map[string]any) { after(v)["active_from"] = int32(19814) }, "after.active_from"},
		{"active_to of another member", func(_, v map[string]any) { after(v)["active_to"] = map[string]any{"string": secret} }, "after.active_to"},
		{"description not a union", func(_, v map[string]any) { after(v)["description"] = secret }, "after.description"},
		{"version missing", func(_, v map[string]any) { delete(after(v), "version") }, "after.version"},
		{"after not a union of a record", func(_, v map[string]any) { v["after"] = map[string]any{dpsRowType: secret} }, "after"},
		{"ts_ms missing", func(_, v map[string]any) { delete(v["source"].(map[string]any), "ts_ms") }, "source.ts_ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, value := dpsNatives(t, dpsChanges()["soft delete"])
			tt.edit(key.(map[string]any), value.(map[string]any))
			_, err := DPSAlert(key, value)
			wantShapeErr(t, err, tt.field)
		})
	}
}
