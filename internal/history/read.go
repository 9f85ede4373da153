package history

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// span is the part of a partition to read: [from, end).
type span struct{ from, end int64 }

// spans are the parts of each partition of each topic to read.
type spans map[string]map[int32]span

// plan lists, for each of topics that exists, the partitions to read: from
// the log start (or, when since is set, the first record written at or
// after since: ListOffsetsAfterMilli) up to the end offset (high watermark)
// listed now. It returns the topics that do not exist apart.
func plan(ctx context.Context, adm *kadm.Client, topics []string, since time.Time) (spans, []string, error) {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("listing the end offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	var starts kadm.ListedOffsets
	if since.IsZero() {
		starts, err = adm.ListStartOffsets(ctx, topics...)
	} else {
		starts, err = adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), topics...)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("listing the start offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	out := spans{}
	var missing []string
	for _, t := range topics {
		ps, ok := ends[t]
		if !ok || slices.ContainsFunc(slices.Collect(maps.Values(ps)), func(o kadm.ListedOffset) bool {
			return errors.Is(o.Err, kerr.UnknownTopicOrPartition)
		}) {
			missing = append(missing, t)
			continue
		}
		for p, e := range ps {
			if e.Err != nil {
				return nil, nil, fmt.Errorf("listing the end offset of %s/%d: %w", t, p, e.Err)
			}
			s, ok := starts.Lookup(t, p)
			if ok && s.Err != nil {
				return nil, nil, fmt.Errorf("listing the start offset of %s/%d: %w", t, p, s.Err)
			}
			from := int64(0)
			if ok && s.Offset >= 0 {
				from = s.Offset
			}
			if from < e.Offset {
				if out[t] == nil {
					out[t] = map[int32]span{}
				}
				out[t][p] = span{from: from, end: e.Offset}
			}
		}
	}
	return out, missing, nil
}

// idleCheck is how long read waits for records before it asks whether the
// partitions it waits on still hold any.
const idleCheck = time.Second

// read reads the spans, read committed, and calls each for every record a
// read-committed consumer sees in them (not those of aborted transactions,
// nor control records), in offset order per partition. A transaction open
// when the end offsets were listed is waited for: the read ends when every
// partition has been read past the offset before its end, which a
// read-committed consumer reaches only once the transactions begun before
// it are decided. Control records are kept in the fetches for that: the
// abort marker of an aborted transaction is what shows that its records are
// passed. A partition whose log start has reached its end (its records
// expired, or were deleted, during the read) is done too: it is learned
// from the fetches, and from adm when no record came for idleCheck (a
// partition with nothing left to fetch returns no fetch at all). A fetch
// that brings a partition no record while its last stable offset is past
// the end is no such sign: a fetch response already full leaves partitions
// out that still hold records. newClient makes the consuming client from
// the options given; it is closed before read returns. An error of each
// stops the read.
func read(ctx context.Context, adm *kadm.Client, newClient func(...kgo.Opt) (*kgo.Client, error), toRead spans, each func(*kgo.Record) error) error {
	offsets := map[string]map[int32]kgo.Offset{}
	next := map[string]map[int32]int64{} // the partitions not read to their end, and the next offset to see
	pending := 0
	for t, ps := range toRead {
		offsets[t], next[t] = map[int32]kgo.Offset{}, map[int32]int64{}
		for p, s := range ps {
			offsets[t][p] = kgo.NewOffset().At(s.from)
			next[t][p] = s.from
			pending++
		}
	}
	if pending == 0 {
		return nil
	}
	cl, err := newClient(
		kgo.ConsumePartitions(offsets),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		// Records below the log start are gone: go on from it.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	var done map[string][]int32
	finish := func(t string, p int32) {
		if _, ok := next[t][p]; !ok {
			return
		}
		delete(next[t], p)
		pending--
		if done == nil {
			done = map[string][]int32{}
		}
		done[t] = append(done[t], p)
	}
	for pending > 0 {
		pctx, cancel := context.WithTimeout(ctx, idleCheck)
		fs := cl.PollFetches(pctx)
		idle := pctx.Err() != nil
		cancel()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%d partitions not read to the end offsets listed at the start (%s): %w", pending, unread(next, toRead), err)
		}
		for _, fe := range fs.Errors() {
			if idle && errors.Is(fe.Err, context.DeadlineExceeded) {
				continue // the wait for records ended
			}
			return fmt.Errorf("reading %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		done = nil
		var err error
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			n, ok := next[fp.Topic][fp.Partition]
			if !ok || err != nil {
				return
			}
			end := toRead[fp.Topic][fp.Partition].end
			for _, r := range fp.Records {
				if r.Offset < n {
					continue
				}
				n = r.Offset + 1
				if r.Attrs.IsControl() || r.Offset >= end {
					continue
				}
				if err = each(r); err != nil {
					return
				}
			}
			next[fp.Topic][fp.Partition] = n
			if n >= end || fp.LogStartOffset >= end {
				finish(fp.Topic, fp.Partition)
			}
		})
		if err != nil {
			return err
		}
		if idle && pending > 0 {
			if err := expired(ctx, adm, next, toRead, finish); err != nil {
				return err
			}
		}
		if done != nil {
			cl.RemoveConsumePartitions(done)
		}
	}
	return nil
}

// expired calls finish for each partition of next whose log start has
// reached its end in toRead: nothing is left to read there.
func expired(ctx context.Context, adm *kadm.Client, next map[string]map[int32]int64, toRead spans, finish func(string, int32)) error {
	var topics []string
	for t, ps := range next {
		if len(ps) > 0 {
			topics = append(topics, t)
		}
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("listing the start offsets of the partitions not read to their end (%s): %w", unread(next, toRead), err)
	}
	starts.Each(func(o kadm.ListedOffset) {
		if _, ok := next[o.Topic][o.Partition]; ok && o.Err == nil && o.Offset >= toRead[o.Topic][o.Partition].end {
			finish(o.Topic, o.Partition)
		}
	})
	return nil
}

// unread names the partitions not read to their end: topic/partition at
// offset of end.
func unread(next map[string]map[int32]int64, toRead spans) string {
	var out []string
	for _, t := range slices.Sorted(maps.Keys(next)) {
		for _, p := range slices.Sorted(maps.Keys(next[t])) {
			out = append(out, t+"/"+strconv.Itoa(int(p))+" at "+strconv.FormatInt(next[t][p], 10)+" of "+strconv.FormatInt(toRead[t][p].end, 10))
			if len(out) == 5 {
				return strings.Join(out, ", ") + ", …"
			}
		}
	}
	return strings.Join(out, ", ")
}
