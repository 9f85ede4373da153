package schemas

import (
	"time"

	"github.com/google/uuid"
	"github.com/linkedin/goavro/v2"
)

// Union branch names goavro uses for the members of nullable unions in these
// schemas. A record member is named by its full name (TypeAlertState, a
// Topic's RowType, ...).
const (
	BranchString    = "string"
	BranchLong      = "long"
	BranchInt       = "int"
	BranchBoolean   = "boolean"
	BranchBytes     = "bytes"
	BranchUUID      = "string" // goavro keeps a uuid as its underlying string
	BranchDate      = "int.date"
	BranchTimestamp = "long.timestamp-micros"
)

// Union returns v as the value of union member branch, the form goavro
// encodes and decodes. A nil v is the null member.
func Union(branch string, v any) any {
	if v == nil {
		return nil
	}
	return goavro.Union(branch, v)
}

// Timestamp returns t as a timestamp-micros value: microseconds since the
// Unix epoch, UTC. The zone of t does not matter; sub-microsecond digits are
// dropped.
func Timestamp(t time.Time) int64 { return t.UnixMicro() }

// LocalTimestamp returns as a timestamp-micros value the instant at which
// clocks in loc showed wall, the wall-clock reading of a zoneless database
// timestamp (DPS timestamp, NOMIS DATE, both Europe/London). The zone of wall
// is ignored. A reading that occurs twice (when clocks go back) gives the
// earlier instant; one that never occurs (when clocks go forward) is moved
// forward by the gap, as time.Date does.
func LocalTimestamp(wall time.Time, loc *time.Location) int64 {
	y, mo, d := wall.Date()
	h, mi, s := wall.Clock()
	t := time.Date(y, mo, d, h, mi, s, wall.Nanosecond(), loc)
	// time.Date may choose the later of two equal readings; take the earlier.
	if earlier := t.Add(-time.Hour); earlier.Hour() == h && earlier.Minute() == mi && earlier.Day() == d {
		t = earlier
	}
	return t.UnixMicro()
}

// Date returns the calendar date of t, in t's location, as a date value:
// days since 1970-01-01.
func Date(t time.Time) int32 {
	y, m, d := t.Date()
	// Days of any representable calendar year fit an int32 (±5.8 million years).
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400) //nolint:gosec // see above
}

// UUID returns u as a uuid value (its canonical string).
func UUID(u uuid.UUID) string { return u.String() }

// OptString returns *p as a ["null","string"] value; nil p is null.
func OptString(p *string) any {
	if p == nil {
		return nil
	}
	return goavro.Union(BranchString, *p)
}

// OptLong returns *p as a ["null","long"] value; nil p is null.
func OptLong(p *int64) any {
	if p == nil {
		return nil
	}
	return goavro.Union(BranchLong, *p)
}

// OptInt returns *p as a ["null","int"] value; nil p is null.
func OptInt(p *int32) any {
	if p == nil {
		return nil
	}
	return goavro.Union(BranchInt, *p)
}

// OptBool returns *p as a ["null","boolean"] value; nil p is null.
func OptBool(p *bool) any {
	if p == nil {
		return nil
	}
	return goavro.Union(BranchBoolean, *p)
}

// OptBytes returns b as a ["null","bytes"] value; nil b is null (an empty
// non-nil b is an empty byte string).
func OptBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return goavro.Union(BranchBytes, b)
}

// OptUUID returns *p as a ["null", uuid] value; nil p is null.
func OptUUID(p *uuid.UUID) any {
	if p == nil {
		return nil
	}
	return goavro.Union(BranchUUID, p.String())
}

// OptDate returns the date of *p as a ["null", date] value; nil p is null.
func OptDate(p *time.Time) any {
	if p == nil {
		return nil
	}
	return goavro.Union(BranchDate, Date(*p))
}

// OptTimestamp returns *p as a ["null", timestamp-micros] value; nil p is
// null.
func OptTimestamp(p *time.Time) any {
	if p == nil {
		return nil
	}
	return goavro.Union(BranchTimestamp, Timestamp(*p))
}

// OptRecord returns rec as a ["null", record] value of the record type
// typeName (a full name); nil rec is null.
func OptRecord(typeName string, rec map[string]any) any {
	if rec == nil {
		return nil
	}
	return goavro.Union(typeName, rec)
}

// Get returns field name of a decoded record as T: string, int32 (int),
// int64 (long), bool, []byte, time.Time (date and timestamp-micros, UTC),
// map[string]any (record), []any (array). ok is false when the field is
// absent (written before the field existed) or of another type. Use GetOpt
// for union fields.
func Get[T any](rec map[string]any, name string) (T, bool) {
	v, ok := rec[name].(T)
	return v, ok
}

// GetOpt returns the value of union field name of a decoded record as T; ok
// is false when the field is null, absent or of another type.
func GetOpt[T any](rec map[string]any, name string) (T, bool) {
	var zero T
	u, ok := rec[name].(map[string]any)
	if !ok || len(u) != 1 {
		return zero, false
	}
	for _, v := range u {
		t, ok := v.(T)
		return t, ok
	}
	return zero, false
}
