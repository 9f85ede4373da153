package nomis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

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
}

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
	if len(env.Fields) == 0 || env.Fields[0].Name != "before" {
		return nil, errors.New("envelope does not start with before")
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
	t := &table{name: name, topic: tp.Name, rowType: tp.RowType, index: map[string]int{}}
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

// image converts one journal image (a JSON object, column → value) to the
// Avro native row record of t. Columns the image lacks are null; keys the
// table does not have are ignored (a column NOMIS added is not published
// until the schema has it); of a key given twice the last counts. Errors are
// *RowError and never quote a value.
func (t *table) image(which string, raw []byte, loc *time.Location) (map[string]any, error) {
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
	rec := make(map[string]any, len(t.columns))
	for i, c := range t.columns {
		v, err := c.value(values[i], loc)
		if err != nil {
			var re *RowError
			if errors.As(err, &re) {
				re.Image = which
			}
			return nil, err
		}
		switch {
		case v == nil:
			rec[c.name] = nil
		case c.nullable:
			rec[c.name] = schemas.Union(c.kind.branch(), v)
		default:
			rec[c.name] = v
		}
	}
	return rec, nil
}

// keyOf returns the key record of a row record made by image.
func (t *table) keyOf(rec map[string]any) map[string]any {
	k := make(map[string]any, len(t.key))
	for _, i := range t.key {
		k[t.columns[i].name] = rec[t.columns[i].name]
	}
	return k
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
