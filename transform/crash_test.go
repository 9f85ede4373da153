//go:build broker

package transform

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	applydlq "github.com/alertsync/alertsync/apply/dlq"
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
// transaction. Among the records, 200 DPS alerts with a code the reference
// data lacks each go to the DLQ and hold a later change of their alert:
// each must be in the DLQ once, held in order in the holds topic, and come
// out, once, with dlq redrive – run once while the kills go on (the next
// kill lands while the copies are transformed) and once at the end.
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
	// Every 250th record is a DPS alert whose code the reference data
	// lacks (DLQ, a hold) and, 125 records later, a change of the same
	// alert (held behind it): their commands come only with the redrive.
	wantHeld := map[string]bool{}
	bad := map[string]string{} // alert key → its failed record's id
	var batch []*kgo.Record
	flush := func() {
		require.NoError(t, h.prod.ProduceSync(context.Background(), batch...).FirstErr())
		batch = batch[:0]
	}
	rng := rand.New(rand.NewPCG(42, 7)) //nolint:gosec // a workload, not security
	for i := range crashRecords {
		var rec *kgo.Record
		if i%250 == 4 || i%250 == 129 {
			created := i - i%250 + 4
			id := fmt.Sprintf("0190a3c4-1b2c-7d8e-9f00-%012d", created)
			row := fixture.DPSRowOf(id, "D"+strconv.Itoa(1000+created%500)+"EF", 99)
			ch := rules.DPSAlertChange{Op: rules.OpCreate, After: &row, Source: h.nextSource(false)}
			if i%250 == 129 {
				row.AlertCodeID = 10
				after := row
				after.Version = 2
				after.Description = fixture.Ptr("Reviewed " + strconv.Itoa(i))
				ch.Op, ch.Before, ch.After = rules.OpUpdate, &row, &after
				cmd, _, err := r.DPSAlert(&ch)
				require.NoError(t, err)
				wantHeld[cmd.ID] = true
			} else {
				bad["dps:"+id] = id
			}
			k, v := fixture.DPSAlert(&ch)
			rec, err = h.bound[schemas.TopicDPSAlert].Record(k, v)
			require.NoError(t, err)
		} else if i%5 == 4 {
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
		"ALERTSYNC_TRANSFORM_REFERENCE_WAIT":          "200ms",
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

	// redrive runs dlq redrive --stage transform --all --discard-failed
	// and returns how many holds it redrove (the holds it read; while the
	// transformer runs, they change under it).
	redrive := func() int {
		var out strings.Builder
		require.NoError(t, applydlq.Redrive(context.Background(), h.dlqConfig(t), applydlq.Deps{Registry: h.srcl},
			applydlq.RedriveOptions{Stage: applydlq.StageTransform, All: true, DiscardFailed: true}, &out))
		if strings.Contains(out.String(), "nothing to redrive") {
			return 0
		}
		m := regexp.MustCompile(`redriven (\d+) holds?, (\d+) records?`).FindStringSubmatch(out.String())
		require.NotNil(t, m, out.String())
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		return n
	}
	midHolds := 0
	p := start()
	var resumes []time.Duration
	kills := 0
	startupKills := 0
	// Past crashKills while no redrive has found a hold yet: the kills
	// leave each restarted transformer time for a few transactions only,
	// taken from the first partitions of its first fetch, so the DPS
	// partitions (and their held alerts) may come late in the run.
	for kills < crashKills || midHolds == 0 && kills < 4*crashKills {
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
		if kills >= 5 && midHolds == 0 {
			// A redrive of the holds open by now, while the workload goes
			// on: the next kill comes while the copies are transformed.
			midHolds = redrive()
		}
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

	// The bad alerts: each failed record in the DLQ once, each change held
	// behind one (unless its hold was redriven before it came) once; the
	// holds open hold their records in order.
	dlqBy := map[string]int{}
	entries := h.all(t, schemas.TopicDLQ)
	failed, heldN := 0, 0
	for _, e := range entries {
		dlqBy[fmt.Sprintf("%s %v/%v/%v", e.Value["error_kind"], e.Value["topic"], e.Value["partition"], e.Value["offset"])]++
		if e.Value["held"] == true {
			heldN++
		} else {
			failed++
		}
	}
	for k, n := range dlqBy {
		require.Equal(t, 1, n, "DLQ entry %s", k)
	}
	require.Equal(t, len(bad), failed, "one failed entry per bad alert")
	require.LessOrEqual(t, heldN, len(bad), "at most one held entry per bad alert")
	for key, hd := range h.openHolds(t) {
		require.Contains(t, bad, key)
		require.LessOrEqual(t, len(hd.Pending), 2, "%s", key)
		for i := 1; i < len(hd.Pending); i++ {
			require.Less(t, hd.Pending[i-1].Offset, hd.Pending[i].Offset, "%s: in order", key)
		}
	}
	// The redrive of the rest, discarding the failed records: the held
	// changes make their commands, once.
	open := h.openHolds(t)
	lastHolds := redrive()
	require.Len(t, open, lastHolds, "every hold open once the workload is consumed")
	require.Positive(t, midHolds, "a redrive ran while the workload went on")
	for id := range wantHeld {
		want[id] = true
	}
	deadline = time.Now().Add(time.Minute)
	for len(h.openHolds(t)) > 0 {
		require.False(t, p.Exited(), "transformer exited\n%s", p.LogTail())
		if time.Now().After(deadline) {
			left := h.openHolds(t)
			for k, hd := range left {
				t.Logf("still held: %s %v", k, hd.Pending)
			}
			t.Fatalf("%d holds still open a minute after the redrive; transformer:\n%s", len(left), p.LogTail())
		}
		time.Sleep(100 * time.Millisecond)
	}

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
	t.Logf("%d alerts held (DLQ, then redriven: %d holds during the kills, %d after); %d kills (%d during start-up); %d commands read committed for %d expected: %d missing, %d duplicated, %d unexpected; "+
		"restarted transformers committed their first transaction after at most %s (all: %v)",
		len(bad), midHolds, lastHolds, kills, startupKills, len(got), len(want), missing, dup, unexpected, slowest.Round(time.Millisecond), resumes[1:])
	require.Zero(t, missing, "commands missing")
	require.Zero(t, dup, "commands seen more than once")
	require.Zero(t, unexpected, "commands no source record calls for")
	require.Less(t, slowest, 10*time.Second, "a restarted transformer resumes within seconds")
	require.NoError(t, p.Stop(30*time.Second), "clean stop\n%s", p.LogTail())
}
