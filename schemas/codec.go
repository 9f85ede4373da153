package schemas

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"golang.org/x/sync/singleflight"
)

// Confluent wire format: magic byte 0, schema id as a 4-byte big-endian
// integer, then the Avro binary body.
const (
	magicByte = 0
	headerLen = 5
)

// maxBlockCount bounds the item count goavro accepts for one array block.
// goavro allocates the block before reading its items, so its default
// (math.MaxInt32) lets a 10-byte malformed payload ask for tens of
// gigabytes. No array here comes near this many items (the largest is a
// prisoner's alerts in a REPLACE_PRISONER command).
const maxBlockCount = 1 << 16

func init() {
	// goavro exposes this limit only as a package variable; every Avro
	// decode of the binary goes through this package, so it is set here,
	// once, before any goroutine can decode.
	if goavro.MaxBlockCount > maxBlockCount {
		goavro.MaxBlockCount = maxBlockCount
	}
}

// Registry is the part of a schema-registry client the codec uses.
// *sr.Client implements it.
type Registry interface {
	RegisterSchema(ctx context.Context, subject string, s sr.Schema, id, version int) (int, error)
	SchemaByID(ctx context.Context, id int) (sr.Schema, error)
	SetCompatibility(ctx context.Context, compat sr.SetCompatibility, subjects ...string) []sr.CompatibilityResult
}

// Codec encodes and decodes records of the topics of this package in the
// Confluent wire format. It is safe for concurrent use.
type Codec struct {
	reg       Registry
	log       *slog.Logger
	prefix    string
	setCompat bool

	byID  sync.Map // schema id (int) → *goavro.Codec; written once per id
	fetch singleflight.Group
}

// Option configures a Codec.
type Option func(*Codec)

// WithLogger sets the logger. Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(c *Codec) { c.log = l }
}

// WithTopicPrefix sets a prefix put before every topic name, and so before
// every subject name, by Bind. Default: "" (topics named as in this package).
func WithTopicPrefix(prefix string) Option {
	return func(c *Codec) { c.prefix = prefix }
}

// WithoutCompatibilityConfig stops Bind from setting each subject's
// compatibility level, for registries where the pipeline may register
// schemas but not change configuration. Default: Bind sets the level of
// Topic.Compatibility before registering.
func WithoutCompatibilityConfig() Option {
	return func(c *Codec) { c.setCompat = false }
}

// New returns a codec that registers and fetches schemas through reg.
func New(reg Registry, opts ...Option) *Codec {
	c := &Codec{reg: reg, log: slog.New(slog.DiscardHandler), setCompat: true}
	for _, o := range opts {
		o(c)
	}
	return c
}

// TopicCodec holds the encoders of one topic, bound to the schema ids the
// registry gave its subjects.
type TopicCodec struct {
	// Topic is the Kafka topic name, prefix included.
	Topic string
	// Schemas describes the topic's subjects.
	Schemas Topic
	// Key and Value encode the record key and value.
	Key, Value *Encoder
}

// Record encodes key and value into a record for the topic. A nil value
// makes a tombstone (a record with a nil Value).
func (t *TopicCodec) Record(key, value any) (*kgo.Record, error) {
	k, err := t.Key.Append(nil, key)
	if err != nil {
		return nil, err
	}
	r := &kgo.Record{Topic: t.Topic, Key: k}
	if value != nil {
		if r.Value, err = t.Value.Append(nil, value); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Bind prepares the encoders of topic (its name in this package, without
// prefix): for its key and value subjects it sets the compatibility level
// (unless WithoutCompatibilityConfig), registers the schema, or finds it
// already registered, and caches the id for decoding. Call it once per
// topic at start; the returned encoders take no lock. An error wrapping
// ErrIncompatibleSchema means the registry holds a version this schema may
// not follow: release a compatible schema instead.
func (c *Codec) Bind(ctx context.Context, topic string) (*TopicCodec, error) {
	t, ok := LookupTopic(topic)
	if !ok {
		return nil, fmt.Errorf("binding topic %q: %w", topic, ErrUnknownTopic)
	}
	return c.BindTopic(ctx, t)
}

// BindTopic is Bind for a topic description built by the caller, for schemas
// derived at run time (a captured table's columns). t.Name is the name
// without prefix; binding a changed schema registers a new version under the
// subject's compatibility level.
func (c *Codec) BindTopic(ctx context.Context, t Topic) (*TopicCodec, error) {
	topic := t.Name
	name := c.prefix + topic
	key, err := c.bindSubject(ctx, KeySubject(name), t.Key)
	if err != nil {
		return nil, err
	}
	value, err := c.bindSubject(ctx, ValueSubject(name), t.Value)
	if err != nil {
		return nil, err
	}
	return &TopicCodec{Topic: name, Schemas: t, Key: key, Value: value}, nil
}

func (c *Codec) bindSubject(ctx context.Context, subject string, s Subject) (*Encoder, error) {
	if c.setCompat {
		for _, res := range c.reg.SetCompatibility(ctx, sr.SetCompatibility{Level: s.Compatibility}, subject) {
			if res.Err != nil {
				return nil, fmt.Errorf("setting compatibility %s of subject %q: %w", s.Compatibility, subject, res.Err)
			}
		}
	}
	id, err := c.reg.RegisterSchema(ctx, subject, sr.Schema{Schema: s.Schema, Type: sr.TypeAvro}, -1, -1)
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusConflict {
			return nil, fmt.Errorf("registering schema of subject %q: %w: %w", subject, ErrIncompatibleSchema, err)
		}
		return nil, fmt.Errorf("registering schema of subject %q: %w", subject, err)
	}
	codec, err := goavro.NewCodec(s.Schema)
	if err != nil {
		return nil, fmt.Errorf("compiling schema of subject %q: %w", subject, err)
	}
	if prev, loaded := c.byID.LoadOrStore(id, codec); loaded {
		codec = prev.(*goavro.Codec)
	}
	c.log.Info("schema registered", "subject", subject, "id", id)
	if id < 0 || id > math.MaxInt32 {
		return nil, fmt.Errorf("registering subject %q: registry returned schema id %d outside the wire format's range", subject, id)
	}
	e := &Encoder{subject: subject, id: id, codec: codec}
	e.header[0] = magicByte
	binary.BigEndian.PutUint32(e.header[1:], uint32(id)) //nolint:gosec // range checked above
	return e, nil
}

// Encoder encodes the values of one subject. It is immutable and safe for
// concurrent use.
type Encoder struct {
	subject string
	id      int
	header  [headerLen]byte
	codec   *goavro.Codec
}

// Subject returns the registry subject the encoder writes.
func (e *Encoder) Subject() string { return e.subject }

// ID returns the schema id written in each header.
func (e *Encoder) ID() int { return e.id }

// Append appends the wire-format encoding of native (goavro's native form:
// map[string]any records, unions wrapped with Union, see the helpers in
// native.go) to dst and returns the extended slice. On error it returns dst
// unchanged and an *EncodeError.
func (e *Encoder) Append(dst []byte, native any) ([]byte, error) {
	n := len(dst)
	dst = append(dst, e.header[:]...)
	out, err := e.codec.BinaryFromNative(dst, native)
	if err != nil {
		return dst[:n], &EncodeError{Subject: e.subject, Err: err}
	}
	return out, nil
}

// ParseHeader splits a wire-format payload into its schema id and Avro body.
func ParseHeader(data []byte) (id int, body []byte, err error) {
	if len(data) == 0 {
		return 0, nil, ErrTruncated
	}
	if data[0] != magicByte {
		return 0, nil, fmt.Errorf("%w 0x%02x", ErrUnknownMagic, data[0])
	}
	if len(data) < headerLen {
		return 0, nil, ErrTruncated
	}
	return int(binary.BigEndian.Uint32(data[1:headerLen])), data[headerLen:], nil
}

// Decode decodes a wire-format payload read at loc into goavro's native form,
// following the schema the payload was written with (its id), which it
// fetches from the registry the first time it meets the id and caches for the
// codec's life. An empty payload (a tombstone) decodes to nil without error.
// Decoded bytes fields alias data.
//
// Errors are *DecodeError; DecodeError.Permanent tells a bad payload (send it
// to the DLQ) from an unreachable registry (retry).
func (c *Codec) Decode(ctx context.Context, data []byte, loc Location) (any, error) {
	if len(data) == 0 {
		return nil, nil
	}
	id, body, err := ParseHeader(data)
	if err != nil {
		return nil, &DecodeError{Location: loc, Err: err}
	}
	codec, err := c.codecFor(ctx, id)
	if err != nil {
		return nil, &DecodeError{Location: loc, SchemaID: id, Err: err}
	}
	native, err := decodeBody(codec, body)
	if err != nil {
		return nil, &DecodeError{Location: loc, SchemaID: id, Err: err}
	}
	return native, nil
}

// DecodeKey decodes the key of r.
func (c *Codec) DecodeKey(ctx context.Context, r *kgo.Record) (any, error) {
	return c.Decode(ctx, r.Key, Location{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Part: PartKey})
}

// DecodeValue decodes the value of r; a tombstone decodes to nil.
func (c *Codec) DecodeValue(ctx context.Context, r *kgo.Record) (any, error) {
	return c.Decode(ctx, r.Value, Location{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Part: PartValue})
}

func decodeBody(codec *goavro.Codec, body []byte) (native any, err error) {
	// Bad input must never stop the pipeline: a panic inside the Avro
	// library becomes a permanent decode error (and the fuzz test fails).
	defer func() {
		if r := recover(); r != nil {
			native, err = nil, fmt.Errorf("%w: %v", errDecoderPanic, r)
		}
	}()
	native, rest, err := codec.NativeFromBinary(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the end of the record", ErrMalformed, len(rest))
	}
	return native, nil
}

// codecFor returns the compiled writer schema of id, fetching it once.
func (c *Codec) codecFor(ctx context.Context, id int) (*goavro.Codec, error) {
	if v, ok := c.byID.Load(id); ok {
		return v.(*goavro.Codec), nil
	}
	v, err, _ := c.fetch.Do(strconv.Itoa(id), func() (any, error) {
		if v, ok := c.byID.Load(id); ok {
			return v, nil
		}
		s, err := c.reg.SchemaByID(ctx, id)
		if err != nil {
			var re *sr.ResponseError
			if errors.As(err, &re) && (re.ErrorCode == sr.ErrSchemaNotFound.Code || re.StatusCode == http.StatusNotFound) {
				return nil, fmt.Errorf("%w: %w", ErrUnknownSchemaID, err)
			}
			return nil, fmt.Errorf("fetching schema %d: %w", id, err)
		}
		if s.Type != sr.TypeAvro {
			return nil, fmt.Errorf("%w: schema %d is %s, not Avro", ErrUnsupportedSchema, id, s.Type)
		}
		if len(s.References) > 0 {
			return nil, fmt.Errorf("%w: schema %d has references", ErrUnsupportedSchema, id)
		}
		codec, err := goavro.NewCodec(s.Schema)
		if err != nil {
			return nil, fmt.Errorf("%w: compiling schema %d: %w", ErrUnsupportedSchema, id, err)
		}
		c.byID.Store(id, codec)
		c.log.Debug("schema fetched", "id", id)
		return codec, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*goavro.Codec), nil
}
