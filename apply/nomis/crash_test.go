//go:build broker

package nomis

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
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
	crashPrisoners  = 400
)

// TestCrashFailpoints kills the real `alertsync apply nomis` process with
// SIGKILL at each named failure point (before the NOMIS commit, after it,
// after the Kafka offset commit) 20 times, at a random batch each time,
// while it applies 20,000 DPS commands from the real broker, restarting it
// each time. Afterwards NOMIS holds every effect exactly once (one row per
// DPS alert that was not deleted, each with its update; one mapping per
// alert; ALERT_SEQs never reused), and every command has exactly one
// outcome after dedup by command id.
func TestCrashFailpoints(t *testing.T) {
	bin := proctest.BuildAlertsync(t)
	h := newHarnessOn(t, kafkatest.Real(t))
	h.db.Exec(t, fmt.Sprintf(`
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id)
SELECT 1000 + i, 'D' || lpad(i::text, 4, '0') || 'EF', 1000 + i FROM generate_series(1, %[1]d) i;
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
SELECT 1000 + i, TIMESTAMP '2024-03-01 10:00:00', 1000 + i, 1000 + i, 1, 'Y', 'MDI' FROM generate_series(1, %[1]d) i;`, crashPrisoners))

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
		number := fmt.Sprintf("D%04dEF", 1+i%crashPrisoners)
		id := fmt.Sprintf("0190a3c4-1b2c-7d8e-9f00-%012d", i)
		created := dpsState("XA", march1, "created "+strconv.Itoa(i))
		updated := modified(dpsState("XA", march1, "updated "+strconv.Itoa(i)), "DPSUSER2")
		add(h.cmd(rules.KindUpsert, number, id, nil, created))
		add(h.cmd(rules.KindUpsert, number, id, created, updated))
		if i%2 == 0 {
			add(h.cmd(rules.KindDelete, number, id, updated, nil))
		}
	}
	require.Len(t, recs, crashCommands)
	for start := 0; start < len(recs); start += 5000 {
		require.NoError(t, h.prod.ProduceSync(context.Background(), recs[start:min(len(recs), start+5000)]...).FirstErr())
	}

	env := func(armed string) []string {
		set := map[string]string{
			"ALERTSYNC_NOMIS_DSN":                 h.db.DSN,
			"ALERTSYNC_DPS_DSN":                   h.dps.DSN,
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
		return pgtest.QueryValue[int64](t, h.db, "SELECT coalesce(sum(next_offset), 0)::bigint FROM alertsync.alertsync_consumer_offsets")
	}

	logDir := t.TempDir()
	kills, killing := crashtest.KillAtPoints(t, crashtest.Points, crashKillsPoint, func(armed string, run int) *proctest.Proc {
		return proctest.Start(t, "apply-nomis", bin, []string{"apply", "nomis"}, env(armed), filepath.Join(logDir, fmt.Sprintf("run-%d.log", run)), nil)
	}, func() bool { return applied() < crashCommands })

	p := proctest.Start(t, "apply-nomis", bin, []string{"apply", "nomis"}, env(""), filepath.Join(logDir, "final.log"), nil)
	deadline := time.Now().Add(3 * time.Minute)
	for applied() < crashCommands || pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.alertsync_outcome_batches") > 0 {
		require.False(t, p.Exited(), "apply exited\n%s", p.LogTail())
		require.True(t, time.Now().Before(deadline), "applied %d of %d commands\n%s", applied(), crashCommands, p.LogTail())
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, p.Stop(30*time.Second), "clean stop\n%s", p.LogTail())

	// NOMIS: every effect once.
	require.Equal(t, crashAlerts/2, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM oms_owner.offender_alerts WHERE offender_book_id > 1000"),
		"one row per alert not deleted")
	require.Equal(t, crashAlerts/2, pgtest.QueryValue[int](t, h.db,
		"SELECT count(*)::int FROM oms_owner.offender_alerts WHERE offender_book_id > 1000 AND comment_text LIKE 'updated %' AND modify_user_id = 'DPSUSER2'"))
	require.Equal(t, crashAlerts, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.alertsync_alert_mapping"), "one mapping per alert")
	require.Equal(t, crashAlerts/2, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.alertsync_alert_mapping WHERE deleted_at IS NOT NULL"))
	require.Equal(t, crashAlerts, pgtest.QueryValue[int](t, h.db,
		"SELECT count(DISTINCT (offender_book_id, alert_seq))::int FROM alertsync.alertsync_alert_mapping"), "no ALERT_SEQ given twice")
	require.Zero(t, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.alertsync_outcome_batches"), "every outcome batch published and removed")

	rd := topictest.Reader{Brokers: h.brokers, Registry: h.srcl, ReadCommitted: true}
	topic := h.cfg.Pipeline.Topics.Prefix + schemas.TopicOutcomes
	outcomes := rd.ToEnds(t, topic, topictest.EndOffsets(context.Background(), t, kadm.NewClient(kafkatest.Client(t, h.brokers)), topic))
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
	t.Logf("kills %v in %s; %d outcome records for %d commands (%d repeats), %d missing, %d not exactly one APPLIED",
		kills, killing.Round(time.Second), len(outcomes), len(want), len(outcomes)-len(results), missing, mixed)
	require.Zero(t, missing, "commands without an outcome")
	require.Zero(t, mixed, "commands whose outcomes disagree")
	require.Len(t, results, len(want), "no outcome for a command that was not sent")
}
