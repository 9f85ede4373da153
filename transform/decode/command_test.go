package decode_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/internal/avrobin"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/decode"
	"github.com/alertsync/alertsync/transform/encode"
	"github.com/alertsync/alertsync/transform/rules"
)

// cmdSecret is the alert text of the test commands: no error may quote it.
const cmdSecret = "SECRET-COMMAND-TEXT"

// cmdCodecs are goavro codecs of the current command key and value schemas,
// with package schemas' limits (its init sets goavro.MaxBlockCount).
type cmdCodecs struct{ key, value *goavro.Codec }

func commandCodecs(t testing.TB) cmdCodecs {
	t.Helper()
	tp, ok := schemas.LookupTopic(schemas.TopicCommandsDPS)
	require.True(t, ok, "topic %s not in the schema catalog", schemas.TopicCommandsDPS)
	k, err := goavro.NewCodec(tp.Key.Schema)
	require.NoError(t, err)
	v, err := goavro.NewCodec(tp.Value.Schema)
	require.NoError(t, err)
	return cmdCodecs{k, v}
}

// goavroBody decodes body as schemas.Codec does: all of it, a panic being
// an error.
func goavroBody(c *goavro.Codec, body []byte) (native any, err error) {
	defer func() {
		if r := recover(); r != nil {
			native, err = nil, fmt.Errorf("goavro panicked: %v", r)
		}
	}()
	native, rest, err := c.NativeFromBinary(body)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d bytes after the record", len(rest))
	}
	return native, nil
}

// checkCommand checks FastCommand on key and value against goavro and
// apply.DecodeCommand, the apply's generic path: where goavro decodes both
// bodies they return the same command or the same error; where it does not,
// FastCommand fails too. It returns FastCommand's result.
func checkCommand(t testing.TB, cs cmdCodecs, key, value []byte) (rules.Command, error) {
	t.Helper()
	got, gotErr := decode.FastCommand(key, value)
	if gotErr != nil {
		require.ErrorIs(t, gotErr, decode.ErrMalformedCommand)
		require.ErrorIs(t, gotErr, apply.ErrMalformedCommand)
		require.NotContains(t, gotErr.Error(), cmdSecret, "error quotes alert text")
		require.Equal(t, rules.Command{}, got, "a command returned with an error")
	}
	kn, kerr := goavroBody(cs.key, key)
	vn, verr := goavroBody(cs.value, value)
	if kerr != nil || verr != nil {
		require.Error(t, gotErr, "goavro refuses the record (key: %v, value: %v), FastCommand accepts it", kerr, verr)
		return got, gotErr
	}
	if errors.Is(gotErr, avrobin.ErrOverflow) {
		// The documented difference: goavro wraps an over-long varint,
		// FastCommand refuses it (TestFastCommandOverflow).
		return got, gotErr
	}
	want, wantErr := apply.DecodeCommand(kn, vn)
	if wantErr != nil || gotErr != nil {
		require.Error(t, gotErr, "DecodeCommand: %v", wantErr)
		require.Error(t, wantErr, "FastCommand: %v", gotErr)
		require.Equal(t, wantErr.Error(), gotErr.Error())
	}
	require.Equal(t, want, got)
	return got, gotErr
}

// encodeCommand returns the key and value bodies of c as the transformer
// writes them (package encode), after checking they are goavro's bytes.
func encodeCommand(t testing.TB, cs cmdCodecs, c *rules.Command) (key, value []byte) {
	t.Helper()
	key = encode.AppendKey(nil, c)
	value, err := encode.AppendValue(nil, c)
	require.NoError(t, err)
	kn, vn := encode.Native(c)
	gk, err := cs.key.BinaryFromNative(nil, kn)
	require.NoError(t, err)
	gv, err := cs.value.BinaryFromNative(nil, vn)
	require.NoError(t, err)
	require.Equal(t, gk, key, "encode.AppendKey differs from goavro")
	require.Equal(t, gv, value, "encode.AppendValue differs from goavro")
	return key, value
}

// goavroEncode returns the bodies goavro writes for natives (for records
// package encode refuses to write).
func goavroEncode(t testing.TB, cs cmdCodecs, kn, vn map[string]any) (key, value []byte) {
	t.Helper()
	key, err := cs.key.BinaryFromNative(nil, kn)
	require.NoError(t, err)
	value, err = cs.value.BinaryFromNative(nil, vn)
	require.NoError(t, err)
	return key, value
}

func sp(s string) *string         { return &s }
func lp(v int64) *int64           { return &v }
func ip(v int32) *int32           { return &v }
func dp(v rules.Date) *rules.Date { return &v }
func tp(v time.Time) *time.Time   { return &v }

var (
	t0    = time.Date(2026, 3, 1, 9, 30, 7, 123456000, time.UTC)
	t1    = time.Date(2026, 3, 2, 17, 1, 0, 999999000, time.UTC)
	march = rules.DateOf(2026, time.March, 1)
)

func fullCmdState() *rules.AlertState {
	return &rules.AlertState{
		Code: "XA", TypeCode: "X", ActiveFrom: march, ActiveTo: dp(march + 30), Status: rules.StatusActive,
		Description: sp(cmdSecret + " see the case notes"), AuthorisedBy: sp("Governor Smith"),
		CreatedBy: "USER_1", CreatedAt: t0, ModifiedBy: sp("USER_2"), ModifiedAt: tp(t1), PrisonCode: sp("LEI"),
	}
}

func minimalCmdState() *rules.AlertState {
	return &rules.AlertState{Code: "HA", TypeCode: "H", ActiveFrom: march, Status: rules.StatusInactive, CreatedBy: "U", CreatedAt: t0}
}

// snapshot returns n alerts of a REPLACE_PRISONER command, alternating
// full and minimal ones.
func snapshot(n int) []rules.SnapshotAlert {
	out := make([]rules.SnapshotAlert, n)
	for i := range out {
		a := rules.SnapshotAlert{Position: rules.Position{Commit: int64(i), Change: -int64(i)}}
		if i%2 == 0 {
			a.DPSAlertID = sp(fmt.Sprintf("00000000-0000-4000-8000-%012d", i))
			a.NOMISBookingID = lp(int64(1000 + i))
			a.NOMISAlertSeq = ip(int32(i))
			a.State = *fullCmdState()
		} else {
			a.State = *minimalCmdState()
		}
		out[i] = a
	}
	return out
}

func baseCmd(kind rules.Kind) *rules.Command {
	return &rules.Command{
		ID: "3f1c2a4e-8b7d-4c1a-9e2f-1a2b3c4d5e6f", Kind: kind, PrisonNumber: "A1234BC", Origin: rules.SideNOMIS,
		SourcePosition: rules.Position{Commit: 4711, Change: 3}, SourceCommitTime: t0,
	}
}

// commandCases are commands of every kind and side, with each optional
// field set and unset, long and unicode texts, and extreme numbers.
func commandCases() map[string]*rules.Command {
	cases := map[string]*rules.Command{}
	for _, kind := range []rules.Kind{rules.KindUpsert, rules.KindDelete, rules.KindReplacePrisoner} {
		for _, side := range []rules.Side{rules.SideNOMIS, rules.SideDPS} {
			c := baseCmd(kind)
			c.Origin = side
			cases[fmt.Sprintf("%s from %s, bare", kind, side)] = c
			c = baseCmd(kind)
			c.Origin = side
			c.DPSAlertID = sp("0b3e7d2c-5a4f-4e6b-8c9d-0e1f2a3b4c5d")
			c.NOMISBookingID, c.NOMISAlertSeq = lp(1234567), ip(12)
			c.Before, c.After = fullCmdState(), fullCmdState()
			c.After.Status = rules.StatusInactive
			c.Reason = sp("NEW_BOOKING")
			if kind == rules.KindReplacePrisoner {
				c.Alerts = snapshot(3)
			}
			cases[fmt.Sprintf("%s from %s, full", kind, side)] = c
		}
	}
	// Each optional field alone set, and each optional state field alone
	// unset.
	opts := map[string]func(c *rules.Command){
		"dps_alert_id":     func(c *rules.Command) { c.DPSAlertID = sp("") },
		"nomis_booking_id": func(c *rules.Command) { c.NOMISBookingID = lp(0) },
		"nomis_alert_seq":  func(c *rules.Command) { c.NOMISAlertSeq = ip(0) },
		"before":           func(c *rules.Command) { c.Before = minimalCmdState() },
		"after":            func(c *rules.Command) { c.After = minimalCmdState() },
		"reason":           func(c *rules.Command) { c.Reason = sp("") },
		"alerts":           func(c *rules.Command) { c.Alerts = snapshot(1) },
	}
	for name, set := range opts {
		c := baseCmd(rules.KindUpsert)
		set(c)
		cases["only "+name] = c
	}
	stateOpts := map[string]func(s *rules.AlertState){
		"active_to":     func(s *rules.AlertState) { s.ActiveTo = nil },
		"description":   func(s *rules.AlertState) { s.Description = nil },
		"authorised_by": func(s *rules.AlertState) { s.AuthorisedBy = nil },
		"modified_by":   func(s *rules.AlertState) { s.ModifiedBy = nil },
		"modified_at":   func(s *rules.AlertState) { s.ModifiedAt = nil },
		"prison_code":   func(s *rules.AlertState) { s.PrisonCode = nil },
	}
	for name, unset := range stateOpts {
		c := baseCmd(rules.KindUpsert)
		c.Before, c.After = fullCmdState(), fullCmdState()
		unset(c.After)
		c.Alerts = snapshot(2)
		unset(&c.Alerts[0].State)
		cases["state without "+name] = c
	}

	c := baseCmd(rules.KindUpsert)
	c.After = fullCmdState()
	c.After.Description = sp(strings.Repeat(cmdSecret+" ", 20000))
	c.Reason = sp(strings.Repeat("r", 300))
	cases["long texts"] = c

	c = baseCmd(rules.KindUpsert)
	c.After = fullCmdState()
	c.After.Description = sp("Gefährdung – 危险 – 🚨 " + cmdSecret)
	c.After.CreatedBy, c.After.Code = "Zoë_Ørsted", "ÄÖ"
	c.PrisonNumber = "Ä1234ßC"
	cases["unicode"] = c

	c = baseCmd(rules.KindReplacePrisoner)
	c.SourcePosition = rules.Position{}
	c.Alerts = snapshot(4)
	c.Alerts[1].Position = rules.Position{Commit: math.MinInt64, Change: math.MaxInt64}
	cases["zero and extreme positions"] = c

	c = baseCmd(rules.KindUpsert)
	c.SourcePosition = rules.Position{Commit: -1, Change: -9}
	c.SourceCommitTime = time.UnixMicro(-1).UTC()
	c.NOMISBookingID, c.NOMISAlertSeq = lp(math.MinInt64), ip(math.MinInt32)
	c.Before = minimalCmdState()
	c.Before.ActiveFrom, c.Before.ActiveTo = math.MinInt32, dp(math.MaxInt32)
	c.Before.CreatedAt = time.UnixMicro(math.MinInt64).UTC()
	c.Before.ModifiedAt = tp(time.UnixMicro(math.MaxInt64).UTC())
	c.After = minimalCmdState()
	c.After.ActiveFrom, c.After.ActiveTo = -1, dp(0)
	c.After.CreatedAt = time.Unix(0, 0).UTC()
	cases["negative and extreme numbers"] = c

	c = baseCmd(rules.KindUpsert)
	c.ID, c.PrisonNumber = "", ""
	c.After = &rules.AlertState{Status: rules.StatusActive, CreatedAt: time.Unix(0, 0).UTC(), Description: sp(""), PrisonCode: sp("")}
	cases["empty strings"] = c

	c = baseCmd(rules.KindReplacePrisoner)
	c.Alerts = snapshot(200)
	cases["replace with 200 alerts"] = c
	return cases
}

// TestFastCommand: for every command, FastCommand returns the command
// written (by package encode, goavro's bytes) and what goavro and
// apply.DecodeCommand return.
func TestFastCommand(t *testing.T) {
	t.Parallel()
	cs := commandCodecs(t)
	for name, c := range commandCases() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			key, value := encodeCommand(t, cs, c)
			got, err := checkCommand(t, cs, key, value)
			require.NoError(t, err)
			require.Equal(t, *c, got)
		})
	}
}

// TestFastCommandBlocks: an array of more alerts than one block holds
// (goavro and package encode split it) reads back whole.
func TestFastCommandBlocks(t *testing.T) {
	t.Parallel()
	cs := commandCodecs(t)
	c := baseCmd(rules.KindReplacePrisoner)
	c.Alerts = make([]rules.SnapshotAlert, 1<<16+3)
	for i := range c.Alerts {
		c.Alerts[i] = rules.SnapshotAlert{Position: rules.Position{Commit: int64(i)}, State: *minimalCmdState()}
	}
	c.Alerts[1<<16].NOMISAlertSeq = ip(7)
	key, value := encodeCommand(t, cs, c)
	got, err := checkCommand(t, cs, key, value)
	require.NoError(t, err)
	require.Equal(t, *c, got)
}

// TestFastCommandRefused: records goavro decodes but the apply refuses give
// DecodeCommand's error, word for word.
func TestFastCommandRefused(t *testing.T) {
	t.Parallel()
	cs := commandCodecs(t)
	full := baseCmd(rules.KindReplacePrisoner)
	full.Before, full.After, full.Alerts = fullCmdState(), fullCmdState(), snapshot(3)
	tests := []struct {
		name   string
		modify func(key, value map[string]any)
		want   string
	}{
		{"unknown kind", func(_, v map[string]any) { v["kind"] = "UNKNOWN" }, "malformed command: kind: unknown"},
		{"unknown side", func(_, v map[string]any) { v["origin_side"] = "UNKNOWN" }, "malformed command: origin_side: unknown"},
		{"unknown before status", func(_, v map[string]any) { state(v, "before")["status"] = "UNKNOWN" }, "malformed command: status: unknown"},
		{"unknown after status", func(_, v map[string]any) { state(v, "after")["status"] = "UNKNOWN" }, "malformed command: status: unknown"},
		{"unknown alert status", func(_, v map[string]any) {
			v["alerts"].([]any)[2].(map[string]any)["state"].(map[string]any)["status"] = "UNKNOWN"
		}, "malformed command: status: unknown"},
		{"key of another prisoner", func(k, _ map[string]any) { k["prison_number"] = "Z9999ZZ" }, "malformed command: key.prison_number: does not match the value"},
		{"unknown kind and side: the first", func(_, v map[string]any) { v["kind"], v["origin_side"] = "UNKNOWN", "UNKNOWN" }, "malformed command: kind: unknown"},
		{"unknown side and another key: the side", func(k, v map[string]any) { v["origin_side"], k["prison_number"] = "UNKNOWN", "x" }, "malformed command: origin_side: unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kn, vn := encode.Native(full)
			tt.modify(kn, vn)
			key, value := goavroEncode(t, cs, kn, vn)
			_, err := checkCommand(t, cs, key, value)
			require.EqualError(t, err, tt.want)
		})
	}
}

func state(v map[string]any, name string) map[string]any {
	return v[name].(map[string]any)[schemas.TypeAlertState].(map[string]any)
}

// TestFastCommandBroken: every truncation of key and value, trailing bytes
// and value bytes replaced by others give errors (never panics) wherever
// goavro refuses, and agree with it elsewhere.
func TestFastCommandBroken(t *testing.T) {
	t.Parallel()
	cs := commandCodecs(t)
	for _, name := range []string{"REPLACE_PRISONER from DPS, full", "UPSERT from NOMIS, full", "DELETE from NOMIS, bare", "negative and extreme numbers"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, ok := commandCases()[name]
			require.True(t, ok, "no case %q", name)
			key, value := encodeCommand(t, cs, c)
			for n := range len(key) {
				_, err := checkCommand(t, cs, key[:n:n], value)
				require.Error(t, err, "key cut to %d bytes", n)
			}
			for n := range len(value) {
				_, err := checkCommand(t, cs, key, value[:n:n])
				require.Error(t, err, "value cut to %d bytes", n)
			}
			_, err := checkCommand(t, cs, append(key[:len(key):len(key)], 0), value)
			require.ErrorContains(t, err, "malformed command: key: ")
			_, err = checkCommand(t, cs, key, append(value[:len(value):len(value)], 0))
			require.ErrorContains(t, err, "malformed command: value: ")
			_, err = checkCommand(t, cs, key, nil)
			require.EqualError(t, err, "malformed command: value is <nil>")
			mutated := make([]byte, len(value))
			for i := range value {
				for _, b := range []byte{0x00, 0x01, 0x02, 0x03, 0x07, 0x7f, 0x80, 0xff, value[i] ^ 0x01, value[i] ^ 0x80} {
					copy(mutated, value)
					mutated[i] = b
					_, _ = checkCommand(t, cs, key, mutated)
				}
			}
		})
	}
}

// TestFastCommandErrorPaths: a binary error names the field where reading
// stopped, and wraps the avrobin error.
func TestFastCommandErrorPaths(t *testing.T) {
	t.Parallel()
	cs := commandCodecs(t)
	c := baseCmd(rules.KindReplacePrisoner)
	c.After, c.Alerts = fullCmdState(), snapshot(2)
	key, value := encodeCommand(t, cs, c)
	tests := []struct {
		name  string
		value []byte
		want  string
		is    error
	}{
		{"empty value", []byte{}, "malformed command: command_id: ", avrobin.ErrTruncated},
		{"bad kind", append(avrobin.AppendString(nil, c.ID), 0x08), "malformed command: kind: ", avrobin.ErrIndex},
		{"cut in the last alert's state", value[:len(value)-4], "malformed command: alerts[1].state.", avrobin.ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := checkCommand(t, cs, key, tt.value)
			require.ErrorIs(t, err, tt.is)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// TestFastCommandOverflow: a varint of more than 10 bytes, which goavro
// wraps, is an error.
func TestFastCommandOverflow(t *testing.T) {
	t.Parallel()
	cs := commandCodecs(t)
	c := baseCmd(rules.KindDelete)
	key, value := encodeCommand(t, cs, c)
	// source_position.commit follows command_id, kind, prison_number and
	// origin_side: rewrite it as an 11-byte varint.
	at := len(avrobin.AppendString(nil, c.ID)) + 1 + len(avrobin.AppendString(nil, c.PrisonNumber)) + 1
	first := len(avrobin.AppendLong(nil, c.SourcePosition.Commit))
	long := append(append([]byte{}, value[:at]...), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00)
	long = append(long, value[at+first:]...)
	_, err := goavroBody(cs.value, long)
	require.NoError(t, err, "goavro no longer wraps an over-long varint: drop the exception in checkCommand")
	_, err = decode.FastCommand(key, long)
	require.ErrorIs(t, err, avrobin.ErrOverflow)
	require.ErrorContains(t, err, "source_position.commit")
}

// FuzzFastCommand: FastCommand never panics, and agrees with goavro and
// apply.DecodeCommand on every key and value (see checkCommand).
func FuzzFastCommand(f *testing.F) {
	cs := commandCodecs(f)
	for _, name := range []string{"REPLACE_PRISONER from NOMIS, full", "UPSERT from DPS, full", "DELETE from DPS, bare", "unicode", "state without modified_at"} {
		key, value := encodeCommand(f, cs, commandCases()[name])
		f.Add(key, value)
	}
	kn, vn := encode.Native(baseCmd(rules.KindUpsert))
	vn["kind"] = "UNKNOWN"
	k, v := goavroEncode(f, cs, kn, vn)
	f.Add(k, v)
	f.Add([]byte{}, []byte{0x02})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		_, _ = checkCommand(t, cs, key, value)
	})
}

// BenchmarkFastCommand and BenchmarkGoavroCommand decode a typical upsert
// both ways.
func BenchmarkFastCommand(b *testing.B) {
	key, value := benchCommand(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode.FastCommand(key, value); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGoavroCommand(b *testing.B) {
	cs := commandCodecs(b)
	key, value := benchCommand(b)
	b.ReportAllocs()
	for b.Loop() {
		k, err := goavroBody(cs.key, key)
		if err != nil {
			b.Fatal(err)
		}
		v, err := goavroBody(cs.value, value)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := apply.DecodeCommand(k, v); err != nil {
			b.Fatal(err)
		}
	}
}

func benchCommand(b *testing.B) (key, value []byte) {
	b.Helper()
	c := baseCmd(rules.KindUpsert)
	c.NOMISBookingID, c.NOMISAlertSeq = lp(1234567), ip(3)
	c.After = fullCmdState()
	return encodeCommand(b, commandCodecs(b), c)
}
