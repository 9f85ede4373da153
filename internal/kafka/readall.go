package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrNoTopic is returned by ReadToEnd for a topic that does not exist.
var ErrNoTopic = errors.New("topic does not exist")

// ReadToEnd reads every partition of topic from its start up to the end
// offsets (high watermarks) it lists when it starts, and calls each, in
// (partition, offset) order, for every record a read-committed consumer
// would see there: non-transactional records and those of committed
// transactions; not those of aborted transactions, nor control records.
// A transaction open when it starts is waited for (its marker lies past
// the listed end), so ReadToEnd sees every transaction committed before it
// started. (The last stable offsets would not do: a commit's markers reach
// the partitions after the commit returns, so a reader right after a commit
// could miss it.)
//
// It reads uncommitted and sorts the records by the transaction markers
// itself. A read-committed fetch would do as well when it keeps control
// records: franz-go then drops the records of aborted transactions but
// returns the markers (kgo.KeepControlRecords), so the abort marker shows
// where an aborted transaction ends (internal/history reads that way).
// Without control records a read-committed reader never sees an offset
// past the end of an aborted transaction, and a read whose end lies just
// past one would wait for ever. newClient makes the consuming client from
// the options given (it is closed before ReadToEnd returns). An error of
// each stops the read and is returned as it is.
func ReadToEnd(ctx context.Context, adm *kadm.Client, newClient func(...kgo.Opt) (*kgo.Client, error), topic string, each func(*kgo.Record) error) error {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("reading %s: %w", topic, ErrNoTopic)
		}
		return fmt.Errorf("listing the end offsets of %s: %w", topic, err)
	}
	if _, ok := ends[topic]; !ok {
		return fmt.Errorf("reading %s: %w", topic, ErrNoTopic)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("listing the start offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{} // partition → end offset (exclusive)
	from := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		s, ok := starts.Lookup(o.Topic, o.Partition)
		start := int64(0)
		if ok {
			start = s.Offset
		}
		if o.Offset > start {
			want[o.Partition] = o.Offset
			from[o.Partition] = kgo.NewOffset().At(start)
		}
	})
	if len(want) == 0 {
		return nil
	}
	cons, err := newClient(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.KeepControlRecords(),
		// Waiting for a transaction's marker: short fetch waits.
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		return err
	}
	defer cons.Close()
	r := txnReader{want: want, next: map[int32]int64{}, open: map[int32]map[int64][]*kgo.Record{}}
	for r.remaining() {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading %s up to offsets %v (at %v): %w", topic, want, r.next, err)
		}
		for _, fe := range fs.Errors() {
			return fmt.Errorf("reading %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(r.add)
	}
	sort.Slice(r.seen, func(i, j int) bool {
		if r.seen[i].Partition != r.seen[j].Partition {
			return r.seen[i].Partition < r.seen[j].Partition
		}
		return r.seen[i].Offset < r.seen[j].Offset
	})
	for _, rec := range r.seen {
		if err := each(rec); err != nil {
			return err
		}
	}
	return nil
}

// txnReader sorts uncommitted records into those a read-committed reader
// sees, up to the end offsets want.
type txnReader struct {
	want map[int32]int64
	next map[int32]int64                   // partition → next offset to read
	open map[int32]map[int64][]*kgo.Record // partition → producer id → records of its open transaction
	seen []*kgo.Record
}

// remaining reports whether a partition is not read to its end yet, or has
// a transaction begun before its end still undecided.
func (r *txnReader) remaining() bool {
	for p, end := range r.want {
		if r.next[p] < end || len(r.open[p]) > 0 {
			return true
		}
	}
	return false
}

func (r *txnReader) add(rec *kgo.Record) {
	p := rec.Partition
	end, ok := r.want[p]
	if !ok || rec.Offset < r.next[p] {
		return
	}
	r.next[p] = rec.Offset + 1
	switch {
	case rec.Attrs.IsControl():
		recs, pending := r.open[p][rec.ProducerID]
		if !pending {
			return
		}
		delete(r.open[p], rec.ProducerID)
		// The key of a control record: version (int16), type (int16): 0
		// abort, 1 commit.
		if len(rec.Key) >= 4 && binary.BigEndian.Uint16(rec.Key[2:4]) == 1 {
			r.seen = append(r.seen, recs...)
		}
	case rec.Offset >= end:
		// Past the end: only the markers of transactions begun before it
		// matter.
	case rec.Attrs.IsTransactional():
		if r.open[p] == nil {
			r.open[p] = map[int64][]*kgo.Record{}
		}
		r.open[p][rec.ProducerID] = append(r.open[p][rec.ProducerID], rec)
	default:
		r.seen = append(r.seen, rec)
	}
}
