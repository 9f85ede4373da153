package dps

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/alertsync/alertsync/internal/avrobin"
)

// The change records are the capture's hot path. Instead of building goavro's
// map-based native values and letting goavro walk them, the capture writes
// the Avro binary encoding of the envelope it generated itself (tableSchemas)
// directly from the decoded Row. TestFastEncodingMatchesGoavro checks, for
// rows of every type and every NULL pattern, that the bytes are identical to
// goavro's encoding of the same record under the registered schema.

// appendColumn appends one column value of the given type (non-null).
func appendColumn(b []byte, oid uint32, v any) ([]byte, error) {
	switch oid {
	case pgtype.BoolOID:
		x, ok := v.(bool)
		if !ok {
			break
		}
		return avrobin.AppendBool(b, x), nil
	case pgtype.Int2OID, pgtype.Int4OID:
		x, ok := v.(int32)
		if !ok {
			break
		}
		return avrobin.AppendLong(b, int64(x)), nil
	case pgtype.Int8OID, pgtype.OIDOID:
		x, ok := v.(int64)
		if !ok {
			break
		}
		return avrobin.AppendLong(b, x), nil
	case pgtype.Float4OID, pgtype.Float8OID:
		x, ok := v.(float64)
		if !ok {
			break
		}
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(x)), nil
	case pgtype.DateOID:
		x, ok := v.(time.Time)
		if !ok {
			break
		}
		days := x.Unix() / 86400
		if x.Unix() < 0 && x.Unix()%86400 != 0 {
			days-- // floor for dates before 1970
		}
		return avrobin.AppendLong(b, days), nil
	case pgtype.TimestampOID, pgtype.TimestamptzOID:
		x, ok := v.(time.Time)
		if !ok {
			break
		}
		return avrobin.AppendLong(b, x.UnixMicro()), nil
	case pgtype.ByteaOID:
		x, ok := v.([]byte)
		if !ok {
			break
		}
		b = avrobin.AppendLong(b, int64(len(x)))
		return append(b, x...), nil
	default:
		x, ok := v.(string)
		if !ok {
			break
		}
		return avrobin.AppendString(b, x), nil
	}
	return b, fmt.Errorf("column type oid %d: unexpected Go value %T", oid, v)
}

// appendRow appends the row record of s (every column, in relation order).
func (s *rowShape) appendRow(b []byte, r Row) ([]byte, error) {
	for i, name := range s.names {
		var v any
		if i < len(r) {
			v = r[i]
		}
		if v == nil {
			if !s.nullable[i] {
				return b, fmt.Errorf("column %s of %s.%s: %w", name, s.table.Schema, s.table.Table, ErrNullInNotNull)
			}
			b = append(b, 0) // union branch 0: null
			continue
		}
		if s.nullable[i] {
			b = append(b, 2) // union branch 1 (zig-zag 1 = 2)
		}
		var err error
		if b, err = appendColumn(b, s.oids[i], v); err != nil {
			return b, fmt.Errorf("column %s of %s.%s: %w", name, s.table.Schema, s.table.Table, err)
		}
	}
	return b, nil
}

// appendKey appends the key record of the row.
func (s *rowShape) appendKey(b []byte, r Row) ([]byte, error) {
	for j, i := range s.keyIdx {
		if i >= len(r) || r[i] == nil {
			return b, fmt.Errorf("key column %s of %s.%s is null: %w", s.table.Key[j], s.table.Schema, s.table.Table, ErrNullInNotNull)
		}
		var err error
		if b, err = appendColumn(b, s.oids[i], r[i]); err != nil {
			return b, err
		}
	}
	return b, nil
}

// sourcePrefix holds the constant parts of a table's Source block, encoded.
type sourcePrefix struct {
	head     []byte // version, connector, name
	tail     []byte // snapshot "false", db, schema, table
	snapTail []byte // snapshot "true", db, schema, table
}

func newSourcePrefix(version, db string, t *TableInfo) sourcePrefix {
	var p sourcePrefix
	p.head = avrobin.AppendString(avrobin.AppendString(avrobin.AppendString(nil, version), "postgresql"), "dps")
	rest := avrobin.AppendString(avrobin.AppendString(avrobin.AppendString(nil, db), t.Schema), t.Table)
	p.tail = append(avrobin.AppendString(nil, "false"), rest...)
	p.snapTail = append(avrobin.AppendString(nil, "true"), rest...)
	return p
}

// appendSource appends the Source record of a change.
func (p *sourcePrefix) appendSource(b []byte, tx *Tx, lsn uint64, snapshot bool) []byte {
	b = append(b, p.head...)
	b = avrobin.AppendLong(b, tx.CommitTime.UnixMilli())
	if snapshot {
		b = append(b, p.snapTail...)
	} else {
		b = append(b, p.tail...)
	}
	if tx.XID != 0 { // txId, as a decimal string
		var tmp [10]byte
		d := strconv.AppendUint(tmp[:0], uint64(tx.XID), 10)
		b = append(b, 2)
		b = avrobin.AppendLong(b, int64(len(d)))
		b = append(b, d...)
	} else {
		b = append(b, 0)
	}
	b = avrobin.AppendLong(b, int64(tx.CommitLSN)) //nolint:gosec // LSNs stay below 2^63
	b = avrobin.AppendLong(b, int64(lsn))          //nolint:gosec // as above
	if lsn != 0 {
		b = append(b, 2)
		b = avrobin.AppendLong(b, int64(lsn)) //nolint:gosec // as above
	} else {
		b = append(b, 0)
	}
	if tx.Origin != "" {
		b = append(b, 2)
		b = avrobin.AppendString(b, tx.Origin)
	} else {
		b = append(b, 0)
	}
	return avrobin.AppendBool(b, tx.Sync)
}

// appendEnvelope appends the envelope of a change: before, after, source, op, ts_ms.
func (s *rowShape) appendEnvelope(b []byte, p *sourcePrefix, before, after Row, tx *Tx, lsn uint64, op Op, snapshot bool, now time.Time) ([]byte, error) {
	var err error
	for _, r := range []Row{before, after} {
		if r == nil {
			b = append(b, 0)
			continue
		}
		b = append(b, 2)
		if b, err = s.appendRow(b, r); err != nil {
			return b, err
		}
	}
	b = p.appendSource(b, tx, lsn, snapshot)
	b = avrobin.AppendString(b, string(op))
	return avrobin.AppendLong(b, now.UnixMilli()), nil
}
