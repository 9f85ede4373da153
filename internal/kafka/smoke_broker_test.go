//go:build broker

package kafka

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// TestSmokeRealBroker checks, on a real Apache Kafka broker, the Kafka
// features the pipeline's guarantees rest on: transactions that commit and
// abort, read-committed consumption, and consumer-group offsets that another
// client reads back.
func TestSmokeRealBroker(t *testing.T) {
	started := time.Now()
	brokers := kafkatest.Real(t)
	t.Logf("real broker %v (ready after %s)", brokers, time.Since(started).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := Config{Brokers: brokers, ClientID: "smoke"}
	reg := prometheus.NewRegistry()
	topic := kafkatest.Topic(t, "smoke")

	admCl, err := NewClient(cfg, logger, nil)
	require.NoError(t, err)
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	require.NoError(t, EnsureTopics(ctx, adm, TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1}))

	producer, err := NewClient(cfg, logger, reg,
		kgo.ClientID("smoke-producer"),
		kgo.TransactionalID(kafkatest.Topic(t, "txn")),
		kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer producer.Close()
	transaction := func(end kgo.TransactionEndTry, values ...string) {
		t.Helper()
		require.NoError(t, producer.BeginTransaction())
		for _, v := range values {
			require.NoError(t, producer.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr())
		}
		require.NoError(t, producer.EndTransaction(ctx, end))
	}
	transaction(kgo.TryCommit, "c1", "c2")
	transaction(kgo.TryAbort, "a1", "a2")
	transaction(kgo.TryCommit, "c3")

	// readUntil consumes with cl until it has seen value last.
	readUntil := func(cl *kgo.Client, last string) []*kgo.Record {
		t.Helper()
		var got []*kgo.Record
		for len(got) == 0 || string(got[len(got)-1].Value) != last {
			fs := cl.PollFetches(ctx)
			require.NoError(t, fs.Err0(), "polling %s", topic)
			got = append(got, fs.Records()...)
		}
		return got
	}
	values := func(rs []*kgo.Record) []string {
		var out []string
		for _, r := range rs {
			out = append(out, string(r.Value))
		}
		return out
	}

	t.Run("read uncommitted sees the aborted records", func(t *testing.T) {
		// Proves the abort below was a real transaction, not a lost write.
		cl, err := NewClient(cfg, logger, nil, kgo.ClientID("smoke-uncommitted"), kgo.ConsumeTopics(topic),
			kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		require.NoError(t, err)
		defer cl.Close()
		require.Equal(t, []string{"c1", "c2", "a1", "a2", "c3"}, values(readUntil(cl, "c3")))
	})

	group := kafkatest.Topic(t, "group")
	var committed []*kgo.Record
	t.Run("read committed sees exactly the committed records", func(t *testing.T) {
		cl, err := NewClient(cfg, logger, nil, kgo.ClientID("smoke-committed"), kgo.ConsumeTopics(topic),
			kgo.ConsumerGroup(group), kgo.DisableAutoCommit(),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		require.NoError(t, err)
		defer cl.Close()
		committed = readUntil(cl, "c3")
		require.Equal(t, []string{"c1", "c2", "c3"}, values(committed))
		require.NoError(t, cl.CommitUncommittedOffsets(ctx))
	})
	require.NotEmpty(t, committed)

	t.Run("group offsets are read back by another client", func(t *testing.T) {
		offsets, err := adm.FetchOffsets(ctx, group)
		require.NoError(t, err)
		o, ok := offsets.Lookup(topic, 0)
		require.True(t, ok, "no offset committed for %s in group %s", topic, group)
		require.Equal(t, committed[len(committed)-1].Offset+1, o.At)

		transaction(kgo.TryCommit, "after")
		cl, err := NewClient(cfg, logger, nil, kgo.ClientID("smoke-resume"), kgo.ConsumeTopics(topic),
			kgo.ConsumerGroup(group), kgo.DisableAutoCommit(), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		require.NoError(t, err)
		defer cl.Close()
		require.Equal(t, []string{"after"}, values(readUntil(cl, "after")), "a new group member must resume after the committed offset")
	})

	t.Run("client metrics", func(t *testing.T) {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		names := map[string]bool{}
		for _, mf := range mfs {
			names[mf.GetName()] = true
		}
		require.True(t, names["alertsync_produce_bytes_total"], "metrics: %v", names)
	})
}
