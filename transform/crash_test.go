//go:build broker

package transform

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/proctest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/internal/fixture"
	"github.com/alertsync/alertsync/transform/rules"
)

// Crash test parameters.
const (
	crashRecords = 50_000 // source records
	crashKills   = 10     // SIGKILLs while they are transformed
)

// TestExactlyOnceCrashSIGKILL kills the real `alertsync transform` process
// (SIGKILL) ten times, at random moments, while it transforms 50,000 source
// records (NOMIS creates, updates and deletes; DPS creates; some the sync's
// own, which produce nothing) on a real Kafka broker, restarting it each
// time with the same replica id. A read-committed consumer of the command
// topics must then see every expected command (the rules' own output for
// each source record, by command id) exactly once, and nothing else. It
// reports how long each restarted transformer took to commit its first
// transaction.
func TestExactlyOnceCrashSIGKILL(t *testing.T) {
	bin := proctest.BuildAlertsync(t)
	h := newHarnessOn(t, kafkatest.Real(t))
	h.seedReference(t)

	// The workload and the commands the rules make of it.
	loc, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	r, err := rules.New(rules.NewCodeTable(rules.Code{ID: 10, Code: "XA", Type: "X", Active: true},
		rules.Code{ID: 20, Code: "HA", Type: "H", Active: true}), loc)
	require.NoError(t, err)
	want := map[string]bool{}
	var batch []*kgo.Record
	flush := func() {
		require.NoError(t, h.prod.ProduceSync(context.Background(), batch...).FirstErr())
		batch = batch[:0]
	}
	rng := rand.New(rand.NewPCG(42, 7)) //nolint:gosec // a workload, not security
	for i := range crashRecords {
		var rec *kgo.Record
		if i%5 == 4 {
			id := fmt.Sprintf("0190a3c4-1b2c-7d8e-9f00-%012d", i)
			row := fixture.DPSRowOf(id, "D"+strconv.Itoa(1000+i%500)+"EF", 10)
			ch := rules.DPSAlertChange{Op: rules.OpCreate, After: &row, Source: h.nextSource(rng.IntN(10) == 0)}
			cmd, drop, err := r.DPSAlert(&ch)
			require.NoError(t, err)
			if drop == rules.DropNone {
				want[cmd.ID] = true
			}
			k, v := fixture.DPSAlert(&ch)
			rec, err = h.bound[schemas.TopicDPSAlert].Record(k, v)
			require.NoError(t, err)
		} else {
			book, seq := int64(1+i%2000), int32(1+i/2000)
			row := fixture.NOMISRowOf(book, seq, "XA", "")
			number := "N" + strconv.FormatInt(1000+book, 10) + "AB"
			ch := rules.NOMISAlertChange{Op: rules.OpCreate, After: &row, Source: h.nextSource(false),
				Session: &rules.NOMISSession{Module: fixture.Ptr("OCDALERT"), User: fixture.Ptr("JSMITH")},
				Context: &rules.NOMISContext{OffenderNo: &number, BookingSeq: fixture.Ptr(int32(1))}}
			switch rng.IntN(10) {
			case 0:
				ch.Op, ch.Before, ch.After = rules.OpDelete, &row, nil
			case 1, 2:
				after := row
				after.CommentText = fixture.Ptr("Reviewed " + strconv.Itoa(i))
				ch.Op, ch.Before, ch.After = rules.OpUpdate, &row, &after
			case 3:
				ch.Session.Module = fixture.Ptr("DPS_SYNCHRONISATION")
				ch.Source.Sync = true
			}
			cmd, drop, err := r.NOMISAlert(&ch)
			require.NoError(t, err)
			if drop == rules.DropNone {
				want[cmd.ID] = true
			}
			k, v := fixture.NOMISAlert(&ch)
			rec, err = h.bound[schemas.TopicNOMISOffenderAlerts].Record(k, v)
			require.NoError(t, err)
		}
		batch = append(batch, rec)
		if len(batch) == 5000 {
			flush()
		}
	}
	flush()
	t.Logf("%d source records written; %d commands expected", crashRecords, len(want))

	adm := kadm.NewClient(kafkatest.Client(t, h.brokers))
	sources := []string{h.name(schemas.TopicNOMISOffenderAlerts), h.name(schemas.TopicDPSAlert)}
	consumed := func() int64 {
		offs, err := adm.FetchOffsetsForTopics(context.Background(), h.cfg.Transform.Group, sources...)
		if err != nil {
			return -1
		}
		var n int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.At > 0 {
				n += o.At
			}
		})
		return n
	}

	env := proctest.Env(map[string]string{
		"ALERTSYNC_KAFKA_BROKERS":                     h.brokers[0],
		"ALERTSYNC_REGISTRY_URL":                      h.reg.URL(),
		"ALERTSYNC_TOPICS_PREFIX":                     h.cfg.Pipeline.Topics.Prefix,
		"ALERTSYNC_TOPICS_PARTITIONS":                 "3",
		"ALERTSYNC_TOPICS_REPLICATION_FACTOR":         "1",
		"ALERTSYNC_TRANSFORM_GROUP":                   h.cfg.Transform.Group,
		"ALERTSYNC_TRANSFORM_REPLICA_ID":              "crash-1",
		"ALERTSYNC_TRANSFORM_TRANSACTIONAL_ID_PREFIX": h.cfg.Transform.TransactionalID,
		"ALERTSYNC_TRANSFORM_BATCH_RECORDS":           "200",
		"ALERTSYNC_TRANSFORM_SESSION_TIMEOUT":         "6s",
		"ALERTSYNC_ADMIN_LISTEN":                      "127.0.0.1:0",
		"ALERTSYNC_LOG_LEVEL":                         "info",
	})
	logDir := t.TempDir()
	starts := 0
	start := func() *proctest.Proc {
		starts++
		return proctest.Start(t, "transform", bin, []string{"transform"}, env, filepath.Join(logDir, fmt.Sprintf("transform-%d.log", starts)), nil)
	}
	// resumed waits until the group's committed offsets pass from, and
	// returns how long that took.
	resumed := func(p *proctest.Proc, from int64, began time.Time) time.Duration {
		deadline := time.Now().Add(90 * time.Second)
		for consumed() <= from {
			require.False(t, p.Exited(), "transformer exited: %v\n%s", p.Exited(), p.LogTail())
			require.True(t, time.Now().Before(deadline), "no transaction committed within 90s of a restart\n%s", p.LogTail())
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(began)
	}

	p := start()
	var resumes []time.Duration
	kills := 0
	startupKills := 0
	for kills < crashKills {
		began := time.Now()
		at := consumed()
		if at >= crashRecords {
			break
		}
		if kills%4 == 3 {
			// During start-up: registry, reference data, group join.
			time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
			p.Kill(t)
			kills++
			startupKills++
			p = start()
			continue
		}
		d := resumed(p, at, began)
		if d > 5*time.Second {
			t.Logf("slow resume (%s), log of the transformer:\n%s", d, p.LogTail())
		}
		resumes = append(resumes, d)
		time.Sleep(time.Duration(20+rng.IntN(300)) * time.Millisecond)
		p.Kill(t)
		kills++
		p = start()
	}
	deadline := time.Now().Add(3 * time.Minute)
	for consumed() < crashRecords {
		require.False(t, p.Exited(), "transformer exited\n%s", p.LogTail())
		require.True(t, time.Now().Before(deadline), "the group consumed %d of %d records\n%s", consumed(), crashRecords, p.LogTail())
		time.Sleep(100 * time.Millisecond)
	}
	require.GreaterOrEqual(t, kills, 8, "the transformer finished before it could be killed often enough: make the workload larger")

	got := map[string]int{}
	for _, topic := range []string{schemas.TopicCommandsDPS, schemas.TopicCommandsNOMIS} {
		for _, rec := range h.all(t, topic) {
			got[rec.Value["command_id"].(string)]++
		}
	}
	var missing, dup, unexpected int
	for id := range want {
		switch n := got[id]; {
		case n == 0:
			missing++
		case n > 1:
			dup += n - 1
		}
	}
	for id := range got {
		if !want[id] {
			unexpected++
		}
	}
	slowest := time.Duration(0)
	for _, d := range resumes[1:] {
		slowest = max(slowest, d)
	}
	t.Logf("%d kills (%d during start-up); %d commands read committed for %d expected: %d missing, %d duplicated, %d unexpected; "+
		"restarted transformers committed their first transaction after at most %s (all: %v)",
		kills, startupKills, len(got), len(want), missing, dup, unexpected, slowest.Round(time.Millisecond), resumes[1:])
	require.Zero(t, missing, "commands missing")
	require.Zero(t, dup, "commands seen more than once")
	require.Zero(t, unexpected, "commands no source record calls for")
	require.Less(t, slowest, 10*time.Second, "a restarted transformer resumes within seconds")
	require.NoError(t, p.Stop(30*time.Second), "clean stop\n%s", p.LogTail())
}
