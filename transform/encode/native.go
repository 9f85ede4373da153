package encode

import (
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/rules"
)

// Native returns the key and value of c in goavro's native form for the
// key and value schemas of the command topics (schemas.TypeCommandKey,
// schemas.TypeCommand): records as map[string]any with every field set,
// nullable unions through the schemas helpers, dates as int32 days,
// timestamps as int64 microseconds, enums as the String() of the rules
// types. Command.Target is not in the record: it picks the topic.
//
// Native is the reference the direct encoder (AppendKey, AppendValue) is
// tested against, and a fallback for callers that encode through
// schemas.Encoder. It does not validate: a timestamp outside the range of
// timestamp-micros wraps as time.Time.UnixMicro does, where AppendValue
// returns an error. c must not be nil.
func Native(c *rules.Command) (key, value map[string]any) {
	key = map[string]any{"prison_number": c.PrisonNumber}
	alerts := make([]any, len(c.Alerts))
	for i := range c.Alerts {
		alerts[i] = nativeSnapshotAlert(&c.Alerts[i])
	}
	value = map[string]any{
		"command_id":         c.ID,
		"kind":               c.Kind.String(),
		"prison_number":      c.PrisonNumber,
		"origin_side":        c.Origin.String(),
		"source_position":    nativePosition(c.SourcePosition),
		"source_commit_time": schemas.Timestamp(c.SourceCommitTime),
		"dps_alert_id":       optUUID(c.DPSAlertID),
		"nomis_booking_id":   schemas.OptLong(c.NOMISBookingID),
		"nomis_alert_seq":    schemas.OptInt(c.NOMISAlertSeq),
		"before":             schemas.OptRecord(schemas.TypeAlertState, nativeState(c.Before)),
		"after":              schemas.OptRecord(schemas.TypeAlertState, nativeState(c.After)),
		"alerts":             alerts,
		"reason":             schemas.OptString(c.Reason),
	}
	return key, value
}

func nativePosition(p rules.Position) map[string]any {
	return map[string]any{"commit": p.Commit, "change": p.Change}
}

// nativeState returns s as an AlertState record; nil for nil s.
func nativeState(s *rules.AlertState) map[string]any {
	if s == nil {
		return nil
	}
	return map[string]any{
		"code":          s.Code,
		"type_code":     s.TypeCode,
		"active_from":   int32(s.ActiveFrom),
		"active_to":     optDate(s.ActiveTo),
		"status":        s.Status.String(),
		"description":   schemas.OptString(s.Description),
		"authorised_by": schemas.OptString(s.AuthorisedBy),
		"created_by":    s.CreatedBy,
		"created_at":    schemas.Timestamp(s.CreatedAt),
		"modified_by":   schemas.OptString(s.ModifiedBy),
		"modified_at":   schemas.OptTimestamp(s.ModifiedAt),
		"prison_code":   schemas.OptString(s.PrisonCode),
	}
}

func nativeSnapshotAlert(a *rules.SnapshotAlert) map[string]any {
	return map[string]any{
		"dps_alert_id":     optUUID(a.DPSAlertID),
		"nomis_booking_id": schemas.OptLong(a.NOMISBookingID),
		"nomis_alert_seq":  schemas.OptInt(a.NOMISAlertSeq),
		"position":         nativePosition(a.Position),
		"state":            nativeState(&a.State),
	}
}

// optUUID returns *p as a ["null", uuid] value; nil p is null. The rules
// carry uuids as their canonical strings.
func optUUID(p *string) any {
	if p == nil {
		return nil
	}
	return schemas.Union(schemas.BranchUUID, *p)
}

// optDate returns *p as a ["null", date] value; nil p is null.
func optDate(p *rules.Date) any {
	if p == nil {
		return nil
	}
	return schemas.Union(schemas.BranchDate, int32(*p))
}
