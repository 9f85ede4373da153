package nomis

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/schemas"
)

// nativeEnvelope is the reference form of a record value: goavro's native
// map, built field by field from the schema's names (what the capture did
// before it encoded directly).
func nativeEnvelope(b *builder, o *outRecord, now time.Time) map[string]any {
	t, src := o.table, o.src
	var txID *string
	if src.txID != "" {
		txID = &src.txID
	}
	snapshot := "false"
	if src.snapshot {
		snapshot = "true"
	}
	v := map[string]any{
		"before": schemas.OptRecord(t.rowType, t.native(o.before)),
		"after":  schemas.OptRecord(t.rowType, t.native(o.after)),
		"source": map[string]any{
			"version": b.version, "connector": "oracle", "name": "nomis", "ts_ms": src.pos.CommitTime.UnixMilli(),
			"snapshot": snapshot, "db": b.db, "schema": "oms_owner", "table": t.name, "txId": schemas.OptString(txID),
			"position": map[string]any{"commit": src.pos.Commit, "change": src.pos.ID},
			"lsn":      nil, "origin": schemas.OptString(src.module),
			"sync": src.module != nil && *src.module == SyncModule,
		},
		"op":    o.op,
		"ts_ms": now.UnixMilli(),
	}
	if src.session {
		v["session"] = schemas.OptRecord(schemas.TypeNOMISSession, map[string]any{
			"module":          schemas.OptString(src.module),
			"additional_info": schemas.OptString(src.additional),
			"user":            schemas.OptString(src.user),
		})
	} else {
		v["session"] = nil
	}
	if t.context {
		c := o.context
		v["context"] = schemas.OptRecord(schemas.TypeNOMISAlertContext, map[string]any{
			"offender_no":  schemas.OptString(c.OffenderNo),
			"booking_seq":  schemas.OptInt(c.BookingSeq),
			"dps_alert_id": schemas.OptString(c.DPSAlertID),
		})
	}
	return v
}

// withNulls returns a copy of r with every nullable column of t null.
func withNulls(tb *table, r row) row {
	out := slices.Clone(r)
	for i, c := range tb.columns {
		if c.nullable {
			out[i] = nil
		}
	}
	return out
}

// TestFastEncodingMatchesGoavro: the bytes the capture writes for keys and
// values equal goavro's encoding of the reference native form under the
// registered schemas, for every table, op, NULL pattern, session and
// context, and for snapshot records.
func TestFastEncodingMatchesGoavro(t *testing.T) {
	t.Parallel()
	tables := mustTables(t)
	b := &builder{tables: tables, loc: london(t), version: "1.2.3", db: "NOMIS"}
	commit := time.Date(2024, 6, 2, 10, 0, 0, 123456000, time.UTC)
	now := commit.Add(1500 * time.Millisecond)
	seq := int32(1)
	full := AlertContext{OffenderNo: str("A1234BC"), BookingSeq: &seq, DPSAlertID: str("0190a3f4-0000-7000-8000-00000000a001")}
	images := map[string][]byte{
		TableOffenderAlerts:   alertRow(10, 1),
		TableOffenderBookings: bookingJSON(1, 7),
		TableOffenders: []byte(`{"offender_id":7,"offender_id_display":"A1234BC","root_offender_id":7,"last_name":"SMITH","first_name":"JO",` +
			`"birth_date":"1990-01-02T00:00:00","create_datetime":"2024-03-01T10:00:00","create_user_id":"U"}`),
	}
	origins := map[string]*origin{
		"journal, all session values": {pos: JournalKey{ID: 42, Commit: commit.UnixMicro(), CommitTime: commit}, txID: "123456",
			session: true, module: str(SyncModule), additional: str("OMKCOPY.COPY_BOOKING_DATA"), user: str("OMS_OWNER")},
		"journal, no session values": {pos: JournalKey{ID: 1, Commit: 1, CommitTime: time.UnixMicro(1)}, session: true},
		"snapshot":                   {pos: JournalKey{Commit: commit.UnixMicro(), CommitTime: commit}, snapshot: true},
	}
	for name, tb := range tables {
		keyCodec, valueCodec := codecs(t, tb.topic)
		for _, nulls := range []bool{false, true} {
			img, err := tb.image("new_row", images[name], b.loc)
			require.NoError(t, err, name)
			if nulls {
				img = withNulls(tb, img)
			}
			for oname, src := range origins {
				for _, op := range []string{opCreate, opUpdate, opDelete, opRead} {
					for _, ctx := range []AlertContext{{}, full} {
						o := outRecord{table: tb, op: op, key: tb.keyOf(img), src: src, context: ctx}
						switch op {
						case opCreate, opRead:
							o.after = img
						case opUpdate:
							o.before, o.after = img, img
						case opDelete:
							o.before = img
						}
						label := strings.Join([]string{name, oname, op}, "/")
						want, err := valueCodec.BinaryFromNative(nil, nativeEnvelope(b, &o, now))
						require.NoError(t, err, label)
						got, err := b.appendEnvelope(nil, &o, now)
						require.NoError(t, err, label)
						require.Equal(t, want, got, label)

						wantKey, err := keyCodec.BinaryFromNative(nil, tb.nativeKey(o.key))
						require.NoError(t, err, label)
						gotKey, err := tb.appendKey(nil, o.key)
						require.NoError(t, err, label)
						require.Equal(t, wantKey, gotKey, label)
					}
				}
			}
		}
	}
}

// TestEncodingRefusesForeignValues: a row value of a type image never makes
// is an encode error naming the column, not a panic or a wrong record.
func TestEncodingRefusesForeignValues(t *testing.T) {
	t.Parallel()
	tables := mustTables(t)
	tb := tables[TableOffenderAlerts]
	img, err := tb.image("new_row", alertRow(10, 1), london(t))
	require.NoError(t, err)
	img[tb.index["alert_code"]] = 3.5
	b := &builder{tables: tables, loc: london(t)}
	_, err = b.appendEnvelope(nil, &outRecord{table: tb, op: opCreate, after: img, key: tb.keyOf(img), src: &origin{}}, time.Now())
	var re *RowError
	require.ErrorAs(t, err, &re)
	require.Equal(t, KindEncode, re.Kind)
	require.Equal(t, "alert_code", re.Column)
}
