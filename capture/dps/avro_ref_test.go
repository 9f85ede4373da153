package dps

import (
	"fmt"
	"strconv"
	"time"
)

// The map-based (goavro native) form of the change records: the reference
// that TestFastEncodingMatchesGoavro checks the capture's direct binary
// encoding against.

// record converts a row to the Avro native record; nil for a nil row.
func (s *rowShape) record(r Row) (map[string]any, error) {
	if r == nil {
		return nil, nil
	}
	rec := make(map[string]any, len(s.names))
	for i, name := range s.names {
		var v any
		if i < len(r) {
			v = r[i]
		}
		switch {
		case v == nil && !s.nullable[i]:
			return nil, fmt.Errorf("column %s of %s.%s: %w", name, s.table.Schema, s.table.Table, ErrNullInNotNull)
		case v == nil:
			rec[name] = nil
		case s.nullable[i]:
			rec[name] = map[string]any{s.branch[i]: v}
		default:
			rec[name] = v
		}
	}
	return rec, nil
}

// key converts the key columns of a row to the Avro key record.
func (s *rowShape) key(r Row) (map[string]any, error) {
	rec := make(map[string]any, len(s.keyIdx))
	for j, i := range s.keyIdx {
		if i >= len(r) || r[i] == nil {
			return nil, fmt.Errorf("key column %s of %s.%s is null: %w", s.table.Key[j], s.table.Schema, s.table.Table, ErrNullInNotNull)
		}
		rec[s.table.Key[j]] = r[i]
	}
	return rec, nil
}

// sourceRecord is the Avro native Source block of a change.
func sourceRecord(version, db string, t *TableInfo, tx *Tx, lsn uint64, snapshot bool) map[string]any {
	var origin any
	if tx.Origin != "" {
		origin = map[string]any{"string": tx.Origin}
	}
	snap := "false"
	if snapshot {
		snap = "true"
	}
	var lsnV any
	if lsn != 0 {
		lsnV = map[string]any{"long": int64(lsn)} //nolint:gosec // LSNs are below 2^63 in practice (16 EiB of WAL)
	}
	var txID any
	if tx.XID != 0 {
		txID = map[string]any{"string": strconv.FormatUint(uint64(tx.XID), 10)}
	}
	return map[string]any{
		"version":   version,
		"connector": "postgresql",
		"name":      "dps",
		"ts_ms":     tx.CommitTime.UnixMilli(),
		"snapshot":  snap,
		"db":        db,
		"schema":    t.Schema,
		"table":     t.Table,
		"txId":      txID,
		"position":  map[string]any{"commit": int64(tx.CommitLSN), "change": int64(lsn)}, //nolint:gosec // as above
		"lsn":       lsnV,
		"origin":    origin,
		"sync":      tx.Sync,
	}
}

// envelope builds the Avro native envelope of a change.
func envelope(before, after map[string]any, source map[string]any, op Op, now time.Time, rowType string) map[string]any {
	var b, a any
	if before != nil {
		b = map[string]any{rowType: before}
	}
	if after != nil {
		a = map[string]any{rowType: after}
	}
	return map[string]any{"before": b, "after": a, "source": source, "op": string(op), "ts_ms": now.UnixMilli()}
}
