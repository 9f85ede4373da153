package history

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
)

// TestReadCommittedRange: read sees the plain records and those of
// committed transactions of its spans, never those of aborted ones; it ends
// when the last offset of a span is an abort marker or an aborted record
// (which a read-committed consumer never returns), and it waits for a
// transaction open when the end offsets were listed, whose records it then
// sees. A span that starts at a timestamp (plan with since) leaves out the
// records before it.
func TestReadCommittedRange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, "read")
	cl := kafkatest.Client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	adm := kadm.NewClient(cl)
	_, err := adm.CreateTopic(ctx, 2, 1, nil, topic)
	require.NoError(t, err)
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

	newClient := func(opts ...kgo.Opt) (*kgo.Client, error) {
		return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.FetchMaxWait(100 * time.Millisecond)}, opts...)...)
	}
	collect := func(since time.Time) []string {
		todo, missing, err := plan(ctx, adm, []string{topic, topic + "-nosuch"}, since)
		require.NoError(t, err)
		require.Equal(t, []string{topic + "-nosuch"}, missing)
		var got []string
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		require.NoError(t, read(rctx, newClient, todo, func(r *kgo.Record) error {
			got = append(got, string(r.Value))
			return nil
		}))
		return got
	}

	done := make(chan []string)
	go func() { done <- collect(time.Time{}) }()
	select {
	case got := <-done:
		t.Fatalf("read ended before the open transaction did: %v", got)
	case <-time.After(500 * time.Millisecond):
	}
	require.NoError(t, open.EndTransaction(ctx, kgo.TryCommit))
	got := <-done
	require.ElementsMatch(t, []string{"plain-0", "plain-1", "committed", "late"}, got)

	require.ElementsMatch(t, []string{"committed", "late"}, collect(t0.Add(30*time.Second)))
	require.Empty(t, collect(time.Now().Add(time.Hour)), "nothing written since")
}
