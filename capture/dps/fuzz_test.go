package dps

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"
)

var updateFuzzCorpus = flag.Bool("update-fuzz-corpus", false,
	"rewrite the seed corpus of FuzzDecode and FuzzDecodeText under testdata/fuzz")

// decodeSeed is a pair of payloads decoded one after the other.
type decodeSeed struct {
	name      string
	msg, next []byte
	// fail says which of the two payloads are meant to fail; a nil next
	// is not checked.
	fail [2]bool
}

// decodeSeeds are the committed seeds of FuzzDecode: valid messages of every
// kind and short valid sequences, for a decoder that knows the alert and
// alert_code tables and has a transaction open.
func decodeSeeds() []decodeSeed {
	alertNew := alertCols("1", "Risk to others")
	toastNew := alertCols("1", "")
	toastNew[3] = toast
	changedCode := codeRel()
	changedCode.Columns = append(changedCode.Columns, Column{Name: "active", TypeOID: pgtype.BoolOID, TypeMod: -1})
	commit := commitMsg(final, end, t0)
	return []decodeSeed{
		{"insert-alert", insertMsg(16400, alertCols("0", "Risk to staff")...), commit, [2]bool{}},
		{"insert-alert-nulls", insertMsg(16400, txt(alertID), txt("1"), txt("A1B"), null, null, txt("2024-01-01"), null, txt("2024-01-01 00:00:00"), null, null, null, txt("0")), nil, [2]bool{}},
		{"update-alert-full", updateMsg(16400, 'O', alertCols("0", "Risk to staff"), alertNew...), commit, [2]bool{}},
		{"update-alert-toast", updateMsg(16400, 'O', alertCols("0", "Risk to staff"), toastNew...), nil, [2]bool{}},
		{"update-code-key", updateMsg(16401, 'K', []col{txt("4"), null, null}, txt("5"), txt("VI"), txt("Victim")), nil, [2]bool{}},
		{"update-code-no-old", updateMsg(16401, 0, nil, txt("5"), txt("VI"), toast), nil, [2]bool{true, false}},
		{"delete-alert-full", deleteMsg(16400, 'O', alertNew...), commit, [2]bool{}},
		{"delete-code-key", deleteMsg(16401, 'K', txt("5"), null, null), nil, [2]bool{}},
		{"truncate-two", truncateMsg(pglogrepl.TruncateOptionRestartIdentity, 16400, 16401), commit, [2]bool{}},
		{"marker-then-insert", logicalMsg(true, 0x10, "alertsync", "apply-dps"), insertMsg(16401, txt("1"), txt("VI"), txt("Victim")), [2]bool{}},
		{"heartbeat", logicalMsg(false, 0x10, "alertsync.heartbeat", "1"), commit, [2]bool{}},
		{"relation-changed-then-insert", relationMsg(changedCode), insertMsg(16401, txt("1"), txt("VI"), null, txt("t")), [2]bool{}},
		{"relation-new", relationMsg(&Relation{ID: 16500, Schema: "public", Table: "audit_event", ReplicaIdentity: 'd', Columns: []Column{
			{Name: "id", TypeOID: pgtype.UUIDOID, TypeMod: -1, Key: true},
			{Name: "at", TypeOID: pgtype.TimestamptzOID, TypeMod: -1},
			{Name: "data", TypeOID: pgtype.ByteaOID, TypeMod: -1},
			{Name: "amount", TypeOID: pgtype.NumericOID, TypeMod: -1},
		}}), insertMsg(16500, txt(alertID), txt("2024-03-31 01:30:00+01"), txt(`\x00ff`), txt("1.50")), [2]bool{}},
		{"origin-type", originMsg(0x99, "pg_1"), typeMsg(90000, "public", "status"), [2]bool{}},
		{"commit-then-begin", commit, beginMsg(final+0x100, t0, 2), [2]bool{}},
		{"begin-in-transaction", beginMsg(final, t0, 2), commit, [2]bool{true, false}},
		{"empty", nil, nil, [2]bool{true, false}},
	}
}

// textSeed is a value for FuzzDecodeText; which selects fuzzOIDs[which%len].
type textSeed struct {
	name  string
	which uint16
	text  []byte
}

// fuzzOIDs are the types DecodeText converts specially, and one it does not.
var fuzzOIDs = []uint32{
	pgtype.BoolOID, pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID,
	pgtype.Float4OID, pgtype.Float8OID, pgtype.NumericOID, pgtype.TextOID, pgtype.VarcharOID,
	pgtype.BPCharOID, pgtype.NameOID, pgtype.JSONOID, pgtype.JSONBOID, pgtype.QCharOID,
	pgtype.UUIDOID, pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID, pgtype.ByteaOID,
	pgtype.IntervalOID,
}

func textSeeds() []textSeed {
	idx := func(oid uint32) uint16 {
		for i, o := range fuzzOIDs {
			if o == oid {
				return uint16(i)
			}
		}
		panic("unknown oid")
	}
	seeds := []struct {
		oid  uint32
		text string
	}{
		{pgtype.BoolOID, "t"}, {pgtype.Int2OID, "-32768"}, {pgtype.Int4OID, "2147483647"},
		{pgtype.Int8OID, "42"}, {pgtype.OIDOID, "4294967295"}, {pgtype.Float4OID, "1.1"},
		{pgtype.Float8OID, "-Infinity"}, {pgtype.NumericOID, "-12.50"}, {pgtype.TextOID, "Risk to staff"},
		{pgtype.VarcharOID, "A1234BC"}, {pgtype.BPCharOID, "MDI   "}, {pgtype.NameOID, "alert"},
		{pgtype.JSONOID, `{"a":1}`}, {pgtype.JSONBOID, `{"a": 1}`}, {pgtype.QCharOID, "f"},
		{pgtype.UUIDOID, alertID}, {pgtype.DateOID, "2024-02-29"}, {pgtype.DateOID, "0044-03-15 BC"},
		{pgtype.TimestampOID, "2024-10-27 01:30:00"}, {pgtype.TimestampOID, "2024-03-31 01:30:00.123456"},
		{pgtype.TimestamptzOID, "2024-03-31 01:30:00+01"}, {pgtype.TimestamptzOID, "1847-11-30 23:58:45-00:01:15"},
		{pgtype.TimestamptzOID, "infinity"}, {pgtype.ByteaOID, `\x00ff10`}, {pgtype.IntervalOID, "1 day"},
	}
	out := make([]textSeed, len(seeds))
	for i, s := range seeds {
		out[i] = textSeed{name: fmt.Sprintf("%s-%d", typeName(s.oid), i), which: idx(s.oid), text: []byte(s.text)}
	}
	return out
}

// TestFuzzCorpus checks that the committed seed corpus is the one
// decodeSeeds and textSeeds describe. Regenerate it with
//
//	go test ./capture/dps -run TestFuzzCorpus -update-fuzz-corpus
func TestFuzzCorpus(t *testing.T) {
	t.Parallel()
	files := map[string][]byte{}
	loc := london(t)
	for _, s := range decodeSeeds() {
		d := fuzzDecoder(t, loc)
		for i, data := range [][]byte{s.msg, s.next} {
			if i == 1 && data == nil {
				break // a single payload
			}
			_, err := d.Decode(pglogrepl.LSN(0x1000*(i+1)), data)
			require.Equal(t, s.fail[i], err != nil, "seed %s payload %d: error %v", s.name, i+1, err)
		}
		files[filepath.Join("FuzzDecode", s.name)] = fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n", s.msg, s.next)
	}
	for _, s := range textSeeds() {
		files[filepath.Join("FuzzDecodeText", s.name)] = fmt.Appendf(nil, "go test fuzz v1\nuint16(%d)\n[]byte(%q)\n", s.which, s.text)
	}
	for name, want := range files {
		path := filepath.Join("testdata", "fuzz", name)
		if *updateFuzzCorpus {
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
			require.NoError(t, os.WriteFile(path, want, 0o644))
			continue
		}
		got, err := os.ReadFile(path)
		require.NoError(t, err, "seed corpus missing: run go test ./capture/dps -run TestFuzzCorpus -update-fuzz-corpus")
		require.Equal(t, string(want), string(got), "seed corpus out of date: run go test ./capture/dps -run TestFuzzCorpus -update-fuzz-corpus")
	}
}

// FuzzDecode feeds two arbitrary payloads, one after the other, to a
// decoder that knows the alert and alert_code tables and has a transaction
// open. Payloads come from the server, but a decoder bug must surface as an
// error, never as a panic or an allocation larger than the payload. Checks:
// every error is a *ProtocolError or *ColumnError and leaves the state as it
// was; every event is well formed.
//
//	go test ./capture/dps -run '^$' -fuzz '^FuzzDecode$' -fuzztime 60s
func FuzzDecode(f *testing.F) {
	loc := london(f)
	f.Fuzz(func(t *testing.T, msg, next []byte) {
		d := fuzzDecoder(t, loc)
		checkDecode(t, d, 0x1000, msg)
		checkDecode(t, d, 0x2000, next)
	})
}

// fuzzDecoder returns a decoder that knows the alert and alert_code tables
// and has transaction 1 open.
func fuzzDecoder(t *testing.T, loc *time.Location) *Decoder {
	t.Helper()
	d := NewDecoder(loc, "alertsync")
	for _, r := range []*Relation{alertRel(), codeRel()} {
		if _, err := d.Decode(1, relationMsg(r)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Decode(2, beginMsg(final, t0, 1)); err != nil {
		t.Fatal(err)
	}
	return d
}

func checkDecode(t *testing.T, d *Decoder, lsn pglogrepl.LSN, data []byte) {
	t.Helper()
	tx, rels := d.tx, maps.Clone(d.relations)
	var txCopy Tx
	if tx != nil {
		txCopy = *tx
	}
	ev, err := d.Decode(lsn, data)
	if err != nil {
		var pe *ProtocolError
		var ce *ColumnError
		var ve *ValueError
		switch {
		case errors.As(err, &pe):
		case errors.As(err, &ce):
			if !errors.As(ce.Err, &ve) && !errors.Is(ce.Err, ErrUnchangedTOAST) && !errors.Is(ce.Err, ErrBinaryValue) {
				t.Fatalf("column error with unexpected cause %T: %v", ce.Err, ce.Err)
			}
		default:
			t.Fatalf("error %T is neither *ProtocolError nor *ColumnError: %v", err, err)
		}
		if !reflect.DeepEqual(ev, Event{}) {
			t.Fatalf("event %+v returned with error %v", ev, err)
		}
		if d.tx != tx || (tx != nil && *tx != txCopy) || !maps.Equal(d.relations, rels) {
			t.Fatalf("error %v changed the decoder's state", err)
		}
		return
	}
	set := 0
	for _, b := range []bool{ev.Begin != nil, len(ev.Changes) > 0, ev.Commit != nil, ev.Relation != nil} {
		if b {
			set++
		}
	}
	if set > 1 {
		t.Fatalf("event with %d parts set: %+v", set, ev)
	}
	switch {
	case ev.Begin != nil:
		if tx != nil || d.tx != ev.Begin {
			t.Fatal("Begin accepted inside a transaction or not opened")
		}
	case ev.Commit != nil:
		if tx == nil || ev.Commit.Tx != tx || d.tx != nil || ev.Commit.CommitLSN != tx.CommitLSN {
			t.Fatal("Commit does not close the open transaction")
		}
	case ev.Relation != nil:
		if r, ok := d.Relation(ev.Relation.ID); !ok || r != ev.Relation {
			t.Fatal("announced relation not cached")
		}
	}
	for _, c := range ev.Changes {
		checkChange(t, d, tx, lsn, c)
	}
}

func checkChange(t *testing.T, d *Decoder, tx *Tx, lsn pglogrepl.LSN, c Change) {
	t.Helper()
	if tx == nil || c.Tx != tx || c.LSN != lsn || c.Rel == nil {
		t.Fatalf("change not tied to the open transaction and its message: %+v", c)
	}
	if r, ok := d.Relation(c.Rel.ID); !ok || r != c.Rel {
		t.Fatal("change of an uncached relation")
	}
	wantBefore, wantAfter := false, false
	switch c.Op {
	case OpCreate:
		wantAfter = true
	case OpUpdate:
		wantAfter = true
		wantBefore = c.Before != nil
	case OpDelete:
		wantBefore = true
	case OpTruncate:
	default:
		t.Fatalf("unexpected op %q", c.Op)
	}
	if (c.Before != nil) != wantBefore || (c.After != nil) != wantAfter {
		t.Fatalf("op %q with before %v and after %v", c.Op, c.Before != nil, c.After != nil)
	}
	for _, row := range []Row{c.Before, c.After} {
		if row == nil {
			continue
		}
		if len(row) != len(c.Rel.Columns) {
			t.Fatalf("row of %d values for %d columns", len(row), len(c.Rel.Columns))
		}
		for i, v := range row {
			if v != nil {
				checkType(t, c.Rel.Columns[i].TypeOID, v)
			}
		}
	}
	if c.BeforeKeyOnly {
		for i, col := range c.Rel.Columns {
			if !col.Key && c.Before[i] != nil {
				t.Fatalf("key-only before-image holds non-key column %s", col.Name)
			}
		}
	}
}

// checkType fails unless v has the Go type DecodeText documents for oid.
func checkType(t *testing.T, oid uint32, v any) {
	t.Helper()
	ok := false
	switch oid {
	case pgtype.BoolOID:
		_, ok = v.(bool)
	case pgtype.Int2OID, pgtype.Int4OID:
		_, ok = v.(int32)
	case pgtype.Int8OID, pgtype.OIDOID:
		_, ok = v.(int64)
	case pgtype.Float4OID, pgtype.Float8OID:
		_, ok = v.(float64)
	case pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
		var tm time.Time
		tm, ok = v.(time.Time)
		ok = ok && tm.Location() == time.UTC
	case pgtype.ByteaOID:
		_, ok = v.([]byte)
	default:
		_, ok = v.(string)
	}
	if !ok {
		t.Fatalf("type oid %d decoded to %T", oid, v)
	}
}

var knownReasons = map[string]bool{
	reasonBool: true, reasonInt: true, reasonFloat: true, reasonNumeric: true, reasonUUID: true,
	reasonBytea: true, reasonInfinite: true, reasonBC: true, reasonDate: true, reasonTimestamp: true,
	reasonTimestamptz: true,
}

// FuzzDecodeText converts arbitrary text as each type. Checks: errors are
// *ValueErrors of the type with one of the fixed reasons (so they cannot
// quote the value); values have the documented Go type; and dates,
// timestamps, integers, UUIDs and bytea read back unchanged from their
// canonical text.
//
//	go test ./capture/dps -run '^$' -fuzz '^FuzzDecodeText$' -fuzztime 60s
func FuzzDecodeText(f *testing.F) {
	loc := london(f)
	f.Fuzz(func(t *testing.T, which uint16, text []byte) {
		oid := fuzzOIDs[int(which)%len(fuzzOIDs)]
		v, err := DecodeText(oid, -1, text, loc)
		if err != nil {
			var ve *ValueError
			if !errors.As(err, &ve) || ve.OID != oid || !knownReasons[ve.Reason] || v != nil {
				t.Fatalf("unexpected error %T %v (value %v)", err, err, v)
			}
			return
		}
		checkType(t, oid, v)
		var canonical string
		switch oid {
		case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID:
			canonical = fmt.Sprint(v)
		case pgtype.UUIDOID:
			canonical = v.(string)
			if len(canonical) != 36 || canonical != string(bytes.ToLower([]byte(canonical))) {
				t.Fatalf("uuid %q is not canonical", canonical)
			}
		case pgtype.ByteaOID:
			canonical = `\x` + hex.EncodeToString(v.([]byte))
		case pgtype.DateOID:
			canonical = v.(time.Time).Format("2006-01-02")
		case pgtype.TimestampOID, pgtype.TimestamptzOID:
			tm := v.(time.Time)
			suffix := "+00"
			if oid == pgtype.TimestampOID {
				tm, suffix = tm.In(loc), ""
			}
			if tm.Year() < 1 || tm.Year() > 9999999 {
				return // out of the range DecodeText reads
			}
			canonical = tm.Format("2006-01-02 15:04:05.999999") + suffix
		case pgtype.Float4OID, pgtype.Float8OID, pgtype.BoolOID:
			return
		default:
			if v.(string) != string(text) {
				t.Fatalf("text changed: %q to %q", text, v)
			}
			return
		}
		again, err := DecodeText(oid, -1, []byte(canonical), loc)
		if err != nil {
			t.Fatalf("canonical text %q of %q does not read back: %v", canonical, text, err)
		}
		if !reflect.DeepEqual(v, again) {
			t.Fatalf("%q read %v, its canonical text %q read %v", text, v, canonical, again)
		}
		if oid == pgtype.Int8OID || oid == pgtype.Int4OID {
			if _, err := strconv.ParseInt(canonical, 10, 64); err != nil {
				t.Fatalf("canonical %q is not an integer", canonical)
			}
		}
	})
}
