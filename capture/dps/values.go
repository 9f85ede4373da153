package dps

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// ValueError reports a column value in text format that DecodeText cannot
// convert. It names the PostgreSQL type and a fixed reason and never holds the
// value itself, which may be personal data. The Decoder wraps it in a
// *ColumnError that adds the column.
type ValueError struct {
	// OID is the PostgreSQL type of the value.
	OID uint32
	// Reason is a fixed description of what is wrong, such as "not a
	// valid int4"; it never quotes the value.
	Reason string
}

// Error returns "type oid N (name): reason".
func (e *ValueError) Error() string {
	return fmt.Sprintf("type oid %d (%s): %s", e.OID, typeName(e.OID), e.Reason)
}

func valueError(oid uint32, reason string) error {
	return &ValueError{OID: oid, Reason: reason}
}

// Reasons of the ValueErrors returned by DecodeText.
const (
	reasonBool        = "not t or f"
	reasonInt         = "not a decimal integer in range"
	reasonFloat       = "not a floating-point number"
	reasonNumeric     = "not a numeric literal"
	reasonUUID        = "not a UUID"
	reasonBytea       = "not hex bytea output (\\x followed by an even number of hex digits; set bytea_output = hex)"
	reasonInfinite    = "infinite dates and timestamps are not supported"
	reasonBC          = "dates before the common era (BC) are not supported"
	reasonDate        = "not an ISO date (YYYY-MM-DD; set DateStyle = ISO)"
	reasonTimestamp   = "not an ISO timestamp (YYYY-MM-DD HH:MM:SS[.ffffff]; set DateStyle = ISO)"
	reasonTimestamptz = "not an ISO timestamp with an offset (YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM[:SS]]; set DateStyle = ISO)"
)

// DecodeText converts a column value in PostgreSQL text output format to a Go
// value chosen by the column's type OID:
//
//   - bool: true or false (from "t" or "f");
//   - int2, int4: int32; int8, oid: int64;
//   - float4, float8: float64 (NaN and ±Infinity included);
//   - numeric: string, exactly as PostgreSQL wrote it (checked to be a
//     numeric literal, NaN or ±Infinity);
//   - text, varchar, bpchar, name, json, jsonb, "char": string;
//   - uuid: string in canonical lower-case form;
//   - date: time.Time at 00:00 UTC of that calendar date;
//   - timestamp (without time zone): time.Time in UTC, the instant at which
//     the wall clock of loc showed the value. In the hour that occurs twice
//     when clocks go back (Europe/London: 01:00–01:59 on the last Sunday of
//     October) the earlier instant is taken, the one still on summer time.
//     PostgreSQL itself takes the later one; a wall clock in the hour that
//     does not exist when clocks go forward (01:00–01:59 on the last Sunday
//     of March) is normalised as time.Date does: 01:30 becomes 02:30 BST,
//     which is 01:30 UTC (the same instant PostgreSQL chooses);
//   - timestamptz: time.Time in UTC (offsets such as +01, +05:30 or
//     -00:01:15);
//   - bytea: []byte, from hex output ("\x...");
//   - any other type: string, as PostgreSQL wrote it.
//
// Dates and timestamps must be in DateStyle ISO output, with fractional
// seconds of up to 6 digits. The values 'infinity' and '-infinity' and dates
// before the common era (" BC") are errors rather than clamped: they never
// occur in alert data, and an error sends the change to the dead-letter
// queue where a clamped value would be a silently wrong date. A nil loc
// means UTC. typmod is accepted for column-aware conversions and currently
// not used.
//
// Every error is a *ValueError naming the type; none contains the value.
func DecodeText(oid uint32, typmod int32, text []byte, loc *time.Location) (any, error) {
	switch oid {
	case pgtype.BoolOID:
		if len(text) == 1 {
			switch text[0] {
			case 't':
				return true, nil
			case 'f':
				return false, nil
			}
		}
		return nil, valueError(oid, reasonBool)
	case pgtype.Int2OID, pgtype.Int4OID:
		bits := 32
		if oid == pgtype.Int2OID {
			bits = 16
		}
		n, err := strconv.ParseInt(string(text), 10, bits)
		if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
			return nil, valueError(oid, reasonInt)
		}
		return int32(n), nil
	case pgtype.Int8OID:
		n, err := strconv.ParseInt(string(text), 10, 64)
		if err != nil {
			return nil, valueError(oid, reasonInt)
		}
		return n, nil
	case pgtype.OIDOID:
		n, err := strconv.ParseUint(string(text), 10, 32)
		if err != nil {
			return nil, valueError(oid, reasonInt)
		}
		return int64(n), nil
	case pgtype.Float4OID, pgtype.Float8OID:
		// PostgreSQL writes the shortest text that reads back exactly, so
		// float4 values are read as float64 to keep the digits users see.
		f, err := strconv.ParseFloat(string(text), 64)
		if err != nil {
			return nil, valueError(oid, reasonFloat)
		}
		return f, nil
	case pgtype.NumericOID:
		if !isNumeric(text) {
			return nil, valueError(oid, reasonNumeric)
		}
		return string(text), nil
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID,
		pgtype.JSONOID, pgtype.JSONBOID, pgtype.QCharOID:
		return string(text), nil
	case pgtype.UUIDOID:
		u, err := uuid.ParseBytes(text)
		if err != nil {
			return nil, valueError(oid, reasonUUID)
		}
		return u.String(), nil
	case pgtype.DateOID:
		return parseDate(oid, text)
	case pgtype.TimestampOID:
		return parseTimestamp(oid, text, false, loc)
	case pgtype.TimestamptzOID:
		return parseTimestamp(oid, text, true, nil)
	case pgtype.ByteaOID:
		return parseBytea(oid, text)
	default:
		return string(text), nil
	}
}

// typeName names the OIDs DecodeText knows, for error messages.
func typeName(oid uint32) string {
	switch oid {
	case pgtype.BoolOID:
		return "bool"
	case pgtype.ByteaOID:
		return "bytea"
	case pgtype.QCharOID:
		return "char"
	case pgtype.NameOID:
		return "name"
	case pgtype.Int8OID:
		return "int8"
	case pgtype.Int2OID:
		return "int2"
	case pgtype.Int4OID:
		return "int4"
	case pgtype.TextOID:
		return "text"
	case pgtype.OIDOID:
		return "oid"
	case pgtype.JSONOID:
		return "json"
	case pgtype.Float4OID:
		return "float4"
	case pgtype.Float8OID:
		return "float8"
	case pgtype.BPCharOID:
		return "bpchar"
	case pgtype.VarcharOID:
		return "varchar"
	case pgtype.DateOID:
		return "date"
	case pgtype.TimestampOID:
		return "timestamp"
	case pgtype.TimestamptzOID:
		return "timestamptz"
	case pgtype.NumericOID:
		return "numeric"
	case pgtype.UUIDOID:
		return "uuid"
	case pgtype.JSONBOID:
		return "jsonb"
	default:
		return "other"
	}
}

// isNumeric reports whether text is numeric output: NaN, ±Infinity, or an
// optionally signed decimal with at least one digit and at most one point.
func isNumeric(text []byte) bool {
	switch string(text) {
	case "NaN", "Infinity", "-Infinity":
		return true
	}
	if len(text) > 0 && (text[0] == '-' || text[0] == '+') {
		text = text[1:]
	}
	digits, point := 0, false
	for _, c := range text {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !point:
			point = true
		default:
			return false
		}
	}
	return digits > 0
}

func parseBytea(oid uint32, text []byte) (any, error) {
	if len(text) < 2 || text[0] != '\\' || text[1] != 'x' || len(text)%2 != 0 {
		return nil, valueError(oid, reasonBytea)
	}
	out := make([]byte, (len(text)-2)/2)
	if _, err := hex.Decode(out, text[2:]); err != nil {
		return nil, valueError(oid, reasonBytea)
	}
	return out, nil
}

// scanner reads the fixed-width fields of ISO date and time output.
type scanner struct {
	b  []byte
	ok bool
}

// digits reads between min and max decimal digits and returns their value.
func (s *scanner) digits(minN, maxN int) int {
	n, v := 0, 0
	for n < maxN && n < len(s.b) && s.b[n] >= '0' && s.b[n] <= '9' {
		v = v*10 + int(s.b[n]-'0')
		n++
	}
	if n < minN {
		s.ok = false
		return 0
	}
	s.b = s.b[n:]
	return v
}

// lit consumes c, reporting whether it was there.
func (s *scanner) lit(c byte) bool {
	if len(s.b) > 0 && s.b[0] == c {
		s.b = s.b[1:]
		return true
	}
	return false
}

// need consumes c or marks the scan failed.
func (s *scanner) need(c byte) {
	if !s.lit(c) {
		s.ok = false
	}
}

// date reads YYYY-MM-DD (the year has 4 to 7 digits) and checks that the
// calendar date exists.
func (s *scanner) date() (y int, m time.Month, d int) {
	y = s.digits(4, 7)
	s.need('-')
	m = time.Month(s.digits(2, 2))
	s.need('-')
	d = s.digits(2, 2)
	if !s.ok || y < 1 || m < time.January || m > time.December || d < 1 || d > daysIn(y, m) {
		s.ok = false
	}
	return y, m, d
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// special reports the reason for infinite and BC values, or "" for others.
func special(text []byte) string {
	switch string(text) {
	case "infinity", "-infinity":
		return reasonInfinite
	}
	if n := len(text); n >= 3 && string(text[n-3:]) == " BC" {
		return reasonBC
	}
	return ""
}

func parseDate(oid uint32, text []byte) (any, error) {
	if r := special(text); r != "" {
		return nil, valueError(oid, r)
	}
	s := scanner{b: text, ok: true}
	y, m, d := s.date()
	if !s.ok || len(s.b) != 0 {
		return nil, valueError(oid, reasonDate)
	}
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
}

// parseTimestamp reads "YYYY-MM-DD HH:MM:SS[.ffffff]", followed by an offset
// "+HH[:MM[:SS]]" when withZone, and returns the instant in UTC. Without a
// zone the wall clock is read in loc (UTC when nil).
func parseTimestamp(oid uint32, text []byte, withZone bool, loc *time.Location) (any, error) {
	reason := reasonTimestamp
	if withZone {
		reason = reasonTimestamptz
	}
	if r := special(text); r != "" {
		return nil, valueError(oid, r)
	}
	s := scanner{b: text, ok: true}
	y, mo, d := s.date()
	s.need(' ')
	h := s.digits(2, 2)
	s.need(':')
	mi := s.digits(2, 2)
	s.need(':')
	sec := s.digits(2, 2)
	ns := 0
	if s.lit('.') {
		before := len(s.b)
		frac := s.digits(1, 6)
		for n := before - len(s.b); n < 9; n++ {
			frac *= 10
		}
		ns = frac
	}
	if !s.ok || h > 23 || mi > 59 || sec > 59 {
		return nil, valueError(oid, reason)
	}
	if !withZone {
		if len(s.b) != 0 {
			return nil, valueError(oid, reason)
		}
		return wallClock(y, mo, d, h, mi, sec, ns, loc).UTC(), nil
	}
	sign := 1
	switch {
	case s.lit('+'):
	case s.lit('-'):
		sign = -1
	default:
		return nil, valueError(oid, reason)
	}
	oh, om, os := s.digits(2, 2), 0, 0
	if s.lit(':') {
		om = s.digits(2, 2)
		if s.lit(':') {
			os = s.digits(2, 2)
		}
	}
	if !s.ok || len(s.b) != 0 || oh > 15 || om > 59 || os > 59 {
		return nil, valueError(oid, reason)
	}
	offset := time.Duration(sign) * (time.Duration(oh)*time.Hour + time.Duration(om)*time.Minute + time.Duration(os)*time.Second)
	return time.Date(y, mo, d, h, mi, sec, ns, time.UTC).Add(-offset), nil
}

// wallClock returns the instant at which the wall clock of loc shows the
// given time. time.Date settles the nonexistent hour of a spring-forward gap
// by moving the clock forward, and in the repeated hour of a fall-back
// overlap returns one of the two instants without saying which; when an
// earlier instant shows the same wall clock (still in the previous zone
// period, with its larger offset), that one is returned.
func wallClock(y int, mo time.Month, d, h, mi, sec, ns int, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	t := time.Date(y, mo, d, h, mi, sec, ns, loc)
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return t
	}
	_, off := t.Zone()
	_, prevOff := start.Add(-time.Nanosecond).Zone()
	if prevOff <= off {
		return t
	}
	earlier := t.Add(-time.Duration(prevOff-off) * time.Second)
	if earlier.Before(start) {
		return earlier
	}
	return t
}
