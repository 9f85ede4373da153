package kafkatest

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var legalTopic = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

func TestTopic(t *testing.T) {
	for _, tc := range []struct {
		name, base string
	}{
		{"plain", "alerts"},
		{"no base", ""},
		{"odd chars: / ä #", "x"},
		{strings.Repeat("long", 80), "base"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := Topic(t, tc.base), Topic(t, tc.base)
			require.NotEqual(t, a, b, "two calls must give two topics")
			for _, topic := range []string{a, b} {
				require.Regexp(t, legalTopic, topic)
				require.True(t, strings.HasPrefix(topic, tc.base), "%q lacks base %q", topic, tc.base)
			}
		})
	}
}

func TestKind(t *testing.T) {
	t.Setenv(EnvBrokers, "")
	require.Equal(t, "kfake", Kind())
	t.Setenv(EnvBrokers, " 127.0.0.1:1 , 127.0.0.1:2 ")
	require.Equal(t, "real", Kind())
	require.Equal(t, []string{"127.0.0.1:1", "127.0.0.1:2"}, Brokers(t))
}

// TestBrokersSupportsTransactionsAndGroups checks what the pipeline needs
// from whichever Kafka Brokers returns: a transaction that commits, one that
// aborts, a read-committed reader seeing only the committed record, and a
// group offset commit.
func TestBrokersSupportsTransactionsAndGroups(t *testing.T) {
	t.Logf("kafka: %s", Kind())
	brokers := Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := Topic(t, "kafkatest")

	adm := kadm.NewClient(Client(t, brokers))
	_, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
	require.NoError(t, err)

	prod := Client(t, brokers, kgo.TransactionalID(Topic(t, "txn")), kgo.DefaultProduceTopic(topic))
	for _, tc := range []struct {
		value  string
		commit kgo.TransactionEndTry
	}{{"kept", kgo.TryCommit}, {"dropped", kgo.TryAbort}} {
		require.NoError(t, prod.BeginTransaction())
		require.NoError(t, prod.ProduceSync(ctx, kgo.StringRecord(tc.value)).FirstErr())
		require.NoError(t, prod.EndTransaction(ctx, tc.commit))
	}

	group := Topic(t, "group")
	cons := Client(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) == 0 {
		fs := cons.PollFetches(ctx)
		require.NoError(t, fs.Err0())
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	require.Equal(t, []string{"kept"}, got)
	require.NoError(t, cons.CommitUncommittedOffsets(ctx))

	offsets, err := adm.FetchOffsets(ctx, group)
	require.NoError(t, err)
	o, ok := offsets.Lookup(topic, 0)
	require.True(t, ok, "no committed offset for %s", topic)
	// "kept" is at offset 0, so the committed position is past it (how far
	// past depends on how much of the aborted tail the fetch skipped).
	require.GreaterOrEqual(t, o.At, int64(1), "committed offset")
}
