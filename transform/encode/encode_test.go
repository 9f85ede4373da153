package encode

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/linkedin/goavro/v2"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/avrobin"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/rules"
)

func ptr[T any](v T) *T { return &v }

// commandCodecs are goavro codecs of the current key and value schemas of
// the command topics, compiled once.
var commandCodecs = sync.OnceValues(func() ([2]*goavro.Codec, error) {
	tp, ok := schemas.LookupTopic(schemas.TopicCommandsDPS)
	if !ok {
		return [2]*goavro.Codec{}, errors.New("topic " + schemas.TopicCommandsDPS + " not in the schemas catalog")
	}
	key, err := goavro.NewCodec(tp.Key.Schema)
	if err != nil {
		return [2]*goavro.Codec{}, err
	}
	value, err := goavro.NewCodec(tp.Value.Schema)
	if err != nil {
		return [2]*goavro.Codec{}, err
	}
	return [2]*goavro.Codec{key, value}, nil
})

func codecs(t testing.TB) (key, value *goavro.Codec) {
	t.Helper()
	c, err := commandCodecs()
	require.NoError(t, err, "compiling the command schemas")
	return c[0], c[1]
}

var (
	createdAt  = time.Date(2024, 3, 1, 9, 30, 15, 123456789, time.UTC)
	modifiedAt = time.Date(2024, 11, 5, 17, 2, 3, 999999000, time.FixedZone("BST", 3600))
	commitTime = time.Date(2024, 11, 5, 16, 2, 3, 1000, time.UTC)
)

// fullState has every optional field set, with non-ASCII text.
func fullState() *rules.AlertState {
	return &rules.AlertState{
		Code:         "XSA",
		TypeCode:     "X",
		ActiveFrom:   rules.DateOf(2024, 3, 1),
		ActiveTo:     ptr(rules.DateOf(2025, 3, 1)),
		Status:       rules.StatusActive,
		Description:  ptr("Staff assaulter. Ünïcödé — 日本語 😀\nsecond line\x00"),
		AuthorisedBy: ptr("Security Ó'Brien"),
		CreatedBy:    "JSMITH_GEN",
		CreatedAt:    createdAt,
		ModifiedBy:   ptr("ABROWN"),
		ModifiedAt:   ptr(modifiedAt),
		PrisonCode:   ptr("LEI"),
	}
}

// minimalState has every optional field nil.
func minimalState() *rules.AlertState {
	return &rules.AlertState{
		Code:       "HA",
		TypeCode:   "H",
		ActiveFrom: rules.DateOf(2020, 1, 31),
		Status:     rules.StatusInactive,
		CreatedBy:  "OMS_OWNER",
		CreatedAt:  createdAt,
	}
}

func snapshotAlerts(n int) []rules.SnapshotAlert {
	out := make([]rules.SnapshotAlert, n)
	for i := range out {
		s := *fullState()
		if i%2 == 1 {
			s = *minimalState()
		}
		s.Code = "C" + strings.Repeat("x", i%12)
		out[i] = rules.SnapshotAlert{
			NOMISBookingID: ptr(int64(1234567)),
			NOMISAlertSeq:  ptr(int32(i + 1)),
			Position:       rules.Position{Commit: int64(i) << 40, Change: -int64(i)},
			State:          s,
		}
		if i%3 == 0 {
			out[i].DPSAlertID = ptr("0b6f3a3e-5d0c-4c1a-9d0e-3f9a1c2b4d5e")
		}
	}
	return out
}

func baseCommand(kind rules.Kind) *rules.Command {
	return &rules.Command{
		ID:               "6f1c2a4e-8b7d-5e3f-9a0b-1c2d3e4f5a6b",
		Kind:             kind,
		PrisonNumber:     "A1234BC",
		Origin:           rules.SideNOMIS,
		Target:           rules.SideDPS,
		SourcePosition:   rules.Position{Commit: 1731000000123456, Change: 98765},
		SourceCommitTime: commitTime,
		NOMISBookingID:   ptr(int64(1234567)),
		NOMISAlertSeq:    ptr(int32(12)),
	}
}

type commandCase struct {
	name string
	cmd  *rules.Command
}

func commandCases() []commandCase {
	with := func(kind rules.Kind, f func(c *rules.Command)) *rules.Command {
		c := baseCommand(kind)
		f(c)
		return c
	}
	return []commandCase{
		{"upsert create", with(rules.KindUpsert, func(c *rules.Command) { c.After = fullState() })},
		{"upsert update", with(rules.KindUpsert, func(c *rules.Command) {
			c.Origin, c.Target = rules.SideDPS, rules.SideNOMIS
			c.DPSAlertID = ptr("0b6f3a3e-5d0c-4c1a-9d0e-3f9a1c2b4d5e")
			c.NOMISBookingID, c.NOMISAlertSeq = nil, nil
			c.Before = minimalState()
			c.After = fullState()
		})},
		{"upsert without after", with(rules.KindUpsert, func(c *rules.Command) {})},
		{"delete", with(rules.KindDelete, func(c *rules.Command) {
			c.DPSAlertID = ptr("0b6f3a3e-5d0c-4c1a-9d0e-3f9a1c2b4d5e")
			c.Before = fullState()
		})},
		{"replace prisoner, nil alerts", with(rules.KindReplacePrisoner, func(c *rules.Command) {
			c.NOMISAlertSeq = nil
			c.Reason = ptr("MERGE")
		})},
		{"replace prisoner, empty alerts", with(rules.KindReplacePrisoner, func(c *rules.Command) {
			c.Alerts = []rules.SnapshotAlert{}
		})},
		{"replace prisoner, one alert", with(rules.KindReplacePrisoner, func(c *rules.Command) {
			c.Alerts = snapshotAlerts(1)
			c.Reason = ptr("booking moved from G4321ZZ")
		})},
		{"replace prisoner, many alerts", with(rules.KindReplacePrisoner, func(c *rules.Command) {
			c.Alerts = snapshotAlerts(200) // a block count of two varint bytes
		})},
		{"every optional nil", &rules.Command{
			ID: "6f1c2a4e-8b7d-5e3f-9a0b-1c2d3e4f5a6b", Kind: rules.KindUpsert, PrisonNumber: "A1234BC",
			Origin: rules.SideDPS, SourceCommitTime: commitTime, After: minimalState(),
		}},
		{"every optional set", with(rules.KindUpsert, func(c *rules.Command) {
			c.DPSAlertID = ptr("0b6f3a3e-5d0c-4c1a-9d0e-3f9a1c2b4d5e")
			c.Before = fullState()
			c.After = fullState()
			c.Alerts = snapshotAlerts(3)
			c.Reason = ptr("résync")
		})},
		{"zero command", &rules.Command{}},
		{"unknown and out-of-range enums", with(rules.Kind(-5), func(c *rules.Command) {
			c.Origin = rules.Side(42)
			c.Before = fullState()
			c.Before.Status = rules.StatusUnknown
			c.After = fullState()
			c.After.Status = rules.Status(127)
		})},
		{"boundary dates", with(rules.KindUpsert, func(c *rules.Command) {
			c.Before = fullState()
			c.Before.ActiveFrom = rules.DateOf(1900, 1, 1) // negative days
			c.Before.ActiveTo = ptr(rules.DateOf(1969, 12, 31))
			c.After = fullState()
			c.After.ActiveFrom = rules.DateOf(1970, 1, 1)
			c.After.ActiveTo = ptr(rules.DateOf(9999, 12, 31))
			c.Alerts = snapshotAlerts(2)
			c.Alerts[0].State.ActiveFrom = math.MinInt32
			c.Alerts[0].State.ActiveTo = ptr(rules.Date(math.MaxInt32))
			c.Alerts[1].State.ActiveFrom = rules.DateOf(1, 1, 1)
		})},
		{"timestamps with microseconds", with(rules.KindUpsert, func(c *rules.Command) {
			c.SourceCommitTime = time.Date(1969, 12, 31, 23, 59, 59, 999999500, time.UTC) // negative, truncated
			c.Before = fullState()
			c.Before.CreatedAt = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
			c.Before.ModifiedAt = ptr(time.Date(1970, 1, 1, 0, 0, 0, 1000, time.UTC))
			c.After = fullState()
			c.After.CreatedAt = time.Time{} // year 1
			c.After.ModifiedAt = ptr(time.Unix(0, 0))
		})},
		{"timestamp range limits", with(rules.KindUpsert, func(c *rules.Command) {
			c.SourceCommitTime = time.UnixMicro(math.MinInt64)
			c.After = fullState()
			c.After.CreatedAt = time.UnixMicro(math.MaxInt64).Add(999 * time.Nanosecond)
			c.After.ModifiedAt = ptr(time.UnixMicro(math.MaxInt64))
		})},
		{"integer limits", with(rules.KindReplacePrisoner, func(c *rules.Command) {
			c.SourcePosition = rules.Position{Commit: math.MinInt64, Change: math.MaxInt64}
			c.NOMISBookingID = ptr(int64(math.MinInt64))
			c.NOMISAlertSeq = ptr(int32(math.MinInt32))
			c.Alerts = snapshotAlerts(1)
			c.Alerts[0].NOMISBookingID = ptr(int64(math.MaxInt64))
			c.Alerts[0].NOMISAlertSeq = ptr(int32(math.MaxInt32))
			c.Alerts[0].Position = rules.Position{Commit: -1, Change: 0}
		})},
		{"long text and empty strings", with(rules.KindUpsert, func(c *rules.Command) {
			c.After = fullState()
			c.After.Description = ptr(strings.Repeat("é日", 1333)) // 4000 bytes less one
			c.After.AuthorisedBy = ptr("")
			c.After.Code, c.After.TypeCode, c.After.CreatedBy = "", "", ""
			c.Reason = ptr("")
		})},
	}
}

func caseNamed(t testing.TB, name string) *rules.Command {
	t.Helper()
	for _, tc := range commandCases() {
		if tc.name == name {
			return tc.cmd
		}
	}
	require.FailNow(t, "no command case "+name)
	return nil
}

// TestAppendMatchesGoavro is the differential test: the direct encoding
// equals goavro's encoding of Native under the current schema, and decodes
// back to the command.
func TestAppendMatchesGoavro(t *testing.T) {
	t.Parallel()
	keyCodec, valueCodec := codecs(t)
	for _, tc := range commandCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assertMatches(t, keyCodec, valueCodec, tc.cmd)
		})
	}
}

// assertMatches checks AppendKey and AppendValue of c against goavro, and
// the round trip through goavro's decoder.
func assertMatches(t *testing.T, keyCodec, valueCodec *goavro.Codec, c *rules.Command) {
	t.Helper()
	nk, nv := Native(c)
	wantKey, err := keyCodec.BinaryFromNative(nil, nk)
	require.NoError(t, err, "goavro encoding the key")
	wantValue, err := valueCodec.BinaryFromNative(nil, nv)
	require.NoError(t, err, "goavro encoding the value")

	header := avrobin.WireHeader(7)
	gotKey := AppendKey(header[:], c)
	require.Equal(t, header[:], gotKey[:5], "key prefix kept")
	require.Equal(t, wantKey, gotKey[5:], "key bytes")
	gotValue, err := AppendValue(header[:], c)
	require.NoError(t, err)
	require.Equal(t, header[:], gotValue[:5], "value prefix kept")
	require.Equal(t, wantValue, gotValue[5:], "value bytes")

	dk, rest, err := keyCodec.NativeFromBinary(gotKey[5:])
	require.NoError(t, err, "decoding the key")
	require.Empty(t, rest)
	dv, rest, err := valueCodec.NativeFromBinary(gotValue[5:])
	require.NoError(t, err, "decoding the value")
	require.Empty(t, rest)
	require.Equal(t, roundTripped(c), fromNative(t, dk, dv))
}

// roundTripped returns what c reads back as: Target dropped (not in the
// record), enums outside the schema as their UNKNOWN value, timestamps in
// UTC to the microsecond, no alerts as nil.
func roundTripped(c *rules.Command) rules.Command {
	out := *c
	out.Target = rules.SideUnknown
	out.Kind = symbolKind(c.Kind.String())
	out.Origin = symbolSide(c.Origin.String())
	out.SourceCommitTime = micros(c.SourceCommitTime)
	out.Before = roundTrippedState(c.Before)
	out.After = roundTrippedState(c.After)
	out.Alerts = nil
	for _, a := range c.Alerts {
		a.State = *roundTrippedState(&a.State)
		out.Alerts = append(out.Alerts, a)
	}
	return out
}

func roundTrippedState(s *rules.AlertState) *rules.AlertState {
	if s == nil {
		return nil
	}
	out := *s
	out.Status = symbolStatus(s.Status.String())
	out.CreatedAt = micros(s.CreatedAt)
	if s.ModifiedAt != nil {
		out.ModifiedAt = ptr(micros(*s.ModifiedAt))
	}
	return &out
}

func micros(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }

func symbolKind(s string) rules.Kind {
	for k := range rules.Kind(math.MaxInt8) {
		if k.String() == s {
			return k
		}
	}
	return -1
}

func symbolSide(s string) rules.Side {
	for k := range rules.Side(math.MaxInt8) {
		if k.String() == s {
			return k
		}
	}
	return -1
}

func symbolStatus(s string) rules.Status {
	for k := range rules.Status(math.MaxInt8) {
		if k.String() == s {
			return k
		}
	}
	return -1
}

// fromNative reads a decoded key and value back into a command.
func fromNative(t *testing.T, key, value any) rules.Command {
	t.Helper()
	k, ok := key.(map[string]any)
	require.True(t, ok, "key is %T", key)
	v, ok := value.(map[string]any)
	require.True(t, ok, "value is %T", value)
	require.Equal(t, get[string](t, k, "prison_number"), get[string](t, v, "prison_number"), "key and value prison numbers")
	pos := get[map[string]any](t, v, "source_position")
	c := rules.Command{
		ID:               get[string](t, v, "command_id"),
		Kind:             symbolKind(get[string](t, v, "kind")),
		PrisonNumber:     get[string](t, v, "prison_number"),
		Origin:           symbolSide(get[string](t, v, "origin_side")),
		SourcePosition:   rules.Position{Commit: get[int64](t, pos, "commit"), Change: get[int64](t, pos, "change")},
		SourceCommitTime: micros(get[time.Time](t, v, "source_commit_time")),
		DPSAlertID:       opt[string](t, v, "dps_alert_id"),
		NOMISBookingID:   opt[int64](t, v, "nomis_booking_id"),
		NOMISAlertSeq:    opt[int32](t, v, "nomis_alert_seq"),
		Reason:           opt[string](t, v, "reason"),
	}
	if before := opt[map[string]any](t, v, "before"); before != nil {
		c.Before = stateFromNative(t, *before)
	}
	if after := opt[map[string]any](t, v, "after"); after != nil {
		c.After = stateFromNative(t, *after)
	}
	for _, item := range get[[]any](t, v, "alerts") {
		a, ok := item.(map[string]any)
		require.True(t, ok, "alert is %T", item)
		pos := get[map[string]any](t, a, "position")
		c.Alerts = append(c.Alerts, rules.SnapshotAlert{
			DPSAlertID:     opt[string](t, a, "dps_alert_id"),
			NOMISBookingID: opt[int64](t, a, "nomis_booking_id"),
			NOMISAlertSeq:  opt[int32](t, a, "nomis_alert_seq"),
			Position:       rules.Position{Commit: get[int64](t, pos, "commit"), Change: get[int64](t, pos, "change")},
			State:          *stateFromNative(t, get[map[string]any](t, a, "state")),
		})
	}
	return c
}

func stateFromNative(t *testing.T, s map[string]any) *rules.AlertState {
	t.Helper()
	out := &rules.AlertState{
		Code:         get[string](t, s, "code"),
		TypeCode:     get[string](t, s, "type_code"),
		ActiveFrom:   days(get[time.Time](t, s, "active_from")),
		Status:       symbolStatus(get[string](t, s, "status")),
		Description:  opt[string](t, s, "description"),
		AuthorisedBy: opt[string](t, s, "authorised_by"),
		CreatedBy:    get[string](t, s, "created_by"),
		CreatedAt:    micros(get[time.Time](t, s, "created_at")),
		ModifiedBy:   opt[string](t, s, "modified_by"),
		PrisonCode:   opt[string](t, s, "prison_code"),
	}
	if to := opt[time.Time](t, s, "active_to"); to != nil {
		out.ActiveTo = ptr(days(*to))
	}
	if at := opt[time.Time](t, s, "modified_at"); at != nil {
		out.ModifiedAt = ptr(micros(*at))
	}
	return out
}

func days(t time.Time) rules.Date { return rules.Date(t.Unix() / 86400) }

func get[T any](t *testing.T, rec map[string]any, name string) T {
	t.Helper()
	v, ok := schemas.Get[T](rec, name)
	require.True(t, ok, "field %s is %T", name, rec[name])
	return v
}

func opt[T any](t *testing.T, rec map[string]any, name string) *T {
	t.Helper()
	if rec[name] == nil {
		return nil
	}
	v, ok := schemas.GetOpt[T](rec, name)
	require.True(t, ok, "field %s is %#v", name, rec[name])
	return &v
}

// TestErrors checks the values the schema cannot hold: an *Error naming the
// field, dst unchanged, no panic.
func TestErrors(t *testing.T) {
	t.Parallel()
	tooLate := time.UnixMicro(math.MaxInt64).Add(time.Microsecond)
	tooEarly := time.UnixMicro(math.MinInt64).Add(-time.Nanosecond)
	tests := []struct {
		name  string
		cmd   func(c *rules.Command)
		field string
	}{
		{"source_commit_time too late", func(c *rules.Command) { c.SourceCommitTime = tooLate }, "source_commit_time"},
		{"source_commit_time too early", func(c *rules.Command) { c.SourceCommitTime = tooEarly }, "source_commit_time"},
		{"before.created_at", func(c *rules.Command) {
			c.Before = fullState()
			c.Before.CreatedAt = time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)
		}, "before.created_at"},
		{"after.modified_at", func(c *rules.Command) {
			c.After = fullState()
			c.After.ModifiedAt = ptr(time.Date(-300000, 1, 1, 0, 0, 0, 0, time.UTC))
		}, "after.modified_at"},
		{"alerts[1].state.created_at", func(c *rules.Command) {
			c.Alerts = snapshotAlerts(3)
			c.Alerts[1].State.CreatedAt = tooLate
		}, "alerts[1].state.created_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := baseCommand(rules.KindUpsert)
			tt.cmd(c)
			dst := append(make([]byte, 0, 64), "prefix"...)
			out, err := AppendValue(dst, c)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.ErrorIs(t, err, ErrOutOfRange)
			require.Equal(t, tt.field, e.Field)
			require.Equal(t, "encoding command field "+tt.field+": "+ErrOutOfRange.Error(), err.Error())
			require.Equal(t, []byte("prefix"), out, "dst returned unchanged")
		})
	}
	t.Run("nil command", func(t *testing.T) {
		t.Parallel()
		out, err := AppendValue([]byte("x"), nil)
		require.ErrorIs(t, err, ErrNilCommand)
		require.Equal(t, []byte("x"), out)
	})
	t.Run("symbol not in the schema", func(t *testing.T) {
		t.Parallel()
		// Every String() of the rules types is a symbol today; a symbol
		// added to rules before the schema gains it must not encode.
		out, ok := appendEnum([]byte("x"), kindSymbols, "MERGE")
		require.False(t, ok)
		require.Equal(t, []byte("x"), out)
		out, ok = appendEnum(nil, kindSymbols, "REPLACE_PRISONER")
		require.True(t, ok)
		require.Equal(t, []byte{6}, out)
	})
}

// TestSchemaFields fails when the resolved command schemas gain, lose,
// reorder or retype a field or symbol the encoder writes, and checks that
// Native sets every field.
func TestSchemaFields(t *testing.T) {
	t.Parallel()
	dps, ok := schemas.LookupTopic(schemas.TopicCommandsDPS)
	require.True(t, ok)
	nomis, ok := schemas.LookupTopic(schemas.TopicCommandsNOMIS)
	require.True(t, ok)
	require.Equal(t, dps.Key.Schema, nomis.Key.Schema, "both command topics have one key schema")
	require.Equal(t, dps.Value.Schema, nomis.Value.Schema, "both command topics have one value schema")
	resolved, err := schemas.ResolvedType(schemas.TypeCommand)
	require.NoError(t, err)
	require.Equal(t, dps.Value.Schema, resolved)

	wantRecords := map[string][]string{
		schemas.TypeCommand:    commandFields,
		schemas.TypeAlertState: alertStateFields,
		schemas.TypeSnapshot:   snapshotAlertFields,
		schemas.TypePosition:   positionFields,
	}
	wantEnums := map[string][]string{
		"alertsync.command.Kind":        kindSymbols,
		"alertsync.Side":                sideSymbols,
		"alertsync.command.AlertStatus": statusSymbols,
	}
	t.Run("value", func(t *testing.T) {
		t.Parallel()
		records, enums := namedTypes(t, dps.Value.Schema)
		require.Equal(t, wantRecords, records)
		require.Equal(t, wantEnums, enums)
	})
	t.Run("key", func(t *testing.T) {
		t.Parallel()
		records, enums := namedTypes(t, dps.Key.Schema)
		require.Equal(t, map[string][]string{schemas.TypeCommandKey: keyFields}, records)
		require.Empty(t, enums)
	})
	t.Run("native sets every field", func(t *testing.T) {
		t.Parallel()
		c := caseNamed(t, "every optional set")
		require.NotEmpty(t, c.Alerts)
		key, value := Native(c)
		require.Equal(t, names(keyFields), sortedKeys(key))
		require.Equal(t, names(commandFields), sortedKeys(value))
		for _, state := range []any{value["before"], value["after"]} {
			u, ok := state.(map[string]any)
			require.True(t, ok, "union is %T", state)
			require.Equal(t, names(alertStateFields), sortedKeys(u[schemas.TypeAlertState].(map[string]any)))
		}
		a := value["alerts"].([]any)[0].(map[string]any)
		require.Equal(t, names(snapshotAlertFields), sortedKeys(a))
		require.Equal(t, names(alertStateFields), sortedKeys(a["state"].(map[string]any)))
		require.Equal(t, names(positionFields), sortedKeys(a["position"].(map[string]any)))
	})
	t.Run("a new field is caught", func(t *testing.T) {
		t.Parallel()
		// What the checks above see when command.avsc gains a field with a
		// default: the field list differs, and goavro's bytes (it writes the
		// default) differ from the encoder's.
		var doc map[string]any
		require.NoError(t, json.Unmarshal([]byte(dps.Value.Schema), &doc))
		doc["fields"] = append(doc["fields"].([]any), map[string]any{"name": "extra", "type": []any{"null", "string"}, "default": nil})
		grown, err := json.Marshal(doc)
		require.NoError(t, err)
		records, _ := namedTypes(t, string(grown))
		require.NotEqual(t, wantRecords, records)
		codec, err := goavro.NewCodec(string(grown))
		require.NoError(t, err)
		c := caseNamed(t, "upsert create")
		_, native := Native(c)
		want, err := codec.BinaryFromNative(nil, native)
		require.NoError(t, err)
		got, err := AppendValue(nil, c)
		require.NoError(t, err)
		require.NotEqual(t, want, got)
	})
}

func names(fields []string) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i], _, _ = strings.Cut(f, ":")
	}
	slices.Sort(out)
	return out
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// namedTypes parses a schema and returns the signature of each record
// ("name:type" per field, in order) and the symbols of each enum, by full
// name.
func namedTypes(t *testing.T, text string) (records, enums map[string][]string) {
	t.Helper()
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	require.NoError(t, err)
	records, enums = map[string][]string{}, map[string][]string{}
	var walk func(s avro.Schema)
	walk = func(s avro.Schema) {
		switch x := s.(type) {
		case *avro.RecordSchema:
			if _, seen := records[x.FullName()]; seen {
				return
			}
			fields := []string{}
			records[x.FullName()] = fields
			for _, f := range x.Fields() {
				fields = append(fields, f.Name()+":"+typeSig(f.Type()))
				walk(f.Type())
			}
			records[x.FullName()] = fields
		case *avro.EnumSchema:
			enums[x.FullName()] = x.Symbols()
		case *avro.UnionSchema:
			for _, m := range x.Types() {
				walk(m)
			}
		case *avro.ArraySchema:
			walk(x.Items())
		case *avro.RefSchema:
			walk(x.Schema())
		}
	}
	walk(s)
	return records, enums
}

// typeSig summarises a field type as the encoder's field lists do.
func typeSig(s avro.Schema) string {
	switch x := s.(type) {
	case *avro.PrimitiveSchema:
		if l := x.Logical(); l != nil {
			switch l.Type() {
			case avro.UUID:
				return "uuid"
			case avro.Date:
				return "date"
			case avro.TimestampMicros:
				return "ts"
			}
			return string(x.Type()) + "/" + string(l.Type())
		}
		return string(x.Type())
	case *avro.UnionSchema:
		if len(x.Types()) == 2 && x.Types()[0].Type() == avro.Null {
			return "?" + typeSig(x.Types()[1])
		}
	case *avro.RefSchema:
		return x.Schema().FullName()
	case avro.NamedSchema:
		return x.FullName()
	case *avro.ArraySchema:
		return "[]" + typeSig(x.Items())
	}
	return s.String()
}

// TestBlockMax checks that arrays are split where goavro splits them, with
// the limit package schemas sets.
func TestBlockMax(t *testing.T) {
	t.Parallel()
	require.Equal(t, int64(blockMax), goavro.MaxBlockCount, "goavro.MaxBlockCount as package schemas sets it")
	_, valueCodec := codecs(t)
	c := baseCommand(rules.KindReplacePrisoner)
	c.Alerts = make([]rules.SnapshotAlert, blockMax+2)
	for i := range c.Alerts {
		c.Alerts[i] = rules.SnapshotAlert{NOMISAlertSeq: ptr(int32(i)), State: *minimalState()}
	}
	_, native := Native(c)
	want, err := valueCodec.BinaryFromNative(nil, native)
	require.NoError(t, err)
	got, err := AppendValue(nil, c)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "bytes differ from goavro's") // no diff of 4 MB
	decoded, rest, err := valueCodec.NativeFromBinary(got)
	require.NoError(t, err)
	require.Empty(t, rest)
	alerts, ok := schemas.Get[[]any](decoded.(map[string]any), "alerts")
	require.True(t, ok)
	require.Len(t, alerts, blockMax+2)
}

// TestNoAllocations checks that encoding into a buffer with room allocates
// nothing.
func TestNoAllocations(t *testing.T) {
	cases := commandCases()
	buf := make([]byte, 0, 1<<16)
	for _, tc := range cases {
		allocs := testing.AllocsPerRun(50, func() {
			var err error
			buf = AppendKey(buf[:0], tc.cmd)
			buf, err = AppendValue(buf, tc.cmd)
			if err != nil {
				panic(err)
			}
		})
		require.Zero(t, allocs, tc.name)
	}
}

// fuzzInput turns fuzz bytes into values; past the end it reads zeros.
type fuzzInput struct{ data []byte }

func (f *fuzzInput) byte() byte {
	if len(f.data) == 0 {
		return 0
	}
	b := f.data[0]
	f.data = f.data[1:]
	return b
}

func (f *fuzzInput) bool() bool { return f.byte()&1 == 1 }

func (f *fuzzInput) uint64() uint64 {
	var b [8]byte
	n := copy(b[:], f.data)
	f.data = f.data[n:]
	return binary.LittleEndian.Uint64(b[:])
}

func (f *fuzzInput) int64() int64 { return int64(f.uint64()) } //nolint:gosec // any bit pattern will do

func (f *fuzzInput) int32() int32 { return int32(f.uint64()) } //nolint:gosec // any bit pattern will do

func (f *fuzzInput) string() string {
	n := min(int(f.byte()%48), len(f.data))
	s := string(f.data[:n]) // any bytes, valid UTF-8 or not
	f.data = f.data[n:]
	return s
}

func optional[T any](f *fuzzInput, v func() T) *T {
	if !f.bool() {
		return nil
	}
	return ptr(v())
}

func (f *fuzzInput) time() time.Time {
	switch f.byte() % 8 {
	case 1: // any instant Go holds: mostly beyond timestamp-micros
		return time.Unix(f.int64(), f.int64())
	case 2: // near the lower limit of timestamp-micros
		return time.UnixMicro(math.MinInt64).Add(time.Duration(f.int32()))
	case 3: // near the upper limit
		return time.UnixMicro(math.MaxInt64).Add(time.Duration(f.int32()))
	case 4: // year 1, in some zone
		return time.Time{}.In(time.FixedZone("X", int(f.int32()%50000)))
	}
	// An ordinary instant (±3400 years), to the nanosecond.
	return time.Unix(int64(f.int32())*50, int64(f.uint64()%1e9))
}

func (f *fuzzInput) state() rules.AlertState {
	return rules.AlertState{
		Code:         f.string(),
		TypeCode:     f.string(),
		ActiveFrom:   rules.Date(f.int32()),
		ActiveTo:     optional(f, func() rules.Date { return rules.Date(f.int32()) }),
		Status:       rules.Status(f.byte()),
		Description:  optional(f, f.string),
		AuthorisedBy: optional(f, f.string),
		CreatedBy:    f.string(),
		CreatedAt:    f.time(),
		ModifiedBy:   optional(f, f.string),
		ModifiedAt:   optional(f, f.time),
		PrisonCode:   optional(f, f.string),
	}
}

func (f *fuzzInput) command() *rules.Command {
	c := &rules.Command{
		ID:               f.string(),
		Kind:             rules.Kind(f.byte()),
		PrisonNumber:     f.string(),
		Origin:           rules.Side(f.byte()),
		Target:           rules.Side(f.byte()),
		SourcePosition:   rules.Position{Commit: f.int64(), Change: f.int64()},
		SourceCommitTime: f.time(),
		DPSAlertID:       optional(f, f.string),
		NOMISBookingID:   optional(f, f.int64),
		NOMISAlertSeq:    optional(f, f.int32),
		Before:           optional(f, f.state),
		After:            optional(f, f.state),
	}
	for range f.byte() % 4 {
		c.Alerts = append(c.Alerts, rules.SnapshotAlert{
			DPSAlertID:     optional(f, f.string),
			NOMISBookingID: optional(f, f.int64),
			NOMISAlertSeq:  optional(f, f.int32),
			Position:       rules.Position{Commit: f.int64(), Change: f.int64()},
			State:          f.state(),
		})
	}
	c.Reason = optional(f, f.string)
	return c
}

// fitsMicros tells, independently of the encoder, whether the microseconds
// since the epoch of t fit an int64.
func fitsMicros(t time.Time) bool {
	us := new(big.Int).Mul(big.NewInt(t.Unix()), big.NewInt(1e6))
	us.Add(us, big.NewInt(int64(t.Nanosecond()/1e3)))
	return us.IsInt64()
}

func timestampsFit(c *rules.Command) bool {
	fits := fitsMicros(c.SourceCommitTime)
	state := func(s *rules.AlertState) {
		if s != nil {
			fits = fits && fitsMicros(s.CreatedAt) && (s.ModifiedAt == nil || fitsMicros(*s.ModifiedAt))
		}
	}
	state(c.Before)
	state(c.After)
	for i := range c.Alerts {
		state(&c.Alerts[i].State)
	}
	return fits
}

func FuzzAppendValue(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x10abcdefghijklmnop\x01\x07A1234BC\x01\x02" + strings.Repeat("\x05", 16) + "\x00\x01\x02\x01\xff\xff"))
	f.Add(bytes.Repeat([]byte{0xff}, 300))
	f.Add(bytes.Repeat([]byte{0x01, 0x02, 0x03, 0x80}, 200))
	for i := range 5 {
		f.Add(bytes.Repeat([]byte{byte(i), 0x41, 0x01}, 150))
	}
	keyCodec, valueCodec := codecs(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c := (&fuzzInput{data: data}).command()
		prefix := []byte{0, 1, 2}
		out, err := AppendValue(prefix, c)
		if !timestampsFit(c) {
			require.ErrorIs(t, err, ErrOutOfRange)
			require.Equal(t, []byte{0, 1, 2}, out)
			return
		}
		require.NoError(t, err)
		require.Equal(t, prefix, out[:3])
		nk, nv := Native(c)
		want, err := valueCodec.BinaryFromNative(nil, nv)
		require.NoError(t, err, "goavro encoding the value")
		require.Equal(t, want, out[3:])
		wantKey, err := keyCodec.BinaryFromNative(nil, nk)
		require.NoError(t, err, "goavro encoding the key")
		require.Equal(t, wantKey, AppendKey(nil, c))
		dv, rest, err := valueCodec.NativeFromBinary(out[3:])
		require.NoError(t, err, "decoding the value")
		require.Empty(t, rest)
		dk, rest, err := keyCodec.NativeFromBinary(wantKey)
		require.NoError(t, err, "decoding the key")
		require.Empty(t, rest)
		require.Equal(t, roundTripped(c), fromNative(t, dk, dv))
	})
}

// benchCommand is a representative upsert: an update with both images.
func benchCommand(b *testing.B) *rules.Command { return caseNamed(b, "upsert update") }

func BenchmarkAppendValue(b *testing.B) {
	c := benchCommand(b)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		hdr := avrobin.WireHeader(1)
		buf = append(buf[:0], hdr[:]...)
		var err error
		if buf, err = AppendValue(buf, c); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkGoavroEncode(b *testing.B) {
	_, codec := codecs(b)
	c := benchCommand(b)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		hdr := avrobin.WireHeader(1)
		buf = append(buf[:0], hdr[:]...)
		_, native := Native(c)
		var err error
		if buf, err = codec.BinaryFromNative(buf, native); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
