package apply

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/decode"
	"github.com/alertsync/alertsync/transform/rules"
)

// ErrMalformedCommand marks a command record without the shape of the
// command schema (it goes to the DLQ). It is decode.ErrMalformedCommand, so
// that DecodeCommand and decode.FastCommand fail alike.
var ErrMalformedCommand = decode.ErrMalformedCommand

// DecodeCommand reads a command from the goavro natives of its key and
// value (alertsync.commands.*). Target is left unset (the topic says it).
func DecodeCommand(key, value any) (rules.Command, error) {
	v, ok := value.(map[string]any)
	if !ok {
		return rules.Command{}, fmt.Errorf("%w: value is %T", ErrMalformedCommand, value)
	}
	d := &cmdReader{}
	c := rules.Command{
		ID:               str(d, v, "command_id"),
		PrisonNumber:     str(d, v, "prison_number"),
		SourceCommitTime: ts(d, v, "source_commit_time"),
		DPSAlertID:       optStr(d, v, "dps_alert_id"),
		NOMISBookingID:   optLong(d, v, "nomis_booking_id"),
		NOMISAlertSeq:    optInt(d, v, "nomis_alert_seq"),
		Reason:           optStr(d, v, "reason"),
	}
	switch str(d, v, "kind") {
	case "UPSERT":
		c.Kind = rules.KindUpsert
	case "DELETE":
		c.Kind = rules.KindDelete
	case "REPLACE_PRISONER":
		c.Kind = rules.KindReplacePrisoner
	default:
		d.fail("kind", "unknown")
	}
	switch str(d, v, "origin_side") {
	case "NOMIS":
		c.Origin = rules.SideNOMIS
	case "DPS":
		c.Origin = rules.SideDPS
	default:
		d.fail("origin_side", "unknown")
	}
	c.SourcePosition = position(d, v, "source_position")
	c.Before = state(d, v, "before")
	c.After = state(d, v, "after")
	if alerts, ok := v["alerts"].([]any); ok {
		for i, a := range alerts {
			m, ok := a.(map[string]any)
			if !ok {
				d.fail(fmt.Sprintf("alerts[%d]", i), "not a record")
				continue
			}
			s := rules.SnapshotAlert{
				DPSAlertID:     optStr(d, m, "dps_alert_id"),
				NOMISBookingID: optLong(d, m, "nomis_booking_id"),
				NOMISAlertSeq:  optInt(d, m, "nomis_alert_seq"),
				Position:       position(d, m, "position"),
			}
			if st, ok := m["state"].(map[string]any); ok {
				s.State = stateOf(d, st)
			} else {
				d.fail(fmt.Sprintf("alerts[%d].state", i), "missing")
			}
			c.Alerts = append(c.Alerts, s)
		}
	}
	if k, ok := key.(map[string]any); ok {
		if kn, _ := k["prison_number"].(string); kn != c.PrisonNumber {
			d.fail("key.prison_number", "does not match the value")
		}
	}
	if d.err != nil {
		return rules.Command{}, d.err
	}
	return c, nil
}

type cmdReader struct{ err error }

func (d *cmdReader) fail(field, msg string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: %s", ErrMalformedCommand, field, msg)
	}
}

func str(d *cmdReader, m map[string]any, name string) string {
	s, ok := m[name].(string)
	if !ok {
		d.fail(name, "missing")
	}
	return s
}

func ts(d *cmdReader, m map[string]any, name string) time.Time {
	t, ok := m[name].(time.Time)
	if !ok {
		d.fail(name, "missing")
	}
	return t.UTC()
}

func optStr(d *cmdReader, m map[string]any, name string) *string {
	s, ok := schemas.GetOpt[string](m, name)
	if !ok {
		return nil
	}
	return &s
}

func optLong(d *cmdReader, m map[string]any, name string) *int64 {
	v, ok := schemas.GetOpt[int64](m, name)
	if !ok {
		return nil
	}
	return &v
}

func optInt(d *cmdReader, m map[string]any, name string) *int32 {
	v, ok := schemas.GetOpt[int32](m, name)
	if !ok {
		return nil
	}
	return &v
}

func position(d *cmdReader, m map[string]any, name string) rules.Position {
	p, ok := m[name].(map[string]any)
	if !ok {
		d.fail(name, "missing")
		return rules.Position{}
	}
	c, _ := p["commit"].(int64)
	ch, _ := p["change"].(int64)
	return rules.Position{Commit: c, Change: ch}
}

func state(d *cmdReader, m map[string]any, name string) *rules.AlertState {
	u, ok := m[name].(map[string]any)
	if !ok || u == nil {
		return nil
	}
	st, ok := u[schemas.TypeAlertState].(map[string]any)
	if !ok {
		d.fail(name, "not an AlertState")
		return nil
	}
	s := stateOf(d, st)
	return &s
}

func stateOf(d *cmdReader, m map[string]any) rules.AlertState {
	s := rules.AlertState{
		Code:         str(d, m, "code"),
		TypeCode:     str(d, m, "type_code"),
		Description:  optStr(d, m, "description"),
		AuthorisedBy: optStr(d, m, "authorised_by"),
		CreatedBy:    str(d, m, "created_by"),
		CreatedAt:    ts(d, m, "created_at"),
		ModifiedBy:   optStr(d, m, "modified_by"),
		PrisonCode:   optStr(d, m, "prison_code"),
	}
	if t, ok := schemas.GetOpt[time.Time](m, "modified_at"); ok {
		t = t.UTC()
		s.ModifiedAt = &t
	}
	if t, ok := m["active_from"].(time.Time); ok {
		s.ActiveFrom = rules.DateIn(t, time.UTC)
	} else {
		d.fail("active_from", "missing")
	}
	if t, ok := schemas.GetOpt[time.Time](m, "active_to"); ok {
		to := rules.DateIn(t, time.UTC)
		s.ActiveTo = &to
	}
	switch str(d, m, "status") {
	case "ACTIVE":
		s.Status = rules.StatusActive
	case "INACTIVE":
		s.Status = rules.StatusInactive
	default:
		d.fail("status", "unknown")
	}
	return s
}

// commandSchemas are the registry ids of the current command key and value
// schemas (package schemas' own), bound through one session's codec: a
// record whose header names both is read by decode.FastCommand, any other
// by goavro and DecodeCommand. Zero value: no fast path.
type commandSchemas struct {
	key, value int
	ok         bool
}

// bodies returns the Avro bodies of rec when its key and value were both
// written with the current command schemas.
func (s commandSchemas) bodies(rec *kgo.Record) (key, value []byte, ok bool) {
	if !s.ok {
		return nil, nil, false
	}
	kid, key, err := schemas.ParseHeader(rec.Key)
	if err != nil || kid != s.key {
		return nil, nil, false
	}
	vid, value, err := schemas.ParseHeader(rec.Value)
	if err != nil || vid != s.value {
		return nil, nil, false
	}
	return key, value, true
}

// commandSchemas binds the command topic through codec (registering its
// schemas, or finding them registered) and returns their ids: once per
// session. On a bind error it logs and returns the zero commandSchemas:
// every record of the session takes the generic path, which fails as it
// always has when the registry is away.
func (r *Runner) commandSchemas(ctx context.Context, codec *schemas.Codec) commandSchemas {
	tc, err := codec.Bind(ctx, r.Topic.Base)
	if err != nil {
		r.Logger.Warn("binding the command schemas; decoding every command the generic way this session",
			"topic", r.Topic.Base, "err", err)
		return commandSchemas{}
	}
	return commandSchemas{key: tc.Key.ID(), value: tc.Value.ID(), ok: true}
}

// decodeRecord decodes rec: straight from its Avro bodies when cur names
// its schemas, through codec (goavro) and DecodeCommand otherwise. Errors
// of either are the record's (it goes to the DLQ), except a non-permanent
// *schemas.DecodeError: the registry is away.
func decodeRecord(ctx context.Context, codec *schemas.Codec, cur commandSchemas, rec *kgo.Record) (rules.Command, error) {
	if k, v, ok := cur.bodies(rec); ok {
		return decode.FastCommand(k, v)
	}
	key, err := codec.DecodeKey(ctx, rec)
	if err != nil {
		return rules.Command{}, err
	}
	value, err := codec.DecodeValue(ctx, rec)
	if err != nil {
		return rules.Command{}, err
	}
	return DecodeCommand(key, value)
}
