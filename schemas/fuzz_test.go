package schemas

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/linkedin/goavro/v2"
)

// FuzzDecode feeds arbitrary payloads to the decoder, whose input comes from
// Kafka and so from anyone who can produce to a topic. It must never panic,
// must fail only with a *DecodeError, and what it accepts must survive an
// encode/decode round trip unchanged. The seed corpus (testdata/fuzz/FuzzDecode)
// holds real payloads of every subject; with the registry below their schema
// ids are 1..14 in topic-table order.
//
//	go test ./schemas -run '^$' -fuzz FuzzDecode -fuzztime 1m
func FuzzDecode(f *testing.F) {
	b := newCodingRegistryWithBinds(f)
	for _, s := range samples() {
		p, err := encoderFor(b.topics[s.topic], s.part).Append(nil, s.native)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{0, 0, 0, 0, 1})
	f.Add([]byte{1, 0, 0, 0, 1, 0})
	// An array block claiming 2^31 items: goavro would allocate them all
	// before reading one without the MaxBlockCount bound set in codec.go.
	f.Add(hugeArrayPayload(f, b.topics[TopicCommandsDPS].Value))

	ctx := context.Background()
	loc := Location{Topic: "fuzz", Partition: 0, Offset: 0, Part: PartValue}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := b.codec.Decode(ctx, data, loc)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error is %T, not *DecodeError: %v", err, err)
			}
			if errors.Is(err, errDecoderPanic) {
				t.Fatalf("the Avro library panicked: %v", err)
			}
			return
		}
		if len(data) == 0 {
			if v != nil {
				t.Fatalf("tombstone decoded to %v", v)
			}
			return
		}
		id, _, err := ParseHeader(data)
		if err != nil {
			t.Fatalf("decoded a payload whose header does not parse: %v", err)
		}
		c, ok := b.codec.byID.Load(id)
		if !ok {
			t.Fatalf("decoded with schema %d, which is not cached", id)
		}
		body, err := c.(*goavro.Codec).BinaryFromNative(nil, v)
		if err != nil {
			t.Fatalf("re-encoding a decoded value: %v", err)
		}
		again, _, err := c.(*goavro.Codec).NativeFromBinary(body)
		if err != nil {
			t.Fatalf("decoding a re-encoded value: %v", err)
		}
		if !reflect.DeepEqual(v, again) {
			t.Fatalf("round trip changed the value:\n%v\n%v", v, again)
		}
	})
}

// hugeArrayPayload returns a command whose alerts array claims 2^31-1 items
// and holds none.
func hugeArrayPayload(tb testing.TB, enc *Encoder) []byte {
	tb.Helper()
	c := command("UPSERT") // alerts empty, reason null: ends 0x00 0x00
	p, err := enc.Append(nil, c)
	if err != nil {
		tb.Fatal(err)
	}
	if p[len(p)-2] != 0 || p[len(p)-1] != 0 {
		tb.Fatalf("unexpected command encoding tail % x", p[len(p)-2:])
	}
	// zigzag varint of 2^31-1
	return append(p[:len(p)-2], 0xfe, 0xff, 0xff, 0xff, 0x0f)
}
