package transform

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/internal/fixture"
	"github.com/alertsync/alertsync/transform/rules"
)

// benchRecords is the size of the benchmarks' record set.
const benchRecords = 20_000

// benchWorkload returns source records as the captures write them, in the
// wire format with the current schemas registered in reg under prefix: 80%
// NOMIS alert changes (creates, updates with both images, deletes; one in
// ten the sync's own) and 20% DPS alert creates.
func benchWorkload(b *testing.B, reg *sr.Client, prefix string, n int) []*kgo.Record {
	b.Helper()
	codec := schemas.New(reg, schemas.WithTopicPrefix(prefix))
	ctx := context.Background()
	bound := map[string]*schemas.TopicCodec{}
	for _, name := range []string{schemas.TopicNOMISOffenderAlerts, schemas.TopicDPSAlert} {
		tc, err := codec.Bind(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		bound[name] = tc
	}
	rng := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // a workload
	out := make([]*kgo.Record, 0, n)
	for i := range n {
		src := rules.Source{Position: rules.Position{Commit: int64(1_000_000 + i), Change: int64(i)}, CommitTime: time.Now().UTC().Truncate(time.Millisecond)}
		var (
			k, v  map[string]any
			topic string
		)
		if i%5 == 4 {
			row := fixture.DPSRowOf(fmt.Sprintf("0190a3c4-1b2c-7d8e-9f00-%012d", i), "D"+strconv.Itoa(1000+i%500)+"EF", 10)
			ch := rules.DPSAlertChange{Op: rules.OpCreate, After: &row, Source: src}
			k, v = fixture.DPSAlert(&ch)
			topic = schemas.TopicDPSAlert
		} else {
			book := int64(1 + i%2000)
			row := fixture.NOMISRowOf(book, int32(1+i/2000), "XA", "")
			number := "N" + strconv.FormatInt(1000+book, 10) + "AB"
			ch := rules.NOMISAlertChange{Op: rules.OpCreate, After: &row, Source: src,
				Session: &rules.NOMISSession{Module: fixture.Ptr("OCDALERT"), User: fixture.Ptr("JSMITH")},
				Context: &rules.NOMISContext{OffenderNo: &number, BookingSeq: fixture.Ptr(int32(1)), DPSAlertID: fixture.Ptr("0190a3c4-1b2c-7d8e-9f00-000000000001")}}
			switch rng.IntN(10) {
			case 0:
				ch.Op, ch.Before, ch.After = rules.OpDelete, &row, nil
			case 1, 2, 3:
				after := row
				after.CommentText = fixture.Ptr("Reviewed at the case conference " + strconv.Itoa(i))
				after.ModifyUserID, after.ModifyDatetime = fixture.Ptr("KJONES"), fixture.Ptr(time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC))
				ch.Op, ch.Before, ch.After = rules.OpUpdate, &row, &after
			case 4:
				ch.Session.Module = fixture.Ptr("DPS_SYNCHRONISATION")
				ch.Source.Sync = true
			}
			k, v = fixture.NOMISAlert(&ch)
			topic = schemas.TopicNOMISOffenderAlerts
		}
		rec, err := bound[topic].Record(k, v)
		if err != nil {
			b.Fatal(err)
		}
		rec.Partition = int32(i % 3)
		rec.Offset = int64(i)
		out = append(out, rec)
	}
	return out
}

// benchTransformer returns a transformer bound to reg (no Kafka) with the
// workload's reference data.
func benchTransformer(b *testing.B, reg *sr.Client, prefix string) *Transformer {
	b.Helper()
	var cfg Config
	if err := config.Load(&cfg, config.Sources{LookupEnv: func(string) (string, bool) { return "", false }}); err != nil {
		b.Fatal(err)
	}
	cfg.Pipeline.Topics.Prefix = prefix
	cfg.Transform.ReplicaID = "bench"
	tr, err := New(cfg, Deps{Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.bindSchemas(context.Background()); err != nil {
		b.Fatal(err)
	}
	tr.ref.apply([]refRow{{table: "alert_type", id: 1, code: "X"}, {table: "alert_code", id: 10, typeID: 1, code: "XA", active: true}}, nil)
	return tr
}

// BenchmarkTransformCore: the transformer's work per record on one core,
// in-process, no broker: decode (Avro binary, current schemas), rules,
// encode the command (records/s), beside the same loop with a no-op rule
// (decode and encode only: ref=transform.noop_rule), as a ratio. The
// records/s figure counts every source record, those the rules drop
// included.
func BenchmarkTransformCore(b *testing.B) {
	reg := srfake.New()
	b.Cleanup(reg.Close)
	srcl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		b.Fatal(err)
	}
	const prefix = "bench."
	recs := benchWorkload(b, srcl, prefix, benchRecords)
	for _, arm := range []struct {
		name string
		noop bool
	}{{"rules", false}, {"noop_rule", true}} {
		b.Run(arm.name, func(b *testing.B) {
			tr := benchTransformer(b, srcl, prefix)
			if arm.noop {
				tr.noopRule = &rules.Command{ID: "0190a3c4-1b2c-5d8e-9f00-000000000001", Kind: rules.KindUpsert, PrisonNumber: "N1001AB",
					Origin: rules.SideNOMIS, Target: rules.SideDPS, SourceCommitTime: time.Now().UTC().Truncate(time.Microsecond),
					After: &rules.AlertState{Code: "XA", TypeCode: "X", Status: rules.StatusActive, CreatedBy: "JSMITH", CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}}
			}
			ctx := context.Background()
			sw := Switches{NOMISToDPS: true, DPSToNOMIS: true}
			produced := 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				var tally batchTally
				for _, rec := range recs {
					out, err := tr.handle(ctx, rec, sw, &tally)
					if err != nil {
						b.Fatal(err)
					}
					produced += len(out)
				}
				if tally.dlq != nil {
					b.Fatalf("records went to the DLQ: %v", tally.dlq)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(produced)/float64(b.N*len(recs)), "commands/record")
		})
	}
}

// BenchmarkTransformKfake: the whole transformer through kfake (in-process
// Kafka, transactions and group included): records/s from a backlog of
// 20,000 source records to their last committed transaction.
func BenchmarkTransformKfake(b *testing.B) {
	reg := srfake.New()
	b.Cleanup(reg.Close)
	srcl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		b.Fatal(err)
	}
	var took time.Duration
	for i := range b.N {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			b.Fatal(err)
		}
		prefix := fmt.Sprintf("kb%d.", i)
		var cfg Config
		if err := config.Load(&cfg, config.Sources{LookupEnv: func(string) (string, bool) { return "", false }}); err != nil {
			b.Fatal(err)
		}
		cfg.Pipeline.Kafka.Brokers = cluster.ListenAddrs()
		cfg.Pipeline.Topics.Prefix = prefix
		cfg.Pipeline.Topics.Partitions = 3
		cfg.Pipeline.Topics.ReplicationFactor = 1
		cfg.Transform.ReplicaID = "bench"
		cfg.Transform.Group = prefix + "g"
		ctx := context.Background()
		cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ProducerLinger(5*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		adm := kadm.NewClient(cl)
		tc := cfg.Pipeline.Topics
		if err := kafka.EnsureTopics(ctx, adm, tc.Specs(kafka.NOMISOffenderAlerts, kafka.NOMISPrisonerAlerts, kafka.DPSAlert,
			kafka.DPSAlertCode, kafka.DPSAlertType, kafka.CommandsDPS, kafka.CommandsNOMIS, kafka.DLQ)...); err != nil {
			b.Fatal(err)
		}
		recs := benchWorkload(b, srcl, prefix, benchRecords)
		for _, r := range recs {
			r.Partition, r.Offset = 0, 0
		}
		ktype, vtype := fixture.AlertType(1, "X")
		kcode, vcode := fixture.AlertCode(10, 1, "XA")
		codec := schemas.New(srcl, schemas.WithTopicPrefix(prefix))
		for _, ref := range []struct {
			topic string
			k, v  map[string]any
		}{{schemas.TopicDPSAlertType, ktype, vtype}, {schemas.TopicDPSAlertCode, kcode, vcode}} {
			bt, err := codec.Bind(ctx, ref.topic)
			if err != nil {
				b.Fatal(err)
			}
			rec, err := bt.Record(ref.k, ref.v)
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, rec)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		source := benchRecords
		tr, err := New(cfg, Deps{Registry: srcl})
		if err != nil {
			b.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		began := time.Now()
		go func() { done <- tr.Run(runCtx) }()
		for tr.committed.Load() < int64(source) {
			select {
			case err := <-done:
				b.Fatalf("transformer stopped: %v", err)
			case <-time.After(5 * time.Millisecond):
			}
			if time.Since(began) > 5*time.Minute {
				b.Fatalf("transformed %d of %d records in 5 minutes", tr.committed.Load(), source)
			}
		}
		took += time.Since(began)
		stop()
		if err := <-done; err != nil {
			b.Fatalf("transformer stopped with %v", err)
		}
		cl.Close()
		cluster.Close()
	}
	b.ReportMetric(float64(b.N*benchRecords)/took.Seconds(), "records/s")
}
