package hold

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/testenv/srtest"
	"github.com/alertsync/alertsync/schemas"
)

func codec(t *testing.T) (*schemas.Codec, *schemas.TopicCodec) {
	t.Helper()
	_, cl := srtest.New(t)
	c := schemas.New(cl)
	tc, err := c.Bind(context.Background(), schemas.TopicTransformHolds)
	require.NoError(t, err)
	return c, tc
}

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	c, tc := codec(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 28, 2, 30, 0, 123000, time.UTC)
	h := &Hold{Key: "nomis:10:1", PrisonNumber: "A1234BC", ErrorKind: "mapping", Reason: "text_too_long",
		CreatedAt: now, UpdatedAt: now.Add(time.Second), HeadFailed: true,
		Pending: []Pos{{"nomis.oms_owner.offender_alerts", 2, 7}, {"nomis.oms_owner.offender_alerts", 2, 12}}}
	rec, err := Record(tc, h.Key, h)
	require.NoError(t, err)
	key, got, err := Decode(ctx, c, rec)
	require.NoError(t, err)
	require.Equal(t, h.Key, key)
	require.Equal(t, h, got)

	// Released: a tombstone, read as no hold.
	for _, released := range []*Hold{nil, {Key: h.Key}} {
		rec, err = Record(tc, h.Key, released)
		require.NoError(t, err)
		require.Nil(t, rec.Value)
		key, got, err = Decode(ctx, c, rec)
		require.NoError(t, err)
		require.Equal(t, h.Key, key)
		require.Nil(t, got)
	}

	// Records of one key in two partitions cannot be held together.
	h.Pending = append(h.Pending, Pos{"nomis.oms_owner.offender_alerts", 3, 1})
	_, err = Record(tc, h.Key, h)
	require.ErrorContains(t, err, "one partition")
}

// TestLargeHold: a hold of 100,000 records fits in a record well under
// Kafka's default limit of 1 MB.
func TestLargeHold(t *testing.T) {
	t.Parallel()
	_, tc := codec(t)
	h := &Hold{Key: "dps:0190a3c4-1b2c-7d8e-9f00-112233445566", ErrorKind: "mapping", Reason: "unknown_code"}
	for i := range 100_000 {
		h.Pending = append(h.Pending, Pos{"dps.public.alert", 11, 1_000_000_000 + int64(i)*3})
	}
	rec, err := Record(tc, h.Key, h)
	require.NoError(t, err)
	require.Less(t, len(rec.Value), 700_000)
}

func TestParsePos(t *testing.T) {
	t.Parallel()
	p, err := ParsePos("staging.dps.public.alert/11/42")
	require.NoError(t, err)
	require.Equal(t, Pos{"staging.dps.public.alert", 11, 42}, p)
	require.Equal(t, "staging.dps.public.alert/11/42", p.String())
	for _, bad := range []string{"", "x", "t/1", "/1/2", "t/-1/2", "t/1/x", "t/1/-2", "t//2"} {
		_, err := ParsePos(bad)
		require.Error(t, err, "%q", bad)
	}
}
