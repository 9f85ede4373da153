package decode

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/rules"
)

// secret is the alert text of every test record: no error may quote it.
const secret = "SECRET-COMMENT-TEXT"

func ptr[T any](v T) *T { return &v }

// ts returns a UTC instant with microsecond precision, as timestamp-micros holds it.
func ts(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 7, 123456000, time.UTC)
}

// roundTrip encodes key and value with the registered schemas of topic and
// decodes them back, returning exactly what a Kafka consumer's
// schemas.Codec hands the stream loop.
func roundTrip(t *testing.T, topic string, key, value map[string]any) (any, any) {
	t.Helper()
	tp, ok := schemas.LookupTopic(topic)
	require.True(t, ok, "topic %s not in the schema catalog", topic)
	code := func(schema string, native map[string]any) any {
		c, err := goavro.NewCodec(schema)
		require.NoError(t, err)
		bin, err := c.BinaryFromNative(nil, native)
		require.NoError(t, err, "encoding test record for %s", topic)
		out, rest, err := c.NativeFromBinary(bin)
		require.NoError(t, err)
		require.Empty(t, rest)
		return out
	}
	return code(tp.Key.Schema, key), code(tp.Value.Schema, value)
}

func optStr(p *string) any { return schemas.OptString(p) }

func optTS(p *time.Time) any { return schemas.OptTimestamp(p) }

func sourceNative(name string, src rules.Source) map[string]any {
	return map[string]any{
		"version": "test", "connector": "oracle", "name": name,
		"ts_ms": src.CommitTime.UnixMilli(), "snapshot": "false", "db": "db", "schema": "s", "table": "t",
		"txId": nil, "lsn": nil, "origin": nil, "sync": src.Sync,
		"position": map[string]any{"commit": src.Position.Commit, "change": src.Position.Change},
	}
}

// wantShapeErr checks that err is an *Error naming field that quotes no alert text.
func wantShapeErr(t *testing.T, err error, field string) {
	t.Helper()
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, field, e.Field, "error: %v", err)
	require.Equal(t, rules.StageTransform, e.Stage)
	require.False(t, errors.Is(err, ErrTombstone))
	require.False(t, strings.Contains(err.Error(), secret), "error quotes alert text: %v", err)
	require.False(t, strings.Contains(err.Error(), "AUTH-PERSON"), "error quotes alert text: %v", err)
}

func london(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/London")
	require.NoError(t, err, "loading Europe/London: install tzdata (apt-get install tzdata)")
	return loc
}

func newRules(t *testing.T) *rules.Rules {
	t.Helper()
	r, err := rules.New(rules.NewCodeTable(
		rules.Code{ID: 1, Code: "XA", Type: "X", Active: true},
		rules.Code{ID: 2, Code: "HA", Type: "H", Active: true},
	), london(t))
	require.NoError(t, err)
	return r
}
