package topictest

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/schemas"
)

// Record is a decoded record.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       map[string]any
	Value     map[string]any    // nil for a tombstone
	Headers   map[string]string // the record's headers (the last of a repeated key)
}

// Reader reads topics of the cluster at Brokers and decodes their records
// with the schemas of Registry. ReadCommitted makes it skip records of
// aborted and open transactions (the default reads uncommitted).
type Reader struct {
	Brokers       []string
	Registry      *sr.Client
	ReadCommitted bool
}

func (r Reader) opts(topics ...string) []kgo.Opt {
	// Control records (transaction markers) are kept so that ToEnds can
	// reach an end offset that lies after a marker; Until and ToEnds never
	// return them.
	opts := []kgo.Opt{kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords()}
	if r.ReadCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	return opts
}

func decode(ctx context.Context, tb testing.TB, codec *schemas.Codec, rec *kgo.Record) Record {
	tb.Helper()
	k, err := codec.DecodeKey(ctx, rec)
	require.NoError(tb, err)
	v, err := codec.DecodeValue(ctx, rec)
	require.NoError(tb, err)
	x := Record{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}
	if len(rec.Headers) > 0 {
		x.Headers = make(map[string]string, len(rec.Headers))
		for _, h := range rec.Headers {
			x.Headers[h.Key] = string(h.Value)
		}
	}
	x.Key, _ = k.(map[string]any)
	x.Value, _ = v.(map[string]any)
	return x
}

// Until reads records of topics from their start until want of them have
// arrived or timeout passes, and returns those read (possibly fewer than
// want, or more). It fails the test on a fetch or decoding error.
func (r Reader) Until(tb testing.TB, want int, timeout time.Duration, topics ...string) []Record {
	tb.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(r.Brokers...)}, r.opts(topics...)...)...)
	require.NoError(tb, err)
	defer cl.Close()
	codec := schemas.New(r.Registry)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				require.NoError(tb, e.Err, "fetching %s", e.Topic)
			}
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if !rec.Attrs.IsControl() {
				out = append(out, decode(ctx, tb, codec, rec))
			}
		})
	}
	return out
}

// ToEnds reads every partition of topic up to ends (partition to end
// offset, exclusive) and returns the records sorted by partition, then
// offset: the order a consumer sees per partition. It fails the test on a
// fetch or decoding error or when the ends are not reached in 3 minutes.
func (r Reader) ToEnds(tb testing.TB, topic string, ends map[int32]int64) []Record {
	tb.Helper()
	cl := kafkatest.Client(tb, r.Brokers, append(r.opts(topic), kgo.FetchMaxBytes(64<<20))...)
	codec := schemas.New(r.Registry)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	next := map[int32]int64{}
	remaining := func() bool {
		for p, end := range ends {
			if next[p] < end {
				return true
			}
		}
		return false
	}
	var out []Record
	for remaining() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("reading %s: %v after %d records (want end offsets %v, at %v)", topic, ctx.Err(), len(out), ends, next)
		}
		for _, e := range fs.Errors() {
			tb.Fatalf("fetching %s[%d]: %v", e.Topic, e.Partition, e.Err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Offset >= ends[rec.Partition] {
				return
			}
			next[rec.Partition] = rec.Offset + 1
			if rec.Attrs.IsControl() {
				return
			}
			out = append(out, decode(ctx, tb, codec, rec))
		})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out
}

// Offsets returns the sums over every partition of topics of the start
// (log start) offsets and of the end offsets (high watermarks); end minus
// start is how many offsets the topics hold.
func Offsets(tb testing.TB, brokers []string, topics ...string) (start, end int64) {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(tb, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topics...)
	require.NoError(tb, err)
	require.NoError(tb, ends.Error())
	starts, err := adm.ListStartOffsets(ctx, topics...)
	require.NoError(tb, err)
	require.NoError(tb, starts.Error())
	ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
	starts.Each(func(o kadm.ListedOffset) { start += o.Offset })
	return start, end
}

// EndOffsets returns the high watermark of each partition of topic (no
// entry for a partition whose listing failed, none at all while the topic
// does not exist yet), listed within 30s of ctx.
func EndOffsets(ctx context.Context, tb testing.TB, adm *kadm.Client, topic string) map[int32]int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		tb.Fatalf("listing end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			out[o.Partition] = o.Offset
		}
	})
	return out
}

// Sum returns the sum of the offsets of m.
func Sum(m map[int32]int64) int64 {
	var n int64
	for _, o := range m {
		n += o
	}
	return n
}

// RecordLike is any type whose underlying type is that of Record, such as
// a test package's own record type with methods (type rec topictest.Record).
type RecordLike interface {
	~struct {
		Topic     string
		Partition int32
		Offset    int64
		Key       map[string]any
		Value     map[string]any
		Headers   map[string]string
	}
}

// As converts records to R.
func As[R RecordLike](in []Record) []R {
	out := make([]R, len(in))
	for i, x := range in {
		out[i] = R(x)
	}
	return out
}

// UntilDistinct reads records of topics until want distinct ones (by id)
// have arrived or timeout passes, and returns the distinct ones in the
// order first read: for topics where a record may legitimately be
// published twice (an outbox relay after a partial failure).
func (r Reader) UntilDistinct(tb testing.TB, want int, timeout time.Duration, id func(Record) string, topics ...string) []Record {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	n := want
	for {
		recs := r.Until(tb, n, time.Until(deadline), topics...)
		seen := map[string]bool{}
		var out []Record
		for _, x := range recs {
			if k := id(x); !seen[k] {
				seen[k] = true
				out = append(out, x)
			}
		}
		if len(out) >= want || len(recs) < n || time.Now().After(deadline) {
			return out
		}
		n = len(recs) + want - len(out)
	}
}
