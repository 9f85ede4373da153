package avrobin

import (
	"errors"
	"math"
)

// Errors of a Reader. They are sentinels (compare with errors.Is) and never
// quote the input.
var (
	// ErrTruncated: the input ends inside a value, or a length runs past its
	// end.
	ErrTruncated = errors.New("avrobin: input ends inside a value")
	// ErrOverflow: a varint longer than 10 bytes or above 64 bits, or an int
	// outside the int32 range.
	ErrOverflow = errors.New("avrobin: integer does not fit its type")
	// ErrNegativeLength: a bytes or string length below zero.
	ErrNegativeLength = errors.New("avrobin: negative length")
	// ErrBool: a boolean byte other than 0 or 1.
	ErrBool = errors.New("avrobin: boolean byte is neither 0 nor 1")
	// ErrIndex: a union branch or enum symbol index outside the type's.
	ErrIndex = errors.New("avrobin: union or enum index out of range")
	// ErrBlockCount: an array or map block count above the caller's limit
	// (or the unrepresentable -2^63).
	ErrBlockCount = errors.New("avrobin: block count out of range")
	// ErrTrailing: bytes left after the end of the value.
	ErrTrailing = errors.New("avrobin: bytes after the end of the value")
)

// Reader reads Avro binary encodings (Avro 1.11 specification, "Binary
// Encoding") from a byte slice, front to back. The zero Reader reads an
// empty input; Reset points it at another.
//
// Every method returns an error value instead of panicking, whatever the
// input: a hostile length or count is an error, never an allocation. On
// error the position is left where it was before the call. Values that
// Bytes and Span return alias the input. A Reader is not safe for
// concurrent use.
type Reader struct {
	buf []byte
	off int
}

// NewReader returns a Reader over b.
func NewReader(b []byte) Reader { return Reader{buf: b} }

// Reset makes r read b from its start.
func (r *Reader) Reset(b []byte) { r.buf, r.off = b, 0 }

// Offset returns the number of bytes read so far.
func (r *Reader) Offset() int { return r.off }

// Len returns the number of bytes not read yet.
func (r *Reader) Len() int { return len(r.buf) - r.off }

// Done returns ErrTrailing when bytes are left unread, else nil: the check
// that a value took up its whole input.
func (r *Reader) Done() error {
	if r.off != len(r.buf) {
		return ErrTrailing
	}
	return nil
}

// Long reads an Avro long: a zig-zag varint of at most 10 bytes. A longer
// varint, or a tenth byte carrying bits above the 64th, is ErrOverflow.
// Non-minimal encodings within 10 bytes are accepted, as the specification
// allows.
func (r *Reader) Long() (int64, error) {
	if r.off < len(r.buf) {
		if b := r.buf[r.off]; b < 0x80 {
			r.off++
			return int64(b>>1) ^ -int64(b&1), nil
		}
	}
	return r.longSlow()
}

// longSlow reads a varint of more than one byte. It is kept out of line so
// that Long, whose one-byte case is the common one, inlines.
//
//go:noinline
func (r *Reader) longSlow() (int64, error) {
	var u uint64
	for i := range maxVarintLen {
		if r.off+i >= len(r.buf) {
			return 0, ErrTruncated
		}
		b := r.buf[r.off+i]
		if i == maxVarintLen-1 && b > 1 {
			return 0, ErrOverflow
		}
		u |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			r.off += i + 1
			return int64(u>>1) ^ -int64(u&1), nil //nolint:gosec // zig-zag decoding
		}
	}
	return 0, ErrOverflow // unreachable: the tenth byte ends the loop above
}

// maxVarintLen is the length of the longest varint of a 64-bit value.
const maxVarintLen = 10

// Int reads an Avro int: a long in the int32 range, else ErrOverflow.
func (r *Reader) Int() (int32, error) {
	off := r.off
	v, err := r.Long()
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.off = off
		return 0, ErrOverflow
	}
	return int32(v), nil
}

// Bool reads an Avro boolean: one byte, 0 or 1; any other byte is ErrBool.
func (r *Reader) Bool() (bool, error) {
	if r.off >= len(r.buf) {
		return false, ErrTruncated
	}
	switch r.buf[r.off] {
	case 0:
		r.off++
		return false, nil
	case 1:
		r.off++
		return true, nil
	}
	return false, ErrBool
}

// Span reads an Avro bytes or string value (a long length, then that many
// bytes) and returns its bounds in the input: the value is input[start:end].
// It is for callers that convert the input to a string once and take the
// strings they keep as substrings of it. A negative length is
// ErrNegativeLength, one beyond the input ErrTruncated. Strings are not
// checked for valid UTF-8.
func (r *Reader) Span() (start, end int, err error) {
	off := r.off
	n, err := r.Long()
	if err != nil {
		return 0, 0, err
	}
	if n < 0 {
		r.off = off
		return 0, 0, ErrNegativeLength
	}
	if n > int64(len(r.buf)-r.off) {
		r.off = off
		return 0, 0, ErrTruncated
	}
	start = r.off
	r.off += int(n)
	return start, r.off, nil
}

// Bytes reads an Avro bytes or string value, as Span, and returns it: a
// slice of the input, not a copy.
func (r *Reader) Bytes() ([]byte, error) {
	start, end, err := r.Span()
	if err != nil {
		return nil, err
	}
	return r.buf[start:end:end], nil
}

// SkipLong reads and drops a long (or an int, enum index or timestamp),
// with the checks of Long.
func (r *Reader) SkipLong() error {
	_, err := r.Long()
	return err
}

// SkipBytes reads and drops a bytes or string value, with the checks of
// Span.
func (r *Reader) SkipBytes() error {
	_, _, err := r.Span()
	return err
}

// Index reads the branch index of a union of n branches, or the symbol
// index of an enum of n symbols: a long in [0, n), else ErrIndex. For a
// ["null", T] union, 0 is null and 1 is T.
func (r *Reader) Index(n int) (int, error) {
	off := r.off
	v, err := r.Long()
	if err != nil {
		return 0, err
	}
	if v < 0 || v >= int64(n) {
		r.off = off
		return 0, ErrIndex
	}
	return int(v), nil
}

// BlockCount reads the item count of an array or map block. A negative count
// is followed by the block's size in bytes, which is read and dropped; the
// count returned is then the absolute value. Zero ends the array or map. A
// count above limit (or -2^63) is ErrBlockCount: pick a limit no real
// record reaches, so that a hostile count cannot make the caller allocate.
func (r *Reader) BlockCount(limit int) (int, error) {
	off := r.off
	n, err := r.Long()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		if n == math.MinInt64 {
			r.off = off
			return 0, ErrBlockCount
		}
		n = -n
		if err := r.SkipLong(); err != nil {
			r.off = off
			return 0, err
		}
	}
	if n > int64(limit) {
		r.off = off
		return 0, ErrBlockCount
	}
	return int(n), nil
}
