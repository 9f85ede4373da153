package decode

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/rules"
)

const nomisRowType = "alertsync.nomis.oms_owner.offender_alerts.Value"

func nomisRow(seq int32) rules.NOMISAlertRow {
	return rules.NOMISAlertRow{
		OffenderBookID: 1001, AlertSeq: seq,
		AlertDate: ts(2024, time.March, 30, 23, 0), AlertType: "X", AlertCode: "XA", AlertStatus: "ACTIVE",
		AuthorizePersonText: ptr("AUTH-PERSON"), CommentText: ptr(secret), CaseloadID: ptr("MDI"),
		CreateUserID: "JSMITH", CreateDatetime: ts(2024, time.April, 1, 9, 30),
	}
}

func nomisRowNative(r rules.NOMISAlertRow) map[string]any {
	return map[string]any{
		"alert_date": r.AlertDate, "offender_book_id": r.OffenderBookID, "root_offender_id": schemas.OptLong(ptr(int64(77))),
		"alert_seq": r.AlertSeq, "alert_type": r.AlertType, "alert_code": r.AlertCode,
		"authorize_person_text": optStr(r.AuthorizePersonText), "create_date": nil, "alert_status": r.AlertStatus,
		"verified_flag": "N", "expiry_date": optTS(r.ExpiryDate), "comment_text": optStr(r.CommentText),
		"caseload_id": optStr(r.CaseloadID), "modify_user_id": optStr(r.ModifyUserID), "modify_datetime": optTS(r.ModifyDatetime),
		"caseload_type": optStr(ptr("INST")), "create_datetime": r.CreateDatetime, "create_user_id": r.CreateUserID,
		"audit_timestamp": nil, "audit_user_id": nil, "audit_module_name": nil, "audit_client_user_id": nil,
		"audit_client_ip_address": nil, "audit_client_workstation_name": nil, "audit_additional_info": nil,
	}
}

func optRow(r *rules.NOMISAlertRow) any {
	if r == nil {
		return nil
	}
	return schemas.OptRecord(nomisRowType, nomisRowNative(*r))
}

// nomisNatives returns the key and value a capture publishes for ch, after
// an Avro round trip.
func nomisNatives(t *testing.T, ch rules.NOMISAlertChange) (any, any) {
	t.Helper()
	v := map[string]any{
		"before": optRow(ch.Before), "after": optRow(ch.After), "source": sourceNative("nomis", ch.Source),
		"op": ch.Op.String(), "ts_ms": int64(1_700_000_000_000), "session": nil, "context": nil,
	}
	if s := ch.Session; s != nil {
		v["session"] = schemas.OptRecord(schemas.TypeNOMISSession, map[string]any{
			"module": optStr(s.Module), "additional_info": optStr(s.AdditionalInfo), "user": optStr(s.User),
		})
	}
	if c := ch.Context; c != nil {
		var id any
		if c.DPSAlertID != nil {
			id = schemas.Union(schemas.BranchUUID, *c.DPSAlertID)
		}
		v["context"] = schemas.OptRecord(schemas.TypeNOMISAlertContext, map[string]any{
			"offender_no": optStr(c.OffenderNo), "booking_seq": schemas.OptInt(c.BookingSeq), "dps_alert_id": id,
		})
	}
	img := ch.After
	if img == nil {
		img = ch.Before
	}
	return roundTrip(t, schemas.TopicNOMISOffenderAlerts, map[string]any{"offender_book_id": img.OffenderBookID, "alert_seq": img.AlertSeq}, v)
}

func nomisSource(sync bool) rules.Source {
	return rules.Source{Position: rules.Position{Commit: 5_000_001, Change: 3}, CommitTime: time.UnixMilli(1_712_000_000_123).UTC(), Sync: sync}
}

func nomisChanges() map[string]rules.NOMISAlertChange {
	ctx := &rules.NOMISContext{OffenderNo: ptr("A1234BC"), BookingSeq: ptr(int32(1)), DPSAlertID: ptr("0190a3c4-1b2c-7d8e-9f00-112233445566")}
	session := &rules.NOMISSession{Module: ptr("OCDALERT"), User: ptr("JSMITH")}
	after := nomisRow(1)
	before := nomisRow(1)
	before.CommentText, before.AuthorizePersonText, before.CaseloadID = nil, nil, nil
	updated := nomisRow(1)
	updated.AlertStatus, updated.ExpiryDate = "INACTIVE", ptr(ts(2024, time.May, 1, 0, 0))
	updated.ModifyUserID, updated.ModifyDatetime = ptr("KJONES"), ptr(ts(2024, time.May, 2, 10, 0))
	return map[string]rules.NOMISAlertChange{
		"create with DPS id": {Op: rules.OpCreate, After: &after, Source: nomisSource(false), Session: session, Context: ctx},
		"update, NULLs before, values after": {Op: rules.OpUpdate, Before: &before, After: &updated, Source: nomisSource(false), Session: session,
			Context: &rules.NOMISContext{OffenderNo: ptr("A1234BC"), BookingSeq: ptr(int32(1))}},
		"delete, context without DPS id": {Op: rules.OpDelete, Before: &updated, Source: nomisSource(false),
			Session: &rules.NOMISSession{User: ptr("KJONES")}, Context: &rules.NOMISContext{OffenderNo: ptr("A1234BC"), BookingSeq: ptr(int32(2))}},
		"delete, booking gone":      {Op: rules.OpDelete, Before: &before, Source: nomisSource(false), Session: session, Context: &rules.NOMISContext{}},
		"snapshot read, no session": {Op: rules.OpRead, After: &after, Source: nomisSource(false), Context: ctx},
		"sync write": {Op: rules.OpUpdate, Before: &before, After: &after, Source: nomisSource(true),
			Session: &rules.NOMISSession{Module: ptr("DPS_SYNCHRONISATION"), User: ptr("DPS_SYNCHRONISATION")}, Context: ctx},
		"booking copy": {Op: rules.OpCreate, After: &after, Source: nomisSource(false),
			Session: &rules.NOMISSession{Module: ptr("OIDADMIS"), AdditionalInfo: ptr(rules.BookingCopyInfo), User: ptr("JSMITH")}, Context: ctx},
		"no context":              {Op: rules.OpCreate, After: &after, Source: nomisSource(false), Session: session},
		"missing image for rules": {Op: rules.OpUpdate, After: &after, Source: nomisSource(false), Session: session, Context: ctx},
	}
}

func TestNOMISAlert(t *testing.T) {
	t.Parallel()
	for name, want := range nomisChanges() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			key, value := nomisNatives(t, want)
			got, err := NOMISAlert(key, value)
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}

func TestNOMISAlertOlderWriter(t *testing.T) {
	t.Parallel()
	// A record written before source.sync and context existed: both read as absent.
	want := nomisChanges()["create with DPS id"]
	key, value := nomisNatives(t, want)
	v := value.(map[string]any)
	delete(v, "context")
	delete(v["source"].(map[string]any), "sync")
	delete(v["after"].(map[string]any)[nomisRowType].(map[string]any), "comment_text")
	got, err := NOMISAlert(key, v)
	require.NoError(t, err)
	want.Context = nil
	want.After.CommentText = nil
	require.Equal(t, want, got)
}

func TestNOMISAlertTombstone(t *testing.T) {
	t.Parallel()
	for name, value := range map[string]any{"nil": nil, "nil map": map[string]any(nil)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := NOMISAlert(map[string]any{"offender_book_id": int64(1), "alert_seq": int32(1)}, value)
			require.ErrorIs(t, err, ErrTombstone)
			var e *Error
			require.False(t, errors.As(err, &e), "a tombstone is not a shape error")
		})
	}
}

func TestNOMISAlertShapeErrors(t *testing.T) {
	t.Parallel()
	after := func(v map[string]any) map[string]any {
		return v["after"].(map[string]any)[nomisRowType].(map[string]any)
	}
	tests := []struct {
		name  string
		edit  func(k, v map[string]any) (any, any)
		field string
	}{
		{"value not a record", func(k, v map[string]any) (any, any) { return k, []any{secret} }, "value"},
		{"key missing", func(k, v map[string]any) (any, any) { return nil, v }, "key"},
		{"key of another alert", func(k, v map[string]any) (any, any) { k["alert_seq"] = int32(9); return k, v }, "key"},
		{"key field missing", func(k, v map[string]any) (any, any) { delete(k, "alert_seq"); return k, v }, "key.alert_seq"},
		{"op missing", func(k, v map[string]any) (any, any) { delete(v, "op"); return k, v }, "op"},
		{"op too long", func(k, v map[string]any) (any, any) { v["op"] = "create"; return k, v }, "op"},
		{"required column missing", func(k, v map[string]any) (any, any) { delete(after(v), "alert_date"); return k, v }, "after.alert_date"},
		{"column of another type", func(k, v map[string]any) (any, any) { after(v)["alert_code"] = int64(1); return k, v }, "after.alert_code"},
		{"nullable column not a union", func(k, v map[string]any) (any, any) { after(v)["comment_text"] = secret; return k, v }, "after.comment_text"},
		{"union of another member", func(k, v map[string]any) (any, any) {
			after(v)["expiry_date"] = map[string]any{"string": secret}
			return k, v
		}, "after.expiry_date"},
		{"source missing", func(k, v map[string]any) (any, any) { delete(v, "source"); return k, v }, "source"},
		{"position field missing", func(k, v map[string]any) (any, any) {
			delete(v["source"].(map[string]any)["position"].(map[string]any), "change")
			return k, v
		}, "source.position.change"},
		{"sync not bool", func(k, v map[string]any) (any, any) { v["source"].(map[string]any)["sync"] = "true"; return k, v }, "source.sync"},
		{"context member not a record", func(k, v map[string]any) (any, any) {
			v["context"] = map[string]any{schemas.TypeNOMISAlertContext: secret}
			return k, v
		}, "context"},
		{"booking_seq of another type", func(k, v map[string]any) (any, any) {
			v["context"].(map[string]any)[schemas.TypeNOMISAlertContext].(map[string]any)["booking_seq"] = map[string]any{"long": int64(1)}
			return k, v
		}, "context.booking_seq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, value := nomisNatives(t, nomisChanges()["create with DPS id"])
			k, v := tt.edit(key.(map[string]any), value.(map[string]any))
			_, err := NOMISAlert(k, v)
			wantShapeErr(t, err, tt.field)
		})
	}
}
