// Package avrobin appends and reads Avro binary encodings (Avro 1.11
// specification, "Binary Encoding") of primitive values, and the Confluent
// wire-format header. The captures and the transformer's command encoder use
// it on their hot paths to write records directly, and the transformer's
// decoders (Reader) to read them, without goavro's map-based native values;
// each user has a test that its bytes or results equal goavro's for the same
// record under the registered schema. Reader refuses what goavro would
// silently wrap: a varint longer than 10 bytes, an int beyond 32 bits.
package avrobin

import "encoding/binary"

// Union branch indexes of a ["null", T] union, encoded.
const (
	// Null is the branch byte of null (index 0).
	Null byte = 0
	// NotNull is the branch byte of T (index 1, zig-zag 2).
	NotNull byte = 2
)

// AppendLong appends an Avro int or long (zig-zag varint).
func AppendLong(b []byte, v int64) []byte {
	return binary.AppendUvarint(b, uint64(v<<1)^uint64(v>>63)) //nolint:gosec // zig-zag encoding
}

// AppendString appends an Avro string or bytes: the length, then the bytes.
func AppendString(b []byte, s string) []byte {
	b = AppendLong(b, int64(len(s)))
	return append(b, s...)
}

// AppendBytes appends an Avro bytes value.
func AppendBytes(b, v []byte) []byte {
	b = AppendLong(b, int64(len(v)))
	return append(b, v...)
}

// AppendBool appends an Avro boolean.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendOptString appends a ["null", "string"] union: null for nil.
func AppendOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, Null)
	}
	return AppendString(append(b, NotNull), *s)
}

// WireHeader is the Confluent wire-format header of schema id: magic byte 0,
// then the id as a 4-byte big-endian integer.
func WireHeader(id int) [5]byte {
	var h [5]byte
	binary.BigEndian.PutUint32(h[1:], uint32(id)) //nolint:gosec // registry ids are positive int32
	return h
}
