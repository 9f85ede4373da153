package decode

import (
	"errors"
	"fmt"
	"time"

	"github.com/alertsync/alertsync/transform/rules"
)

// ErrMalformedCommand marks a command record without the shape of the
// command schema; the apply sends such a record to the DLQ. FastCommand's
// errors wrap it, and so do apply.DecodeCommand's: apply.ErrMalformedCommand
// is this error (it lives here because package apply imports this one).
var ErrMalformedCommand = errors.New("malformed command")

// The enum symbols of the command schema (schemas/avro/command), by index,
// as rules values; index 0 is UNKNOWN, which no writer writes and the apply
// refuses.
var (
	cmdKinds    = [...]rules.Kind{rules.KindUnknown, rules.KindUpsert, rules.KindDelete, rules.KindReplacePrisoner}
	cmdSides    = [...]rules.Side{rules.SideUnknown, rules.SideNOMIS, rules.SideDPS}
	cmdStatuses = [...]rules.Status{rules.StatusUnknown, rules.StatusActive, rules.StatusInactive}
)

// minSnapshotAlertBytes is the fewest bytes an alertsync.command.SnapshotAlert
// takes (three null unions, a position of two longs, an AlertState of twelve
// one-byte fields): it bounds what a block's count may reserve.
const minSnapshotAlertBytes = 17

// FastCommand returns the command of an alertsync.commands.* record from the
// Avro binary bodies of its key and value (the payloads without their
// 5-byte wire-format header), written with the current command schemas.
// Target is left unset (the topic says it); Alerts is nil when the record
// has none.
//
// For every pair of bodies goavro decodes, FastCommand returns what
// apply.DecodeCommand returns for goavro's decoding: the same command, or an
// error with the same text (an UNKNOWN kind, side or status; a key naming
// another prisoner than the value). A body goavro refuses (truncated, a bad
// union or enum index, bytes after the record, an array block of more than
// 65536 items) and an over-long varint, which goavro silently wraps, are
// errors naming the field path where reading stopped, e.g.
// "malformed command: after.created_at: avrobin: input ends inside a
// value". Every error wraps ErrMalformedCommand, and the avrobin error
// behind it if any. A nil value is malformed: a tombstone is not a command.
//
// Strings of the result are substrings of one copy of value; optional
// values share one allocation, plus a few per block of alerts. The inputs
// are not retained.
func FastCommand(key, value []byte) (rules.Command, error) {
	if value == nil {
		return rules.Command{}, fmt.Errorf("%w: value is <nil>", ErrMalformedCommand)
	}
	var d cmdDecoder
	return d.command(key, value)
}

// cmdArena holds the pointed-to parts of a command outside its alerts: one
// allocation.
type cmdArena struct {
	states   [2]rules.AlertState // before, after
	activeTo [2]rules.Date
	booking  int64
	seq      int32
	strs     [2 + 2*4]string // dps_alert_id, reason; 4 optional strings per state
	times    [2]time.Time    // modified_at per state
}

// cmdDecoder is a fastDecoder with the slabs and the checks of commands.
type cmdDecoder struct {
	fastDecoder
	longs slab[int64]
	ints  slab[int32]
	dates slab[rules.Date]
	// shape is the first error of a record goavro decodes but the apply
	// refuses, in apply.DecodeCommand's words ("kind: unknown"); a binary
	// error (d.err) takes precedence, as goavro fails first.
	shape string
}

// refuse notes a shape error (the first one counts).
func (d *cmdDecoder) refuse(msg string) {
	if d.shape == "" {
		d.shape = msg
	}
}

// result returns the error of the record read, or nil.
func (d *cmdDecoder) result() error {
	switch {
	case d.err != nil && d.cause != nil:
		return fmt.Errorf("%w: %s: %w", ErrMalformedCommand, d.err.Field, d.cause)
	case d.err != nil:
		return fmt.Errorf("%w: %s: %s", ErrMalformedCommand, d.err.Field, d.err.Msg)
	case d.shape != "":
		return fmt.Errorf("%w: %s", ErrMalformedCommand, d.shape)
	}
	return nil
}

func (d *cmdDecoder) command(key, value []byte) (rules.Command, error) {
	d.startKey(key)
	keyNo := d.bytes("prison_number")
	d.end("key")
	if d.err != nil {
		return rules.Command{}, d.result()
	}

	a := new(cmdArena)
	d.strs.free, d.times.free = a.strs[:], a.times[:]
	d.startValue(value)
	c := rules.Command{ID: d.str("command_id")}
	c.Kind = cmdKinds[d.index("kind", len(cmdKinds))]
	if c.Kind == rules.KindUnknown && d.err == nil {
		d.refuse("kind: unknown")
	}
	c.PrisonNumber = d.str("prison_number")
	c.Origin = cmdSides[d.index("origin_side", len(cmdSides))]
	if c.Origin == rules.SideUnknown && d.err == nil {
		d.refuse("origin_side: unknown")
	}
	c.SourcePosition = d.position("source_position")
	c.SourceCommitTime = d.timestamp("source_commit_time")
	c.DPSAlertID = d.optStr("dps_alert_id")
	c.NOMISBookingID = d.optLong("nomis_booking_id", &a.booking)
	c.NOMISAlertSeq = d.optInt("nomis_alert_seq", &a.seq)
	if d.opt("before") {
		c.Before = d.optState("before", &a.states[0], &a.activeTo[0])
	}
	if d.opt("after") {
		c.After = d.optState("after", &a.states[1], &a.activeTo[1])
	}
	c.Alerts = d.snapshotAlerts("alerts")
	c.Reason = d.optStr("reason")
	d.end("value")
	if d.err == nil && string(keyNo) != c.PrisonNumber {
		d.refuse("key.prison_number: does not match the value")
	}
	if err := d.result(); err != nil {
		return rules.Command{}, err
	}
	return c, nil
}

// index reads an enum index below n (0 after an error).
func (d *cmdDecoder) index(name string, n int) int {
	if !d.field(name) {
		return 0
	}
	i, err := d.r.Index(n)
	if err != nil {
		d.fail(name, err)
		return 0
	}
	return i
}

// optLong reads a ["null", "long"] field into *dst.
func (d *cmdDecoder) optLong(name string, dst *int64) *int64 {
	if !d.opt(name) {
		return nil
	}
	v, err := d.r.Long()
	if err != nil {
		d.fail(name, err)
		return nil
	}
	*dst = v
	return dst
}

// optState reads the AlertState branch of a nullable field (name) into st.
func (d *cmdDecoder) optState(name string, st *rules.AlertState, activeTo *rules.Date) *rules.AlertState {
	prev := d.enter(d.scope.child(name))
	d.state(st, activeTo)
	d.scope = prev
	return st
}

// state reads an alertsync.command.AlertState record into st; activeTo
// holds its active_to when set.
func (d *cmdDecoder) state(st *rules.AlertState, activeTo *rules.Date) {
	st.Code = d.str("code")
	st.TypeCode = d.str("type_code")
	st.ActiveFrom = rules.Date(d.int("active_from"))
	st.ActiveTo = d.optDate("active_to", activeTo)
	st.Status = cmdStatuses[d.index("status", len(cmdStatuses))]
	if st.Status == rules.StatusUnknown && d.err == nil {
		d.refuse("status: unknown")
	}
	st.Description = d.optStr("description")
	st.AuthorisedBy = d.optStr("authorised_by")
	st.CreatedBy = d.str("created_by")
	st.CreatedAt = d.timestamp("created_at")
	st.ModifiedBy = d.optStr("modified_by")
	st.ModifiedAt = d.optTime("modified_at")
	st.PrisonCode = d.optStr("prison_code")
}

// snapshotAlerts reads the array of SnapshotAlert records (name): nil when
// empty, as apply.DecodeCommand leaves it.
func (d *cmdDecoder) snapshotAlerts(name string) []rules.SnapshotAlert {
	if !d.field(name) {
		return nil
	}
	var alerts []rules.SnapshotAlert
	for {
		n, err := d.r.BlockCount(maxBlockCount)
		if err != nil {
			d.fail(name, err)
			return nil
		}
		if n == 0 {
			return alerts
		}
		// Room for the block, bounded by what the bytes left can hold, so
		// that a lying count cannot reserve much.
		room := min(n, d.r.Len()/minSnapshotAlertBytes+1)
		alerts = growSlice(alerts, room)
		reserve(&d.strs, 5*room)
		reserve(&d.times, room)
		reserve(&d.longs, room)
		reserve(&d.ints, room)
		reserve(&d.dates, room)
		for range n {
			prev := d.enter(scope{outer: name, item: len(alerts) + 1})
			var al rules.SnapshotAlert
			al.DPSAlertID = d.optStr("dps_alert_id")
			if d.opt("nomis_booking_id") {
				al.NOMISBookingID = d.optLongValue("nomis_booking_id")
			}
			if d.opt("nomis_alert_seq") {
				al.NOMISAlertSeq = d.optIntValue("nomis_alert_seq")
			}
			al.Position = d.position("position")
			if d.field("state") {
				d.scope = d.scope.child("state")
				d.snapshotState(&al.State)
			}
			d.scope = prev
			if d.err != nil {
				return nil
			}
			alerts = append(alerts, al)
		}
	}
}

// snapshotState reads an AlertState whose active_to goes to the dates slab.
func (d *cmdDecoder) snapshotState(st *rules.AlertState) {
	var to rules.Date
	d.state(st, &to)
	if st.ActiveTo != nil {
		st.ActiveTo = d.dates.put(to)
	}
}

// optLongValue reads the long of a ["null", "long"] union whose branch was
// read, into the longs slab.
func (d *cmdDecoder) optLongValue(name string) *int64 {
	v, err := d.r.Long()
	if err != nil {
		d.fail(name, err)
		return nil
	}
	return d.longs.put(v)
}

// optIntValue reads the int of a ["null", "int"] union whose branch was
// read, into the ints slab.
func (d *cmdDecoder) optIntValue(name string) *int32 {
	v, err := d.r.Int()
	if err != nil {
		d.fail(name, err)
		return nil
	}
	return d.ints.put(v)
}

// reserve makes s hand out its next n values from one block.
func reserve[T any](s *slab[T], n int) {
	if len(s.free) < n {
		s.free = make([]T, n)
	}
}

// growSlice returns s with room for n more items.
func growSlice[T any](s []T, n int) []T {
	if cap(s)-len(s) >= n {
		return s
	}
	out := make([]T, len(s), len(s)+n)
	copy(out, s)
	return out
}
