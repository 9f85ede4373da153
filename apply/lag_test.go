package apply_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	applydps "github.com/alertsync/alertsync/apply/dps"
	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/metrictest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/runtest"
	"github.com/alertsync/alertsync/internal/testenv/srtest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/encode"
	"github.com/alertsync/alertsync/transform/rules"
)

// TestLagGauge: commands sent before apply dps starts, and which it cannot
// write while another session holds a lock on the alert table, show as
// alertsync_apply_dps_lag_records of their partitions: each partition's
// whole backlog, up to its last stable offset. Once the lock goes and the
// commands are applied, every partition's lag falls to 0 – not 1, though
// the commands were written in Kafka transactions, as the transformer
// writes them, so that each partition ends with a commit marker the stored
// offset stops short of. Commands written while it cannot keep up – more
// than it holds in memory, so that it stops fetching – show too, from the
// offsets it lists. When the apply stops, its series go.
func TestLagGauge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	brokers := kafkatest.Brokers(t)
	_, srcl := srtest.New(t)
	dps := pgtest.NewDB(t)
	dps.Exec(t, deploy.DPSSchemaSQL())
	dps.Exec(t, deploy.DPSSeedSQL())
	set, err := migrate.Named("dps")
	require.NoError(t, err)
	_, err = migrate.Up(ctx, dps.SQL(t), set, migrate.Latest)
	require.NoError(t, err)

	var cfg applydps.Config
	require.NoError(t, config.Load(&cfg, config.Sources{LookupEnv: func(string) (string, bool) { return "", false }}))
	cfg.DPS.DSN, cfg.Apply.Owner, cfg.Apply.BatchCommands = dps.DSN, "lag", 5
	cfg.Pipeline.Kafka.Brokers = brokers
	cfg.Pipeline.Topics.Prefix = kafkatest.Topic(t, "l") + "."
	cfg.Pipeline.Topics.Partitions, cfg.Pipeline.Topics.ReplicationFactor = 3, 1
	topics := cfg.Pipeline.Topics
	topic := topics.Name(kafka.CommandsDPS)
	adm := kadm.NewClient(kafkatest.Client(t, brokers))
	require.NoError(t, kafka.EnsureTopics(ctx, adm, topics.Specs(kafka.CommandsDPS, kafka.Outcomes, kafka.DLQ)...))
	cmds, err := schemas.New(srcl, schemas.WithTopicPrefix(topics.Prefix)).Bind(ctx, schemas.TopicCommandsDPS)
	require.NoError(t, err)

	prod := kafkatest.Client(t, brokers, kgo.TransactionalID(topics.Prefix+"producer"), kgo.ProducerLinger(0))
	// send writes commands from..to-1 (new alerts of as many prisoners)
	// in one transaction.
	send := func(from, to int) {
		t.Helper()
		require.NoError(t, prod.BeginTransaction())
		for i := from; i < to; i++ {
			number, book, seq := fmt.Sprintf("A%04dBC", i), int64(100+i), int32(1)
			desc := "alert " + strconv.Itoa(i)
			pos := rules.Position{Commit: 1_000_000 + int64(i), Change: int64(i)}
			c := rules.Command{ID: rules.CommandID(rules.SideNOMIS, pos, rules.KindUpsert, number), Kind: rules.KindUpsert,
				PrisonNumber: number, Origin: rules.SideNOMIS, Target: rules.SideDPS, SourcePosition: pos,
				SourceCommitTime: time.Now().UTC().Truncate(time.Microsecond), NOMISBookingID: &book, NOMISAlertSeq: &seq,
				After: &rules.AlertState{Code: "XA", TypeCode: "X", ActiveFrom: rules.DateOf(2024, time.March, 1), Status: rules.StatusActive,
					Description: &desc, CreatedBy: "JSMITH", CreatedAt: time.Date(2024, 3, 1, 10, 30, 0, 0, time.UTC)}}
			k, v := encode.Native(&c)
			rec, err := cmds.Record(k, v)
			require.NoError(t, err)
			require.NoError(t, prod.ProduceSync(ctx, rec).FirstErr())
		}
		require.NoError(t, prod.EndTransaction(ctx, kgo.TryCommit))
	}
	// 40 new alerts of 40 prisoners, in two transactions.
	const n = 40
	send(0, n/2)
	send(n/2, n)
	// settle reads the last stable offsets into stable, once the commit
	// markers are written (a broker writes them after EndTransaction
	// returns): at the high watermarks.
	stable := map[int32]float64{}
	settle := func() {
		t.Helper()
		require.Eventually(t, func() bool {
			lso, err := adm.ListCommittedOffsets(ctx, topic)
			require.NoError(t, err)
			hw, err := adm.ListEndOffsets(ctx, topic)
			require.NoError(t, err)
			lso.Each(func(o kadm.ListedOffset) { stable[o.Partition] = float64(o.Offset) })
			written := true
			hw.Each(func(o kadm.ListedOffset) { written = written && float64(o.Offset) == stable[o.Partition] })
			return written
		}, 30*time.Second, 20*time.Millisecond, "the transactions' commit markers are written")
		require.Len(t, stable, 3)
	}
	settle()

	lock, err := dps.SQL(t).BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = lock.ExecContext(ctx, "LOCK TABLE alert IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)
	t.Cleanup(func() { _ = lock.Rollback() })

	srv := admin.New("127.0.0.1:0", time.Second, nil)
	a, err := applydps.New(cfg, applydps.Deps{Registry: srcl, Admin: srv})
	require.NoError(t, err)
	run := runtest.Start(t, a.Run)
	lag := func(p int32) *float64 {
		m := metrictest.Find(t, srv.Registry(), "alertsync_apply_dps_lag_records", map[string]string{"topic": topic, "partition": strconv.Itoa(int(p))})
		if m == nil {
			return nil
		}
		v := m.GetGauge().GetValue()
		return &v
	}
	// waitLag waits until each partition with records shows want(p).
	waitLag := func(what string, want func(p int32) float64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, ok := map[int32]float64{}, true
			for p, end := range stable {
				if end == 0 {
					continue // no record: never fetched, no series
				}
				v := lag(p)
				if v != nil {
					got[p] = *v
				}
				ok = ok && v != nil && *v == want(p)
			}
			if ok {
				return
			}
			require.True(t, time.Now().Before(deadline), "%s: lag by partition %v, last stable offsets %v", what, got, stable)
			time.Sleep(20 * time.Millisecond)
		}
	}
	stored := func() int64 {
		return pgtest.QueryValue[int64](t, dps, "SELECT coalesce(sum(next_offset), 0)::bigint FROM alertsync.consumer_offsets WHERE topic = $1", topic)
	}

	waitLag("the backlog", func(p int32) float64 { return stable[p] })
	require.Zero(t, stored(), "nothing applied while the table is locked")

	// More than the apply holds in memory (partitionQueue batches of 5
	// per partition): its dispatch waits on a full queue and it fetches no
	// more. Then more still: only the listed offsets can show those.
	const more, after = 150, 60
	send(n, n+more)
	time.Sleep(time.Second) // fetched, and the queues full
	send(n+more, n+more+after)
	settle()
	waitLag("the backlog of an apply that cannot keep up", func(p int32) float64 { return stable[p] })
	require.Zero(t, stored())

	require.NoError(t, lock.Rollback())
	waitLag("applied", func(int32) float64 { return 0 })
	var markers float64 // the last commit marker of each partition with records
	for _, end := range stable {
		if end > 0 {
			markers += end - 1
		}
	}
	require.EqualValues(t, markers, stored(), "each partition's stored offset is its last commit marker's")
	require.Equal(t, n+more+after, pgtest.QueryValue[int](t, dps, "SELECT count(*)::int FROM alert"))

	require.NoError(t, run.Halt(t))
	for p := range stable {
		require.Nil(t, lag(p), "partition %d: the series of a stopped apply", p)
	}
}
