package kafka

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
)

// newAdmin returns an admin client on brokers, closed with the test.
func newAdmin(t *testing.T, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := NewClient(Config{Brokers: brokers, ClientID: "ensure-test"}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// describe returns the partition count and retention.ms of topic.
func describe(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) (int, string) {
	t.Helper()
	n, configs := describeConfigs(ctx, t, adm, topic)
	v, ok := configs["retention.ms"]
	require.True(t, ok, "topic %s has no retention.ms config", topic)
	return n, v
}

// describeConfigs returns the partition count and the configs of topic.
func describeConfigs(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) (int, map[string]string) {
	t.Helper()
	topics, err := adm.ListTopics(ctx, topic)
	require.NoError(t, err)
	td, ok := topics[topic]
	require.True(t, ok, "topic %s not listed", topic)
	require.NoError(t, td.Err, "topic %s", topic)
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	require.NoError(t, err)
	rc, err := rcs.On(topic, nil)
	require.NoError(t, err)
	require.NoError(t, rc.Err)
	out := map[string]string{}
	for _, c := range rc.Configs {
		out[c.Key] = c.MaybeValue()
	}
	return len(td.Partitions), out
}

func TestEnsureTopics(t *testing.T) {
	t.Logf("kafka: %s", kafkatest.Kind())
	brokers := kafkatest.Brokers(t)
	adm := newAdmin(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cfg := TopicsConfig{
		Prefix:            kafkatest.Topic(t, "ensure") + ".",
		Partitions:        3,
		ReplicationFactor: 1,
		Retention:         TopicRetention{Commands: 7 * 24 * time.Hour, DLQ: 36 * time.Hour},
	}
	require.NoError(t, cfg.Validate())

	t.Run("creates the catalogue", func(t *testing.T) {
		require.NoError(t, EnsureTopics(ctx, adm, cfg.Specs()...))
		for _, topic := range Catalogue() {
			want, ok := map[Kind]string{KindChange: "-1", KindOutcome: "-1", KindCommand: "604800000", KindDLQ: "129600000", KindState: "-1"}[topic.Kind]
			require.True(t, ok, "kind %s of %s", topic.Kind, topic.Base)
			partitions, configs := describeConfigs(ctx, t, adm, cfg.Name(topic))
			require.Equal(t, 3, partitions, "partitions of %s", cfg.Name(topic))
			require.Equal(t, want, configs["retention.ms"], "retention.ms of %s", cfg.Name(topic))
			policy := "delete"
			if topic.Kind == KindState {
				policy = "compact"
			}
			require.Equal(t, policy, configs["cleanup.policy"], "cleanup.policy of %s", cfg.Name(topic))
		}
	})

	t.Run("again is a no-op", func(t *testing.T) {
		require.NoError(t, EnsureTopics(ctx, adm, cfg.Specs()...))
		require.NoError(t, EnsureTopics(ctx, adm, cfg.Specs(DLQ, DLQ)...), "a topic listed twice")
		require.NoError(t, EnsureTopics(ctx, newAdmin(t, brokers), cfg.Specs()...))
	})

	t.Run("concurrent creators", func(t *testing.T) {
		racing := cfg
		racing.Prefix = kafkatest.Topic(t, "race") + "."
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { errs[i] = EnsureTopics(ctx, newAdmin(t, brokers), racing.Specs()...) })
		}
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "creator %d", i)
		}
		partitions, _ := describe(ctx, t, adm, racing.Name(DLQ))
		require.Equal(t, 3, partitions)
	})

	t.Run("partition mismatch is refused", func(t *testing.T) {
		more := cfg
		more.Partitions = 6
		err := EnsureTopics(ctx, adm, more.Specs(CommandsDPS, Outcomes)...)
		require.ErrorIs(t, err, ErrPartitionMismatch)
		var pm *PartitionMismatchError
		require.ErrorAs(t, err, &pm)
		require.Equal(t, int32(3), pm.Existing)
		require.Equal(t, int32(6), pm.Configured)
		for _, topic := range []Topic{CommandsDPS, Outcomes} {
			require.ErrorContains(t, err, `topic "`+more.Name(topic)+`" exists with 3 partitions but 6 are configured`)
		}
		require.ErrorContains(t, err, "set topics.partitions to 3")
		partitions, _ := describe(ctx, t, adm, more.Name(CommandsDPS))
		require.Equal(t, 3, partitions, "the topic must be left as it was")
	})

	t.Run("mismatch among new topics still creates the new ones", func(t *testing.T) {
		fresh := TopicSpec{Name: kafkatest.Topic(t, "fresh"), Partitions: 6, ReplicationFactor: 1}
		mismatched := cfg.Spec(DLQ)
		mismatched.Partitions = 6
		err := EnsureTopics(ctx, adm, mismatched, fresh)
		require.ErrorIs(t, err, ErrPartitionMismatch)
		partitions, retention := describe(ctx, t, adm, fresh.Name)
		require.Equal(t, 6, partitions)
		require.Equal(t, "-1", retention)
	})

	t.Run("replication factor above the broker count", func(t *testing.T) {
		spec := TopicSpec{Name: kafkatest.Topic(t, "rf"), Partitions: 1, ReplicationFactor: 3}
		err := EnsureTopics(ctx, adm, spec)
		require.ErrorContains(t, err, `creating topic "`+spec.Name+`" with replication factor 3 on a cluster of 1 broker(s)`)
		require.ErrorContains(t, err, "set topics.replication_factor to at most 1")
	})

	t.Run("invalid specs", func(t *testing.T) {
		for _, tc := range []struct {
			spec TopicSpec
			want string
		}{
			{TopicSpec{Name: "", Partitions: 1, ReplicationFactor: 1}, `invalid topic name ""`},
			{TopicSpec{Name: "a b", Partitions: 1, ReplicationFactor: 1}, `invalid topic name "a b"`},
			{TopicSpec{Name: "t", Partitions: 0, ReplicationFactor: 1}, `ensuring topic "t": partitions must be at least 1, got 0`},
			{TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 0}, `ensuring topic "t": replication factor must be at least 1, got 0`},
			{TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1, Retention: -time.Second}, `ensuring topic "t": retention must not be negative, got -1s`},
		} {
			require.ErrorContains(t, EnsureTopics(ctx, adm, tc.spec), tc.want)
		}
	})
}

func TestEnsureTopicsUnreachable(t *testing.T) {
	// A port nothing listens on: connections are refused at once.
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	// A listener that accepts and never answers: requests time out.
	silent, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = silent.Close() }()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()

	for _, tc := range []struct {
		name   string
		broker string
		names  string
	}{
		{"refused", addr, "no answer from broker " + addr},
		{"silent", silent.Addr().String(), "no answer from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := NewClient(Config{
				Brokers:        []string{tc.broker},
				DialTimeout:    time.Second,
				RequestTimeout: time.Second,
				RetryTimeout:   3 * time.Second,
			}, nil, nil)
			require.NoError(t, err)
			defer cl.Close()
			started := time.Now()
			err = EnsureTopics(context.Background(), kadm.NewClient(cl), TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1})
			elapsed := time.Since(started)
			t.Logf("after %s: %v", elapsed.Round(time.Millisecond), err)
			require.ErrorIs(t, err, ErrUnreachable)
			require.ErrorContains(t, err, tc.names)
			require.ErrorContains(t, err, "check kafka.brokers")
			require.Less(t, elapsed, time.Minute, "EnsureTopics must give up within the client's retry timeout")
			require.False(t, errors.Is(err, ErrPartitionMismatch))
			require.False(t, strings.Contains(err.Error(), "%!"), "malformed message: %v", err)
		})
	}
}
