package schemas

import (
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNOMISRows pins the NOMIS change topics: row records with the columns
// of the NOMIS tables (deploy/nomis/schema.sql; capture/nomis checks them
// against the stand-in's catalog), the Debezium envelope followed by the
// session block and, for alerts, the context block.
func TestNOMISRows(t *testing.T) {
	t.Parallel()
	created := []string{"create_datetime:ts", "create_user_id:string", "modify_datetime:?ts", "modify_user_id:?string"}
	audit := []string{
		"audit_timestamp:?ts", "audit_user_id:?string", "audit_module_name:?string", "audit_client_user_id:?string",
		"audit_client_ip_address:?string", "audit_client_workstation_name:?string", "audit_additional_info:?string",
	}
	tests := []struct {
		topic string
		key   []string
		row   []string
		extra []string // envelope fields after the Debezium five
	}{
		{TopicNOMISOffenders, []string{"offender_id:long"},
			concat([]string{"offender_id:long", "offender_id_display:?string", "root_offender_id:?long"}, created, audit),
			[]string{"session:?" + TypeNOMISSession}},
		{TopicNOMISOffenderBookings, []string{"offender_book_id:long"},
			concat([]string{
				"offender_book_id:long", "booking_begin_date:ts", "offender_id:long", "agy_loc_id:?string", "active_flag:string",
				"root_offender_id:?long", "booking_seq:int",
			}, created, audit),
			[]string{"session:?" + TypeNOMISSession}},
		{TopicNOMISOffenderAlerts, []string{"offender_book_id:long", "alert_seq:int"},
			concat([]string{
				"alert_date:ts", "offender_book_id:long", "root_offender_id:?long", "alert_seq:int", "alert_type:string",
				"alert_code:string", "authorize_person_text:?string", "create_date:?ts", "alert_status:string",
				"verified_flag:string", "expiry_date:?ts", "comment_text:?string", "caseload_id:?string",
				"modify_user_id:?string", "modify_datetime:?ts", "caseload_type:?string", "create_datetime:ts",
				"create_user_id:string",
			}, audit),
			[]string{"session:?" + TypeNOMISSession, "context:?" + TypeNOMISAlertContext}},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			t.Parallel()
			tp, ok := LookupTopic(tt.topic)
			require.True(t, ok)
			assert.Equal(t, KindChange, tp.Kind)
			assert.Equal(t, tt.key, signature(parseSchema(t, tp.Key.Schema).(*avro.RecordSchema)))
			env := parseSchema(t, tp.Value.Schema).(*avro.RecordSchema)
			row := env.Fields()[0].Type().(*avro.UnionSchema).Types()[1].(*avro.RecordSchema)
			assert.Equal(t, tt.row, signature(row))
			assert.Equal(t, append([]string{
				"before:?" + tp.RowType, "after:?" + tp.RowType, "source:alertsync.Source", "op:string", "ts_ms:long",
			}, tt.extra...), signature(env))
			var session *avro.RecordSchema
			for _, f := range env.Fields() {
				if f.Name() == "session" {
					session = derefRecord(f.Type().(*avro.UnionSchema).Types()[1])
				}
				if f.Name() == "context" {
					assert.Equal(t, []string{"offender_no:?string", "booking_seq:?int", "dps_alert_id:?uuid"},
						signature(derefRecord(f.Type().(*avro.UnionSchema).Types()[1])))
				}
			}
			require.NotNil(t, session)
			assert.Equal(t, []string{"module:?string", "additional_info:?string", "user:?string"}, signature(session))
		})
	}
}

func derefRecord(s avro.Schema) *avro.RecordSchema {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	rec, _ := s.(*avro.RecordSchema)
	return rec
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
