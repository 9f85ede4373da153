package schemas

import (
	"errors"
	"fmt"
)

// Sentinel errors of the codec. A *DecodeError or *EncodeError wraps them;
// branch with errors.Is.
var (
	// ErrTruncated: the payload is shorter than the 5-byte wire-format header.
	ErrTruncated = errors.New("payload shorter than the 5-byte Confluent wire-format header")
	// ErrUnknownMagic: the first byte is not the Confluent magic byte 0, so
	// the payload was not written by a Confluent-format serializer.
	ErrUnknownMagic = errors.New("unknown magic byte")
	// ErrUnknownSchemaID: the registry does not know the payload's schema id
	// (the record comes from another registry, or the schema was deleted).
	ErrUnknownSchemaID = errors.New("schema id unknown to the registry")
	// ErrUnsupportedSchema: the registry returned a schema this codec cannot
	// use (not Avro, with references, or not compilable).
	ErrUnsupportedSchema = errors.New("unsupported schema")
	// ErrMalformed: the Avro body does not match its schema.
	ErrMalformed = errors.New("malformed Avro body")
	// ErrUnknownTopic: the topic has no schemas in this package.
	ErrUnknownTopic = errors.New("no schemas for topic")
	// ErrIncompatibleSchema: the registry refused a schema as incompatible
	// with the subject's registered versions.
	ErrIncompatibleSchema = errors.New("schema incompatible with the registered versions")

	// errDecoderPanic marks a panic of the Avro library turned into an error;
	// it also matches ErrMalformed. The fuzz test fails on it.
	errDecoderPanic = fmt.Errorf("%w: decoder panicked", ErrMalformed)
)

// Part says whether a payload is a record's key or its value.
type Part uint8

// Parts of a record.
const (
	PartValue Part = iota
	PartKey
)

// String returns "key" or "value".
func (p Part) String() string {
	if p == PartKey {
		return "key"
	}
	return "value"
}

// Location says where a payload was read, for error reports.
type Location struct {
	Topic     string
	Partition int32
	Offset    int64
	Part      Part
}

// String formats the location as topic[partition]@offset/part.
func (l Location) String() string {
	return fmt.Sprintf("%s[%d]@%d/%s", l.Topic, l.Partition, l.Offset, l.Part)
}

// DecodeError reports a payload that could not be decoded. Err wraps one of
// the sentinels above when the payload itself is at fault, or the registry
// client's error when the schema could not be fetched.
type DecodeError struct {
	// Location is where the payload was read.
	Location Location
	// SchemaID is the id from the header; 0 when the header was unreadable.
	SchemaID int
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *DecodeError) Error() string {
	if e.SchemaID != 0 {
		return fmt.Sprintf("decoding %s (schema id %d): %v", e.Location, e.SchemaID, e.Err)
	}
	return fmt.Sprintf("decoding %s: %v", e.Location, e.Err)
}

// Unwrap returns the cause.
func (e *DecodeError) Unwrap() error { return e.Err }

// Permanent reports whether decoding the same bytes again can never succeed,
// so that the record belongs in the DLQ. It is false when the schema could
// not be fetched (registry unreachable, context cancelled): retry those.
func (e *DecodeError) Permanent() bool {
	for _, s := range []error{ErrTruncated, ErrUnknownMagic, ErrUnknownSchemaID, ErrUnsupportedSchema, ErrMalformed} {
		if errors.Is(e.Err, s) {
			return true
		}
	}
	return false
}

// EncodeError reports a native value that does not fit its schema: a bug in
// the code that built it, never a transient condition.
type EncodeError struct {
	// Subject is the subject whose schema refused the value.
	Subject string
	// Err is the Avro library's error.
	Err error
}

// Error implements error.
func (e *EncodeError) Error() string {
	return fmt.Sprintf("encoding %s: %v", e.Subject, e.Err)
}

// Unwrap returns the cause.
func (e *EncodeError) Unwrap() error { return e.Err }
