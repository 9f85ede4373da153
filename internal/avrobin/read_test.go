package avrobin

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/stretchr/testify/require"
)

func TestReaderLong(t *testing.T) {
	t.Parallel()
	long, err := goavro.NewCodec(`"long"`)
	require.NoError(t, err)
	for _, v := range []int64{0, 1, -1, 63, -64, 64, -65, 1 << 20, -(1 << 40), math.MaxInt32 + 1, math.MaxInt64, math.MinInt64} {
		b := AppendLong(nil, v)
		r := NewReader(b)
		got, err := r.Long()
		require.NoError(t, err, "long %d", v)
		require.Equal(t, v, got)
		require.NoError(t, r.Done())
		native, _, err := long.NativeFromBinary(b)
		require.NoError(t, err)
		require.Equal(t, native, got, "goavro reads %d otherwise", v)
	}
	tests := []struct {
		name string
		in   []byte
		want int64
		err  error
	}{
		{"empty", nil, 0, ErrTruncated},
		{"continuation at the end", []byte{0x80}, 0, ErrTruncated},
		{"nine continuation bytes", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0, ErrTruncated},
		{"non-minimal zero", []byte{0x80, 0x00}, 0, nil},
		{"non-minimal ten bytes", []byte{0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 1, nil},
		{"largest ten bytes", []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, math.MaxInt64, nil},
		{"tenth byte above bit 64", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 0, ErrOverflow},
		{"eleven bytes", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 0, ErrOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewReader(tt.in)
			got, err := r.Long()
			require.ErrorIs(t, err, tt.err)
			require.Equal(t, tt.want, got)
			if err != nil {
				require.Zero(t, r.Offset(), "an error leaves the position")
				require.Error(t, r.SkipLong())
			} else {
				require.NoError(t, r.Done())
			}
		})
	}
}

func TestReaderInt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   int64
		err  error
	}{
		{"zero", 0, nil},
		{"max", math.MaxInt32, nil},
		{"min", math.MinInt32, nil},
		{"above max", math.MaxInt32 + 1, ErrOverflow},
		{"below min", math.MinInt32 - 1, ErrOverflow},
		{"long max", math.MaxInt64, ErrOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewReader(AppendLong(nil, tt.in))
			got, err := r.Int()
			require.ErrorIs(t, err, tt.err)
			if tt.err != nil {
				require.Zero(t, r.Offset())
				return
			}
			require.Equal(t, tt.in, int64(got))
			require.NoError(t, r.Done())
		})
	}
}

func TestReaderBool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []byte
		want bool
		err  error
	}{
		{[]byte{0}, false, nil},
		{[]byte{1}, true, nil},
		{[]byte{2}, false, ErrBool},
		{[]byte{0xff}, false, ErrBool},
		{nil, false, ErrTruncated},
	}
	for _, tt := range tests {
		r := NewReader(tt.in)
		got, err := r.Bool()
		require.ErrorIs(t, err, tt.err, "input %x", tt.in)
		require.Equal(t, tt.want, got)
		require.Equal(t, err == nil, r.Offset() == 1, "input %x: offset %d", tt.in, r.Offset())
	}
}

func TestReaderBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []byte
		want string
		err  error
	}{
		{"empty string", AppendString(nil, ""), "", nil},
		{"string", AppendString(nil, "É \"quoted\""), "É \"quoted\"", nil},
		{"long string", AppendString(nil, string(make([]byte, 300))), string(make([]byte, 300)), nil},
		{"not UTF-8 is kept as is", AppendBytes(nil, []byte{0xff, 0xfe}), "\xff\xfe", nil},
		{"negative length", AppendLong(nil, -1), "", ErrNegativeLength},
		{"most negative length", AppendLong(nil, math.MinInt64), "", ErrNegativeLength},
		{"length past the end", append(AppendLong(nil, 4), "abc"...), "", ErrTruncated},
		{"huge length", append(AppendLong(nil, math.MaxInt64), "abc"...), "", ErrTruncated},
		{"length of the int range", append(AppendLong(nil, math.MaxInt32+1), "abc"...), "", ErrTruncated},
		{"no length", nil, "", ErrTruncated},
		{"length overflows", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, "", ErrOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewReader(tt.in)
			got, err := r.Bytes()
			require.ErrorIs(t, err, tt.err)
			if err != nil {
				require.Nil(t, got)
				require.Zero(t, r.Offset())
				_, _, spanErr := r.Span()
				require.ErrorIs(t, spanErr, tt.err)
				require.ErrorIs(t, r.SkipBytes(), tt.err)
				return
			}
			require.Equal(t, tt.want, string(got))
			require.NoError(t, r.Done())
			r.Reset(tt.in)
			start, end, err := r.Span()
			require.NoError(t, err)
			require.Equal(t, tt.want, string(tt.in[start:end]))
			require.Equal(t, len(tt.in), end)
		})
	}
	t.Run("result cannot grow into the input", func(t *testing.T) {
		t.Parallel()
		in := append(AppendString(nil, "ab"), 'c')
		r := NewReader(in)
		got, err := r.Bytes()
		require.NoError(t, err)
		_ = append(got, 'X')
		require.Equal(t, byte('c'), in[3])
	})
}

func TestReaderIndex(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   int64
		n    int
		want int
		err  error
	}{
		{0, 2, 0, nil},
		{1, 2, 1, nil},
		{2, 2, 0, ErrIndex},
		{-1, 2, 0, ErrIndex},
		{7, 8, 7, nil},
		{math.MaxInt64, 8, 0, ErrIndex},
		{math.MinInt64, 8, 0, ErrIndex},
	}
	for _, tt := range tests {
		r := NewReader(AppendLong(nil, tt.in))
		got, err := r.Index(tt.n)
		require.ErrorIs(t, err, tt.err, "index %d of %d", tt.in, tt.n)
		require.Equal(t, tt.want, got)
		if err != nil {
			require.Zero(t, r.Offset())
		}
	}
}

func TestReaderBlockCount(t *testing.T) {
	t.Parallel()
	block := func(vs ...int64) []byte {
		var b []byte
		for _, v := range vs {
			b = AppendLong(b, v)
		}
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want int
		err  error
	}{
		{"end", block(0), 0, nil},
		{"count", block(3), 3, nil},
		{"at the limit", block(100), 100, nil},
		{"above the limit", block(101), 0, ErrBlockCount},
		{"negative count with size", block(-3, 24), 3, nil},
		{"negative count above the limit", block(-101, 24), 0, ErrBlockCount},
		{"negative count without size", block(-3), 0, ErrTruncated},
		{"most negative count", block(math.MinInt64, 0), 0, ErrBlockCount},
		{"most positive count", block(math.MaxInt64), 0, ErrBlockCount},
		{"truncated count", []byte{0x80}, 0, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewReader(tt.in)
			got, err := r.BlockCount(100)
			require.ErrorIs(t, err, tt.err)
			require.Equal(t, tt.want, got)
			if err != nil {
				require.Zero(t, r.Offset())
			} else {
				require.NoError(t, r.Done())
			}
		})
	}
}

func TestReaderSequence(t *testing.T) {
	t.Parallel()
	// A record {a: long, b: ["null","string"], c: boolean, d: int} as goavro
	// writes it, read field by field.
	c, err := goavro.NewCodec(`{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"b","type":["null","string"]},{"name":"c","type":"boolean"},{"name":"d","type":"int"}]}`)
	require.NoError(t, err)
	in, err := c.BinaryFromNative(nil, map[string]any{"a": int64(-300), "b": goavro.Union("string", "xyz"), "c": true, "d": int32(-7)})
	require.NoError(t, err)
	r := NewReader(in)
	a, err := r.Long()
	require.NoError(t, err)
	require.Equal(t, int64(-300), a)
	br, err := r.Index(2)
	require.NoError(t, err)
	require.Equal(t, 1, br)
	b, err := r.Bytes()
	require.NoError(t, err)
	require.Equal(t, "xyz", string(b))
	cv, err := r.Bool()
	require.NoError(t, err)
	require.True(t, cv)
	require.Equal(t, 1, r.Len())
	require.ErrorIs(t, r.Done(), ErrTrailing)
	d, err := r.Int()
	require.NoError(t, err)
	require.Equal(t, int32(-7), d)
	require.NoError(t, r.Done())
	require.Zero(t, r.Len())
	var zero Reader
	_, err = zero.Long()
	require.ErrorIs(t, err, ErrTruncated)
	require.NoError(t, zero.Done())
}

// FuzzReaderLong checks Long against encoding/binary's Varint, which reads the
// same zig-zag varints with the same 10-byte limit, and that no input makes
// any method panic or step outside the input.
func FuzzReaderLong(f *testing.F) {
	for _, seed := range [][]byte{nil, {0}, {0x80}, AppendLong(nil, math.MinInt64), {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(in)
		got, err := r.Long()
		want, n := binary.Varint(in)
		switch {
		case n > 0:
			require.NoError(t, err)
			require.Equal(t, want, got)
			require.Equal(t, n, r.Offset())
		case n == 0 && len(in) >= maxVarintLen:
			// Ten continuation bytes, then the end: Varint waits for more,
			// Long knows no more can fit.
			require.ErrorIs(t, err, ErrOverflow)
		case n == 0:
			require.ErrorIs(t, err, ErrTruncated)
		default:
			require.ErrorIs(t, err, ErrOverflow)
		}
		for _, read := range []func() error{
			func() error { _, err := r.Int(); return err },
			func() error { _, err := r.Bool(); return err },
			func() error { _, err := r.Bytes(); return err },
			func() error { _, err := r.Index(3); return err },
			func() error { _, err := r.BlockCount(1 << 16); return err },
			r.SkipLong, r.SkipBytes,
		} {
			r.Reset(in)
			for r.Len() > 0 {
				before := r.Offset()
				if read() != nil {
					require.Equal(t, before, r.Offset())
					break
				}
				require.Greater(t, r.Offset(), before)
				require.LessOrEqual(t, r.Offset(), len(in))
			}
		}
	})
}
