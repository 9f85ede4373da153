package schemas

import (
	"time"

	"github.com/google/uuid"
)

// sample is one realistic record of one subject, in goavro's native form as
// the helpers of native.go build it.
type sample struct {
	name   string
	topic  string
	part   Part
	native any
}

func ptr[T any](v T) *T { return &v }

var (
	alertID   = uuid.MustParse("0190a3c1-7b2e-7c3d-9f10-5a1b2c3d4e5f")
	alert2ID  = uuid.MustParse("0190a3c1-7b2e-7c3d-9f10-5a1b2c3d4e60")
	auditID   = uuid.MustParse("0190a3c2-0000-7000-8000-000000000001")
	commandID = uuid.MustParse("5f0c3a52-3c7d-5e4b-9d1a-2b3c4d5e6f70")

	createdAt = time.Date(2024, 3, 14, 9, 26, 53, 589793000, time.UTC)
	updatedAt = time.Date(2024, 11, 2, 17, 5, 0, 123456000, time.UTC)
	// A date before the epoch and one far ahead exercise negative and large
	// day counts.
	oldDate   = time.Date(1969, 7, 20, 0, 0, 0, 0, time.UTC)
	activeTo  = time.Date(2031, 12, 31, 0, 0, 0, 0, time.UTC)
	fromDate  = time.Date(2024, 3, 14, 0, 0, 0, 0, time.UTC)
	commitPos = map[string]any{"commit": int64(0x1A2B3C4D), "change": int64(0x1A2B3C10)}
)

func dpsSource(table string, snapshot bool, sync bool) map[string]any {
	snap := "false"
	if snapshot {
		snap = "true"
	}
	s := map[string]any{
		"version":   "0.1.0",
		"connector": "postgresql",
		"name":      "dps",
		"ts_ms":     createdAt.UnixMilli(),
		"snapshot":  snap,
		"db":        "alerts",
		"schema":    "public",
		"table":     table,
		"txId":      OptString(ptr("74591")),
		"position":  commitPos,
		"lsn":       OptLong(ptr(int64(0x1A2B3C10))),
		"origin":    nil,
		"sync":      sync,
	}
	if sync {
		s["origin"] = OptString(ptr("alertsync:nomis:0000000000ABCDEF"))
	}
	return s
}

func alertRow(deleted bool) map[string]any {
	r := map[string]any{
		"id":                       UUID(alertID),
		"alert_code_id":            int64(42),
		"prison_number":            "A1234BC",
		"description":              OptString(ptr("Risk to staff – seen with a weapon; “quoted” text ✓")),
		"authorised_by":            OptString(ptr("Duty Governor")),
		"active_from":              Date(fromDate),
		"active_to":                OptDate(ptr(activeTo)),
		"created_at":               Timestamp(createdAt),
		"last_modified_at":         OptTimestamp(ptr(updatedAt)),
		"deleted_at":               nil,
		"prison_code_when_created": OptString(ptr("MDI")),
		"version":                  int32(3),
	}
	if deleted {
		r["deleted_at"] = OptTimestamp(ptr(updatedAt))
	}
	return r
}

func alertRowMinimal() map[string]any {
	return map[string]any{
		"id":                       UUID(alert2ID),
		"alert_code_id":            int64(7),
		"prison_number":            "G4321ZZ",
		"description":              nil,
		"authorised_by":            nil,
		"active_from":              Date(oldDate),
		"active_to":                nil,
		"created_at":               Timestamp(createdAt),
		"last_modified_at":         nil,
		"deleted_at":               nil,
		"prison_code_when_created": nil,
		"version":                  int32(0),
	}
}

func envelope(rowType string, before, after map[string]any, source map[string]any, op string) map[string]any {
	return map[string]any{
		"before": OptRecord(rowType, before),
		"after":  OptRecord(rowType, after),
		"source": source,
		"op":     op,
		"ts_ms":  updatedAt.UnixMilli(),
	}
}

func alertState(full bool) map[string]any {
	if !full {
		return map[string]any{
			"code":          "HA",
			"type_code":     "H",
			"active_from":   Date(oldDate),
			"active_to":     nil,
			"status":        "INACTIVE",
			"description":   nil,
			"authorised_by": nil,
			"created_by":    "SYS",
			"created_at":    Timestamp(createdAt),
			"modified_by":   nil,
			"modified_at":   nil,
			"prison_code":   nil,
		}
	}
	return map[string]any{
		"code":          "XSA",
		"type_code":     "X",
		"active_from":   Date(fromDate),
		"active_to":     OptDate(ptr(activeTo)),
		"status":        "ACTIVE",
		"description":   OptString(ptr("Staff assaulter. Ünïcödé and a newline\nsecond line")),
		"authorised_by": OptString(ptr("Security")),
		"created_by":    "JSMITH_GEN",
		"created_at":    Timestamp(createdAt),
		"modified_by":   OptString(ptr("ABROWN")),
		"modified_at":   OptTimestamp(ptr(updatedAt)),
		"prison_code":   OptString(ptr("LEI")),
	}
}

func command(kind string) map[string]any {
	c := map[string]any{
		"command_id":         UUID(commandID),
		"kind":               kind,
		"prison_number":      "A1234BC",
		"origin_side":        "NOMIS",
		"source_position":    map[string]any{"commit": int64(1731000000123456), "change": int64(98765)},
		"source_commit_time": Timestamp(updatedAt),
		"dps_alert_id":       OptUUID(ptr(alertID)),
		"nomis_booking_id":   OptLong(ptr(int64(1234567))),
		"nomis_alert_seq":    OptInt(ptr(int32(12))),
		"before":             nil,
		"after":              nil,
		"alerts":             []any{},
		"reason":             nil,
	}
	switch kind {
	case "UPSERT":
		c["before"] = OptRecord(TypeAlertState, alertState(false))
		c["after"] = OptRecord(TypeAlertState, alertState(true))
	case "DELETE":
		c["origin_side"] = "DPS"
		c["nomis_booking_id"] = nil
		c["nomis_alert_seq"] = nil
		c["before"] = OptRecord(TypeAlertState, alertState(true))
	case "REPLACE_PRISONER":
		c["dps_alert_id"] = nil
		c["nomis_alert_seq"] = nil
		c["reason"] = OptString(ptr("booking moved from G4321ZZ"))
		c["alerts"] = []any{
			map[string]any{
				"dps_alert_id":     OptUUID(ptr(alertID)),
				"nomis_booking_id": OptLong(ptr(int64(1234567))),
				"nomis_alert_seq":  OptInt(ptr(int32(1))),
				"position":         map[string]any{"commit": int64(-1), "change": int64(0)},
				"state":            alertState(true),
			},
			map[string]any{
				"dps_alert_id":     nil,
				"nomis_booking_id": OptLong(ptr(int64(1234567))),
				"nomis_alert_seq":  OptInt(ptr(int32(999999))),
				"position":         map[string]any{"commit": int64(1<<62 + 5), "change": int64(7)},
				"state":            alertState(false),
			},
		}
	}
	return c
}

// samples returns realistic records for the key and value of every topic,
// with nulls, unions, enums, arrays and bytes.
func samples() []sample {
	alertRowType := "alertsync.dps.public.alert.Value"
	codeRowType := "alertsync.dps.public.alert_code.Value"
	typeRowType := "alertsync.dps.public.alert_type.Value"
	auditRowType := "alertsync.dps.public.audit_event.Value"
	alertType := map[string]any{
		"id":             int64(3),
		"code":           "X",
		"description":    "Security",
		"list_sequence":  int32(20),
		"created_at":     Timestamp(createdAt),
		"created_by":     "OMS_OWNER",
		"modified_at":    nil,
		"modified_by":    nil,
		"deactivated_at": nil,
		"deactivated_by": nil,
	}
	alertTypeDeactivated := map[string]any{
		"id":             int64(3),
		"code":           "X",
		"description":    "Security",
		"list_sequence":  int32(20),
		"created_at":     Timestamp(createdAt),
		"created_by":     "OMS_OWNER",
		"modified_at":    OptTimestamp(ptr(updatedAt)),
		"modified_by":    OptString(ptr("ADMIN_USER")),
		"deactivated_at": OptTimestamp(ptr(updatedAt)),
		"deactivated_by": OptString(ptr("ADMIN_USER")),
	}
	alertCode := map[string]any{
		"id":             int64(42),
		"alert_type_id":  int64(3),
		"code":           "XSA",
		"description":    "Staff Assaulter",
		"restricted":     true,
		"list_sequence":  int32(1),
		"created_at":     Timestamp(createdAt),
		"created_by":     "OMS_OWNER",
		"modified_at":    OptTimestamp(ptr(updatedAt)),
		"modified_by":    OptString(ptr("ADMIN_USER")),
		"deactivated_at": nil,
		"deactivated_by": nil,
	}
	audit := map[string]any{
		"id":                       UUID(auditID),
		"alert_id":                 UUID(alertID),
		"action":                   "UPDATED",
		"description":              "Updated alert description",
		"actioned_at":              Timestamp(updatedAt),
		"actioned_by":              "ABROWN",
		"actioned_by_display_name": "Alex Brown",
		"source":                   "NOMIS",
		"description_updated":      OptBool(ptr(true)),
		"authorised_by_updated":    OptBool(ptr(false)),
		"active_from_updated":      nil,
		"active_to_updated":        nil,
	}
	dlqEntry := map[string]any{
		"topic":     TopicCommandsDPS,
		"partition": int32(5),
		"offset":    int64(1 << 40),
		"key":       OptBytes([]byte{0x00, 0x00, 0x00, 0x00, 0x07, 0x0e, 'A', '1'}),
		"value":     OptBytes([]byte{0x00, 0xff, 0xfe, 0x00, 0x80}),
		"headers": []any{
			map[string]any{"key": "traceparent", "value": OptBytes([]byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))},
			map[string]any{"key": "empty", "value": OptBytes([]byte{})},
			map[string]any{"key": "nil", "value": nil},
		},
		"stage":       "apply.dps",
		"error":       `inserting alert: ERROR: value too long for type character varying(40) (SQLSTATE 22001)`,
		"error_kind":  "constraint",
		"attempt":     int32(3),
		"failed_at":   Timestamp(updatedAt),
		"held":        false,
		"held_behind": nil,
		"alert_key":   OptString(ptr("dps:" + alertID.String())),
	}
	dlqHeld := map[string]any{
		"topic":       TopicDPSAlert,
		"partition":   int32(0),
		"offset":      int64(17),
		"key":         nil,
		"value":       nil,
		"headers":     []any{},
		"stage":       "transform",
		"error":       "held behind an earlier failure",
		"error_kind":  "held",
		"attempt":     int32(1),
		"failed_at":   Timestamp(createdAt),
		"held":        true,
		"held_behind": OptString(ptr("dps.public.alert/0/12")),
		"alert_key":   nil,
	}
	outcome := func(result string, reason *string) map[string]any {
		return map[string]any{
			"command_id":         UUID(commandID),
			"target":             "DPS",
			"outcome":            result,
			"reason":             OptString(reason),
			"prison_number":      "A1234BC",
			"dps_alert_id":       OptUUID(ptr(alertID)),
			"nomis_booking_id":   OptLong(ptr(int64(1234567))),
			"nomis_alert_seq":    nil,
			"source_position":    commitPos,
			"source_commit_time": Timestamp(createdAt),
			"applied_at":         Timestamp(updatedAt),
		}
	}

	return []sample{
		{"alert key", TopicDPSAlert, PartKey, map[string]any{"id": UUID(alertID)}},
		{"alert create", TopicDPSAlert, PartValue, envelope(alertRowType, nil, alertRow(false), dpsSource("alert", false, false), "c")},
		{"alert update by sync", TopicDPSAlert, PartValue, envelope(alertRowType, alertRowMinimal(), alertRow(true), dpsSource("alert", false, true), "u")},
		{"alert delete", TopicDPSAlert, PartValue, envelope(alertRowType, alertRowMinimal(), nil, dpsSource("alert", false, false), "d")},
		{"alert snapshot read", TopicDPSAlert, PartValue, envelope(alertRowType, nil, alertRowMinimal(), dpsSource("alert", true, false), "r")},
		{"alert_code key", TopicDPSAlertCode, PartKey, map[string]any{"id": int64(42)}},
		{"alert_code update", TopicDPSAlertCode, PartValue, envelope(codeRowType, alertCode, alertCode, dpsSource("alert_code", false, false), "u")},
		{"alert_type key", TopicDPSAlertType, PartKey, map[string]any{"id": int64(3)}},
		{"alert_type deactivate", TopicDPSAlertType, PartValue, envelope(typeRowType, alertType, alertTypeDeactivated, dpsSource("alert_type", false, false), "u")},
		{"audit_event key", TopicDPSAuditEvent, PartKey, map[string]any{"id": UUID(auditID)}},
		{"audit_event create", TopicDPSAuditEvent, PartValue, envelope(auditRowType, nil, audit, dpsSource("audit_event", false, true), "c")},
		{"commands.dps key", TopicCommandsDPS, PartKey, map[string]any{"prison_number": "A1234BC"}},
		{"commands.dps upsert", TopicCommandsDPS, PartValue, command("UPSERT")},
		{"commands.dps replace prisoner", TopicCommandsDPS, PartValue, command("REPLACE_PRISONER")},
		{"commands.nomis key", TopicCommandsNOMIS, PartKey, map[string]any{"prison_number": "G4321ZZ"}},
		{"commands.nomis delete", TopicCommandsNOMIS, PartValue, command("DELETE")},
		{"dlq key", TopicDLQ, PartKey, map[string]any{"routing_key": "dps:" + alertID.String()}},
		{"dlq entry", TopicDLQ, PartValue, dlqEntry},
		{"dlq held entry", TopicDLQ, PartValue, dlqHeld},
		{"outcomes key", TopicOutcomes, PartKey, map[string]any{"prison_number": "A1234BC"}},
		{"outcome applied", TopicOutcomes, PartValue, outcome("APPLIED", nil)},
		{"outcome conflict", TopicOutcomes, PartValue, outcome("CONFLICT", ptr("later commit on DPS at 2024-11-02T17:05:00.123456Z won"))},
	}
}
