package encode

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/alertsync/alertsync/internal/avrobin"
	"github.com/alertsync/alertsync/transform/rules"
)

// Errors of AppendValue, wrapped in an *Error that names the field.
var (
	// ErrOutOfRange: a value lies outside the range of its Avro type (a
	// timestamp before year -290307 or after 294246 for timestamp-micros).
	ErrOutOfRange = errors.New("value outside the range of its Avro type")
	// ErrUnknownSymbol: an enum value (Kind, Side, Status) whose String()
	// is not a symbol of the schema's enum.
	ErrUnknownSymbol = errors.New("symbol not in the schema's enum")
	// ErrNilCommand: AppendValue was given a nil command.
	ErrNilCommand = errors.New("nil command")
)

// Error is an error of AppendValue: the command holds a value the schema
// cannot hold. It names the field, never the value (alert text is personal
// data).
type Error struct {
	// Field is the path of the field, e.g. "alerts[2].state.created_at".
	Field string
	// Err is ErrOutOfRange or ErrUnknownSymbol.
	Err error
}

// Error returns "encoding command field <path>: <reason>".
func (e *Error) Error() string { return "encoding command field " + e.Field + ": " + e.Err.Error() }

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// The fields each record writer below appends, in order, as
// "name:type" ("?" nullable, "[]" array, named types by full name, "ts"
// timestamp-micros). TestSchemaFields compares them with the resolved
// schema, so that a field added to the .avsc files fails the build's tests
// until the writers know it.
var (
	keyFields     = []string{"prison_number:string"}
	commandFields = []string{
		"command_id:uuid", "kind:alertsync.command.Kind", "prison_number:string",
		"origin_side:alertsync.Side", "source_position:alertsync.Position", "source_commit_time:ts",
		"dps_alert_id:?uuid", "nomis_booking_id:?long", "nomis_alert_seq:?int",
		"before:?alertsync.command.AlertState", "after:?alertsync.command.AlertState",
		"alerts:[]alertsync.command.SnapshotAlert", "reason:?string",
	}
	alertStateFields = []string{
		"code:string", "type_code:string", "active_from:date", "active_to:?date",
		"status:alertsync.command.AlertStatus", "description:?string", "authorised_by:?string",
		"created_by:string", "created_at:ts", "modified_by:?string", "modified_at:?ts", "prison_code:?string",
	}
	snapshotAlertFields = []string{
		"dps_alert_id:?uuid", "nomis_booking_id:?long", "nomis_alert_seq:?int",
		"position:alertsync.Position", "state:alertsync.command.AlertState",
	}
	positionFields = []string{"commit:long", "change:long"}
)

// Enum symbols in schema order: a symbol's index is what the binary holds.
var (
	kindSymbols   = []string{"UNKNOWN", "UPSERT", "DELETE", "REPLACE_PRISONER"}
	sideSymbols   = []string{"UNKNOWN", "NOMIS", "DPS"}
	statusSymbols = []string{"UNKNOWN", "ACTIVE", "INACTIVE"}
)

// blockMax is the most items one array block holds. It equals the
// goavro.MaxBlockCount package schemas sets, which goavro's encoder splits
// arrays by and its decoder refuses to exceed (TestBlockMax).
const blockMax = 1 << 16

// The instants whose microseconds since the epoch fit an int64.
var (
	minTimestamp = time.UnixMicro(math.MinInt64)
	maxTimestamp = time.UnixMicro(math.MaxInt64).Add(time.Microsecond - time.Nanosecond)
)

// AppendKey appends the Avro binary body of the key of c (the prison
// number) to dst and returns the extended slice. c must not be nil.
func AppendKey(dst []byte, c *rules.Command) []byte {
	return avrobin.AppendString(dst, c.PrisonNumber)
}

// AppendValue appends the Avro binary body of c as a Command record to dst
// and returns the extended slice: the bytes goavro writes for Native(c)
// under the current schema. It allocates nothing beyond growing dst. On
// error (ErrNilCommand, or an *Error for a value the schema cannot hold)
// it returns dst unchanged.
func AppendValue(dst []byte, c *rules.Command) ([]byte, error) {
	if c == nil {
		return dst, ErrNilCommand
	}
	out, field, err := appendCommand(dst, c)
	if err != nil {
		return dst, &Error{Field: field, Err: err}
	}
	return out, nil
}

// appendCommand writes commandFields. On error it returns the path of the
// failing field.
func appendCommand(b []byte, c *rules.Command) ([]byte, string, error) {
	var (
		ok    bool
		field string
		err   error
	)
	b = avrobin.AppendString(b, c.ID)
	if b, ok = appendEnum(b, kindSymbols, c.Kind.String()); !ok {
		return nil, "kind", ErrUnknownSymbol
	}
	b = avrobin.AppendString(b, c.PrisonNumber)
	if b, ok = appendEnum(b, sideSymbols, c.Origin.String()); !ok {
		return nil, "origin_side", ErrUnknownSymbol
	}
	b = appendPosition(b, c.SourcePosition)
	if b, ok = appendTimestamp(b, c.SourceCommitTime); !ok {
		return nil, "source_commit_time", ErrOutOfRange
	}
	b = avrobin.AppendOptString(b, c.DPSAlertID)
	b = appendOptLong(b, c.NOMISBookingID)
	b = appendOptInt(b, c.NOMISAlertSeq)
	if b, field, err = appendOptState(b, c.Before); err != nil {
		return nil, "before." + field, err
	}
	if b, field, err = appendOptState(b, c.After); err != nil {
		return nil, "after." + field, err
	}
	for start := 0; start < len(c.Alerts); start += blockMax {
		block := c.Alerts[start:min(start+blockMax, len(c.Alerts))]
		b = avrobin.AppendLong(b, int64(len(block)))
		for i := range block {
			if b, field, err = appendSnapshotAlert(b, &block[i]); err != nil {
				return nil, fmt.Sprintf("alerts[%d].%s", start+i, field), err
			}
		}
	}
	b = append(b, 0) // end of the array
	b = avrobin.AppendOptString(b, c.Reason)
	return b, "", nil
}

// appendSnapshotAlert writes snapshotAlertFields.
func appendSnapshotAlert(b []byte, a *rules.SnapshotAlert) ([]byte, string, error) {
	b = avrobin.AppendOptString(b, a.DPSAlertID)
	b = appendOptLong(b, a.NOMISBookingID)
	b = appendOptInt(b, a.NOMISAlertSeq)
	b = appendPosition(b, a.Position)
	b, field, err := appendState(b, &a.State)
	if err != nil {
		return nil, "state." + field, err
	}
	return b, "", nil
}

// appendOptState writes a ["null", AlertState] union.
func appendOptState(b []byte, s *rules.AlertState) ([]byte, string, error) {
	if s == nil {
		return append(b, avrobin.Null), "", nil
	}
	return appendState(append(b, avrobin.NotNull), s)
}

// appendState writes alertStateFields.
func appendState(b []byte, s *rules.AlertState) ([]byte, string, error) {
	var ok bool
	b = avrobin.AppendString(b, s.Code)
	b = avrobin.AppendString(b, s.TypeCode)
	b = avrobin.AppendLong(b, int64(s.ActiveFrom))
	if s.ActiveTo == nil {
		b = append(b, avrobin.Null)
	} else {
		b = avrobin.AppendLong(append(b, avrobin.NotNull), int64(*s.ActiveTo))
	}
	if b, ok = appendEnum(b, statusSymbols, s.Status.String()); !ok {
		return nil, "status", ErrUnknownSymbol
	}
	b = avrobin.AppendOptString(b, s.Description)
	b = avrobin.AppendOptString(b, s.AuthorisedBy)
	b = avrobin.AppendString(b, s.CreatedBy)
	if b, ok = appendTimestamp(b, s.CreatedAt); !ok {
		return nil, "created_at", ErrOutOfRange
	}
	b = avrobin.AppendOptString(b, s.ModifiedBy)
	if s.ModifiedAt == nil {
		b = append(b, avrobin.Null)
	} else if b, ok = appendTimestamp(append(b, avrobin.NotNull), *s.ModifiedAt); !ok {
		return nil, "modified_at", ErrOutOfRange
	}
	b = avrobin.AppendOptString(b, s.PrisonCode)
	return b, "", nil
}

// appendPosition writes positionFields.
func appendPosition(b []byte, p rules.Position) []byte {
	return avrobin.AppendLong(avrobin.AppendLong(b, p.Commit), p.Change)
}

// appendEnum writes the index of symbol in symbols; false when it is not
// there.
func appendEnum(b []byte, symbols []string, symbol string) ([]byte, bool) {
	for i, s := range symbols {
		if s == symbol {
			return avrobin.AppendLong(b, int64(i)), true
		}
	}
	return b, false
}

// appendTimestamp writes t as timestamp-micros (sub-microsecond digits
// dropped, as schemas.Timestamp does); false when t is out of its range.
func appendTimestamp(b []byte, t time.Time) ([]byte, bool) {
	if t.Before(minTimestamp) || t.After(maxTimestamp) {
		return b, false
	}
	return avrobin.AppendLong(b, t.UnixMicro()), true
}

// appendOptLong writes a ["null", "long"] union.
func appendOptLong(b []byte, p *int64) []byte {
	if p == nil {
		return append(b, avrobin.Null)
	}
	return avrobin.AppendLong(append(b, avrobin.NotNull), *p)
}

// appendOptInt writes a ["null", "int"] union.
func appendOptInt(b []byte, p *int32) []byte {
	if p == nil {
		return append(b, avrobin.Null)
	}
	return avrobin.AppendLong(append(b, avrobin.NotNull), int64(*p))
}
