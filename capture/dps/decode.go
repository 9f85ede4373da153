package dps

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
)

// Column of a relation as announced by pgoutput.
type Column struct {
	Name    string
	TypeOID uint32
	TypeMod int32
	// Key is true when the column is part of the replica identity. Under
	// REPLICA IDENTITY FULL pgoutput marks every column as key, so Key is
	// not the primary key: read that from the catalog.
	Key bool
}

// Relation is a table as announced by a pgoutput Relation message.
type Relation struct {
	ID            uint32
	Schema, Table string
	Columns       []Column
	// ReplicaIdentity is 'd' (default: primary key), 'n' (nothing), 'f'
	// (full) or 'i' (index).
	ReplicaIdentity byte
}

// Op is a Debezium op letter.
type Op byte

// Debezium op letters. The decoder produces OpCreate, OpUpdate, OpDelete and
// OpTruncate; OpRead is for snapshot rows.
const (
	OpCreate   Op = 'c'
	OpUpdate   Op = 'u'
	OpDelete   Op = 'd'
	OpRead     Op = 'r'
	OpTruncate Op = 't'
)

// Row is a decoded tuple: values in column order of its Relation (types as
// DecodeText returns them); nil for SQL NULL. Rows and their values are
// shared and must not be modified.
type Row []any

// Tx is the transaction a change belongs to. Every Change of a transaction
// points to the same *Tx.
//
// Sync and Origin are set when the transaction's sync marker is decoded,
// which may come after some of its changes: they are final only once the
// transaction's Commit has been decoded. Callers must read them at commit or
// later (buffering the transaction's changes until then), unless every
// writer of the marker emits it as its transaction's first statement, as the
// alertsync applies do: then Sync is already set on every change decoded.
type Tx struct {
	XID uint32
	// CommitLSN is the LSN of the commit record (Begin's final LSN).
	CommitLSN pglogrepl.LSN
	// CommitTime is the commit time, in UTC.
	CommitTime time.Time
	// Origin is the content of the sync marker, "" when there is none.
	Origin string
	// Sync is true when the transaction carries the sync marker: the sync
	// itself wrote it.
	Sync bool
}

// Change is one row change (or a truncate of one table) inside a
// transaction.
type Change struct {
	Rel *Relation
	Op  Op
	// Before is the old row of an update or delete, nil when pgoutput sent
	// none (an update of a table without REPLICA IDENTITY FULL whose key did
	// not change) and for inserts and truncates.
	Before Row
	// BeforeKeyOnly is true when Before holds only the replica identity key
	// (pgoutput tuple 'K'): its other columns are nil whatever their value.
	BeforeKeyOnly bool
	// After is the new row of an insert or update, nil otherwise.
	After Row
	// LSN is the WAL start of the change's message.
	LSN pglogrepl.LSN
	Tx  *Tx
}

// Event is what Decode returns for one XLogData payload: exactly one of the
// pointer fields is set or Changes is not empty, or nothing is set for
// messages that need no action.
type Event struct {
	// Begin is the transaction just opened.
	Begin *Tx
	// Changes holds one change for an insert, update or delete and one per
	// table for a truncate.
	Changes []Change
	// Commit closes the transaction.
	Commit *Commit
	// Relation is a new or changed relation: the caller reloads its schema.
	// Changes decoded before keep pointing to the previous *Relation.
	Relation *Relation
}

// Commit is the end of a transaction.
type Commit struct {
	Tx *Tx
	// CommitLSN is the LSN of the commit record; EndLSN the end of the
	// transaction's WAL, the position to confirm once the transaction is
	// safely stored.
	CommitLSN, EndLSN pglogrepl.LSN
	// CommitTime is the commit time, in UTC.
	CommitTime time.Time
}

// Errors of the decoder. A *ColumnError wraps them; branch with errors.Is.
var (
	// ErrUnchangedTOAST: an update left a TOASTed value unchanged, so
	// pgoutput did not send it, and there is no old row to copy it from.
	// Set REPLICA IDENTITY FULL on the table.
	ErrUnchangedTOAST = errors.New("unchanged TOAST value not sent and no old row to copy it from (set REPLICA IDENTITY FULL on the table)")
	// ErrBinaryValue: a column came in binary format, which the decoder
	// never asks for (start replication without the binary option).
	ErrBinaryValue = errors.New("binary column value (start replication without binary 'true')")
)

// ProtocolError reports a payload that breaks the pgoutput protocol
// (version 1) or the transaction framing: malformed bytes, an unknown message
// type, a change outside a transaction, a Begin inside one, a Commit for
// another transaction, or a change of an unannounced relation. The decoder's
// state is unchanged, but the stream can no longer be trusted: restart
// replication from the last confirmed position.
type ProtocolError struct {
	// WALStart is the WAL start of the message.
	WALStart pglogrepl.LSN
	// Type is the message type byte, 0 for an empty payload.
	Type byte
	// Reason says what is wrong; it never quotes column values.
	Reason string
	// Err is the parse error of pglogrepl, if any.
	Err error
}

// Error describes the violation with the message type and position.
func (e *ProtocolError) Error() string {
	msg := fmt.Sprintf("pgoutput protocol error in %s message (type %q) at %s: %s",
		pglogrepl.MessageType(e.Type), e.Type, e.WALStart, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the parse error, if any.
func (e *ProtocolError) Unwrap() error { return e.Err }

// ColumnError reports a column value of a change that cannot be decoded. It
// wraps a *ValueError, ErrUnchangedTOAST or ErrBinaryValue, names the column
// and never holds the value. The decoder's state is unchanged: the caller may
// dead-letter the change and go on with the next message.
type ColumnError struct {
	Schema, Table, Column string
	// OID is the column's type.
	OID uint32
	// WALStart is the WAL start of the change's message.
	WALStart pglogrepl.LSN
	Err      error
}

// Error names schema.table.column, its type and the cause.
func (e *ColumnError) Error() string {
	var ve *ValueError
	if errors.As(e.Err, &ve) {
		return fmt.Sprintf("decoding column %s.%s.%s at %s: %v", e.Schema, e.Table, e.Column, e.WALStart, e.Err)
	}
	return fmt.Sprintf("decoding column %s.%s.%s (type oid %d) at %s: %v",
		e.Schema, e.Table, e.Column, e.OID, e.WALStart, e.Err)
}

// Unwrap returns the cause.
func (e *ColumnError) Unwrap() error { return e.Err }

// Decoder turns pgoutput (protocol version 1) payloads into events. It keeps
// the relation cache and the open transaction. It does no I/O. Not safe for
// concurrent use.
type Decoder struct {
	loc          *time.Location
	markerPrefix string
	relations    map[uint32]*Relation
	tx           *Tx
}

// NewDecoder returns a decoder with an empty relation cache and no open
// transaction. loc is the zone of `timestamp without time zone` values
// (Europe/London for DPS; nil means UTC). markerPrefix is the prefix of the
// transactional logical decoding message that marks the sync's own writes
// ("alertsync"); "" means no message is a marker.
func NewDecoder(loc *time.Location, markerPrefix string) *Decoder {
	if loc == nil {
		loc = time.UTC
	}
	return &Decoder{loc: loc, markerPrefix: markerPrefix, relations: map[uint32]*Relation{}}
}

// Relation returns the cached relation with the given id.
func (d *Decoder) Relation(id uint32) (*Relation, bool) {
	r, ok := d.relations[id]
	return r, ok
}

// Decode decodes the payload of one XLogData message whose WAL start is
// walStart. It never panics and returns a *ProtocolError or a *ColumnError
// on bad input, leaving the decoder's state as it was.
//
// Begin opens a transaction (Event.Begin), Commit closes it (Event.Commit);
// Insert, Update, Delete and Truncate return Event.Changes; a Relation
// message is cached and returned in Event.Relation when new or different
// from the cached one. A transactional logical decoding message with the
// marker prefix sets Sync and Origin (its content) on the open transaction
// and returns an empty Event, as do other logical decoding messages
// (heartbeats), Origin and Type messages and unchanged Relation messages.
func (d *Decoder) Decode(walStart pglogrepl.LSN, data []byte) (Event, error) {
	if len(data) == 0 {
		return Event{}, &ProtocolError{WALStart: walStart, Reason: "empty payload"}
	}
	if reason := checkFrame(data); reason != "" {
		return Event{}, d.protocolError(walStart, data, reason)
	}
	switch data[0] {
	case 'I', 'U', 'D': // the hot path: decoded straight from the validated frame
		return d.decodeRowChange(walStart, data)
	}
	msg, err := pglogrepl.Parse(data)
	if err != nil {
		return Event{}, &ProtocolError{WALStart: walStart, Type: data[0], Reason: "parsing", Err: err}
	}
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		if d.tx != nil {
			return Event{}, d.protocolError(walStart, data, fmt.Sprintf("Begin of xid %d while xid %d is open", m.Xid, d.tx.XID))
		}
		d.tx = &Tx{XID: m.Xid, CommitLSN: m.FinalLSN, CommitTime: m.CommitTime.UTC()}
		return Event{Begin: d.tx}, nil
	case *pglogrepl.CommitMessage:
		if d.tx == nil {
			return Event{}, d.protocolError(walStart, data, "Commit outside a transaction")
		}
		if m.CommitLSN != d.tx.CommitLSN {
			return Event{}, d.protocolError(walStart, data, fmt.Sprintf(
				"Commit LSN %s differs from the final LSN %s announced by Begin of xid %d", m.CommitLSN, d.tx.CommitLSN, d.tx.XID))
		}
		c := &Commit{Tx: d.tx, CommitLSN: m.CommitLSN, EndLSN: m.TransactionEndLSN, CommitTime: m.CommitTime.UTC()}
		d.tx = nil
		return Event{Commit: c}, nil
	case *pglogrepl.RelationMessage:
		return d.relation(m), nil
	case *pglogrepl.InsertMessage:
		rel, err := d.changeRelation(walStart, data, m.RelationID)
		if err != nil {
			return Event{}, err
		}
		after, err := d.row(walStart, data[0], rel, m.Tuple, false, nil, false)
		if err != nil {
			return Event{}, err
		}
		return d.change(Change{Rel: rel, Op: OpCreate, After: after, LSN: walStart}), nil
	case *pglogrepl.UpdateMessage:
		rel, err := d.changeRelation(walStart, data, m.RelationID)
		if err != nil {
			return Event{}, err
		}
		var before Row
		keyOnly := m.OldTupleType == pglogrepl.UpdateMessageTupleTypeKey
		if m.OldTuple != nil {
			if before, err = d.row(walStart, data[0], rel, m.OldTuple, keyOnly, nil, false); err != nil {
				return Event{}, err
			}
		}
		after, err := d.row(walStart, data[0], rel, m.NewTuple, false, before, keyOnly)
		if err != nil {
			return Event{}, err
		}
		return d.change(Change{Rel: rel, Op: OpUpdate, Before: before, BeforeKeyOnly: keyOnly && before != nil, After: after, LSN: walStart}), nil
	case *pglogrepl.DeleteMessage:
		rel, err := d.changeRelation(walStart, data, m.RelationID)
		if err != nil {
			return Event{}, err
		}
		keyOnly := m.OldTupleType == pglogrepl.DeleteMessageTupleTypeKey
		before, err := d.row(walStart, data[0], rel, m.OldTuple, keyOnly, nil, false)
		if err != nil {
			return Event{}, err
		}
		return d.change(Change{Rel: rel, Op: OpDelete, Before: before, BeforeKeyOnly: keyOnly, LSN: walStart}), nil
	case *pglogrepl.TruncateMessage:
		if d.tx == nil {
			return Event{}, d.protocolError(walStart, data, "change outside a transaction")
		}
		changes := make([]Change, 0, len(m.RelationIDs))
		for _, id := range m.RelationIDs {
			rel, ok := d.relations[id]
			if !ok {
				return Event{}, d.protocolError(walStart, data, fmt.Sprintf("truncate of relation %d, which was never announced", id))
			}
			changes = append(changes, Change{Rel: rel, Op: OpTruncate, LSN: walStart, Tx: d.tx})
		}
		return Event{Changes: changes}, nil
	case *pglogrepl.LogicalDecodingMessage:
		if !m.Transactional {
			return Event{}, nil
		}
		if d.tx == nil {
			return Event{}, d.protocolError(walStart, data, "transactional logical decoding message outside a transaction")
		}
		if d.markerPrefix != "" && m.Prefix == d.markerPrefix {
			d.tx.Sync = true
			d.tx.Origin = strings.ToValidUTF8(string(m.Content), "\uFFFD")
		}
		return Event{}, nil
	case *pglogrepl.OriginMessage, *pglogrepl.TypeMessage:
		return Event{}, nil
	default:
		return Event{}, d.protocolError(walStart, data, fmt.Sprintf("unexpected message %T", msg))
	}
}

// decodeRowChange decodes an Insert, Update or Delete message that checkFrame
// has validated, reading the tuples in place instead of through
// pglogrepl.Parse, which allocates a column struct and a copy of every value.
// It gives the same results and errors as the generic path.
func (d *Decoder) decodeRowChange(walStart pglogrepl.LSN, data []byte) (Event, error) {
	typ := data[0]
	f := frame{b: data[1:], ok: true}
	rel, err := d.changeRelation(walStart, data, f.uint32())
	if err != nil {
		return Event{}, err
	}
	switch typ {
	case 'I':
		f.byte() // 'N'
		after, err := d.rawRow(walStart, typ, rel, &f, false, nil, false)
		if err != nil {
			return Event{}, err
		}
		return d.change(Change{Rel: rel, Op: OpCreate, After: after, LSN: walStart}), nil
	case 'U':
		var before Row
		keyOnly := false
		kind := f.byte()
		if kind == 'K' || kind == 'O' {
			keyOnly = kind == 'K'
			if before, err = d.rawRow(walStart, typ, rel, &f, keyOnly, nil, false); err != nil {
				return Event{}, err
			}
			f.byte() // 'N'
		}
		after, err := d.rawRow(walStart, typ, rel, &f, false, before, keyOnly)
		if err != nil {
			return Event{}, err
		}
		return d.change(Change{Rel: rel, Op: OpUpdate, Before: before, BeforeKeyOnly: keyOnly && before != nil, After: after, LSN: walStart}), nil
	default: // 'D'
		keyOnly := f.byte() == 'K'
		before, err := d.rawRow(walStart, typ, rel, &f, keyOnly, nil, false)
		if err != nil {
			return Event{}, err
		}
		return d.change(Change{Rel: rel, Op: OpDelete, Before: before, BeforeKeyOnly: keyOnly, LSN: walStart}), nil
	}
}

// rawRow is row for a tuple read from f in place.
func (d *Decoder) rawRow(walStart pglogrepl.LSN, typ byte, rel *Relation, f *frame, keyOnly bool, before Row, beforeKeyOnly bool) (Row, error) {
	n := int(f.uint16())
	if n != len(rel.Columns) {
		return nil, &ProtocolError{WALStart: walStart, Type: typ, Reason: fmt.Sprintf(
			"tuple has %d columns but relation %s.%s has %d", n, rel.Schema, rel.Table, len(rel.Columns))}
	}
	row := make(Row, n)
	for i := range n {
		col := &rel.Columns[i]
		kind := f.byte()
		var value []byte
		if kind == 't' || kind == 'b' {
			l := f.uint32()
			value = f.b[:l]
			f.skip(uint64(l))
		}
		if keyOnly && !col.Key {
			continue
		}
		switch kind {
		case 'n':
		case 't':
			v, err := DecodeText(col.TypeOID, col.TypeMod, value, d.loc)
			if err != nil {
				return nil, d.columnError(walStart, rel, col, err)
			}
			row[i] = v
		case 'u':
			if before == nil || (beforeKeyOnly && !col.Key) {
				return nil, d.columnError(walStart, rel, col, ErrUnchangedTOAST)
			}
			row[i] = before[i]
		default: // binary: checkFrame lets only n, u, t and b through
			return nil, d.columnError(walStart, rel, col, ErrBinaryValue)
		}
	}
	return row, nil
}

func (d *Decoder) protocolError(walStart pglogrepl.LSN, data []byte, reason string) error {
	return &ProtocolError{WALStart: walStart, Type: data[0], Reason: reason}
}

// change returns the event of one change of the open transaction.
func (d *Decoder) change(c Change) Event {
	c.Tx = d.tx
	return Event{Changes: []Change{c}}
}

// changeRelation checks that a change message comes inside a transaction
// and returns its relation.
func (d *Decoder) changeRelation(walStart pglogrepl.LSN, data []byte, id uint32) (*Relation, error) {
	if d.tx == nil {
		return nil, d.protocolError(walStart, data, "change outside a transaction")
	}
	rel, ok := d.relations[id]
	if !ok {
		return nil, d.protocolError(walStart, data, fmt.Sprintf("change of relation %d, which was never announced", id))
	}
	return rel, nil
}

// relation caches the announced relation and returns it in the event when it
// is new or differs from the cached one.
func (d *Decoder) relation(m *pglogrepl.RelationMessage) Event {
	rel := &Relation{
		ID:              m.RelationID,
		Schema:          m.Namespace,
		Table:           m.RelationName,
		ReplicaIdentity: m.ReplicaIdentity,
		Columns:         make([]Column, len(m.Columns)),
	}
	for i, c := range m.Columns {
		rel.Columns[i] = Column{Name: c.Name, TypeOID: c.DataType, TypeMod: c.TypeModifier, Key: c.Flags&1 != 0}
	}
	if old, ok := d.relations[rel.ID]; ok && sameRelation(old, rel) {
		return Event{}
	}
	d.relations[rel.ID] = rel
	return Event{Relation: rel}
}

func sameRelation(a, b *Relation) bool {
	return a.ID == b.ID && a.Schema == b.Schema && a.Table == b.Table &&
		a.ReplicaIdentity == b.ReplicaIdentity && slices.Equal(a.Columns, b.Columns)
}

// row decodes a tuple of rel. With keyOnly only the key columns are decoded
// and the others left nil. An unchanged TOAST value is copied from before,
// when before holds that column (it is not key-only, or the column is a key).
func (d *Decoder) row(walStart pglogrepl.LSN, typ byte, rel *Relation, tup *pglogrepl.TupleData, keyOnly bool, before Row, beforeKeyOnly bool) (Row, error) {
	if len(tup.Columns) != len(rel.Columns) {
		return nil, &ProtocolError{WALStart: walStart, Type: typ, Reason: fmt.Sprintf(
			"tuple has %d columns but relation %s.%s has %d", len(tup.Columns), rel.Schema, rel.Table, len(rel.Columns))}
	}
	row := make(Row, len(rel.Columns))
	for i, c := range tup.Columns {
		col := &rel.Columns[i]
		if keyOnly && !col.Key {
			continue
		}
		switch c.DataType {
		case pglogrepl.TupleDataTypeNull:
		case pglogrepl.TupleDataTypeText:
			v, err := DecodeText(col.TypeOID, col.TypeMod, c.Data, d.loc)
			if err != nil {
				return nil, d.columnError(walStart, rel, col, err)
			}
			row[i] = v
		case pglogrepl.TupleDataTypeToast:
			if before == nil || (beforeKeyOnly && !col.Key) {
				return nil, d.columnError(walStart, rel, col, ErrUnchangedTOAST)
			}
			row[i] = before[i]
		default: // binary: checkFrame lets only n, u, t and b through
			return nil, d.columnError(walStart, rel, col, ErrBinaryValue)
		}
	}
	return row, nil
}

func (d *Decoder) columnError(walStart pglogrepl.LSN, rel *Relation, col *Column, err error) error {
	return &ColumnError{Schema: rel.Schema, Table: rel.Table, Column: col.Name, OID: col.TypeOID, WALStart: walStart, Err: err}
}

// frame walks a payload's fields without decoding them.
type frame struct {
	b  []byte
	ok bool
}

func (f *frame) skip(n uint64) {
	if !f.ok || uint64(len(f.b)) < n {
		f.ok = false
		return
	}
	f.b = f.b[n:]
}

func (f *frame) byte() byte {
	if !f.ok || len(f.b) < 1 {
		f.ok = false
		return 0
	}
	c := f.b[0]
	f.b = f.b[1:]
	return c
}

func (f *frame) uint16() uint16 {
	if !f.ok || len(f.b) < 2 {
		f.ok = false
		return 0
	}
	v := uint16(f.b[0])<<8 | uint16(f.b[1])
	f.b = f.b[2:]
	return v
}

func (f *frame) uint32() uint32 {
	if !f.ok || len(f.b) < 4 {
		f.ok = false
		return 0
	}
	v := uint32(f.b[0])<<24 | uint32(f.b[1])<<16 | uint32(f.b[2])<<8 | uint32(f.b[3])
	f.b = f.b[4:]
	return v
}

// cstring skips a NUL-terminated string.
func (f *frame) cstring() {
	if !f.ok {
		return
	}
	i := slices.Index(f.b, 0)
	if i < 0 {
		f.ok = false
		return
	}
	f.b = f.b[i+1:]
}

// tuple skips TupleData, failing on an unknown column kind.
func (f *frame) tuple() {
	n := f.uint16()
	for i := 0; i < int(n) && f.ok; i++ {
		switch f.byte() {
		case 'n', 'u':
		case 't', 'b':
			f.skip(uint64(f.uint32()))
		default:
			f.ok = false
		}
	}
}

// checkFrame checks that data is one complete, well-formed pgoutput protocol
// version 1 message with no trailing bytes, so that pglogrepl.Parse (which
// trusts lengths and counts) can neither panic nor allocate more than the
// payload's size. It returns "" when it is, else the reason.
func checkFrame(data []byte) string {
	f := frame{b: data[1:], ok: true}
	switch data[0] {
	case 'B': // final LSN, commit time, xid
		f.skip(8 + 8 + 4)
	case 'C': // flags, commit LSN, end LSN, commit time
		f.skip(1 + 8 + 8 + 8)
	case 'O': // origin commit LSN, name
		f.skip(8)
		f.cstring()
	case 'R': // id, namespace, name, replica identity, columns
		f.skip(4)
		f.cstring()
		f.cstring()
		f.skip(1)
		n := f.uint16()
		for i := 0; i < int(n) && f.ok; i++ {
			f.skip(1) // flags
			f.cstring()
			f.skip(4 + 4) // type OID, typmod
		}
	case 'Y': // type OID, namespace, name
		f.skip(4)
		f.cstring()
		f.cstring()
	case 'I':
		f.skip(4)
		if f.byte() != 'N' {
			return "malformed message: insert tuple is not 'N'"
		}
		f.tuple()
	case 'U':
		f.skip(4)
		switch f.byte() {
		case 'K', 'O':
			f.tuple()
			if f.byte() != 'N' {
				return "malformed message: update has no new tuple 'N'"
			}
		case 'N':
		default:
			return "malformed message: update tuple is not 'K', 'O' or 'N'"
		}
		f.tuple()
	case 'D':
		f.skip(4)
		switch f.byte() {
		case 'K', 'O':
		default:
			return "malformed message: delete tuple is not 'K' or 'O'"
		}
		f.tuple()
	case 'T': // relation count, options, relation ids
		n := f.uint32()
		f.skip(1)
		f.skip(4 * uint64(n))
	case 'M': // flags, LSN, prefix, content
		f.skip(1 + 8)
		f.cstring()
		f.skip(uint64(f.uint32()))
	default:
		return "unknown message type (replication must use proto_version '1' without streaming)"
	}
	switch {
	case !f.ok:
		return "malformed message: truncated or bad field"
	case len(f.b) != 0:
		return fmt.Sprintf("malformed message: %d trailing bytes", len(f.b))
	}
	return ""
}
