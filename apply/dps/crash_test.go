//go:build broker

package dps

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/failpoint"
	"github.com/alertsync/alertsync/internal/testenv/crashtest"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/proctest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/encode"
	"github.com/alertsync/alertsync/transform/rules"
)

// Crash test parameters.
const (
	crashAlerts     = 8_000 // alerts created; each updated once, every other one deleted
	crashCommands   = crashAlerts*2 + crashAlerts/2
	crashKillsPoint = 20 // SIGKILLs at each failure point
)

// TestCrashFailpoints kills the real `alertsync apply dps` process with
// SIGKILL at each named failure point (before the DPS commit, after it,
// after the Kafka offset commit) 20 times, at a random batch each time,
// while it applies 20,000 commands from the real broker, restarting it each
// time. Afterwards DPS holds every effect exactly once (one alert per NOMIS
// key, 20,000 audit events, one mapping per alert, the right rows deleted),
// and every command has exactly one outcome after dedup by command id.
func TestCrashFailpoints(t *testing.T) {
	bin := proctest.BuildAlertsync(t)
	h := newHarnessOn(t, kafkatest.Real(t))

	// The workload: per alert a create, an update and (every other alert) a
	// delete, keyed by prisoner so that each alert's commands stay in order.
	var recs []*kgo.Record
	want := map[string]bool{}
	add := func(c rules.Command) {
		k, v := encode.Native(&c)
		rec, err := h.cmds.Record(k, v)
		require.NoError(t, err)
		recs = append(recs, rec)
		want[c.ID] = true
	}
	for i := range crashAlerts {
		number := "C" + strconv.Itoa(1000+i%2000) + "DE"
		book, seq := int64(1+i%2000), int32(1+i/2000)
		created := nomisState("XA", march1, "created "+strconv.Itoa(i))
		updated := nomisState("XA", march1, "updated "+strconv.Itoa(i))
		add(h.cmd(rules.KindUpsert, number, book, seq, nil, created))
		add(h.cmd(rules.KindUpsert, number, book, seq, created, updated))
		if i%2 == 0 {
			add(h.cmd(rules.KindDelete, number, book, seq, updated, nil))
		}
	}
	require.Len(t, recs, crashCommands)
	for start := 0; start < len(recs); start += 5000 {
		require.NoError(t, h.prod.ProduceSync(context.Background(), recs[start:min(len(recs), start+5000)]...).FirstErr())
	}

	env := func(armed string) []string {
		set := map[string]string{
			"ALERTSYNC_DPS_DSN":                   h.db.DSN,
			"ALERTSYNC_KAFKA_BROKERS":             strings.Join(h.brokers, ","),
			"ALERTSYNC_REGISTRY_URL":              h.reg.URL(),
			"ALERTSYNC_TOPICS_PREFIX":             h.cfg.Pipeline.Topics.Prefix,
			"ALERTSYNC_TOPICS_PARTITIONS":         "3",
			"ALERTSYNC_TOPICS_REPLICATION_FACTOR": "1",
			"ALERTSYNC_APPLY_OWNER":               "crash-1",
			// A copy to Kafka after every batch, so that apply.after_kafka_commit
			// comes as often as the other failure points.
			"ALERTSYNC_APPLY_KAFKA_COMMIT_INTERVAL": "0s",
			"ALERTSYNC_APPLY_BATCH_COMMANDS":        "20",
			"ALERTSYNC_APPLY_SESSION_TIMEOUT":       "6s",
			"ALERTSYNC_ADMIN_LISTEN":                "127.0.0.1:0",
			"ALERTSYNC_LOG_FORMAT":                  "json",
		}
		if armed != "" {
			set[failpoint.Env] = armed
		}
		return proctest.Env(set)
	}
	applied := func() int64 {
		return pgtest.QueryValue[int64](t, h.db, "SELECT coalesce(sum(next_offset), 0)::bigint FROM alertsync.consumer_offsets")
	}

	logDir := t.TempDir()
	kills, killing := crashtest.KillAtPoints(t, crashtest.Points, crashKillsPoint, func(armed string, run int) *proctest.Proc {
		return proctest.Start(t, "apply-dps", bin, []string{"apply", "dps"}, env(armed), filepath.Join(logDir, fmt.Sprintf("run-%d.log", run)), nil)
	}, func() bool { return applied() < crashCommands })
	points := crashtest.Points

	// A last run without failure points finishes the work.
	p := proctest.Start(t, "apply-dps", bin, []string{"apply", "dps"}, env(""), filepath.Join(logDir, "final.log"), nil)
	deadline := time.Now().Add(3 * time.Minute)
	for applied() < crashCommands || pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.outcome_batches") > 0 {
		require.False(t, p.Exited(), "apply exited\n%s", p.LogTail())
		require.True(t, time.Now().Before(deadline), "applied %d of %d commands\n%s", applied(), crashCommands, p.LogTail())
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, p.Stop(30*time.Second), "clean stop\n%s", p.LogTail())

	// DPS: every effect once.
	require.Equal(t, crashAlerts, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alert"), "one alert per NOMIS key")
	require.Equal(t, crashAlerts/2, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alert WHERE deleted_at IS NOT NULL"))
	require.Equal(t, crashAlerts, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alert WHERE description LIKE 'updated %'"))
	require.Equal(t, crashCommands, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM audit_event"), "one audit event per command")
	require.Equal(t, 0, pgtest.QueryValue[int](t, h.db,
		"SELECT count(*)::int FROM (SELECT alert_id, action FROM audit_event GROUP BY 1, 2 HAVING count(*) > 1) d"), "no audit event twice")
	require.Equal(t, crashAlerts, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.alert_mapping"))
	require.Zero(t, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.outcome_batches"), "every outcome batch published and removed")

	// Kafka: every command exactly one outcome after dedup by command id.
	rd := topictest.Reader{Brokers: h.brokers, Registry: h.srcl, ReadCommitted: true}
	outcomes := rd.ToEnds(t, h.cfg.Pipeline.Topics.Prefix+schemas.TopicOutcomes, h.ends(t, schemas.TopicOutcomes))
	results := map[string]map[string]bool{}
	for _, o := range outcomes {
		id := o.Value["command_id"].(string)
		if results[id] == nil {
			results[id] = map[string]bool{}
		}
		results[id][o.Value["outcome"].(string)] = true
	}
	missing, mixed := 0, 0
	for id := range want {
		switch r := results[id]; {
		case len(r) == 0:
			missing++
		case len(r) > 1 || !r["APPLIED"]:
			mixed++
		}
	}
	t.Logf("kills %v in %s (%d runs); %d outcome records for %d commands (%d repeats), %d missing, %d not exactly one APPLIED",
		kills, killing.Round(time.Second), kills[points[0]]+kills[points[1]]+kills[points[2]], len(outcomes), len(want), len(outcomes)-len(results), missing, mixed)
	require.Zero(t, missing, "commands without an outcome")
	require.Zero(t, mixed, "commands whose outcomes disagree")
	require.Len(t, results, len(want), "no outcome for a command that was not sent")
}
