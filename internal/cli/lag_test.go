package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
)

// lagWorld is a Kafka cluster, a topic prefix and group names of a test's
// own, and the flags that point `alertsync lag` at them.
type lagWorld struct {
	brokers          []string
	adm              *kadm.Client
	topics           kafka.TopicsConfig
	transform, apply string // group names
}

func newLagWorld(t *testing.T) *lagWorld {
	t.Helper()
	brokers := kafkatest.Brokers(t)
	name := kafkatest.Topic(t, "lag")
	return &lagWorld{brokers: brokers, adm: kadm.NewClient(kafkatest.Client(t, brokers)),
		topics: kafka.TopicsConfig{Prefix: name + "."}, transform: name + "-transform", apply: name + "-apply"}
}

// create makes topic (its catalogue name) with partitions.
func (w *lagWorld) create(t *testing.T, topic kafka.Topic, partitions int32) string {
	t.Helper()
	name := w.topics.Name(topic)
	// EnsureTopics waits for each partition's leader: a real broker
	// refuses a produce to a topic it has only just created.
	require.NoError(t, kafka.EnsureTopics(context.Background(), w.adm,
		kafka.TopicSpec{Name: name, Kind: topic.Kind, Partitions: partitions, ReplicationFactor: 1}))
	return name
}

// settled waits until the commit markers of the transactions written to
// topic are (a broker writes them after EndTransaction returns): until its
// last stable offsets are its high watermarks.
func (w *lagWorld) settled(t *testing.T, topic string) {
	t.Helper()
	ctx := context.Background()
	require.Eventually(t, func() bool {
		lso, err := w.adm.ListCommittedOffsets(ctx, topic)
		require.NoError(t, err)
		hw, err := w.adm.ListEndOffsets(ctx, topic)
		require.NoError(t, err)
		written := true
		hw.Each(func(o kadm.ListedOffset) { written = written && o.Offset == lso[topic][o.Partition].Offset })
		return written
	}, 30*time.Second, 20*time.Millisecond, "the commit markers of %s are written", topic)
}

// lag runs `alertsync lag` on the world with args.
func (w *lagWorld) lag(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, errOut, err := run(t, append([]string{"lag", "--kafka.brokers=" + strings.Join(w.brokers, ","), "--topics.prefix=" + w.topics.Prefix,
		"--transform.group=" + w.transform, "--apply.group=" + w.apply, "--log.level=warn"}, args...)...)
	t.Logf("alertsync lag %s\n%s%s", strings.Join(args, " "), out, errOut)
	return out, err
}

// report runs `alertsync lag --json` and decodes its output.
func (w *lagWorld) report(t *testing.T, args ...string) lagReport {
	t.Helper()
	out, err := w.lag(t, append([]string{"--json"}, args...)...)
	require.NoError(t, err)
	var rep lagReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep), "--json prints one JSON object")
	return rep
}

// TestLagBacklog: a transformer group that committed offset 10 of 10 on
// one partition, 4 of 10 on another and nothing on a third, with a member
// that owns all three, lags 0, 6 and 10 (the whole partition, committed
// "none"): 16 in all. The applies' group, which has never committed, lags
// by its whole command topic – written in a transaction, whose commit
// marker counts. --max-lag 9 exits 1, --max-lag 10 exits 0, and a --group
// that is not one of the pipeline's is a usage error.
func TestLagBacklog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newLagWorld(t)
	alerts := w.create(t, kafka.NOMISOffenderAlerts, 3)
	cmds := w.create(t, kafka.CommandsDPS, 1)
	prod := kafkatest.Client(t, w.brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	for p := range int32(3) {
		for range 10 {
			require.NoError(t, prod.ProduceSync(ctx, &kgo.Record{Topic: alerts, Partition: p, Value: []byte("change")}).FirstErr())
		}
	}
	tx := kafkatest.Client(t, w.brokers, kgo.TransactionalID(w.topics.Prefix+"transform"), kgo.ProducerLinger(0))
	require.NoError(t, tx.BeginTransaction())
	for range 5 {
		require.NoError(t, tx.ProduceSync(ctx, &kgo.Record{Topic: cmds, Value: []byte("command")}).FirstErr())
	}
	require.NoError(t, tx.EndTransaction(ctx, kgo.TryCommit))
	w.settled(t, cmds)

	offs := kadm.Offsets{}
	offs.AddOffset(alerts, 0, 10, -1)
	offs.AddOffset(alerts, 1, 4, -1)
	require.NoError(t, w.adm.CommitAllOffsets(ctx, w.transform, offs))
	// A member that commits nothing owns the three partitions.
	kafkatest.Client(t, w.brokers, kgo.ClientID("lag-test-member"), kgo.ConsumerGroup(w.transform), kgo.ConsumeTopics(alerts), kgo.DisableAutoCommit())
	require.Eventually(t, func() bool {
		d, err := w.adm.DescribeGroups(ctx, w.transform)
		g := d[w.transform]
		return err == nil && g.State == "Stable" && len(g.AssignedPartitions()[alerts]) == 3
	}, 30*time.Second, 20*time.Millisecond, "the member joins")

	out, err := w.lag(t)
	require.NoError(t, err)
	require.Regexp(t, `(?m)^GROUP +TOPIC +PARTITION +COMMITTED +END +LAG +MEMBER$`, out)
	require.Regexp(t, `(?m)^`+w.transform+` +`+alerts+` +1 +4 +10 +6 +lag-test-member/\S+$`, out)
	require.Regexp(t, `(?m)^`+w.transform+` +`+alerts+` +2 +none +10 +10 +lag-test-member/\S+$`, out)
	require.Regexp(t, `(?m)^`+w.transform+` +total +16 +Stable, 1 member$`, out)
	require.Regexp(t, `(?m)^`+w.apply+` +`+cmds+` +0 +none +6 +6 +-$`, out)
	require.Less(t, strings.Index(out, w.apply), strings.Index(out, w.transform), "groups sorted by name")

	rep := w.report(t)
	require.Len(t, rep.Groups, 2)
	g := rep.Groups[1]
	require.Equal(t, w.transform, g.Group)
	require.Equal(t, int64(16), g.Lag)
	require.Len(t, g.Partitions, 3)
	for i, want := range []struct {
		committed *int64
		lag       int64
	}{{ptr(int64(10)), 0}, {ptr(int64(4)), 6}, {nil, 10}} {
		p := g.Partitions[i]
		require.Equal(t, alerts, p.Topic)
		require.Equal(t, int32(i), p.Partition)
		require.Equal(t, want.committed, p.Committed, "partition %d", i)
		require.Equal(t, int64(10), p.End)
		require.Equal(t, want.lag, p.Lag, "partition %d", i)
		require.NotNil(t, p.Member)
		require.Equal(t, "lag-test-member", p.Member.ClientID)
	}
	require.Equal(t, w.apply, rep.Groups[0].Group)
	require.Equal(t, "Dead", rep.Groups[0].State, "a group Kafka does not know")
	require.Equal(t, int64(6), rep.Groups[0].Lag)
	require.Nil(t, rep.Groups[0].Partitions[0].Member)

	rep = w.report(t, "--group", w.transform)
	require.Len(t, rep.Groups, 1, "--group restricts")

	_, err = w.lag(t, "--max-lag", "9")
	require.ErrorIs(t, err, ErrLagOver)
	require.ErrorContains(t, err, "1 of the partitions lag more than --max-lag 9, the most "+alerts+"/2 of group "+w.transform+" (10 records)")
	require.Equal(t, 1, ExitCode(err))
	_, err = w.lag(t, "--max-lag", "10")
	require.NoError(t, err)

	_, err = w.lag(t, "--group", "nosuch")
	var ue *UsageError
	require.ErrorAs(t, err, &ue)
	require.ErrorContains(t, err, w.transform)
	require.Equal(t, 2, ExitCode(err))
}

// TestLagCaughtUpTransactional: a transformer that has consumed every
// record of its source topic, which is written in transactions, and
// committed its offsets as the transformer does (in its own transactions,
// with its output) shows a lag of 0, though its committed offsets stop at
// each partition's last commit marker, one short of the last stable
// offset. A transaction left open on the source topic moves the high
// watermark but not the last stable offset: its records are not yet
// readable, and the lag stays 0.
func TestLagCaughtUpTransactional(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newLagWorld(t)
	src := w.create(t, kafka.DPSAlert, 2)
	dst := w.create(t, kafka.CommandsNOMIS, 2)
	capture := kafkatest.Client(t, w.brokers, kgo.TransactionalID(w.topics.Prefix+"capture"), kgo.ProducerLinger(0))
	require.NoError(t, capture.BeginTransaction())
	for i := range 8 {
		require.NoError(t, capture.ProduceSync(ctx, &kgo.Record{Topic: src, Key: []byte{byte(i)}, Value: []byte("change")}).FirstErr())
	}
	require.NoError(t, capture.EndTransaction(ctx, kgo.TryCommit))

	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(w.brokers...), kgo.ClientID("lag-test-transform"),
		kgo.TransactionalID(w.topics.Prefix+"transform"), kgo.ConsumerGroup(w.transform), kgo.ConsumeTopics(src),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	require.NoError(t, err)
	t.Cleanup(sess.Close)
	for consumed := 0; consumed < 8; {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		fs := sess.PollFetches(pctx)
		cancel()
		require.NoError(t, fs.Err0())
		require.NoError(t, sess.Begin())
		fs.EachRecord(func(r *kgo.Record) {
			consumed++
			sess.Produce(ctx, &kgo.Record{Topic: dst, Key: r.Key, Value: []byte("command")}, nil)
		})
		committed, err := sess.End(ctx, kgo.TryCommit)
		require.NoError(t, err)
		require.True(t, committed)
	}
	w.settled(t, src)

	stable, err := w.adm.ListCommittedOffsets(ctx, src)
	require.NoError(t, err)
	// The transformer's last offset commit is part of its last transaction:
	// the group coordinator makes it visible once it has written that
	// transaction's marker to __consumer_offsets, which it may not have
	// done yet when EndTransaction returns (nor does RequireStable wait for
	// it on a fetch of all the group's offsets).
	var fetched kadm.OffsetResponses
	require.Eventually(t, func() bool {
		fetched, err = w.adm.FetchOffsets(ctx, w.transform)
		require.NoError(t, err)
		return len(fetched[src]) == len(stable[src])
	}, 30*time.Second, 20*time.Millisecond, "the transformer's last offset commit is visible")
	stable.Each(func(o kadm.ListedOffset) {
		c, ok := fetched.Lookup(src, o.Partition)
		require.True(t, ok)
		require.Equal(t, o.Offset-1, c.At, "partition %d: the committed offset is the commit marker's", o.Partition)
	})
	check := func() {
		t.Helper()
		rep := w.report(t, "--group", w.transform)
		require.Len(t, rep.Groups, 1)
		g := rep.Groups[0]
		require.Zero(t, g.Lag)
		require.Len(t, g.Partitions, 2)
		for _, p := range g.Partitions {
			require.Equal(t, stable[src][p.Partition].Offset, p.End, "the end is the last stable offset")
			require.Zero(t, p.Lag)
			require.NotNil(t, p.Member)
			require.Equal(t, "lag-test-transform", p.Member.ClientID)
		}
		_, err := w.lag(t, "--group", w.transform, "--max-lag", "0")
		require.NoError(t, err)
	}
	check()

	open := kafkatest.Client(t, w.brokers, kgo.TransactionalID(w.topics.Prefix+"open"), kgo.ProducerLinger(0))
	require.NoError(t, open.BeginTransaction())
	t.Cleanup(func() { _ = open.EndTransaction(context.Background(), kgo.TryAbort) })
	for i := range 6 {
		require.NoError(t, open.ProduceSync(ctx, &kgo.Record{Topic: src, Key: []byte{byte(i)}, Value: []byte("uncommitted")}).FirstErr())
	}
	hw, err := w.adm.ListEndOffsets(ctx, src)
	require.NoError(t, err)
	var ahead int64
	hw.Each(func(o kadm.ListedOffset) { ahead += o.Offset - stable[src][o.Partition].Offset })
	require.Equal(t, int64(6), ahead, "the open transaction's records are past the last stable offsets")
	check()
}

// TestLagUnreachableBroker: with no broker listening, lag fails within
// kafka.retry_timeout, naming the brokers, with exit status 2.
func TestLagUnreachableBroker(t *testing.T) {
	t.Parallel()
	began := time.Now()
	_, errOut, err := run(t, "lag", "--kafka.brokers=127.0.0.1:1", "--kafka.retry_timeout=1s", "--kafka.dial_timeout=1s", "--log.level=error")
	require.Error(t, err)
	require.Less(t, time.Since(began), 10*time.Second)
	require.ErrorContains(t, err, "kafka.brokers 127.0.0.1:1")
	require.Equal(t, 2, ExitCode(err), "%v\n%s", err, errOut)
	t.Log(err)
}

func ptr[T any](v T) *T { return &v }
