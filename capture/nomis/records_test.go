package nomis

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/schemas"
)

func str(s string) *string { return &s }

// bookingJSON is an OFFENDER_BOOKINGS row as PostgreSQL's to_json writes it.
func bookingJSON(seq, offender int) []byte {
	return []byte(strings.NewReplacer("SEQ", itoa(seq), "OFF", itoa(offender)).Replace(`{"offender_book_id":10,
"booking_begin_date":"2024-03-01T10:00:00","offender_id":OFF,"agy_loc_id":"MDI","active_flag":"Y","root_offender_id":OFF,
"booking_seq":SEQ,"create_datetime":"2024-03-01T10:00:00.5","create_user_id":"U","modify_datetime":null,"modify_user_id":null,
"audit_timestamp":null,"audit_user_id":null,"audit_module_name":null,"audit_client_user_id":null,
"audit_client_ip_address":null,"audit_client_workstation_name":null,"audit_additional_info":null}`))
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func alertRow(book, seq int) []byte {
	return []byte(strings.NewReplacer(`"offender_book_id":10`, `"offender_book_id":`+itoa(book), `"alert_seq":1`, `"alert_seq":`+itoa(seq)).Replace(alertJSON))
}

// codecs compiles the value and key schemas of a topic with goavro.
func codecs(t *testing.T, topic string) (key, value *goavro.Codec) {
	t.Helper()
	tp, ok := schemas.LookupTopic(topic)
	require.True(t, ok, topic)
	key, err := goavro.NewCodec(tp.Key.Schema)
	require.NoError(t, err)
	value, err = goavro.NewCodec(tp.Value.Schema)
	require.NoError(t, err)
	return key, value
}

// roundTrip encodes a native with c and decodes it back.
func roundTrip(t *testing.T, c *goavro.Codec, native map[string]any) map[string]any {
	t.Helper()
	b, err := c.BinaryFromNative(nil, native)
	require.NoError(t, err)
	back, rest, err := c.NativeFromBinary(b)
	require.NoError(t, err)
	require.Empty(t, rest)
	m, ok := back.(map[string]any)
	require.True(t, ok)
	return m
}

func TestRecords(t *testing.T) {
	t.Parallel()
	b := &builder{tables: mustTables(t), loc: london(t), version: "v1", db: "nomis"}
	commit := time.Date(2024, 6, 2, 10, 0, 0, 123456000, time.UTC)
	now := time.Date(2024, 6, 2, 10, 0, 1, 0, time.UTC)
	contexts := map[AlertKey]AlertContext{
		{10, 1}: {OffenderNo: str("A1234BC"), BookingSeq: func() *int32 { v := int32(1); return &v }(), DPSAlertID: str("0190a3f4-0000-7000-8000-00000000a001")},
		{10, 2}: {OffenderNo: str("A1234BC")},
	}
	type want struct {
		op, key string // key as book/seq or id; op "tombstone"
	}
	tests := []struct {
		name    string
		row     JournalRow
		want    []want
		sync    bool
		context map[string]any // of the first record; nil: no context field
	}{
		{"alert insert by the sync", JournalRow{ID: 7, Table: TableOffenderAlerts, Operation: "I", New: alertRow(10, 1),
			Module: str(SyncModule), AdditionalInfo: str("info"), User: str("DPS"), TxID: "99", Commit: commit.UnixMicro(), CommitTime: commit},
			[]want{{"c", "10/1"}}, true,
			map[string]any{"offender_no": "A1234BC", "booking_seq": int32(1), "dps_alert_id": "0190a3f4-0000-7000-8000-00000000a001"}},
		{"alert update", JournalRow{ID: 8, Table: TableOffenderAlerts, Operation: "U", Old: alertRow(10, 2), New: alertRow(10, 2),
			Module: str("OIDALERT"), TxID: "100", Commit: commit.UnixMicro(), CommitTime: commit},
			[]want{{"u", "10/2"}}, false,
			map[string]any{"offender_no": "A1234BC", "booking_seq": nil, "dps_alert_id": nil}},
		{"alert key change", JournalRow{ID: 9, Table: TableOffenderAlerts, Operation: "U", Old: alertRow(10, 1), New: alertRow(10, 2),
			Commit: commit.UnixMicro(), CommitTime: commit},
			[]want{{"d", "10/1"}, {"tombstone", "10/1"}, {"c", "10/2"}}, false,
			map[string]any{"offender_no": "A1234BC", "booking_seq": int32(1), "dps_alert_id": "0190a3f4-0000-7000-8000-00000000a001"}},
		{"alert delete of an unknown booking", JournalRow{ID: 10, Table: TableOffenderAlerts, Operation: "D", Old: alertRow(99, 1),
			Module: str("OIDALERT"), Commit: commit.UnixMicro(), CommitTime: commit},
			[]want{{"d", "99/1"}, {"tombstone", "99/1"}}, false,
			map[string]any{"offender_no": nil, "booking_seq": nil, "dps_alert_id": nil}},
		{"booking sequence change", JournalRow{ID: 11, Table: TableOffenderBookings, Operation: "U", Old: bookingJSON(1, 1), New: bookingJSON(2, 1),
			Module: str("OIDADMIS"), Commit: commit.UnixMicro(), CommitTime: commit},
			[]want{{"u", "10"}}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ch, err := b.decode(&tt.row)
			require.NoError(t, err)
			outs := b.records(ch, contexts)
			require.Len(t, outs, len(tt.want))
			keyCodec, valueCodec := codecs(t, outs[0].table.topic)
			for i, o := range outs {
				k, v := decodeOut(t, b, keyCodec, valueCodec, &o, now)
				var parts []string
				for _, n := range []string{"offender_id", "offender_book_id", "alert_seq"} {
					if v, ok := k[n]; ok {
						parts = append(parts, itoaAny(v))
					}
				}
				require.Equal(t, tt.want[i].key, strings.Join(parts, "/"), "record %d key", i)
				if tt.want[i].op == "tombstone" {
					require.Nil(t, v)
					require.Empty(t, o.op)
					continue
				}
				require.Equal(t, tt.want[i].op, o.op)
				require.Equal(t, tt.want[i].op, v["op"])
				require.Equal(t, now.UnixMilli(), v["ts_ms"])
				x := rec{Key: k, Value: v}
				src := x.source()
				require.Equal(t, "oracle", src["connector"])
				require.Equal(t, "nomis", src["name"])
				require.Equal(t, "nomis", src["db"])
				require.Equal(t, "oms_owner", src["schema"])
				require.Equal(t, tt.row.Table, src["table"])
				require.Equal(t, "v1", src["version"])
				require.Equal(t, commit.UnixMilli(), src["ts_ms"])
				require.Equal(t, map[string]any{"commit": commit.UnixMicro(), "change": tt.row.ID}, src["position"])
				require.Equal(t, tt.sync, src["sync"])
				if tt.row.Module == nil {
					require.Nil(t, src["origin"])
				} else {
					require.Equal(t, map[string]any{"string": *tt.row.Module}, src["origin"])
				}
				if tt.row.TxID == "" {
					require.Nil(t, src["txId"])
				} else {
					require.Equal(t, map[string]any{"string": tt.row.TxID}, src["txId"])
				}
				session := x.block("session")
				require.NotNil(t, session)
				require.Equal(t, deref(tt.row.Module), unwrapUnion(session["module"]))
				require.Equal(t, deref(tt.row.AdditionalInfo), unwrapUnion(session["additional_info"]))
				require.Equal(t, deref(tt.row.User), unwrapUnion(session["user"]))
				if tt.context == nil {
					require.NotContains(t, v, "context")
				} else if i == 0 {
					ctx := x.block("context")
					got := map[string]any{}
					for k, val := range ctx {
						got[k] = unwrapUnion(val)
					}
					require.Equal(t, tt.context, got)
				}
				switch o.op {
				case "c":
					require.Nil(t, x.row("before"))
					require.NotNil(t, x.row("after"))
				case "u":
					require.NotNil(t, x.row("before"))
					require.NotNil(t, x.row("after"))
				case "d":
					require.NotNil(t, x.row("before"))
					require.Nil(t, x.row("after"))
				}
			}
		})
	}
}

// decodeOut encodes o as the capture does and decodes key and value back
// with goavro; value is nil for a tombstone.
func decodeOut(t *testing.T, b *builder, keyCodec, valueCodec *goavro.Codec, o *outRecord, now time.Time) (key, value map[string]any) {
	t.Helper()
	kb, err := o.table.appendKey(nil, o.key)
	require.NoError(t, err)
	decode := func(c *goavro.Codec, data []byte) map[string]any {
		native, rest, err := c.NativeFromBinary(data)
		require.NoError(t, err)
		require.Empty(t, rest)
		m, ok := native.(map[string]any)
		require.True(t, ok)
		return m
	}
	key = decode(keyCodec, kb)
	if o.op == "" {
		return key, nil
	}
	vb, err := b.appendEnvelope(nil, o, now)
	require.NoError(t, err)
	return key, decode(valueCodec, vb)
}

func deref(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func itoaAny(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	b := &builder{tables: mustTables(t), loc: london(t)}
	tests := []struct {
		name string
		row  JournalRow
		kind string
		want string
	}{
		{"unknown table", JournalRow{Table: "offender_notes", Operation: "I", New: []byte(`{}`)}, KindUnknownTable, "journal row of table offender_notes, which is not captured"},
		{"table name that is no identifier", JournalRow{Table: "SECRET x", Operation: "I"}, KindUnknownTable, "journal row of table (not an identifier), which is not captured"},
		{"operation X", JournalRow{Table: TableOffenders, Operation: "X"}, KindOperation, "operation X is not I, U or D"},
		{"empty operation", JournalRow{Table: TableOffenders, Operation: ""}, KindOperation, "operation (not a letter) is not I, U or D"},
		{"insert without new_row", JournalRow{Table: TableOffenders, Operation: "I", Old: []byte(`{}`)}, KindOperation, "new_row missing for operation I"},
		{"update without old_row", JournalRow{Table: TableOffenderAlerts, Operation: "U", New: alertRow(10, 1)}, KindOperation, "old_row missing for operation U"},
		{"delete without old_row", JournalRow{Table: TableOffenderAlerts, Operation: "D", New: alertRow(10, 1)}, KindOperation, "old_row missing for operation D"},
		{"update with a bad old_row", JournalRow{Table: TableOffenderAlerts, Operation: "U", Old: []byte(`[]`), New: alertRow(10, 1)}, KindMalformed, "old_row is not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := b.decode(&tt.row)
			var re *RowError
			require.True(t, errors.As(err, &re), "want a *RowError, got %v", err)
			require.Equal(t, tt.kind, re.Kind)
			require.Equal(t, tt.want, err.Error())
			require.NotContains(t, err.Error(), "SECRET")
		})
	}
}

func TestDLQEntry(t *testing.T) {
	t.Parallel()
	_, codec := codecs(t, schemas.TopicDLQ)
	keyCodec, _ := codecs(t, schemas.TopicDLQ)
	commit := time.Date(2024, 6, 2, 10, 0, 0, 0, time.UTC)
	now := commit.Add(time.Second)
	r := &JournalRow{ID: 42, Table: TableOffenderAlerts, Operation: "I", New: []byte(`{"offender_book_id":10,"alert_seq":3,"comment_text":"SECRET" broken`),
		Module: str("OIDALERT"), TxID: "7", Commit: commit.UnixMicro(), CommitTime: commit}
	rerr := &RowError{Kind: KindMalformed, Image: "new_row", Reason: "is not valid JSON (at byte 60)"}
	require.Equal(t, "", alertKeyHint(r), "a broken image gives no key")
	key, value, err := dlqEntry("alertsync.alertsync_journal", r, rerr, "nomis:10:3", now)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"routing_key": "nomis:10:3"}, roundTrip(t, keyCodec, key))
	v := roundTrip(t, codec, value)
	require.Equal(t, "alertsync.alertsync_journal", v["topic"])
	require.Equal(t, int32(-1), v["partition"])
	require.Equal(t, int64(42), v["offset"])
	require.Equal(t, StageCapture, v["stage"])
	require.Equal(t, "new_row is not valid JSON (at byte 60)", v["error"])
	require.Equal(t, KindMalformed, v["error_kind"])
	require.Equal(t, int32(1), v["attempt"])
	require.Equal(t, map[string]any{"string": "nomis:10:3"}, v["alert_key"])
	require.Equal(t, now, v["failed_at"].(time.Time).UTC())
	var row map[string]any
	require.NoError(t, json.Unmarshal(unwrapUnion(v["value"]).([]byte), &row))
	require.Equal(t, map[string]any{
		"journal_id": 42.0, "table_name": TableOffenderAlerts, "operation": "I", "old_row": nil, "new_row": string(r.New),
		"module_name": "OIDALERT", "additional_info": nil, "user_id": nil, "txid": "7", "commit": float64(commit.UnixMicro()),
		"commit_time": "2024-06-02T10:00:00Z",
	}, row)

	key, _, err = dlqEntry("alertsync.alertsync_journal", &JournalRow{ID: 1, Table: "x"}, rerr, "", now)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"routing_key": "alertsync.alertsync_journal"}, key, "without an alert key: the journal")
}

func TestAlertKeyHint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		row  JournalRow
		want string
	}{
		{"from new_row", JournalRow{Table: TableOffenderAlerts, New: alertRow(10, 4)}, "nomis:10:4"},
		{"from old_row", JournalRow{Table: TableOffenderAlerts, New: []byte(`"x"`), Old: alertRow(11, 5)}, "nomis:11:5"},
		{"bad key value", JournalRow{Table: TableOffenderAlerts, New: []byte(`{"offender_book_id":"x","alert_seq":1}`)}, ""},
		{"key column missing", JournalRow{Table: TableOffenderAlerts, New: []byte(`{"offender_book_id":1}`)}, ""},
		{"not an alert", JournalRow{Table: TableOffenderBookings, New: bookingJSON(1, 1)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, alertKeyHint(&tt.row))
		})
	}
}
