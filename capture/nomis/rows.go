package nomis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/alertsync/alertsync/internal/avrobin"
	"github.com/alertsync/alertsync/schemas"
)

// Captured tables, by journal table_name (lower case, as in the topics).
const (
	TableOffenderAlerts   = "offender_alerts"
	TableOffenderBookings = "offender_bookings"
	TableOffenders        = "offenders"
)

// SyncModule is the module name of the sync's own writes into NOMIS
// (DESIGN.md guarantee 3): their records carry source.sync = true.
const SyncModule = "DPS_SYNCHRONISATION"

// capturedTopics maps each captured table to its topic in package schemas.
var capturedTopics = map[string]string{
	TableOffenderAlerts:   schemas.TopicNOMISOffenderAlerts,
	TableOffenderBookings: schemas.TopicNOMISOffenderBookings,
	TableOffenders:        schemas.TopicNOMISOffenders,
}

type colKind uint8

const (
	kindLong colKind = iota + 1
	kindInt
	kindString
	kindTimestamp
)

// branch is the goavro union branch name of a kind.
func (k colKind) branch() string {
	switch k {
	case kindLong:
		return schemas.BranchLong
	case kindInt:
		return schemas.BranchInt
	case kindTimestamp:
		return schemas.BranchTimestamp
	default:
		return schemas.BranchString
	}
}

type column struct {
	name     string
	kind     colKind
	nullable bool
}

// table is a captured table as its topic's schema describes it: the row
// record's fields are the columns the capture publishes, so the schema is
// the one place that says which columns there are and of what type.
type table struct {
	name    string // offender_alerts
	topic   string // nomis.oms_owner.offender_alerts
	rowType string // full name of the row record
	columns []column
	index   map[string]int // column index by name
	key     []int          // index in columns of each key field, in key order
	context bool           // the envelope ends with the alert context
}

// envelopeFields are the fields of a change topic's envelope, in the order
// appendEnvelope writes them; the alerts' envelope adds "context".
var envelopeFields = []string{"before", "after", "source", "op", "ts_ms", "session"}

// loadTables derives the captured tables from the embedded schemas.
func loadTables() (map[string]*table, error) {
	out := make(map[string]*table, len(capturedTopics))
	for name, topic := range capturedTopics {
		tp, ok := schemas.LookupTopic(topic)
		if !ok {
			return nil, fmt.Errorf("no schema for topic %s", topic)
		}
		t, err := tableFromSchema(name, tp)
		if err != nil {
			return nil, fmt.Errorf("schema of %s: %w", topic, err)
		}
		out[name] = t
	}
	return out, nil
}

func tableFromSchema(name string, tp schemas.Topic) (*table, error) {
	var env, key struct {
		Fields []struct {
			Name string          `json:"name"`
			Type json.RawMessage `json:"type"`
		} `json:"fields"`
	}
	if err := json.Unmarshal([]byte(tp.Value.Schema), &env); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(tp.Key.Schema), &key); err != nil {
		return nil, err
	}
	names := make([]string, len(env.Fields))
	for i, f := range env.Fields {
		names[i] = f.Name
	}
	hasContext := slices.Equal(names, append(slices.Clip(envelopeFields), "context"))
	if !hasContext && !slices.Equal(names, envelopeFields) {
		return nil, fmt.Errorf("envelope fields %v are not the ones the capture encodes (%v, optionally context)", names, envelopeFields)
	}
	var before []json.RawMessage
	if err := json.Unmarshal(env.Fields[0].Type, &before); err != nil || len(before) != 2 {
		return nil, errors.New("before is not a [null, row] union")
	}
	var row struct {
		Fields []struct {
			Name string          `json:"name"`
			Type json.RawMessage `json:"type"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(before[1], &row); err != nil {
		return nil, err
	}
	t := &table{name: name, topic: tp.Name, rowType: tp.RowType, index: map[string]int{}, context: hasContext}
	idx := t.index
	for _, f := range row.Fields {
		kind, nullable, err := fieldKind(f.Type)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		idx[f.Name] = len(t.columns)
		t.columns = append(t.columns, column{name: f.Name, kind: kind, nullable: nullable})
	}
	for _, f := range key.Fields {
		i, ok := idx[f.Name]
		if !ok {
			return nil, fmt.Errorf("key field %s is not a column", f.Name)
		}
		kind, nullable, err := fieldKind(f.Type)
		if err != nil || nullable || kind != t.columns[i].kind || t.columns[i].nullable {
			return nil, fmt.Errorf("key field %s differs from its column", f.Name)
		}
		t.key = append(t.key, i)
	}
	if len(t.key) == 0 {
		return nil, errors.New("no key fields")
	}
	return t, nil
}

// fieldKind reads an Avro field type of a row record: long, int, string,
// timestamp-micros, or ["null", one of them].
func fieldKind(raw json.RawMessage) (colKind, bool, error) {
	var union []json.RawMessage
	if json.Unmarshal(raw, &union) == nil {
		if len(union) != 2 || string(union[0]) != `"null"` {
			return 0, false, errors.New("unions must be [null, T]")
		}
		k, _, err := fieldKind(union[1])
		return k, true, err
	}
	var prim string
	if json.Unmarshal(raw, &prim) == nil {
		switch prim {
		case "long":
			return kindLong, false, nil
		case "int":
			return kindInt, false, nil
		case "string":
			return kindString, false, nil
		}
		return 0, false, fmt.Errorf("unsupported type %s", prim)
	}
	var logical struct {
		Type        string `json:"type"`
		LogicalType string `json:"logicalType"`
	}
	if json.Unmarshal(raw, &logical) == nil && logical.Type == "long" && logical.LogicalType == "timestamp-micros" {
		return kindTimestamp, false, nil
	}
	return 0, false, fmt.Errorf("unsupported type %s", raw)
}

// row is a decoded image of a table: one value per column, in column order.
// nil is SQL NULL; other values are int64 (long), int32 (int), string, or
// int64 microseconds since the epoch (timestamp), as column.value makes them.
type row []any

// image converts one journal image (a JSON object, column → value) to a row
// of t. Columns the image lacks are null; keys the table does not have are
// ignored (a column NOMIS added is not published until the schema has it);
// of a key given twice the last counts. Errors are *RowError and never
// quote a value.
func (t *table) image(which string, raw []byte, loc *time.Location) (row, error) {
	values := make([][]byte, len(t.columns))
	err := scanObject(raw, func(key []byte, escaped bool, value []byte) error {
		if !escaped {
			if i, ok := t.index[string(key)]; ok { // no allocation
				values[i] = value
			}
			return nil
		}
		// Column names need no escapes; decode one that has them.
		var name string
		quoted := make([]byte, 0, len(key)+2)
		quoted = append(append(append(quoted, '"'), key...), '"')
		if json.Unmarshal(quoted, &name) == nil {
			if i, ok := t.index[name]; ok {
				values[i] = value
			}
		}
		return nil
	})
	if err != nil {
		var se *syntaxError
		if errors.As(err, &se) {
			return nil, &RowError{Kind: KindMalformed, Image: which, Reason: fmt.Sprintf("is not valid JSON (at byte %d)", se.offset)}
		}
		return nil, &RowError{Kind: KindMalformed, Image: which, Reason: "is not a JSON object"}
	}
	r := make(row, len(t.columns))
	for i, c := range t.columns {
		v, err := c.value(values[i], loc)
		if err != nil {
			var re *RowError
			if errors.As(err, &re) {
				re.Image = which
			}
			return nil, err
		}
		r[i] = v
	}
	return r, nil
}

// keyOf returns the key values of r, in key order.
func (t *table) keyOf(r row) row {
	k := make(row, len(t.key))
	for j, i := range t.key {
		k[j] = r[i]
	}
	return k
}

// get returns the value of column name in r; nil when NULL or when t has no
// such column.
func (t *table) get(r row, name string) any {
	i, ok := t.index[name]
	if !ok || r == nil {
		return nil
	}
	return r[i]
}

// native returns r as goavro's native form of the row record (nil for a nil
// row), for tests and tools; the capture encodes with appendRow.
func (t *table) native(r row) map[string]any {
	if r == nil {
		return nil
	}
	rec := make(map[string]any, len(t.columns))
	for i, c := range t.columns {
		switch {
		case r[i] == nil:
			rec[c.name] = nil
		case c.nullable:
			rec[c.name] = schemas.Union(c.kind.branch(), r[i])
		default:
			rec[c.name] = r[i]
		}
	}
	return rec
}

// nativeKey returns key values (keyOf) as goavro's native key record.
func (t *table) nativeKey(k row) map[string]any {
	rec := make(map[string]any, len(t.key))
	for j, i := range t.key {
		rec[t.columns[i].name] = k[j]
	}
	return rec
}

// appendRow appends the Avro binary encoding of the row record r, which
// image made (so every value has its column's type).
func (t *table) appendRow(b []byte, r row) ([]byte, error) {
	for i, c := range t.columns {
		v := r[i]
		if c.nullable {
			if v == nil {
				b = append(b, avrobin.Null)
				continue
			}
			b = append(b, avrobin.NotNull)
		}
		var ok bool
		if b, ok = appendValue(b, v); !ok {
			return b, &RowError{Kind: KindEncode, Column: c.name, Reason: fmt.Sprintf("holds a Go value of type %T", v)}
		}
	}
	return b, nil
}

// appendKey appends the key record of key values (keyOf).
func (t *table) appendKey(b []byte, k row) ([]byte, error) {
	for j, v := range k {
		var ok bool
		if b, ok = appendValue(b, v); !ok {
			return b, &RowError{Kind: KindEncode, Column: t.columns[t.key[j]].name, Reason: fmt.Sprintf("key holds a Go value of type %T", v)}
		}
	}
	return b, nil
}

// appendValue appends one non-null column value; false for a value of
// another type (image makes none).
func appendValue(b []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case int64:
		return avrobin.AppendLong(b, x), true
	case int32:
		return avrobin.AppendLong(b, int64(x)), true
	case string:
		return avrobin.AppendString(b, x), true
	}
	return b, false
}

// value converts the raw JSON value of c (valid JSON, checked by
// scanObject); nil for SQL NULL.
func (c column) value(raw []byte, loc *time.Location) (any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		if !c.nullable {
			return nil, &RowError{Kind: KindMissingValue, Column: c.name, Reason: "null or absent in a NOT NULL column"}
		}
		return nil, nil
	}
	bad := func(reason string) error { return &RowError{Kind: KindBadValue, Column: c.name, Reason: reason} }
	switch c.kind {
	case kindLong, kindInt:
		bits := 64
		if c.kind == kindInt {
			bits = 32
		}
		n, err := strconv.ParseInt(string(raw), 10, bits)
		if err != nil {
			return nil, bad(fmt.Sprintf("not a whole number of at most %d bits", bits))
		}
		if c.kind == kindInt {
			return int32(n), nil //nolint:gosec // ParseInt with bitSize 32 bounds n to int32
		}
		return n, nil
	case kindString:
		s, ok := jsonString(raw)
		if !ok {
			return nil, bad("not a string")
		}
		return s, nil
	case kindTimestamp:
		s, ok := jsonString(raw)
		if !ok {
			return nil, bad("not a timestamp string")
		}
		wall, ok := parseWallClock(s)
		if !ok {
			return nil, bad("not an ISO 8601 timestamp without zone (YYYY-MM-DDTHH:MM:SS[.fraction])")
		}
		return schemas.LocalTimestamp(wall, loc), nil
	}
	return nil, bad("unsupported column type")
}

// jsonString returns the text of a raw JSON string value.
func jsonString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	// Escapes or invalid UTF-8 (replaced by U+FFFD): rare; let
	// encoding/json do it.
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// parseWallClock reads a DATE or TIMESTAMP value as the journal writes it
// (PostgreSQL's to_json, Oracle's JSON_OBJECT): ISO 8601 without a zone,
// YYYY-MM-DDTHH:MM:SS with 'T' or a space and an optional fraction of up to
// nine digits. The result is that wall clock in UTC. It is time.Parse for
// this one layout, several times faster.
func parseWallClock(s string) (time.Time, bool) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hour, ok4 := num(11, 13)
	minute, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	// The last day of the month: day 0 of the next.
	if day > time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return time.Time{}, false
	}
	nsec := 0
	if rest := s[19:]; rest != "" {
		if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
			return time.Time{}, false
		}
		frac, ok := num(20, len(s))
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(rest) {
			frac *= 10
		}
		nsec = frac
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}
