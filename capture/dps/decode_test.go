package dps

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"
)

// The helpers below write pgoutput protocol version 1 messages as the
// server does (PostgreSQL documentation, "Logical Replication Message
// Formats"): big-endian integers, NUL-terminated strings, timestamps as
// microseconds since 2000-01-01 UTC.

type wire struct{ b []byte }

func msg(typ byte) *wire { return &wire{b: []byte{typ}} }

func (w *wire) u8(v byte) *wire    { w.b = append(w.b, v); return w }
func (w *wire) u16(v uint16) *wire { w.b = binary.BigEndian.AppendUint16(w.b, v); return w }
func (w *wire) u32(v uint32) *wire { w.b = binary.BigEndian.AppendUint32(w.b, v); return w }
func (w *wire) u64(v uint64) *wire { w.b = binary.BigEndian.AppendUint64(w.b, v); return w }
func (w *wire) str(s string) *wire { w.b = append(append(w.b, s...), 0); return w }
func (w *wire) raw(b []byte) *wire { w.b = append(w.b, b...); return w }
func (w *wire) time(t time.Time) *wire {
	return w.u64(uint64(t.Sub(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).Microseconds()))
}

// col is one column of TupleData: kind 'n' (null), 'u' (unchanged TOAST),
// 't' (text) or 'b' (binary) with its data.
type col struct {
	kind byte
	data string
}

func txt(s string) col { return col{kind: 't', data: s} }

var (
	null  = col{kind: 'n'}
	toast = col{kind: 'u'}
)

func (w *wire) tuple(cols []col) *wire {
	w.u16(uint16(len(cols)))
	for _, c := range cols {
		w.u8(c.kind)
		if c.kind == 't' || c.kind == 'b' {
			w.u32(uint32(len(c.data)))
			w.raw([]byte(c.data))
		}
	}
	return w
}

func beginMsg(final pglogrepl.LSN, commitTime time.Time, xid uint32) []byte {
	return msg('B').u64(uint64(final)).time(commitTime).u32(xid).b
}

func commitMsg(commit, end pglogrepl.LSN, commitTime time.Time) []byte {
	return msg('C').u8(0).u64(uint64(commit)).u64(uint64(end)).time(commitTime).b
}

func relationMsg(r *Relation) []byte {
	w := msg('R').u32(r.ID).str(r.Schema).str(r.Table).u8(r.ReplicaIdentity).u16(uint16(len(r.Columns)))
	for _, c := range r.Columns {
		var flags byte
		if c.Key {
			flags = 1
		}
		w.u8(flags).str(c.Name).u32(c.TypeOID).u32(uint32(c.TypeMod))
	}
	return w.b
}

func insertMsg(rel uint32, cols ...col) []byte {
	return msg('I').u32(rel).u8('N').tuple(cols).b
}

// updateMsg writes an update; oldKind is 'K', 'O' or 0 for no old tuple.
func updateMsg(rel uint32, oldKind byte, old []col, cols ...col) []byte {
	w := msg('U').u32(rel)
	if oldKind != 0 {
		w.u8(oldKind).tuple(old)
	}
	return w.u8('N').tuple(cols).b
}

func deleteMsg(rel uint32, kind byte, old ...col) []byte {
	return msg('D').u32(rel).u8(kind).tuple(old).b
}

func truncateMsg(options byte, ids ...uint32) []byte {
	w := msg('T').u32(uint32(len(ids))).u8(options)
	for _, id := range ids {
		w.u32(id)
	}
	return w.b
}

func logicalMsg(transactional bool, lsn pglogrepl.LSN, prefix, content string) []byte {
	var flags byte
	if transactional {
		flags = 1
	}
	return msg('M').u8(flags).u64(uint64(lsn)).str(prefix).u32(uint32(len(content))).raw([]byte(content)).b
}

func originMsg(lsn pglogrepl.LSN, name string) []byte {
	return msg('O').u64(uint64(lsn)).str(name).b
}

func typeMsg(oid uint32, schema, name string) []byte {
	return msg('Y').u32(oid).str(schema).str(name).b
}

// alertRel is DPS's alert table (deploy/dps/schema.sql) as pgoutput
// announces it under REPLICA IDENTITY FULL: every column is a key column.
func alertRel() *Relation {
	return &Relation{ID: 16400, Schema: "public", Table: "alert", ReplicaIdentity: 'f', Columns: []Column{
		{Name: "id", TypeOID: pgtype.UUIDOID, TypeMod: -1, Key: true},
		{Name: "alert_code_id", TypeOID: pgtype.Int8OID, TypeMod: -1, Key: true},
		{Name: "prison_number", TypeOID: pgtype.VarcharOID, TypeMod: 14, Key: true},
		{Name: "description", TypeOID: pgtype.TextOID, TypeMod: -1, Key: true},
		{Name: "authorised_by", TypeOID: pgtype.VarcharOID, TypeMod: 44, Key: true},
		{Name: "active_from", TypeOID: pgtype.DateOID, TypeMod: -1, Key: true},
		{Name: "active_to", TypeOID: pgtype.DateOID, TypeMod: -1, Key: true},
		{Name: "created_at", TypeOID: pgtype.TimestampOID, TypeMod: -1, Key: true},
		{Name: "last_modified_at", TypeOID: pgtype.TimestampOID, TypeMod: -1, Key: true},
		{Name: "deleted_at", TypeOID: pgtype.TimestampOID, TypeMod: -1, Key: true},
		{Name: "prison_code_when_created", TypeOID: pgtype.VarcharOID, TypeMod: 10, Key: true},
		{Name: "version", TypeOID: pgtype.Int4OID, TypeMod: -1, Key: true},
	}}
}

// codeRel is a table with the default replica identity (its primary key).
func codeRel() *Relation {
	return &Relation{ID: 16401, Schema: "public", Table: "alert_code", ReplicaIdentity: 'd', Columns: []Column{
		{Name: "id", TypeOID: pgtype.Int8OID, TypeMod: -1, Key: true},
		{Name: "code", TypeOID: pgtype.VarcharOID, TypeMod: 16, Key: false},
		{Name: "description", TypeOID: pgtype.TextOID, TypeMod: -1, Key: false},
	}}
}

const alertID = "0190f3c1-7f5a-7c3e-9b1a-2f6d8e4c5a10"

// alertCols returns an alert row in text format with the given version and
// description.
func alertCols(version, description string) []col {
	return []col{
		txt(alertID), txt("42"), txt("A1234BC"), txt(description), txt("Dr Who"),
		txt("2024-03-31"), null, txt("2024-10-27 01:30:00"), txt("2024-03-31 01:30:00.5"), null,
		txt("MDI"), txt(version),
	}
}

// alertRow is alertCols decoded with Europe/London.
func alertRow(version int32, description string) Row {
	return Row{
		alertID, int64(42), "A1234BC", description, "Dr Who",
		utc(2024, 3, 31, 0, 0, 0, 0), nil, utc(2024, 10, 27, 0, 30, 0, 0), utc(2024, 3, 31, 1, 30, 0, 500000000), nil,
		"MDI", version,
	}
}

var (
	t0    = time.Date(2024, 10, 27, 0, 45, 1, 123456000, time.UTC)
	final = pglogrepl.LSN(0x16B3800)
	end   = pglogrepl.LSN(0x16B3830)
)

// newTestDecoder returns a decoder in Europe/London that knows the given
// relations and, with xid != 0, has that transaction open.
func newTestDecoder(t testing.TB, xid uint32, rels ...*Relation) *Decoder {
	t.Helper()
	d := NewDecoder(london(t), "alertsync")
	for _, r := range rels {
		ev, err := d.Decode(0x100, relationMsg(r))
		require.NoError(t, err)
		require.NotNil(t, ev.Relation)
	}
	if xid != 0 {
		ev, err := d.Decode(0x16B3700, beginMsg(final, t0, xid))
		require.NoError(t, err)
		require.NotNil(t, ev.Begin)
	}
	return d
}

// decodeChange decodes one message that must yield exactly one change.
func decodeChange(t *testing.T, d *Decoder, lsn pglogrepl.LSN, data []byte) Change {
	t.Helper()
	ev, err := d.Decode(lsn, data)
	require.NoError(t, err)
	require.Nil(t, ev.Begin)
	require.Nil(t, ev.Commit)
	require.Nil(t, ev.Relation)
	require.Len(t, ev.Changes, 1)
	return ev.Changes[0]
}

func requireEmpty(t *testing.T, ev Event) {
	t.Helper()
	require.Equal(t, Event{}, ev)
}

// TestDecodeTransaction decodes a transaction with an insert, an update and
// a delete of the alert table, announced by its Relation message inside the
// transaction as pgoutput does.
func TestDecodeTransaction(t *testing.T) {
	t.Parallel()
	d := NewDecoder(london(t), "alertsync")

	ev, err := d.Decode(0x16B3700, beginMsg(final, t0, 731))
	require.NoError(t, err)
	require.NotNil(t, ev.Begin)
	require.Empty(t, ev.Changes)
	require.Nil(t, ev.Commit)
	tx := ev.Begin
	require.Equal(t, Tx{XID: 731, CommitLSN: final, CommitTime: t0}, *tx)
	require.Equal(t, time.UTC, tx.CommitTime.Location())

	ev, err = d.Decode(0x16B3700, relationMsg(alertRel()))
	require.NoError(t, err)
	require.Equal(t, alertRel(), ev.Relation)
	rel, ok := d.Relation(16400)
	require.True(t, ok)
	require.Same(t, ev.Relation, rel)

	ins := decodeChange(t, d, 0x16B3708, insertMsg(16400, alertCols("0", "Risk to staff")...))
	require.Equal(t, Change{Rel: rel, Op: OpCreate, After: alertRow(0, "Risk to staff"), LSN: 0x16B3708, Tx: tx}, ins)

	upd := decodeChange(t, d, 0x16B3750, updateMsg(16400, 'O', alertCols("0", "Risk to staff"), alertCols("1", "Risk to others")...))
	require.Equal(t, Change{
		Rel: rel, Op: OpUpdate, Before: alertRow(0, "Risk to staff"), After: alertRow(1, "Risk to others"), LSN: 0x16B3750, Tx: tx,
	}, upd)

	del := decodeChange(t, d, 0x16B37A0, deleteMsg(16400, 'O', alertCols("1", "Risk to others")...))
	require.Equal(t, Change{Rel: rel, Op: OpDelete, Before: alertRow(1, "Risk to others"), LSN: 0x16B37A0, Tx: tx}, del)

	ev, err = d.Decode(0x16B3800, commitMsg(final, end, t0))
	require.NoError(t, err)
	require.Equal(t, Event{Commit: &Commit{Tx: tx, CommitLSN: final, EndLSN: end, CommitTime: t0}}, ev)
	require.Same(t, tx, ev.Commit.Tx)
	require.False(t, tx.Sync)

	// The transaction is closed: a change now breaks the protocol, and the
	// next transaction gets its own Tx.
	_, err = d.Decode(0x16B3900, insertMsg(16400, alertCols("0", "x")...))
	var pe *ProtocolError
	require.ErrorAs(t, err, &pe)
	ev, err = d.Decode(0x16B3900, beginMsg(0x16B4000, t0.Add(time.Second), 732))
	require.NoError(t, err)
	require.NotSame(t, tx, ev.Begin)
	require.Equal(t, uint32(732), ev.Begin.XID)
}

// TestDecodeInsertThenUpdate: two changes of one row in one transaction are
// told apart by their LSNs and share the transaction.
func TestDecodeInsertThenUpdate(t *testing.T) {
	t.Parallel()
	d := newTestDecoder(t, 900, alertRel())
	ins := decodeChange(t, d, 0x2000, insertMsg(16400, alertCols("0", "a")...))
	upd := decodeChange(t, d, 0x2040, updateMsg(16400, 'O', alertCols("0", "a"), alertCols("1", "b")...))
	require.Equal(t, pglogrepl.LSN(0x2000), ins.LSN)
	require.Equal(t, pglogrepl.LSN(0x2040), upd.LSN)
	require.Same(t, ins.Tx, upd.Tx)
	require.Equal(t, ins.After, upd.Before)
	require.Equal(t, int32(1), upd.After[11])
	require.Equal(t, "b", upd.After[3])
}

func TestDecodeRows(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 2000) + strings.Repeat("z", 2000) // 4000 characters
	allNull := make([]col, 12)
	for i := range allNull {
		allNull[i] = null
	}
	tests := []struct {
		name string
		cols []col
		want Row
	}{
		{"every column", alertCols("7", "Risk to staff"), alertRow(7, "Risk to staff")},
		{"4000-character description", alertCols("0", long), alertRow(0, long)},
		{"every column NULL", allNull, make(Row, 12)},
		{"empty text is not NULL", alertCols("0", ""), alertRow(0, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newTestDecoder(t, 1, alertRel())
			c := decodeChange(t, d, 0x3000, insertMsg(16400, tt.cols...))
			require.Equal(t, tt.want, c.After)
			for i, v := range c.After {
				if tt.cols[i].kind == 'n' {
					require.Nil(t, v, "column %d", i)
				}
			}
		})
	}
}

// TestDecodeOldTuples covers the before-images pgoutput sends: none, the
// whole old row ('O', REPLICA IDENTITY FULL) or the key only ('K').
func TestDecodeOldTuples(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		data        []byte
		op          Op
		wantBefore  Row
		wantKeyOnly bool
		wantAfter   Row
	}{
		{
			name:      "update without old tuple",
			data:      updateMsg(16401, 0, nil, txt("5"), txt("VI"), txt("Victim")),
			op:        OpUpdate,
			wantAfter: Row{int64(5), "VI", "Victim"},
		},
		{
			name:        "update with changed key",
			data:        updateMsg(16401, 'K', []col{txt("4"), null, null}, txt("5"), txt("VI"), txt("Victim")),
			op:          OpUpdate,
			wantBefore:  Row{int64(4), nil, nil},
			wantKeyOnly: true,
			wantAfter:   Row{int64(5), "VI", "Victim"},
		},
		{
			name:        "key-only old tuple drops values of other columns",
			data:        updateMsg(16401, 'K', []col{txt("4"), txt("XX"), toast}, txt("5"), txt("VI"), txt("Victim")),
			op:          OpUpdate,
			wantBefore:  Row{int64(4), nil, nil},
			wantKeyOnly: true,
			wantAfter:   Row{int64(5), "VI", "Victim"},
		},
		{
			name:       "update with full old row",
			data:       updateMsg(16401, 'O', []col{txt("5"), txt("VI"), null}, txt("5"), txt("VI"), txt("Victim")),
			op:         OpUpdate,
			wantBefore: Row{int64(5), "VI", nil},
			wantAfter:  Row{int64(5), "VI", "Victim"},
		},
		{
			name:        "delete by key",
			data:        deleteMsg(16401, 'K', txt("5"), null, null),
			op:          OpDelete,
			wantBefore:  Row{int64(5), nil, nil},
			wantKeyOnly: true,
		},
		{
			name:       "delete with full old row",
			data:       deleteMsg(16401, 'O', txt("5"), txt("VI"), txt("Victim")),
			op:         OpDelete,
			wantBefore: Row{int64(5), "VI", "Victim"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newTestDecoder(t, 1, codeRel())
			c := decodeChange(t, d, 0x4000, tt.data)
			require.Equal(t, tt.op, c.Op)
			require.Equal(t, tt.wantBefore, c.Before)
			require.Equal(t, tt.wantKeyOnly, c.BeforeKeyOnly)
			require.Equal(t, tt.wantAfter, c.After)
		})
	}
}

func TestDecodeUnchangedTOAST(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("Confidential ", 300)
	newCols := alertCols("1", "")
	newCols[3] = toast

	t.Run("filled from the full old row", func(t *testing.T) {
		t.Parallel()
		d := newTestDecoder(t, 1, alertRel())
		c := decodeChange(t, d, 0x5000, updateMsg(16400, 'O', alertCols("0", secret), newCols...))
		require.Equal(t, secret, c.After[3])
		require.Equal(t, int32(1), c.After[11])
	})
	t.Run("key column filled from the key-only old row", func(t *testing.T) {
		t.Parallel()
		d := newTestDecoder(t, 1, codeRel())
		c := decodeChange(t, d, 0x5000, updateMsg(16401, 'K', []col{txt("4"), null, null}, toast, txt("VI"), txt("V")))
		require.Equal(t, Row{int64(4), "VI", "V"}, c.After)
	})

	errs := []struct {
		name   string
		rel    *Relation
		data   []byte
		column string
	}{
		{"update without old row", codeRel(), updateMsg(16401, 0, nil, txt("5"), txt("VI"), toast), "public.alert_code.description"},
		{"non-key column with key-only old row", codeRel(), updateMsg(16401, 'K', []col{txt("4"), null, null}, txt("5"), txt("VI"), toast), "public.alert_code.description"},
		{"insert", alertRel(), insertMsg(16400, newCols...), "public.alert.description"},
		{"in the old row itself", alertRel(), deleteMsg(16400, 'O', newCols...), "public.alert.description"},
	}
	for _, tt := range errs {
		t.Run("error: "+tt.name, func(t *testing.T) {
			t.Parallel()
			d := newTestDecoder(t, 1, tt.rel)
			ev, err := d.Decode(0x5000, tt.data)
			require.Error(t, err)
			require.Equal(t, Event{}, ev)
			require.ErrorIs(t, err, ErrUnchangedTOAST)
			var ce *ColumnError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, pglogrepl.LSN(0x5000), ce.WALStart)
			require.Contains(t, err.Error(), tt.column)
			require.NotContains(t, err.Error(), "Confidential")
		})
	}
}

func TestDecodeSyncMarker(t *testing.T) {
	t.Parallel()
	ins := insertMsg(16401, txt("5"), txt("VI"), txt("Victim"))
	tests := []struct {
		name       string
		prefix     string // the decoder's marker prefix
		before     [][]byte
		after      [][]byte
		wantSync   bool
		wantOrigin string
		// wantEarly is whether the change already carries Sync when it is
		// decoded.
		wantEarly bool
	}{
		{
			name: "marker before the change", prefix: "alertsync",
			before:   [][]byte{logicalMsg(true, 0x10, "alertsync", "apply-dps cmd=7f1c")},
			wantSync: true, wantOrigin: "apply-dps cmd=7f1c", wantEarly: true,
		},
		{
			name: "marker after the change", prefix: "alertsync",
			after:    [][]byte{logicalMsg(true, 0x90, "alertsync", "apply-dps")},
			wantSync: true, wantOrigin: "apply-dps",
		},
		{
			name: "invalid UTF-8 in the marker is replaced", prefix: "alertsync",
			before:   [][]byte{logicalMsg(true, 0x10, "alertsync", "a\xffb")},
			wantSync: true, wantOrigin: "a\uFFFDb", wantEarly: true,
		},
		{
			name: "empty marker content", prefix: "alertsync",
			before:   [][]byte{logicalMsg(true, 0x10, "alertsync", "")},
			wantSync: true, wantEarly: true,
		},
		{
			name: "heartbeat prefix ignored", prefix: "alertsync",
			before: [][]byte{logicalMsg(true, 0x10, "alertsync.heartbeat", "1")},
			after:  [][]byte{logicalMsg(false, 0x90, "alertsync.heartbeat", "2")},
		},
		{
			name: "non-transactional marker ignored", prefix: "alertsync",
			before: [][]byte{logicalMsg(false, 0x10, "alertsync", "apply-dps")},
		},
		{
			name: "other prefix ignored", prefix: "alertsync",
			before: [][]byte{logicalMsg(true, 0x10, "debezium", "apply-dps")},
		},
		{
			name: "empty marker prefix disables markers", prefix: "",
			before: [][]byte{logicalMsg(true, 0x10, "", "apply-dps")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := NewDecoder(london(t), tt.prefix)
			_, err := d.Decode(0x1, relationMsg(codeRel()))
			require.NoError(t, err)
			_, err = d.Decode(0x1, beginMsg(final, t0, 5))
			require.NoError(t, err)
			for _, m := range tt.before {
				ev, err := d.Decode(0x10, m)
				require.NoError(t, err)
				requireEmpty(t, ev)
			}
			c := decodeChange(t, d, 0x50, ins)
			require.Equal(t, tt.wantEarly, c.Tx.Sync)
			for _, m := range tt.after {
				ev, err := d.Decode(0x90, m)
				require.NoError(t, err)
				requireEmpty(t, ev)
			}
			ev, err := d.Decode(0x100, commitMsg(final, end, t0))
			require.NoError(t, err)
			require.Same(t, c.Tx, ev.Commit.Tx)
			require.Equal(t, tt.wantSync, c.Tx.Sync)
			require.Equal(t, tt.wantOrigin, c.Tx.Origin)

			// The marker belongs to its transaction only.
			ev, err = d.Decode(0x200, beginMsg(final+0x1000, t0, 6))
			require.NoError(t, err)
			require.False(t, ev.Begin.Sync)
			require.Empty(t, ev.Begin.Origin)
		})
	}
}

func TestDecodeTruncate(t *testing.T) {
	t.Parallel()
	d := newTestDecoder(t, 1, alertRel(), codeRel())
	ev, err := d.Decode(0x6000, truncateMsg(pglogrepl.TruncateOptionCascade, 16400, 16401))
	require.NoError(t, err)
	require.Len(t, ev.Changes, 2)
	alert, _ := d.Relation(16400)
	code, _ := d.Relation(16401)
	for i, rel := range []*Relation{alert, code} {
		c := ev.Changes[i]
		require.Same(t, rel, c.Rel)
		require.Equal(t, OpTruncate, c.Op)
		require.Nil(t, c.Before)
		require.Nil(t, c.After)
		require.Equal(t, pglogrepl.LSN(0x6000), c.LSN)
		require.NotNil(t, c.Tx)
		require.Same(t, ev.Changes[0].Tx, c.Tx)
	}
}

// TestDecodeRelationChanges: a Relation message is returned when new or
// changed; an identical one (sent again after a reconnect or cache
// invalidation) is not. Changes keep the relation they were decoded with.
func TestDecodeRelationChanges(t *testing.T) {
	t.Parallel()
	changed := func(f func(r *Relation)) *Relation {
		r := codeRel()
		f(r)
		return r
	}
	tests := []struct {
		name        string
		rel         *Relation
		wantChanged bool
	}{
		{"identical", codeRel(), false},
		{"column added", changed(func(r *Relation) {
			r.Columns = append(r.Columns, Column{Name: "active", TypeOID: pgtype.BoolOID, TypeMod: -1})
		}), true},
		{"column dropped", changed(func(r *Relation) { r.Columns = r.Columns[:2] }), true},
		{"column renamed", changed(func(r *Relation) { r.Columns[1].Name = "alert_code" }), true},
		{"column type changed", changed(func(r *Relation) { r.Columns[0].TypeOID = pgtype.Int4OID }), true},
		{"column typmod changed", changed(func(r *Relation) { r.Columns[1].TypeMod = 36 }), true},
		{"key changed", changed(func(r *Relation) { r.Columns[1].Key = true }), true},
		{"replica identity changed", changed(func(r *Relation) {
			r.ReplicaIdentity = 'f'
			for i := range r.Columns {
				r.Columns[i].Key = true
			}
		}), true},
		{"table renamed", changed(func(r *Relation) { r.Table = "alert_codes" }), true},
		{"schema changed", changed(func(r *Relation) { r.Schema = "alerts" }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newTestDecoder(t, 1, codeRel())
			old, ok := d.Relation(16401)
			require.True(t, ok)
			before := decodeChange(t, d, 0x7000, insertMsg(16401, txt("1"), txt("VI"), txt("Victim")))

			ev, err := d.Decode(0x7100, relationMsg(tt.rel))
			require.NoError(t, err)
			cur, ok := d.Relation(16401)
			require.True(t, ok)
			if !tt.wantChanged {
				requireEmpty(t, ev)
				require.Same(t, old, cur)
				return
			}
			require.Equal(t, tt.rel, ev.Relation)
			require.Same(t, ev.Relation, cur)
			require.NotSame(t, old, cur)
			require.Same(t, old, before.Rel, "earlier changes keep their relation")
			require.Equal(t, codeRel(), before.Rel, "the earlier relation is not modified")
		})
	}
}

func TestDecodeNoActionMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		inTx bool
		data []byte
	}{
		{"origin", true, originMsg(0x99, "pg_16385")},
		{"type", true, typeMsg(90000, "public", "alert_status")},
		{"type outside a transaction", false, typeMsg(90000, "public", "alert_status")},
		{"non-transactional message outside a transaction", false, logicalMsg(false, 0x99, "alertsync.heartbeat", "")},
		{"non-transactional marker outside a transaction", false, logicalMsg(false, 0x99, "alertsync", "apply")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var xid uint32
			if tt.inTx {
				xid = 9
			}
			d := newTestDecoder(t, xid, codeRel())
			ev, err := d.Decode(0x8000, tt.data)
			require.NoError(t, err)
			requireEmpty(t, ev)
		})
	}
}

// TestDecodeErrors feeds messages that break the protocol or carry bad
// values. Each error is typed, never quotes a value, and leaves the decoder
// as it was: the same transaction stays open (or closed) and the relation
// cache unchanged.
func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	ins := insertMsg(16401, txt("1"), txt("VI"), txt("Victim"))
	hugeText := msg('I').u32(16401).u8('N').u16(3).u8('t').u32(0xFFFFFFFF).b
	hugeRelation := msg('R').u32(16402).str("public").str("x").u8('d').u16(0xFFFF).b
	hugeTruncate := msg('T').u32(0xFFFFFFFF).u8(0).b
	tests := []struct {
		name     string
		inTx     bool
		data     []byte
		column   bool   // a *ColumnError rather than a *ProtocolError
		contains string // in the message
	}{
		{name: "empty payload", data: nil, contains: "empty payload"},
		{name: "unknown message type", data: []byte("X123"), contains: "unknown message type"},
		{name: "stream start (protocol version 2)", inTx: true, data: msg('S').u32(9).u8(1).b, contains: "proto_version"},
		{name: "begin too short", data: beginMsg(final, t0, 1)[:20], contains: "truncated"},
		{name: "begin with trailing byte", data: append(beginMsg(final, t0, 1), 0), contains: "1 trailing bytes"},
		{name: "commit too short", inTx: true, data: commitMsg(final, end, t0)[:25], contains: "truncated"},
		{name: "insert outside a transaction", data: ins, contains: "outside a transaction"},
		{name: "update outside a transaction", data: updateMsg(16401, 0, nil, txt("1"), null, null), contains: "outside a transaction"},
		{name: "delete outside a transaction", data: deleteMsg(16401, 'K', txt("1"), null, null), contains: "outside a transaction"},
		{name: "truncate outside a transaction", data: truncateMsg(0, 16401), contains: "outside a transaction"},
		{name: "transactional message outside a transaction", data: logicalMsg(true, 1, "alertsync", "x"), contains: "outside a transaction"},
		{name: "begin inside a transaction", inTx: true, data: beginMsg(final+1, t0, 2), contains: "while xid 1 is open"},
		{name: "commit outside a transaction", data: commitMsg(final, end, t0), contains: "Commit outside"},
		{name: "commit of another transaction", inTx: true, data: commitMsg(final+8, end, t0), contains: "differs from the final LSN"},
		{name: "insert of an unknown relation", inTx: true, data: insertMsg(777, txt("1")), contains: "relation 777"},
		{name: "truncate of an unknown relation", inTx: true, data: truncateMsg(0, 16401, 777), contains: "relation 777"},
		{name: "insert with old tuple marker", inTx: true, data: msg('I').u32(16401).u8('K').tuple([]col{txt("1"), null, null}).b, contains: "not 'N'"},
		{name: "insert with too few columns", inTx: true, data: insertMsg(16401, txt("1"), null), contains: "tuple has 2 columns"},
		{name: "insert with too many columns", inTx: true, data: insertMsg(16401, txt("1"), null, null, null), contains: "tuple has 4 columns"},
		{name: "insert with unknown column kind", inTx: true, data: insertMsg(16401, txt("1"), col{kind: 'x'}, null), contains: "bad field"},
		{name: "insert with text longer than the payload", inTx: true, data: hugeText, contains: "truncated"},
		{name: "update with old tuple and no new tuple", inTx: true, data: msg('U').u32(16401).u8('O').tuple([]col{txt("1"), null, null}).b, contains: "no new tuple"},
		{name: "update with bad tuple kind", inTx: true, data: msg('U').u32(16401).u8('Z').b, contains: "'K', 'O' or 'N'"},
		{name: "delete with new tuple", inTx: true, data: deleteMsg(16401, 'N', txt("1"), null, null), contains: "'K' or 'O'"},
		{name: "truncate claiming 2^32-1 relations", inTx: true, data: hugeTruncate, contains: "truncated"},
		{name: "relation claiming 65535 columns", data: hugeRelation, contains: "truncated"},
		{name: "relation name without NUL", data: msg('R').u32(16402).raw([]byte("public")).b, contains: "truncated"},
		{name: "message prefix without NUL", inTx: true, data: msg('M').u8(1).u64(1).raw([]byte("alertsync")).b, contains: "truncated"},
		{name: "message content longer than the payload", inTx: true, data: msg('M').u8(1).u64(1).str("alertsync").u32(100).raw([]byte("x")).b, contains: "truncated"},
		{name: "origin name without NUL", inTx: true, data: msg('O').u64(1).raw([]byte("pg")).b, contains: "truncated"},
		{name: "type message truncated", inTx: true, data: msg('Y').u32(1).str("public").b, contains: "truncated"},
		{name: "binary column value", inTx: true, column: true, data: insertMsg(16401, col{kind: 'b', data: "\x00\x00\x00\x01"}, null, null), contains: "public.alert_code.id (type oid 20)"},
		{name: "bad integer", inTx: true, column: true, data: insertMsg(16401, txt("Smith"), null, null), contains: "public.alert_code.id at 0/9000: type oid 20 (int8)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var xid uint32
			if tt.inTx {
				xid = 1
			}
			d := newTestDecoder(t, xid, codeRel())
			ev, err := d.Decode(0x9000, tt.data)
			require.Error(t, err)
			require.Equal(t, Event{}, ev)
			require.Contains(t, err.Error(), tt.contains)
			require.NotContains(t, err.Error(), "Smith")
			require.NotContains(t, err.Error(), "Victim")
			if tt.column {
				var ce *ColumnError
				require.ErrorAs(t, err, &ce)
				require.Equal(t, "alert_code", ce.Table)
				require.Equal(t, pglogrepl.LSN(0x9000), ce.WALStart)
			} else {
				var pe *ProtocolError
				require.ErrorAs(t, err, &pe)
				require.Equal(t, pglogrepl.LSN(0x9000), pe.WALStart)
				if len(tt.data) > 0 {
					require.Equal(t, tt.data[0], pe.Type)
				}
			}

			// The decoder's state is unchanged.
			rel, ok := d.Relation(16401)
			require.True(t, ok)
			require.Equal(t, codeRel(), rel)
			_, ok = d.Relation(16402)
			require.False(t, ok)
			if tt.inTx {
				c := decodeChange(t, d, 0x9100, ins)
				require.Equal(t, uint32(1), c.Tx.XID)
				ev, err = d.Decode(0x9200, commitMsg(final, end, t0))
				require.NoError(t, err)
				require.NotNil(t, ev.Commit)
			} else {
				ev, err = d.Decode(0x9100, beginMsg(final, t0, 3))
				require.NoError(t, err)
				require.NotNil(t, ev.Begin)
			}
		})
	}
}

func TestColumnErrorWrapsValueError(t *testing.T) {
	t.Parallel()
	d := newTestDecoder(t, 1, alertRel())
	cols := alertCols("0", "x")
	cols[7] = txt("2024-10-27 25:30:00")
	_, err := d.Decode(0xA000, insertMsg(16400, cols...))
	var ve *ValueError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, uint32(pgtype.TimestampOID), ve.OID)
	require.Equal(t, reasonTimestamp, ve.Reason)
	var ce *ColumnError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "created_at", ce.Column)
	require.False(t, errors.Is(err, ErrUnchangedTOAST))
	require.NotContains(t, err.Error(), "25:30")
}

// BenchmarkDecode decodes inserts of the 12-column alert table.
func BenchmarkDecode(b *testing.B) {
	d := newTestDecoder(b, 1, alertRel())
	data := insertMsg(16400, alertCols("3", strings.Repeat("Risk to staff. ", 20))...)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		ev, err := d.Decode(0x1000, data)
		if err != nil || len(ev.Changes) != 1 {
			b.Fatalf("decode: %v", err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
}
