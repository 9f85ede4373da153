package decode

import (
	"errors"
	"fmt"
	"time"

	"github.com/alertsync/alertsync/transform/rules"
)

// ErrTombstone is returned (wrapped) for a record whose value is nil: a
// tombstone, which the stream loop skips.
var ErrTombstone = errors.New("tombstone record")

// ErrorKind is the DLQ error_kind of every *Error.
const ErrorKind = "decode"

// Error is a record without the shape the transformer expects; it goes to
// alertsync.dlq with Stage, ErrorKind and Error(). Field and Msg never hold
// a value of the record.
type Error struct {
	Stage string // rules.StageTransform
	Field string // path of the offending field, e.g. "after.alert_date" or "key"
	Msg   string // what is wrong, without values of the record
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("%s: decoding record: %s: %s", e.Stage, e.Field, e.Msg)
}

func shapeErr(field, format string, args ...any) *Error {
	return &Error{Stage: rules.StageTransform, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// reader reads fields of decoded records and keeps the first error, so that
// a mapping reads as a list of fields and checks once.
type reader struct{ err error }

// rec is one decoded record and its path from the record root.
type rec struct {
	m    map[string]any
	path string
}

func (r rec) at(name string) string {
	if r.path == "" {
		return name
	}
	return r.path + "." + name
}

// root returns v as the top-level record named path (key or value).
func (d *reader) root(v any, path string) rec {
	m, ok := v.(map[string]any)
	if !ok && d.err == nil {
		if v == nil {
			d.err = shapeErr(path, "missing")
		} else {
			d.err = shapeErr(path, "is %T, want a record", v)
		}
	}
	return rec{m: m, path: path}
}

func get[T any](d *reader, r rec, name string) T {
	var zero T
	if d.err != nil {
		return zero
	}
	v, ok := r.m[name]
	if !ok || v == nil {
		d.err = shapeErr(r.at(name), "missing")
		return zero
	}
	t, ok := v.(T)
	if !ok {
		d.err = shapeErr(r.at(name), "is %T, want %T", v, zero)
		return zero
	}
	return t
}

// opt reads a nullable union field; absent or null is nil.
func opt[T any](d *reader, r rec, name string) *T {
	if d.err != nil {
		return nil
	}
	v, ok := r.m[name]
	if !ok || v == nil {
		return nil
	}
	u, ok := v.(map[string]any)
	if !ok || len(u) != 1 {
		d.err = shapeErr(r.at(name), "is %T, want a union value", v)
		return nil
	}
	for _, x := range u {
		t, ok := x.(T)
		if !ok {
			var zero T
			d.err = shapeErr(r.at(name), "union member is %T, want %T", x, zero)
			return nil
		}
		return &t
	}
	return nil
}

func (d *reader) record(r rec, name string) rec {
	return rec{m: get[map[string]any](d, r, name), path: r.at(name)}
}

// optRecord reads a nullable record union; ok is false when null.
func (d *reader) optRecord(r rec, name string) (rec, bool) {
	m := opt[map[string]any](d, r, name)
	if m == nil {
		return rec{}, false
	}
	return rec{m: *m, path: r.at(name)}, true
}

func (d *reader) op(r rec) rules.Op {
	s := get[string](d, r, "op")
	if d.err == nil && len(s) != 1 {
		d.err = shapeErr(r.at("op"), "has %d bytes, want one letter", len(s))
	}
	if d.err != nil {
		return 0
	}
	return rules.Op(s[0])
}

func (d *reader) position(r rec) rules.Position {
	return rules.Position{Commit: get[int64](d, r, "commit"), Change: get[int64](d, r, "change")}
}

func (d *reader) source(r rec) rules.Source {
	s := d.record(r, "source")
	src := rules.Source{
		Position:   d.position(d.record(s, "position")),
		CommitTime: time.UnixMilli(get[int64](d, s, "ts_ms")).UTC(),
	}
	if v, ok := s.m["sync"]; ok && d.err == nil {
		b, ok := v.(bool)
		if !ok {
			d.err = shapeErr(s.at("sync"), "is %T, want bool", v)
		}
		src.Sync = b
	}
	return src
}

func (d *reader) date(r rec, name string) rules.Date {
	t := get[time.Time](d, r, name)
	return rules.DateOf(t.UTC().Date())
}

func (d *reader) optDate(r rec, name string) *rules.Date {
	t := opt[time.Time](d, r, name)
	if t == nil {
		return nil
	}
	v := rules.DateOf(t.UTC().Date())
	return &v
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// tombstone reports ErrTombstone for a nil value.
func tombstone(value any, topic string) error {
	if value == nil {
		return fmt.Errorf("decoding %s record: %w", topic, ErrTombstone)
	}
	if m, ok := value.(map[string]any); ok && m == nil {
		return fmt.Errorf("decoding %s record: %w", topic, ErrTombstone)
	}
	return nil
}
