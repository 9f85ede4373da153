package history

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
)

// fetchCounter counts the fetch responses a client reads.
type fetchCounter struct{ n atomic.Int64 }

func (c *fetchCounter) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 1 && err == nil { // Fetch
		c.n.Add(1)
	}
}

// TestReadCommittedRange: read sees the plain records and those of
// committed transactions of its spans, never those of aborted ones; it ends
// when the last offset of a span is an abort marker or an aborted record
// (which a read-committed consumer never returns), and it waits for a
// transaction open when the end offsets were listed, whose records it then
// sees: having delivered every record before it, it keeps fetching and does
// not end until the transaction does. A span that starts at a timestamp
// (plan with since) leaves out the records before it.
func TestReadCommittedRange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, "read")
	cl := kafkatest.Client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	adm := kadm.NewClient(cl)
	// EnsureTopics waits for each partition's leader: a real broker
	// refuses a produce to a topic it has only just created.
	require.NoError(t, kafka.EnsureTopics(ctx, adm, kafka.TopicSpec{Name: topic, Kind: kafka.KindChange, Partitions: 2, ReplicationFactor: 1}))
	// Records written an hour ago: the transaction markers, which the
	// broker stamps with its clock, come after them in time too.
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	rec := func(p int32, v string, at time.Duration) *kgo.Record {
		return &kgo.Record{Topic: topic, Partition: p, Value: []byte(v), Timestamp: t0.Add(at)}
	}
	txn := func(id string, commit bool, rs ...*kgo.Record) *kgo.Client {
		tx := kafkatest.Client(t, brokers, kgo.TransactionalID(id), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
		require.NoError(t, tx.BeginTransaction())
		require.NoError(t, tx.ProduceSync(ctx, rs...).FirstErr())
		if commit {
			require.NoError(t, tx.EndTransaction(ctx, kgo.TryCommit))
		}
		return tx
	}
	require.NoError(t, cl.ProduceSync(ctx, rec(0, "plain-0", 0), rec(1, "plain-1", 0)).FirstErr())
	txn(topic+"-a", true, rec(0, "committed", time.Minute))
	aborted := txn(topic+"-b", false, rec(0, "aborted-0", 2*time.Minute), rec(1, "aborted-1", 2*time.Minute))
	require.NoError(t, aborted.EndTransaction(ctx, kgo.TryAbort))
	// Partition 1 now ends with an aborted record and its abort marker.
	open := txn(topic+"-c", false, rec(0, "late", 3*time.Minute))

	// collect reads from since, calling seen with each record; it runs in
	// a goroutine of its own, so it returns errors rather than failing the
	// test.
	collect := func(since time.Time, fetches *fetchCounter, seen func(string)) ([]string, error) {
		newClient := func(opts ...kgo.Opt) (*kgo.Client, error) {
			return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.FetchMaxWait(100 * time.Millisecond), kgo.WithHooks(fetches)}, opts...)...)
		}
		toRead, missing, err := plan(ctx, adm, []string{topic, topic + "-nosuch"}, since)
		if err != nil {
			return nil, err
		}
		if want := []string{topic + "-nosuch"}; !slices.Equal(missing, want) {
			return nil, fmt.Errorf("missing topics %v, want %v", missing, want)
		}
		var got []string
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err = read(rctx, adm, newClient, toRead, func(r *kgo.Record) error {
			got = append(got, string(r.Value))
			seen(string(r.Value))
			return nil
		})
		return got, err
	}

	type result struct {
		got []string
		err error
	}
	var fetches fetchCounter
	before := make(chan struct{}) // closed when every record outside the open transaction is seen
	var nseen int
	done := make(chan result, 1)
	go func() {
		got, err := collect(time.Time{}, &fetches, func(string) {
			if nseen++; nseen == 3 {
				close(before)
			}
		})
		done <- result{got, err}
	}()
	select {
	case <-before:
	case r := <-done:
		t.Fatalf("read ended before seeing the records outside the open transaction: %v, %v", r.got, r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("read did not see the records outside the open transaction within 30s")
	}
	// Everything else delivered, the reader fetches on – several times –
	// and does not end: it waits for the transaction.
	n := fetches.n.Load()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(30 * time.Second); fetches.n.Load() < n+3; {
		select {
		case r := <-done:
			t.Fatalf("read ended before the open transaction did: %v, %v", r.got, r.err)
		case <-tick.C:
			require.True(t, time.Now().Before(deadline), "the reader made no fetch in 30s")
		}
	}
	select {
	case r := <-done:
		t.Fatalf("read ended before the open transaction did: %v, %v", r.got, r.err)
	default:
	}
	require.NoError(t, open.EndTransaction(ctx, kgo.TryCommit))
	r := <-done
	require.NoError(t, r.err)
	require.ElementsMatch(t, []string{"plain-0", "plain-1", "committed", "late"}, r.got)

	got, err := collect(t0.Add(30*time.Second), &fetches, func(string) {})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"committed", "late"}, got)
	got, err = collect(time.Now().Add(time.Hour), &fetches, func(string) {})
	require.NoError(t, err)
	require.Empty(t, got, "nothing written since")
}

// TestReadExpiredTail: records deleted during the read (retention, or
// DeleteRecords) past the end of a span end the read of their partition: it
// does not wait for offsets that can no longer be fetched, whether some of
// the span is left (partition 0) or none (partition 1, whose fetches then
// bring nothing at all).
func TestReadExpiredTail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, "expired")
	cl := kafkatest.Client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	adm := kadm.NewClient(cl)
	// EnsureTopics waits for each partition's leader: a real broker
	// refuses a produce to a topic it has only just created.
	require.NoError(t, kafka.EnsureTopics(ctx, adm, kafka.TopicSpec{Name: topic, Kind: kafka.KindChange, Partitions: 2, ReplicationFactor: 1}))
	for p := range int32(2) {
		for i := range 5 {
			require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i)}).FirstErr())
		}
	}
	toRead, _, err := plan(ctx, adm, []string{topic}, time.Time{})
	require.NoError(t, err)
	require.Equal(t, spans{topic: {0: {0, 5}, 1: {0, 5}}}, toRead)
	del := kadm.Offsets{}
	del.AddOffset(topic, 0, 3, -1)
	del.AddOffset(topic, 1, 5, -1)
	resp, err := adm.DeleteRecords(ctx, del)
	require.NoError(t, err)
	require.NoError(t, resp.Error())

	newClient := func(opts ...kgo.Opt) (*kgo.Client, error) {
		return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.FetchMaxWait(100 * time.Millisecond)}, opts...)...)
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var got []string
	require.NoError(t, read(rctx, adm, newClient, toRead, func(r *kgo.Record) error {
		got = append(got, string(r.Value))
		return nil
	}))
	require.Equal(t, []string{"0-3", "0-4"}, got)
}
