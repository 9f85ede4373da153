package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
)

// TestReadToEnd: what a read-committed reader sees, and no more: plain
// records, committed transactions, not aborted ones; a partition that ends
// with an aborted transaction is read to its end (a read-committed fetch
// never shows that end); a transaction open at the start is waited for.
func TestReadToEnd(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := TopicsConfig{Prefix: kafkatest.Topic(t, "readall") + ".", Partitions: 2, ReplicationFactor: 1}
	topic := cfg.Name(TransformHolds)
	adm := newAdmin(t, brokers)
	require.NoError(t, EnsureTopics(ctx, adm, cfg.Spec(TransformHolds)))
	newClient := func(o ...kgo.Opt) (*kgo.Client, error) {
		return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, o...)...)
	}
	read := func() []string {
		var got []string
		require.NoError(t, ReadToEnd(ctx, adm, newClient, topic, func(r *kgo.Record) error {
			got = append(got, string(r.Value))
			return nil
		}))
		return got
	}
	plain := kafkatest.Client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	txn := kafkatest.Client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID(topic+"-tx"))
	rec := func(p int32, v string) *kgo.Record {
		return &kgo.Record{Topic: topic, Partition: p, Key: []byte(v), Value: []byte(v)}
	} // compacted: keyed
	inTxn := func(commit kgo.TransactionEndTry, recs ...*kgo.Record) {
		require.NoError(t, txn.BeginTransaction())
		require.NoError(t, txn.ProduceSync(ctx, recs...).FirstErr())
		require.NoError(t, txn.EndTransaction(ctx, commit))
	}

	require.Empty(t, read(), "an empty topic")
	require.NoError(t, plain.ProduceSync(ctx, rec(0, "plain-0")).FirstErr())
	inTxn(kgo.TryCommit, rec(0, "committed-0"), rec(1, "committed-1"))
	inTxn(kgo.TryAbort, rec(0, "aborted-0"), rec(1, "aborted-1")) // each partition ends with it
	require.Equal(t, []string{"plain-0", "committed-0", "committed-1"}, read())

	// A transaction open when the read starts is waited for.
	require.NoError(t, txn.BeginTransaction())
	require.NoError(t, txn.ProduceSync(ctx, rec(1, "late-1")).FirstErr())
	done := make(chan []string)
	go func() { done <- read() }()
	select {
	case got := <-done:
		t.Fatalf("the read did not wait for the open transaction: %v", got)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, txn.EndTransaction(ctx, kgo.TryCommit))
	require.Equal(t, []string{"plain-0", "committed-0", "committed-1", "late-1"}, <-done)

	require.ErrorIs(t, ReadToEnd(ctx, adm, newClient, topic+"-none", func(*kgo.Record) error { return nil }), ErrNoTopic)
}
