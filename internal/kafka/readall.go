package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrNoTopic is returned by ReadToEnd for a topic that does not exist.
var ErrNoTopic = errors.New("topic does not exist")

// ReadToEnd reads every partition of topic, read committed, from its start
// up to the end offsets (high watermarks) it lists when it starts, and calls
// each for every record in partition order (records of aborted
// transactions and control records are not passed). A read-committed fetch
// stops at a transaction still open, so ReadToEnd returns once every
// transaction open when it started has ended: it sees every one committed
// before it started. (The last stable offsets would not do: a commit's
// markers reach the partitions after the commit returns, so a reader right
// after a commit could miss it.) newClient makes the consuming client from
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
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records (transaction markers) are kept so that an end
		// offset just after a marker is seen to be reached.
		kgo.KeepControlRecords(),
		// A fetch waiting at an open transaction is answered when the
		// wait ends, not when the transaction's marker lands: short waits
		// keep the read from stalling for the default 5 s.
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		return err
	}
	defer cons.Close()
	next := map[int32]int64{}
	remaining := func() bool {
		for p, end := range want {
			if next[p] < end {
				return true
			}
		}
		return false
	}
	for remaining() {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading %s up to offsets %v (at %v): %w", topic, want, next, err)
		}
		for _, fe := range fs.Errors() {
			return fmt.Errorf("reading %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
		}
		var ferr error
		fs.EachRecord(func(rec *kgo.Record) {
			if ferr != nil || rec.Offset >= want[rec.Partition] {
				return
			}
			next[rec.Partition] = rec.Offset + 1
			if !rec.Attrs.IsControl() {
				ferr = each(rec)
			}
		})
		if ferr != nil {
			return ferr
		}
	}
	return nil
}
