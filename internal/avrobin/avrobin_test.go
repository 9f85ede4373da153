package avrobin

import (
	"math"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/stretchr/testify/require"
)

// TestMatchesGoavro checks each helper against goavro's encoding of the same
// value under the matching schema.
func TestMatchesGoavro(t *testing.T) {
	t.Parallel()
	enc := func(schema string, native any) []byte {
		c, err := goavro.NewCodec(schema)
		require.NoError(t, err)
		b, err := c.BinaryFromNative(nil, native)
		require.NoError(t, err)
		return b
	}
	for _, v := range []int64{0, 1, -1, 63, -64, 64, 1 << 40, math.MaxInt64, math.MinInt64} {
		require.Equal(t, enc(`"long"`, v), AppendLong(nil, v), "long %d", v)
	}
	for _, v := range []int32{0, -1, math.MaxInt32, math.MinInt32} {
		require.Equal(t, enc(`"int"`, v), AppendLong(nil, int64(v)), "int %d", v)
	}
	for _, s := range []string{"", "a", "É \"quoted\"", string(make([]byte, 300))} {
		require.Equal(t, enc(`"string"`, s), AppendString(nil, s))
		require.Equal(t, enc(`"bytes"`, []byte(s)), AppendBytes(nil, []byte(s)))
	}
	require.Equal(t, enc(`"boolean"`, true), AppendBool(nil, true))
	require.Equal(t, enc(`"boolean"`, false), AppendBool(nil, false))
	s := "x"
	require.Equal(t, enc(`["null","string"]`, goavro.Union("string", s)), AppendOptString(nil, &s))
	require.Equal(t, enc(`["null","string"]`, nil), AppendOptString(nil, nil))
	require.Equal(t, [5]byte{0, 0, 1, 0, 2}, WireHeader(65538))
}
