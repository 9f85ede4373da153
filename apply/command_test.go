package apply

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/alertsync/alertsync/internal/avrobin"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/testenv/srtest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/decode"
	"github.com/alertsync/alertsync/transform/encode"
	"github.com/alertsync/alertsync/transform/rules"
)

// wire returns body behind the wire-format header of schema id.
func wire(id int, body []byte) []byte {
	h := avrobin.WireHeader(id)
	return append(h[:], body...)
}

// olderCommandSchema returns the current command value schema without its
// reason field: a FULL-compatible earlier version.
func olderCommandSchema(t *testing.T) string {
	t.Helper()
	tp, ok := schemas.LookupTopic(schemas.TopicCommandsDPS)
	require.True(t, ok)
	var s map[string]any
	require.NoError(t, json.Unmarshal([]byte(tp.Value.Schema), &s))
	var kept []any
	for _, f := range s["fields"].([]any) {
		if f.(map[string]any)["name"] != "reason" {
			kept = append(kept, f)
		}
	}
	require.Len(t, kept, len(s["fields"].([]any))-1, "the command schema has no reason field any more: pick another")
	s["fields"] = kept
	out, err := json.Marshal(s)
	require.NoError(t, err)
	return string(out)
}

func testCommand() rules.Command {
	desc, by, reason := "SECRET text", "Governor", "NEW_BOOKING"
	book, seq := int64(1234567), int32(4)
	at := time.Date(2026, 3, 1, 9, 30, 7, 123456000, time.UTC)
	return rules.Command{
		ID: "3f1c2a4e-8b7d-4c1a-9e2f-1a2b3c4d5e6f", Kind: rules.KindUpsert, PrisonNumber: "A1234BC", Origin: rules.SideNOMIS,
		SourcePosition: rules.Position{Commit: 4711, Change: 3}, SourceCommitTime: at,
		NOMISBookingID: &book, NOMISAlertSeq: &seq, Reason: &reason,
		After: &rules.AlertState{Code: "XA", TypeCode: "X", ActiveFrom: rules.DateOf(2026, time.March, 1), Status: rules.StatusActive,
			Description: &desc, AuthorisedBy: &by, CreatedBy: "USER_1", CreatedAt: at},
	}
}

// TestDecodeRecord: a record written with the current command schemas is
// read by decode.FastCommand, one of any other version by goavro and
// DecodeCommand; both give the command written, and fail alike.
func TestDecodeRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, cl := srtest.New(t)
	codec := schemas.New(cl)
	r := &Runner{Topic: kafka.CommandsDPS, Logger: slog.New(slog.DiscardHandler)}
	cur := r.commandSchemas(ctx, codec)
	require.True(t, cur.ok, "binding the command schemas against srfake")
	require.Equal(t, cur, r.commandSchemas(ctx, codec), "a second bind gives the same ids")

	tc, err := codec.Bind(ctx, schemas.TopicCommandsDPS)
	require.NoError(t, err)
	require.Equal(t, commandSchemas{key: tc.Key.ID(), value: tc.Value.ID(), ok: true}, cur)
	older := olderCommandSchema(t)
	ss, err := cl.CreateSchema(ctx, tc.Value.Subject(), sr.Schema{Schema: older, Type: sr.TypeAvro})
	require.NoError(t, err)
	require.NotEqual(t, tc.Value.ID(), ss.ID)
	olderCodec, err := goavro.NewCodec(older)
	require.NoError(t, err)

	c := testCommand()
	key := encode.AppendKey(nil, &c)
	value, err := encode.AppendValue(nil, &c)
	require.NoError(t, err)
	_, native := encode.Native(&c)
	delete(native, "reason")
	olderValue, err := olderCodec.BinaryFromNative(nil, native)
	require.NoError(t, err)
	withoutReason := testCommand()
	withoutReason.Reason = nil
	otherKey := avrobin.AppendString(nil, "Z9999ZZ")

	tests := []struct {
		name      string
		key, val  []byte
		fast      bool // read by FastCommand
		want      rules.Command
		wantErr   string // the error's text; "" for none
		permanent bool   // for a *schemas.DecodeError: Permanent()
	}{
		{name: "current schemas", key: wire(tc.Key.ID(), key), val: wire(tc.Value.ID(), value), fast: true, want: c},
		{name: "older value schema", key: wire(tc.Key.ID(), key), val: wire(ss.ID, olderValue), want: withoutReason},
		{name: "key of another prisoner", key: wire(tc.Key.ID(), otherKey), val: wire(tc.Value.ID(), value), fast: true,
			wantErr: "malformed command: key.prison_number: does not match the value"},
		{name: "key of another prisoner, older value schema", key: wire(tc.Key.ID(), otherKey), val: wire(ss.ID, olderValue),
			wantErr: "malformed command: key.prison_number: does not match the value"},
		{name: "tombstone", key: wire(tc.Key.ID(), key), val: nil, wantErr: "malformed command: value is <nil>"},
		{name: "header only", key: wire(tc.Key.ID(), key), val: wire(tc.Value.ID(), nil), fast: true,
			wantErr: "malformed command: command_id: avrobin: input ends inside a value"},
		{name: "unknown schema id", key: wire(tc.Key.ID(), key), val: wire(9999, value), permanent: true,
			wantErr: "decoding alertsync.commands.dps[0]@7/value (schema id 9999)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &kgo.Record{Topic: "alertsync.commands.dps", Offset: 7, Key: tt.key, Value: tt.val}
			_, _, fast := cur.bodies(rec)
			require.Equal(t, tt.fast, fast, "fast path taken")
			got, err := decodeRecord(ctx, codec, cur, rec)
			// The generic path alone (no fast path) must agree.
			generic, genericErr := decodeRecord(ctx, codec, commandSchemas{}, rec)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Equal(t, tt.want, got)
				require.NoError(t, genericErr)
				require.Equal(t, got, generic)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			require.Equal(t, rules.Command{}, got)
			require.Error(t, genericErr)
			var derr *schemas.DecodeError
			if errors.As(err, &derr) {
				require.Equal(t, tt.permanent, derr.Permanent())
				return
			}
			require.False(t, tt.permanent, "want a *schemas.DecodeError, got %T: %v", err, err)
			require.ErrorIs(t, err, ErrMalformedCommand)
			if !tt.fast {
				require.Equal(t, err.Error(), genericErr.Error())
			}
		})
	}
}

// TestCommandSchemasRegistryAway: without a registry the codec cannot bind
// the command schemas: no fast path, and records of ids the codec has not
// seen fail with a non-permanent error (the session is retried), as before.
func TestCommandSchemasRegistryAway(t *testing.T) {
	t.Parallel()
	reg := srfake.New()
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	require.NoError(t, err)
	reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	codec := schemas.New(cl)
	r := &Runner{Topic: kafka.CommandsNOMIS, Logger: slog.New(slog.DiscardHandler)}
	cur := r.commandSchemas(ctx, codec)
	require.Equal(t, commandSchemas{}, cur)

	c := testCommand()
	value, err := encode.AppendValue(nil, &c)
	require.NoError(t, err)
	rec := &kgo.Record{Topic: "alertsync.commands.nomis", Key: wire(1, encode.AppendKey(nil, &c)), Value: wire(2, value)}
	_, err = decodeRecord(ctx, codec, cur, rec)
	var derr *schemas.DecodeError
	require.ErrorAs(t, err, &derr)
	require.False(t, derr.Permanent(), "a registry outage reads as a bad record: %v", err)
	require.False(t, errors.Is(err, decode.ErrMalformedCommand))
}
