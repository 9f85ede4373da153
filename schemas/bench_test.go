package schemas

import (
	"context"
	"testing"

	"github.com/linkedin/goavro/v2"
)

// The benchmarks measure the alert envelope of an update (before and after
// images, source block) through the codec – wire-format header, bound
// encoder, id-cached decoder – beside goavro's raw calls on the same record
// and schema, the reference scripts/bench.sh reports the codec against
// (codec.encode ref goavro.encode, codec.decode ref goavro.decode).

func benchAlert(b *testing.B) (sample, *Encoder, *Codec) {
	b.Helper()
	bound := newCodingRegistryWithBinds(b)
	for _, s := range samples() {
		if s.name == "alert update by sync" {
			return s, bound.topics[TopicDPSAlert].Value, bound.codec
		}
	}
	b.Fatal("no alert update sample")
	return sample{}, nil, nil
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkCodecEncode(b *testing.B) {
	s, enc, _ := benchAlert(b)
	buf, err := enc.Append(nil, s.native)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if buf, err = enc.Append(buf[:0], s.native); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkGoavroEncode(b *testing.B) {
	s, _, _ := benchAlert(b)
	codec, err := goavro.NewCodec(subjectOf(s.topic, s.part).Schema)
	if err != nil {
		b.Fatal(err)
	}
	buf, err := codec.BinaryFromNative(nil, s.native)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf) + headerLen))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if buf, err = codec.BinaryFromNative(buf[:0], s.native); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkCodecDecode(b *testing.B) {
	s, enc, c := benchAlert(b)
	payload, err := enc.Append(nil, s.native)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	loc := Location{Topic: TopicDPSAlert}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Decode(ctx, payload, loc); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkGoavroDecode(b *testing.B) {
	s, _, _ := benchAlert(b)
	codec, err := goavro.NewCodec(subjectOf(s.topic, s.part).Schema)
	if err != nil {
		b.Fatal(err)
	}
	body, err := codec.BinaryFromNative(nil, s.native)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body) + headerLen))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := codec.NativeFromBinary(body); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}
