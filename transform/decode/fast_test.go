package decode

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/avrobin"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/rules"
)

// fastTopic ties a topic's Fast decoder to the goavro + map-based path it
// must agree with.
type fastTopic struct {
	name string
	fast func(d *fastDecoder, key, value []byte) (any, error)
	slow func(key, value any) (any, error)
}

var (
	fastNOMIS = fastTopic{schemas.TopicNOMISOffenderAlerts,
		func(d *fastDecoder, k, v []byte) (any, error) { c, err := d.nomisAlert(k, v); return c, err },
		func(k, v any) (any, error) { c, err := NOMISAlert(k, v); return c, err }}
	fastDPS = fastTopic{schemas.TopicDPSAlert,
		func(d *fastDecoder, k, v []byte) (any, error) { c, err := d.dpsAlert(k, v); return c, err },
		func(k, v any) (any, error) { c, err := DPSAlert(k, v); return c, err }}
	fastSnapshot = fastTopic{schemas.TopicNOMISPrisonerAlerts,
		func(d *fastDecoder, k, v []byte) (any, error) { s, err := d.nomisSnapshot(k, v); return s, err },
		func(k, v any) (any, error) { s, err := NOMISSnapshot(k, v); return s, err }}
)

type codecPair struct{ key, value *goavro.Codec }

var topicCodecs sync.Map // topic → codecPair

// codecs returns goavro codecs of the current key and value schemas of topic.
func codecs(tb testing.TB, topic string) codecPair {
	tb.Helper()
	if c, ok := topicCodecs.Load(topic); ok {
		return c.(codecPair)
	}
	tp, ok := schemas.LookupTopic(topic)
	require.True(tb, ok, "topic %s not in the schema catalog", topic)
	k, err := goavro.NewCodec(tp.Key.Schema)
	require.NoError(tb, err)
	v, err := goavro.NewCodec(tp.Value.Schema)
	require.NoError(tb, err)
	c, _ := topicCodecs.LoadOrStore(topic, codecPair{k, v})
	return c.(codecPair)
}

func encode(tb testing.TB, c *goavro.Codec, native any) []byte {
	tb.Helper()
	b, err := c.BinaryFromNative(nil, native)
	require.NoError(tb, err)
	return b
}

// goavroBody decodes body as schemas.Codec.Decode does: the whole body, a
// panic counting as a refusal.
func goavroBody(c *goavro.Codec, body []byte) (native any, ok bool) {
	defer func() {
		if recover() != nil {
			native, ok = nil, false
		}
	}()
	n, rest, err := c.NativeFromBinary(body)
	return n, err == nil && len(rest) == 0
}

// checkFast requires the Fast decoder of tp to agree with goavro and the
// map-based decoder on key and value (bodies without header).
func checkFast(t testing.TB, tp fastTopic, key, value []byte) {
	t.Helper()
	var d fastDecoder
	got, gotErr := tp.fast(&d, key, value)
	cs := codecs(t, tp.name)
	kn, kok := goavroBody(cs.key, key)
	if value == nil {
		want, wantErr := tp.slow(kn, nil)
		require.ErrorIs(t, gotErr, ErrTombstone)
		require.Equal(t, wantErr, gotErr)
		require.Equal(t, want, got)
		return
	}
	if gotErr != nil {
		var e *Error
		require.ErrorAs(t, gotErr, &e, "Fast returned %T: %v", gotErr, gotErr)
		require.Equal(t, rules.StageTransform, e.Stage)
		require.NotEmpty(t, e.Field)
		require.NotContains(t, gotErr.Error(), secret, "error quotes alert text")
	}
	vn, vok := goavroBody(cs.value, value)
	if !kok || !vok {
		require.Error(t, gotErr, "goavro refuses the record (key %v, value %v), Fast accepts it", kok, vok)
		return
	}
	if gotErr != nil && errors.Is(d.cause, avrobin.ErrOverflow) {
		// The one documented difference: goavro wraps an over-long varint,
		// Fast refuses it (TestFastOverflow).
		return
	}
	want, wantErr := tp.slow(kn, vn)
	require.Equal(t, wantErr, gotErr)
	require.Equal(t, want, got)
}

// checkFastBroken checks Fast against goavro on every truncation of key and
// value, on trailing bytes, and on value bytes replaced by a few others.
func checkFastBroken(t *testing.T, tp fastTopic, key, value []byte) {
	t.Helper()
	for n := range len(key) {
		checkFast(t, tp, key[:n:n], value)
	}
	for n := range len(value) {
		checkFast(t, tp, key, value[:n:n])
	}
	checkFast(t, tp, append(key[:len(key):len(key)], 0), value)
	checkFast(t, tp, key, append(value[:len(value):len(value)], 0))
	mutated := make([]byte, len(value))
	for i := range value {
		for _, b := range []byte{0x00, 0x01, 0x02, 0x03, 0x7f, 0x80, 0xff, value[i] ^ 0x01, value[i] ^ 0x80} {
			copy(mutated, value)
			mutated[i] = b
			checkFast(t, tp, key, mutated)
		}
	}
}

// nullVariants returns, for each ["null", T] union holding a T in native
// (at any depth), a copy of native with that union null, by path.
func nullVariants(native any, path string) map[string]any {
	out := map[string]any{}
	switch x := native.(type) {
	case map[string]any:
		if branch, v, ok := unionOf(x); ok {
			out[path] = nil
			for p, sub := range nullVariants(v, path) {
				out[p] = goavro.Union(branch, sub)
			}
			return out
		}
		for k, v := range x {
			for p, sub := range nullVariants(v, joinPath(path, k)) {
				c := make(map[string]any, len(x))
				for kk, vv := range x {
					c[kk] = vv
				}
				c[k] = sub
				out[p] = c
			}
		}
	case []any:
		for i, v := range x {
			for p, sub := range nullVariants(v, fmt.Sprintf("%s[%d]", path, i)) {
				c := append([]any(nil), x...)
				c[i] = sub
				out[p] = c
			}
		}
	}
	return out
}

// allNull returns a copy of native with every union null.
func allNull(native any) any {
	switch x := native.(type) {
	case map[string]any:
		if _, _, ok := unionOf(x); ok {
			return nil
		}
		c := make(map[string]any, len(x))
		for k, v := range x {
			c[k] = allNull(v)
		}
		return c
	case []any:
		c := make([]any, len(x))
		for i, v := range x {
			c[i] = allNull(v)
		}
		return c
	}
	return native
}

// unionOf tells a goavro union value from a record: one key, a branch name
// (a primitive, a logical type or a full record name, which has a dot).
func unionOf(m map[string]any) (branch string, v any, ok bool) {
	if len(m) != 1 {
		return "", nil, false
	}
	for k, v := range m {
		switch k {
		case schemas.BranchString, schemas.BranchLong, schemas.BranchInt, schemas.BranchBoolean, schemas.BranchDate, schemas.BranchTimestamp:
			return k, v, true
		}
		return k, v, strings.Contains(k, ".")
	}
	return "", nil, false
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// fastRecord is a test record: natives encoded by goavro under the current
// schemas.
type fastRecord struct {
	key, value any
}

func (r fastRecord) bytes(tb testing.TB, topic string) (key, value []byte) {
	tb.Helper()
	cs := codecs(tb, topic)
	if r.value == nil {
		return encode(tb, cs.key, r.key), nil
	}
	return encode(tb, cs.key, r.key), encode(tb, cs.value, r.value)
}

func asRecord(key, value any) fastRecord { return fastRecord{key, value} }

// fullSource is a source block with every nullable field set.
func fullSource(name string, src rules.Source) map[string]any {
	s := sourceNative(name, src)
	s["txId"] = schemas.OptString(ptr("1.2.3"))
	s["lsn"] = schemas.OptLong(ptr(int64(0x16B3748)))
	s["origin"] = schemas.OptString(ptr("OCDALERT"))
	return s
}

// fullNOMISRow is an offender_alerts row with every nullable column set,
// skipped ones included.
func fullNOMISRow(seq int32) map[string]any {
	r := nomisRow(seq)
	r.ExpiryDate, r.ModifyUserID, r.ModifyDatetime = ptr(ts(2025, time.January, 31, 0, 0)), ptr("KJONES"), ptr(ts(2024, time.May, 2, 10, 0))
	n := nomisRowNative(r)
	n["create_date"] = schemas.OptTimestamp(ptr(ts(2024, time.April, 1, 0, 0)))
	n["audit_timestamp"] = schemas.OptTimestamp(ptr(ts(2024, time.May, 2, 10, 0)))
	for _, c := range []string{"audit_user_id", "audit_module_name", "audit_client_user_id", "audit_client_ip_address", "audit_client_workstation_name", "audit_additional_info"} {
		n[c] = schemas.OptString(ptr("AUDIT-" + c))
	}
	return n
}

func fullNOMISChange(op string, sync bool) fastRecord {
	row := func() any { return schemas.OptRecord(nomisRowType, fullNOMISRow(1)) }
	return fastRecord{
		key: map[string]any{"offender_book_id": int64(1001), "alert_seq": int32(1)},
		value: map[string]any{
			"before": row(), "after": row(), "source": fullSource("nomis", nomisSource(sync)), "op": op, "ts_ms": int64(1_700_000_000_000),
			"session": schemas.OptRecord(schemas.TypeNOMISSession, map[string]any{
				"module": schemas.OptString(ptr("OCDALERT")), "additional_info": schemas.OptString(ptr(rules.BookingCopyInfo)), "user": schemas.OptString(ptr("JSMITH")),
			}),
			"context": schemas.OptRecord(schemas.TypeNOMISAlertContext, map[string]any{
				"offender_no": schemas.OptString(ptr("A1234BC")), "booking_seq": schemas.OptInt(ptr(int32(1))),
				"dps_alert_id": schemas.Union(schemas.BranchUUID, dpsID),
			}),
		},
	}
}

func fullDPSRow(id string) map[string]any {
	r := dpsRow()
	r.ID = id
	r.ActiveTo, r.LastModifiedAt, r.DeletedAt = ptr(rules.DateOf(2024, time.May, 1)), ptr(ts(2024, time.May, 1, 8, 0)), ptr(ts(2024, time.May, 3, 12, 0))
	return dpsRowNative(&r).(map[string]any)[dpsRowType].(map[string]any)
}

func fullDPSChange(op string, sync bool) fastRecord {
	src := dpsChanges()["create"].Source
	src.Sync = sync
	row := func() any { return schemas.OptRecord(dpsRowType, fullDPSRow(dpsID)) }
	return fastRecord{
		key:   map[string]any{"id": dpsID},
		value: map[string]any{"before": row(), "after": row(), "source": fullSource("dps", src), "op": op, "ts_ms": int64(1_700_000_000_000)},
	}
}

func snapshotAlertNative(seq int32, withID bool) map[string]any {
	var id any
	if withID {
		id = schemas.Union(schemas.BranchUUID, fmt.Sprintf("0190a3c4-1b2c-7d8e-9f00-%012d", seq))
	}
	return map[string]any{
		"position":     map[string]any{"commit": int64(5_000_100), "change": int64(seq)},
		"dps_alert_id": id, "row": fullNOMISRow(seq),
	}
}

func fullSnapshot(reason string, alerts int) fastRecord {
	items := make([]any, 0, alerts)
	for i := range alerts {
		items = append(items, snapshotAlertNative(int32(i+1), i%2 == 0))
	}
	return fastRecord{
		key: map[string]any{"offender_no": "A1234BC"},
		value: map[string]any{
			"offender_no": "A1234BC", "reason": reason, "source": fullSource("nomis", nomisSource(false)),
			"ts_ms": int64(1_700_000_000_000), "booking_ids": []any{int64(1001), int64(1002)}, "alerts": items,
		},
	}
}

// fastCases returns the records of tp the differential tests run, by name.
func fastCases(t *testing.T, tp fastTopic) map[string]fastRecord {
	t.Helper()
	cases := map[string]fastRecord{}
	var full fastRecord
	switch tp.name {
	case schemas.TopicNOMISOffenderAlerts:
		for name, ch := range nomisChanges() {
			cases[name] = asRecord(nomisNatives(t, ch))
		}
		for _, op := range []string{"c", "u", "d", "r", "t", "x", "", "create"} {
			for _, sync := range []bool{false, true} {
				cases[fmt.Sprintf("full, op %q, sync %v", op, sync)] = fullNOMISChange(op, sync)
			}
		}
		full = fullNOMISChange("u", false)
		for name, edit := range map[string]func(k, v map[string]any){
			"key of another seq":     func(k, _ map[string]any) { k["alert_seq"] = int32(2) },
			"key of another booking": func(k, _ map[string]any) { k["offender_book_id"] = int64(1) },
			"before of another alert": func(_, v map[string]any) {
				v["before"] = schemas.OptRecord(nomisRowType, fullNOMISRow(2))
			},
			"no images": func(_, v map[string]any) { v["before"], v["after"] = nil, nil },
			"not UTF-8 text": func(_, v map[string]any) {
				rowOf(v, "after", nomisRowType)["comment_text"] = schemas.OptString(ptr("\xff\xfe" + secret))
			},
			"empty strings": func(_, v map[string]any) { rowOf(v, "after", nomisRowType)["alert_code"] = "" },
			"long comment": func(_, v map[string]any) {
				rowOf(v, "after", nomisRowType)["comment_text"] = schemas.OptString(ptr(strings.Repeat("é", 2000)))
			},
			"extreme timestamps": func(_, v map[string]any) { nomisExtremes(v) },
		} {
			rec := fullNOMISChange("u", false)
			edit(rec.key.(map[string]any), rec.value.(map[string]any))
			cases[name] = rec
		}
	case schemas.TopicDPSAlert:
		for name, ch := range dpsChanges() {
			cases[name] = asRecord(dpsNatives(t, ch))
		}
		for _, op := range []string{"c", "u", "d", "r", "t", "x", "", "create"} {
			for _, sync := range []bool{false, true} {
				cases[fmt.Sprintf("full, op %q, sync %v", op, sync)] = fullDPSChange(op, sync)
			}
		}
		full = fullDPSChange("u", false)
		for name, edit := range map[string]func(k, v map[string]any){
			"key of another alert": func(k, _ map[string]any) { k["id"] = "0190a3c4-0000-7000-8000-000000000000" },
			"after of another alert": func(_, v map[string]any) {
				v["after"] = schemas.OptRecord(dpsRowType, fullDPSRow("0190a3c4-0000-7000-8000-000000000000"))
			},
			"no images": func(_, v map[string]any) { v["before"], v["after"] = nil, nil },
			"extreme values": func(_, v map[string]any) {
				r := rowOf(v, "after", dpsRowType)
				r["active_from"], r["active_to"] = int32(math.MinInt32), schemas.Union(schemas.BranchDate, int32(math.MaxInt32))
				r["created_at"], r["deleted_at"] = int64(math.MinInt64), schemas.Union(schemas.BranchTimestamp, int64(math.MaxInt64))
				r["version"], r["alert_code_id"] = int32(math.MinInt32), int64(math.MaxInt64)
				v["source"].(map[string]any)["ts_ms"] = int64(math.MinInt64)
			},
		} {
			rec := fullDPSChange("u", false)
			edit(rec.key.(map[string]any), rec.value.(map[string]any))
			cases[name] = rec
		}
	case schemas.TopicNOMISPrisonerAlerts:
		for name, s := range snapshots() {
			cases[name] = asRecord(snapshotNatives(t, s))
		}
		symbols := schemaEnumSymbols(t, tp.name, "alertsync.nomis.alertsync.prisoner_alerts.Reason")
		for i, reason := range symbols {
			cases[fmt.Sprintf("%d alerts, %s", i, reason)] = fullSnapshot(reason, i)
		}
		cases["many alerts"] = fullSnapshot("MERGE", 150)
		full = fullSnapshot("MERGE", 2)
		for name, edit := range map[string]func(k, v map[string]any){
			"key of another prisoner": func(k, _ map[string]any) { k["offender_no"] = "B1111BB" },
			"no booking":              func(_, v map[string]any) { v["booking_ids"], v["alerts"] = []any{}, []any{} },
			"extreme timestamps": func(_, v map[string]any) {
				nomisExtremes(map[string]any{"after": goavro.Union(nomisRowType, alertRow(v, 0))})
			},
		} {
			rec := fullSnapshot("MERGE", 2)
			edit(rec.key.(map[string]any), rec.value.(map[string]any))
			cases[name] = rec
		}
	default:
		t.Fatalf("no test records for topic %s", tp.name)
	}
	cases["every union null"] = fastRecord{full.key, allNull(full.value)}
	for path, v := range nullVariants(full.value, "") {
		cases["null "+path] = fastRecord{full.key, v}
	}
	cases["tombstone"] = fastRecord{full.key, nil}
	return cases
}

func rowOf(v map[string]any, image, rowType string) map[string]any {
	return v[image].(map[string]any)[rowType].(map[string]any)
}

func alertRow(v map[string]any, i int) map[string]any {
	return v["alerts"].([]any)[i].(map[string]any)["row"].(map[string]any)
}

// nomisExtremes sets the after image's timestamps and numbers to the ends of
// their ranges.
func nomisExtremes(v map[string]any) {
	r := rowOf(v, "after", nomisRowType)
	r["alert_date"], r["create_datetime"] = int64(math.MinInt64), int64(math.MaxInt64)
	r["expiry_date"] = schemas.Union(schemas.BranchTimestamp, int64(math.MinInt64))
	r["modify_datetime"] = schemas.Union(schemas.BranchTimestamp, int64(-1))
	r["alert_seq"], r["offender_book_id"] = int32(math.MinInt32), int64(math.MinInt64)
}

func TestFastMatchesGoavro(t *testing.T) {
	t.Parallel()
	for _, tp := range []fastTopic{fastNOMIS, fastDPS, fastSnapshot} {
		t.Run(tp.name, func(t *testing.T) {
			t.Parallel()
			cases := fastCases(t, tp)
			require.Greater(t, len(cases), 20)
			for name, rec := range cases {
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					key, value := rec.bytes(t, tp.name)
					checkFast(t, tp, key, value)
				})
			}
		})
	}
}

func TestFastResults(t *testing.T) {
	t.Parallel()
	// Spot checks that do not lean on the map-based decoders.
	t.Run("NOMIS", func(t *testing.T) {
		t.Parallel()
		for name, want := range nomisChanges() {
			key, value := asRecord(nomisNatives(t, want)).bytes(t, fastNOMIS.name)
			got, err := FastNOMISAlert(key, value)
			require.NoError(t, err, name)
			require.Equal(t, want, got, name)
		}
	})
	t.Run("DPS", func(t *testing.T) {
		t.Parallel()
		for name, want := range dpsChanges() {
			key, value := asRecord(dpsNatives(t, want)).bytes(t, fastDPS.name)
			got, err := FastDPSAlert(key, value)
			require.NoError(t, err, name)
			require.Equal(t, want, got, name)
		}
	})
	t.Run("snapshot", func(t *testing.T) {
		t.Parallel()
		for name, want := range snapshots() {
			key, value := asRecord(snapshotNatives(t, want)).bytes(t, fastSnapshot.name)
			got, err := FastNOMISSnapshot(key, value)
			require.NoError(t, err, name)
			require.Equal(t, want, got, name)
			require.NotNil(t, got.Alerts)
		}
	})
	t.Run("tombstones", func(t *testing.T) {
		t.Parallel()
		_, err := FastNOMISAlert([]byte{0xff}, nil)
		require.ErrorIs(t, err, ErrTombstone)
		_, err = FastDPSAlert(nil, nil)
		require.ErrorIs(t, err, ErrTombstone)
		_, err = FastNOMISSnapshot(nil, nil)
		require.ErrorIs(t, err, ErrTombstone)
		var e *Error
		require.False(t, errors.As(err, &e), "a tombstone is not a shape error")
	})
}

func TestFastMalformed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tp  fastTopic
		rec fastRecord
	}{
		{fastNOMIS, fullNOMISChange("u", true)},
		{fastNOMIS, fastRecord{fullNOMISChange("d", false).key, allNull(fullNOMISChange("d", false).value)}},
		{fastDPS, fullDPSChange("u", false)},
		{fastSnapshot, fullSnapshot("MERGE", 2)},
	} {
		t.Run(tc.tp.name, func(t *testing.T) {
			t.Parallel()
			key, value := tc.rec.bytes(t, tc.tp.name)
			checkFastBroken(t, tc.tp, key, value)
		})
	}
	t.Run("errors name the field", func(t *testing.T) {
		t.Parallel()
		key, value := fullNOMISChange("u", false).bytes(t, fastNOMIS.name)
		tests := []struct {
			name       string
			key, value []byte
			field      string
			cause      error
		}{
			{"empty value", key, []byte{}, "before", avrobin.ErrTruncated},
			{"bad union index", key, []byte{0x04}, "before", avrobin.ErrIndex},
			{"trailing bytes in the value", key, append(value[:len(value):len(value)], 0), "value", avrobin.ErrTrailing},
			{"trailing bytes in the key", append(key[:len(key):len(key)], 0), value, "key", avrobin.ErrTrailing},
			{"truncated key", key[:2], value, "key.alert_seq", avrobin.ErrTruncated},
			{"row field", key, value[:3], "before.alert_date", avrobin.ErrTruncated},
		}
		for _, tt := range tests {
			var d fastDecoder
			_, err := d.nomisAlert(tt.key, tt.value)
			wantShapeErr(t, err, tt.field)
			require.ErrorIs(t, d.cause, tt.cause, tt.name)
		}
		// The snapshot's array items are named by index.
		key, value = fullSnapshot("MERGE", 2).bytes(t, fastSnapshot.name)
		var d fastDecoder
		_, err := d.nomisSnapshot(key, value[:len(value)-3])
		wantShapeErr(t, err, "alerts[1].row.audit_additional_info")
	})
}

// TestFastArrayBlocks feeds a snapshot whose arrays come in several blocks,
// some with a negative count and a byte size, as other Avro writers may
// write them.
func TestFastArrayBlocks(t *testing.T) {
	t.Parallel()
	rec := fullSnapshot("BOOKING_COPY", 0)
	rec.value.(map[string]any)["booking_ids"] = []any{}
	key, value := rec.bytes(t, fastSnapshot.name)
	require.Equal(t, []byte{0, 0}, value[len(value)-2:], "empty booking_ids and alerts end the record")
	prefix := value[:len(value)-2]
	alertType, err := schemas.ResolvedType("alertsync.nomis.alertsync.prisoner_alerts.Alert")
	require.NoError(t, err)
	alertCodec, err := goavro.NewCodec(alertType)
	require.NoError(t, err)
	item := func(seq int32) []byte { return encode(t, alertCodec, snapshotAlertNative(seq, seq == 2)) }
	long := avrobin.AppendLong

	body := append([]byte(nil), prefix...)
	body = long(long(body, -2), 4)            // booking_ids: 2 items of 4 bytes in all,
	body = long(long(body, 1001), 1002)       //
	body = long(long(long(body, 1), 1003), 0) // 1 more item, end
	one, two, three := item(1), item(2), item(3)
	body = long(long(body, -1), int64(len(one))) // alerts: 1 item with its size
	body = append(body, one...)
	body = long(body, 2)
	body = append(append(body, two...), three...)
	body = long(body, 0)
	checkFast(t, fastSnapshot, key, body)
	got, err := FastNOMISSnapshot(key, body)
	require.NoError(t, err)
	require.Len(t, got.Alerts, 3)
	require.Equal(t, int32(3), got.Alerts[2].Row.AlertSeq)

	for _, tt := range []struct {
		name  string
		tail  []byte
		field string
	}{
		{"block above the limit", long(nil, maxBlockCount+1), "alerts"},
		{"negative block above the limit", long(long(nil, -(maxBlockCount+1)), 8), "alerts"},
		{"most negative count", long(long(nil, math.MinInt64), 8), "alerts"},
		{"count past the end", long(nil, maxBlockCount), "alerts[0].position.commit"},
		{"second block past the end", long(append(long(nil, 1), one...), 2), "alerts[1].position.commit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := append(append(prefix[:len(prefix):len(prefix)], 0), tt.tail...)
			checkFast(t, fastSnapshot, key, b)
			var d fastDecoder
			_, err := d.nomisSnapshot(key, b)
			wantShapeErr(t, err, tt.field)
		})
	}
}

func TestFastBlockLimit(t *testing.T) {
	t.Parallel()
	// Package schemas lowers goavro's limit at init; Fast must refuse the
	// same blocks.
	require.Equal(t, goavro.MaxBlockCount, int64(maxBlockCount))
}

// TestFastOverflow pins the one documented difference from goavro: a
// varint that does not fit its type is refused, where goavro wraps it.
func TestFastOverflow(t *testing.T) {
	t.Parallel()
	key := avrobin.AppendLong(nil, 1001)
	key = append(key, 0x82, 0x80, 0x80, 0x80, 0x20) // alert_seq: 1 + 2^33, wrapped to 1 by goavro
	_, value := fullNOMISChange("u", false).bytes(t, fastNOMIS.name)

	kn, ok := goavroBody(codecs(t, fastNOMIS.name).key, key)
	require.True(t, ok, "goavro wraps the int")
	require.Equal(t, int32(1), kn.(map[string]any)["alert_seq"])

	var d fastDecoder
	_, err := d.nomisAlert(key, value)
	wantShapeErr(t, err, "key.alert_seq")
	require.ErrorIs(t, d.cause, avrobin.ErrOverflow)
}

// TestFastLayout fails when a schema the Fast decoders read changes: it
// compares the fields the decoders read, in order (skipped ones included),
// with the fields of the current key and value schemas. After changing an
// .avsc file, change fast.go to read the new layout.
func TestFastLayout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tp  fastTopic
		rec fastRecord
	}{
		{fastNOMIS, fullNOMISChange("u", false)},
		{fastDPS, fullDPSChange("u", false)},
		{fastSnapshot, fullSnapshot("MERGE", 1)},
	} {
		t.Run(tc.tp.name, func(t *testing.T) {
			t.Parallel()
			tp, ok := schemas.LookupTopic(tc.tp.name)
			require.True(t, ok)
			want := append(schemaFields(t, tp.Key.Schema, "key"), schemaFields(t, tp.Value.Schema, "")...)

			if v := tc.rec.value.(map[string]any); tc.tp.name == schemas.TopicNOMISPrisonerAlerts {
				v["booking_ids"] = []any{int64(1001)} // one item of each array, as schemaFields lists
			}
			key, value := tc.rec.bytes(t, tc.tp.name)
			var got []string
			d := fastDecoder{trace: func(path string) { got = append(got, path) }}
			_, err := tc.tp.fast(&d, key, value)
			require.NoError(t, err)
			require.Equal(t, want, got, "the fields fast.go reads differ from the schema's: update fast.go")
		})
	}
	t.Run("reason symbols", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, schemaEnumSymbols(t, schemas.TopicNOMISPrisonerAlerts, "alertsync.nomis.alertsync.prisoner_alerts.Reason"), reasonSymbols[:])
	})
}

// schemaFields lists the field paths of a resolved record schema in
// encoding order, the way fastDecoder.trace reports them: a field, then the
// fields of its record (the non-null branch of a union; the one item of an
// array, as name[0]).
func schemaFields(t *testing.T, schema, root string) []string {
	t.Helper()
	var top map[string]any
	require.NoError(t, json.Unmarshal([]byte(schema), &top))
	named := map[string]map[string]any{}
	var out []string
	var record func(rec map[string]any, ns, path string)
	var descend func(typ any, ns, path string)
	record = func(rec map[string]any, ns, path string) {
		full, ns := fullName(rec, ns)
		named[full] = rec
		for _, f := range rec["fields"].([]any) {
			f := f.(map[string]any)
			p := joinPath(path, f["name"].(string))
			out = append(out, p)
			descend(f["type"], ns, p)
		}
	}
	descend = func(typ any, ns, path string) {
		switch x := typ.(type) {
		case string:
			for _, name := range []string{x, ns + "." + x} {
				if rec, ok := named[name]; ok {
					record(rec, ns, path)
					return
				}
			}
		case []any:
			require.Len(t, x, 2, "%s: only [\"null\", T] unions are expected", path)
			require.Equal(t, "null", x[0], path)
			descend(x[1], ns, path)
		case map[string]any:
			switch x["type"] {
			case "record":
				record(x, ns, path)
			case "array":
				if items, ok := x["items"].(string); !ok || named[items] != nil {
					descend(x["items"], ns, path+"[0]")
				}
			}
		}
	}
	record(top, "", root)
	return out
}

func fullName(rec map[string]any, ns string) (full, namespace string) {
	name := rec["name"].(string)
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name, name[:i]
	}
	if n, ok := rec["namespace"].(string); ok {
		ns = n
	}
	return ns + "." + name, ns
}

// schemaEnumSymbols returns the symbols of enum fullName in the value schema
// of topic.
func schemaEnumSymbols(t *testing.T, topic, fullName string) []string {
	t.Helper()
	tp, ok := schemas.LookupTopic(topic)
	require.True(t, ok)
	var found []string
	var walk func(v any, ns string)
	walk = func(v any, ns string) {
		switch x := v.(type) {
		case map[string]any:
			if n, ok := x["namespace"].(string); ok {
				ns = n
			}
			if x["type"] == "enum" && (x["name"] == fullName || ns+"."+x["name"].(string) == fullName) {
				for _, s := range x["symbols"].([]any) {
					found = append(found, s.(string))
				}
			}
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(x[k], ns)
			}
		case []any:
			for _, e := range x {
				walk(e, ns)
			}
		}
	}
	var top any
	require.NoError(t, json.Unmarshal([]byte(tp.Value.Schema), &top))
	walk(top, "")
	require.NotEmpty(t, found, "enum %s not in the schema of %s", fullName, topic)
	return found
}

// fastSeeds returns valid records of tp to seed its fuzz target.
func fastSeeds(f *testing.F, tp fastTopic) [][2][]byte {
	f.Helper()
	var recs []fastRecord
	switch tp.name {
	case schemas.TopicNOMISOffenderAlerts:
		full := fullNOMISChange("u", true)
		recs = []fastRecord{full, {full.key, allNull(full.value)}, fullNOMISChange("c", false)}
	case schemas.TopicDPSAlert:
		full := fullDPSChange("u", false)
		recs = []fastRecord{full, {full.key, allNull(full.value)}, fullDPSChange("t", true)}
	case schemas.TopicNOMISPrisonerAlerts:
		recs = []fastRecord{fullSnapshot("MERGE", 0), fullSnapshot("NEW_BOOKING", 1), fullSnapshot("BOOKING_COPY", 3)}
	}
	var out [][2][]byte
	for _, r := range recs {
		k, v := r.bytes(f, tp.name)
		out = append(out, [2][]byte{k, v})
	}
	return out
}

func fuzzFast(f *testing.F, tp fastTopic) {
	for _, s := range fastSeeds(f, tp) {
		f.Add(s[0], s[1])
	}
	f.Add([]byte{}, []byte{0x02})
	codecs(f, tp.name)
	f.Fuzz(func(t *testing.T, key, value []byte) {
		checkFast(t, tp, key, value)
	})
}

// FuzzFastNOMISAlert: FastNOMISAlert never panics, and agrees with goavro and
// NOMISAlert on every key and value (see checkFast).
func FuzzFastNOMISAlert(f *testing.F) { fuzzFast(f, fastNOMIS) }

// FuzzFastDPSAlert: as FuzzFastNOMISAlert for FastDPSAlert.
func FuzzFastDPSAlert(f *testing.F) { fuzzFast(f, fastDPS) }

// FuzzFastNOMISSnapshot: as FuzzFastNOMISAlert for FastNOMISSnapshot.
func FuzzFastNOMISSnapshot(f *testing.F) { fuzzFast(f, fastSnapshot) }

// benchNOMIS is a typical NOMIS update: both images, session and context.
func benchNOMIS(b *testing.B) (key, value []byte) {
	b.Helper()
	return fullNOMISChange("u", false).bytes(b, fastNOMIS.name)
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkFastNOMISAlert(b *testing.B) {
	key, value := benchNOMIS(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(key) + len(value)))
	for b.Loop() {
		if _, err := FastNOMISAlert(key, value); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkGoavroNOMISAlert(b *testing.B) {
	key, value := benchNOMIS(b)
	cs := codecs(b, fastNOMIS.name)
	b.ReportAllocs()
	b.SetBytes(int64(len(key) + len(value)))
	for b.Loop() {
		k, _, err := cs.key.NativeFromBinary(key)
		if err != nil {
			b.Fatal(err)
		}
		v, _, err := cs.value.NativeFromBinary(value)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := NOMISAlert(k, v); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkFastDPSAlert(b *testing.B) {
	key, value := fullDPSChange("u", false).bytes(b, fastDPS.name)
	b.ReportAllocs()
	b.SetBytes(int64(len(key) + len(value)))
	for b.Loop() {
		if _, err := FastDPSAlert(key, value); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkFastNOMISSnapshot(b *testing.B) {
	key, value := fullSnapshot("MERGE", 10).bytes(b, fastSnapshot.name)
	b.ReportAllocs()
	b.SetBytes(int64(len(key) + len(value)))
	for b.Loop() {
		if _, err := FastNOMISSnapshot(key, value); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}
