package nomis

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/schemas"
)

func london(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	return loc
}

func mustTables(t *testing.T) map[string]*table {
	t.Helper()
	tables, err := loadTables()
	require.NoError(t, err)
	return tables
}

func TestTablesFromSchemas(t *testing.T) {
	t.Parallel()
	tables := mustTables(t)
	require.Len(t, tables, 3)
	keys := map[string][]string{
		TableOffenderAlerts:   {"offender_book_id", "alert_seq"},
		TableOffenderBookings: {"offender_book_id"},
		TableOffenders:        {"offender_id"},
	}
	for name, want := range keys {
		tb := tables[name]
		require.NotNil(t, tb, name)
		var got []string
		for _, i := range tb.key {
			got = append(got, tb.columns[i].name)
		}
		require.Equal(t, want, got, name)
		require.Equal(t, "nomis.oms_owner."+name, tb.topic)
		require.Equal(t, "alertsync.nomis.oms_owner."+name+".Value", tb.rowType)
	}
	kinds := map[string]column{}
	for _, c := range tables[TableOffenderAlerts].columns {
		kinds[c.name] = c
	}
	require.Equal(t, column{"alert_date", kindTimestamp, false}, kinds["alert_date"])
	require.Equal(t, column{"offender_book_id", kindLong, false}, kinds["offender_book_id"])
	require.Equal(t, column{"alert_seq", kindInt, false}, kinds["alert_seq"])
	require.Equal(t, column{"comment_text", kindString, true}, kinds["comment_text"])
	require.Equal(t, column{"expiry_date", kindTimestamp, true}, kinds["expiry_date"])
}

func TestTableFromSchemaErrors(t *testing.T) {
	t.Parallel()
	rest := `,{"name":"after","type":"long"},{"name":"source","type":"long"},{"name":"op","type":"long"},{"name":"ts_ms","type":"long"},{"name":"session","type":"long"}`
	topic := func(row, key string) schemas.Topic {
		return schemas.Topic{Name: "x", RowType: "x.Value",
			Value: schemas.Subject{Schema: `{"type":"record","name":"Envelope","fields":[{"name":"before","type":["null",{"type":"record","name":"Value","fields":[` + row + `]}]}` + rest + `]}`},
			Key:   schemas.Subject{Schema: `{"type":"record","name":"Key","fields":[` + key + `]}`}}
	}
	tests := []struct {
		name, row, key, want string
	}{
		{"double column", `{"name":"a","type":"double"}`, `{"name":"a","type":"double"}`, "unsupported type double"},
		{"three-way union", `{"name":"a","type":["null","long","string"]}`, `{"name":"a","type":"long"}`, "unions must be [null, T]"},
		{"key not a column", `{"name":"a","type":"long"}`, `{"name":"b","type":"long"}`, "key field b is not a column"},
		{"nullable key", `{"name":"a","type":["null","long"]}`, `{"name":"a","type":"long"}`, "key field a differs from its column"},
		{"key of another type", `{"name":"a","type":"long"}`, `{"name":"a","type":"int"}`, "key field a differs from its column"},
		{"no key", `{"name":"a","type":"long"}`, ``, "no key fields"},
	}
	t.Run("envelope of another layout", func(t *testing.T) {
		t.Parallel()
		tp := topic(`{"name":"a","type":"long"}`, `{"name":"a","type":"long"}`)
		tp.Value.Schema = strings.Replace(tp.Value.Schema, `"op"`, `"operation"`, 1)
		_, err := tableFromSchema("x", tp)
		require.ErrorContains(t, err, "envelope fields [before after source operation ts_ms session] are not the ones the capture encodes")
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tableFromSchema("x", topic(tt.row, tt.key))
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// alertJSON is an OFFENDER_ALERTS row as PostgreSQL's to_json writes it.
const alertJSON = `{"alert_date":"2024-06-02T00:00:00","offender_book_id":10,"root_offender_id":null,"alert_seq":1,
"alert_type":"X","alert_code":"XA","authorize_person_text":"Dr Who","create_date":null,"alert_status":"ACTIVE",
"verified_flag":"N","expiry_date":"2024-01-02T00:00:00","comment_text":"É \"quoted\"","caseload_id":null,
"modify_user_id":null,"modify_datetime":"2024-06-03 14:15:16.123456","caseload_type":"INST",
"create_datetime":"2024-10-27T01:30:00","create_user_id":"ALERTSYNC","audit_timestamp":null,"audit_user_id":"U",
"audit_module_name":"OIDALERT","audit_client_user_id":null,"audit_client_ip_address":null,
"audit_client_workstation_name":null,"audit_additional_info":null,"column_added_later":"ignored"}`

func TestImage(t *testing.T) {
	t.Parallel()
	loc := london(t)
	alerts := mustTables(t)[TableOffenderAlerts]
	img, err := alerts.image("new_row", []byte(alertJSON), loc)
	require.NoError(t, err)
	rec := alerts.native(img)
	utc := func(s string) int64 {
		ts, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		return ts.UnixMicro()
	}
	require.Equal(t, utc("2024-06-01T23:00:00Z"), rec["alert_date"], "summer time wall clock")
	require.Equal(t, map[string]any{schemas.BranchTimestamp: utc("2024-01-02T00:00:00Z")}, rec["expiry_date"], "winter time")
	require.Equal(t, map[string]any{schemas.BranchTimestamp: utc("2024-06-03T13:15:16.123456Z")}, rec["modify_datetime"], "space separator and fraction")
	require.Equal(t, utc("2024-10-27T00:30:00Z"), rec["create_datetime"], "a wall clock that occurs twice: the earlier instant")
	for _, tc := range []struct{ in, want string }{
		{"2024-02-29T23:59:59.999999999", "2024-02-29T23:59:59.999999999Z"},
		{"2023-12-31 00:00:00.5", "2023-12-31T00:00:00.5Z"},
		{"0001-01-01T00:00:00", "0001-01-01T00:00:00Z"},
	} {
		got, ok := parseWallClock(tc.in)
		require.True(t, ok, tc.in)
		require.Equal(t, tc.want, got.Format(time.RFC3339Nano), tc.in)
	}
	require.Equal(t, int64(10), rec["offender_book_id"])
	require.Equal(t, int32(1), rec["alert_seq"])
	require.Equal(t, map[string]any{"string": `É "quoted"`}, rec["comment_text"])
	require.Nil(t, rec["root_offender_id"])
	require.Nil(t, rec["create_date"])
	require.NotContains(t, rec, "column_added_later", "columns the schema lacks are not published")
	require.Len(t, rec, len(alerts.columns))
	require.Equal(t, map[string]any{"offender_book_id": int64(10), "alert_seq": int32(1)}, alerts.nativeKey(alerts.keyOf(img)))

	// A nullable column absent from the image is null.
	short, err := alerts.image("new_row", []byte(strings.Replace(alertJSON, `"caseload_id":null,`, "", 1)), loc)
	require.NoError(t, err)
	require.Nil(t, alerts.get(short, "caseload_id"))
}

func TestImageErrors(t *testing.T) {
	t.Parallel()
	loc := london(t)
	alerts := mustTables(t)[TableOffenderAlerts]
	with := func(col, value string) string {
		i := strings.Index(alertJSON, `"`+col+`":`)
		require.GreaterOrEqual(t, i, 0, col)
		j := i + len(col) + 3
		k := strings.IndexAny(alertJSON[j:], ",}")
		if alertJSON[j] == '"' {
			k = strings.Index(alertJSON[j+1:], `"`) + 2
		}
		return alertJSON[:j] + value + alertJSON[j+k:]
	}
	tests := []struct {
		name, json, kind, want string
	}{
		{"syntax error", `{"alert_seq": 1,, "SECRET"}`, KindMalformed, "new_row is not valid JSON (at byte 16)"},
		{"truncated", `{"alert_seq": "SECRET`, KindMalformed, "new_row is not valid JSON"},
		{"array", `["SECRET"]`, KindMalformed, "new_row is not a JSON object"},
		{"null", `null`, KindMalformed, "new_row is not a JSON object"},
		{"string", `"SECRET"`, KindMalformed, "new_row is not a JSON object"},
		{"int from a string", with("alert_seq", `"SECRET"`), KindBadValue, "new_row column alert_seq: not a whole number of at most 32 bits"},
		{"int with a fraction", with("alert_seq", `1.5`), KindBadValue, "column alert_seq: not a whole number"},
		{"int out of range", with("alert_seq", `2147483648`), KindBadValue, "column alert_seq: not a whole number of at most 32 bits"},
		{"long out of range", with("offender_book_id", `99999999999999999999`), KindBadValue, "column offender_book_id: not a whole number of at most 64 bits"},
		{"string from a number", with("alert_code", `12`), KindBadValue, "column alert_code: not a string"},
		{"string from an object", with("authorize_person_text", `{"SECRET":1}`), KindBadValue, "column authorize_person_text: not a string"},
		{"timestamp with a zone", with("alert_date", `"2024-06-02T00:00:00+01:00"`), KindBadValue, "column alert_date: not an ISO 8601 timestamp without zone"},
		{"timestamp infinity", with("alert_date", `"infinity"`), KindBadValue, "column alert_date: not an ISO 8601 timestamp"},
		{"timestamp on 30 February", with("alert_date", `"2024-02-30T00:00:00"`), KindBadValue, "column alert_date: not an ISO 8601 timestamp"},
		{"timestamp at hour 24", with("alert_date", `"2024-02-03T24:00:00"`), KindBadValue, "column alert_date: not an ISO 8601 timestamp"},
		{"timestamp with ten fraction digits", with("alert_date", `"2024-02-03T10:00:00.1234567890"`), KindBadValue, "column alert_date: not an ISO 8601 timestamp"},
		{"timestamp with an empty fraction", with("alert_date", `"2024-02-03T10:00:00."`), KindBadValue, "column alert_date: not an ISO 8601 timestamp"},
		{"timestamp with a signed field", with("alert_date", `"2024-+2-03T10:00:00"`), KindBadValue, "column alert_date: not an ISO 8601 timestamp"},
		{"date only", with("alert_date", `"2024-02-03"`), KindBadValue, "column alert_date: not an ISO 8601 timestamp"},
		{"timestamp from a number", with("alert_date", `20240602`), KindBadValue, "column alert_date: not a timestamp string"},
		{"NOT NULL column null", with("alert_status", `null`), KindMissingValue, "column alert_status: null or absent in a NOT NULL column"},
		{"NOT NULL column absent", strings.Replace(alertJSON, `"alert_code":"XA",`, "", 1), KindMissingValue, "column alert_code: null or absent"},
		{"key column absent", strings.Replace(alertJSON, `"alert_seq":1,`, "", 1), KindMissingValue, "column alert_seq: null or absent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := alerts.image("new_row", []byte(tt.json), loc)
			var re *RowError
			require.True(t, errors.As(err, &re), "want a *RowError, got %v", err)
			require.Equal(t, tt.kind, re.Kind)
			require.Contains(t, err.Error(), tt.want)
			require.NotContains(t, err.Error(), "SECRET", "no value in the error")
			require.NotContains(t, err.Error(), "2024", "no value in the error")
		})
	}
}
