package dps

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/linkedin/goavro/v2"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/schemas"
)

// randomValue returns a random Go value of the kind DecodeText returns for oid.
func randomValue(rng *rand.Rand, oid uint32) any {
	switch oid {
	case pgtype.BoolOID:
		return rng.IntN(2) == 1
	case pgtype.Int2OID, pgtype.Int4OID:
		return int32(rng.Uint32()) //nolint:gosec // any bit pattern
	case pgtype.Int8OID, pgtype.OIDOID:
		return int64(rng.Uint64()) //nolint:gosec // any bit pattern
	case pgtype.Float4OID, pgtype.Float8OID:
		return rng.NormFloat64() * 1e6
	case pgtype.DateOID:
		return time.Date(1900+rng.IntN(200), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
	case pgtype.TimestampOID, pgtype.TimestamptzOID:
		return time.UnixMicro(rng.Int64N(4e15) - 2e15).UTC()
	case pgtype.ByteaOID:
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	case pgtype.UUIDOID:
		return "0190a3f4-0000-7000-8000-" + strings.Repeat("0", 12)
	default:
		words := []string{"", "x", "Risk to staff", "£ é 😀", strings.Repeat("long text ", 400)}
		return words[rng.IntN(len(words))]
	}
}

// TestFastEncodingMatchesGoavro: for every DPS table, random rows with every
// NULL pattern, every op and with and without a marker and snapshot flag, the
// capture's direct binary encoding equals goavro's encoding of the same
// record under the registered schema, byte for byte, and decodes back.
func TestFastEncodingMatchesGoavro(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, h.db.DSN)
	require.NoError(t, err)
	defer func() { _ = conn.Close(ctx) }()
	codec := schemas.New(h.srcl)
	rng := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // reproducible test data
	for _, table := range []string{"alert", "alert_code", "alert_type", "audit_event"} {
		t.Run(table, func(t *testing.T) {
			info, err := loadTable(ctx, conn, "public", table)
			require.NoError(t, err)
			st, err := tableSchemas(info)
			require.NoError(t, err)
			tc, err := codec.BindTopic(ctx, st)
			require.NoError(t, err)
			rel := &Relation{Schema: "public", Table: table}
			for _, c := range info.Columns {
				rel.Columns = append(rel.Columns, Column{Name: c.Name, TypeOID: c.TypeOID})
			}
			shape, err := newRowShape(info, rel)
			require.NoError(t, err)
			src := newSourcePrefix("v1.2.3", "alerts", info)
			row := func() Row {
				r := make(Row, len(info.Columns))
				for i, c := range info.Columns {
					if c.Nullable && rng.IntN(3) == 0 {
						continue
					}
					r[i] = randomValue(rng, c.TypeOID)
				}
				return r
			}
			for i := range 300 {
				tx := &Tx{XID: rng.Uint32N(1 << 31), CommitLSN: pglogrepl.LSN(0x16B3748 + i*256), CommitTime: time.UnixMilli(1.7e12 + int64(i)).UTC()}
				if i%3 == 0 {
					tx.XID = 0
				}
				if i%4 == 0 {
					tx.Sync, tx.Origin = true, "apply-dps"
				}
				op := []Op{OpCreate, OpUpdate, OpDelete, OpRead}[i%4]
				var before, after Row
				switch op {
				case OpCreate, OpRead:
					after = row()
				case OpUpdate:
					before, after = row(), row()
				case OpDelete:
					before = row()
				}
				lsn := uint64(0)
				if op != OpRead {
					lsn = 0x16B3748 + uint64(i)*40 //nolint:gosec // small test values
				}
				now := time.UnixMilli(1.8e12).UTC()
				snapshot := op == OpRead

				fast, err := shape.appendEnvelope(nil, &src, before, after, tx, lsn, op, snapshot, now)
				require.NoError(t, err)
				b, err := shape.record(before)
				require.NoError(t, err)
				a, err := shape.record(after)
				require.NoError(t, err)
				ref, err := tc.Value.Append(nil, envelope(b, a, sourceRecord("v1.2.3", "alerts", info, tx, lsn, snapshot), op, now, tc.Schemas.RowType))
				require.NoError(t, err)
				require.True(t, bytes.Equal(ref[5:], fast), "table %s row %d op %c: fast encoding differs from goavro", table, i, op)

				keyRow := after
				if op == OpDelete {
					keyRow = before
				}
				fastKey, err := shape.appendKey(nil, keyRow)
				require.NoError(t, err)
				k, err := shape.key(keyRow)
				require.NoError(t, err)
				refKey, err := tc.Key.Append(nil, k)
				require.NoError(t, err)
				require.True(t, bytes.Equal(refKey[5:], fastKey), "table %s row %d: key differs", table, i)
			}
		})
	}
}

// BenchmarkEncodeEnvelope compares the capture's direct encoding of an alert
// change with goavro's map-based encoding of the same record.
func BenchmarkEncodeEnvelope(b *testing.B) {
	info := &TableInfo{Schema: "public", Table: "alert", Key: []string{"id"}, Columns: []ColumnInfo{
		{"id", pgtype.UUIDOID, false}, {"alert_code_id", pgtype.Int8OID, false}, {"prison_number", pgtype.VarcharOID, false},
		{"description", pgtype.TextOID, true}, {"authorised_by", pgtype.VarcharOID, true}, {"active_from", pgtype.DateOID, false},
		{"active_to", pgtype.DateOID, true}, {"created_at", pgtype.TimestampOID, false}, {"last_modified_at", pgtype.TimestampOID, true},
		{"deleted_at", pgtype.TimestampOID, true}, {"prison_code_when_created", pgtype.VarcharOID, true}, {"version", pgtype.Int4OID, false},
	}}
	rel := &Relation{Schema: "public", Table: "alert"}
	for _, c := range info.Columns {
		rel.Columns = append(rel.Columns, Column{Name: c.Name, TypeOID: c.TypeOID})
	}
	shape, err := newRowShape(info, rel)
	require.NoError(b, err)
	ts := time.Date(2024, 6, 1, 11, 0, 0, 0, time.UTC)
	row := Row{"0190a3f4-0000-7000-8000-000000000001", int64(42), "A1234BC", "Risk to staff on the wing", "Officer Smith",
		time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), nil, ts, ts, nil, "LEI", int32(3)}
	tx := &Tx{XID: 123456, CommitLSN: 0x16B3748, CommitTime: ts}
	src := newSourcePrefix("v1", "alerts", info)
	b.Run("direct", func(b *testing.B) {
		buf := make([]byte, 0, 512)
		for b.Loop() {
			var err error
			if buf, err = shape.appendEnvelope(buf[:0], &src, nil, row, tx, 0x16B3750, OpCreate, false, ts); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("goavro", func(b *testing.B) {
		st, err := tableSchemas(info)
		require.NoError(b, err)
		codec, err := goavro.NewCodec(st.Value.Schema)
		require.NoError(b, err)
		buf := make([]byte, 0, 512)
		for b.Loop() {
			a, err := shape.record(row)
			if err != nil {
				b.Fatal(err)
			}
			v := envelope(nil, a, sourceRecord("v1", "alerts", info, tx, 0x16B3750, false), OpCreate, ts, st.RowType)
			if buf, err = codec.BinaryFromNative(buf[:0], v); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}
