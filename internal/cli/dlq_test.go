package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	applydlq "github.com/alertsync/alertsync/apply/dlq"
	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/srtest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/encode"
	"github.com/alertsync/alertsync/transform/rules"
)

// TestDLQListAndRedriveNOMIS runs `alertsync dlq` as a user would, on the
// NOMIS stand-in's holds (alertsync.alertsync_dlq_holds): a hold apply nomis
// started on a DPS alert, its two DLQ entries and an entry of the
// transformer without an alert key; list shows them (the hold open),
// redrive refuses the capture stage, finds no hold of the transformer and
// releases the apply's hold, and a second redrive does nothing.
func TestDLQListAndRedriveNOMIS(t *testing.T) {
	t.Parallel()
	nomis := pgtest.NewDB(t)
	nomis.Exec(t, deploy.NOMISSchemaSQL())
	nomis.Exec(t, deploy.NOMISSeedSQL())
	set, err := migrate.Named("nomis")
	require.NoError(t, err)
	_, err = migrate.Up(context.Background(), nomis.SQL(t), set, migrate.Latest)
	require.NoError(t, err)

	brokers := kafkatest.Brokers(t)
	reg, srcl := srtest.New(t)
	prefix := kafkatest.Topic(t, "c") + "."
	topics := kafka.TopicsConfig{Prefix: prefix, Partitions: 3, ReplicationFactor: 1}
	ctx := context.Background()
	cl := kafkatest.Client(t, brokers, kgo.ProducerLinger(0))
	require.NoError(t, kafka.EnsureTopics(ctx, kadm.NewClient(cl), topics.Specs(kafka.CommandsNOMIS, kafka.DLQ)...))
	codec := schemas.New(srcl, schemas.WithTopicPrefix(prefix))
	cmds, err := codec.Bind(ctx, schemas.TopicCommandsNOMIS)
	require.NoError(t, err)
	dlq, err := codec.Bind(ctx, schemas.TopicDLQ)
	require.NoError(t, err)

	// Two commands for one DPS alert; the first failed, the second is held.
	alertID := uuid.NewString()
	key := "dps:" + alertID
	desc := "SECRET-TEXT"
	var ids []string
	var keys, values [][]byte
	for i := range 2 {
		pos := rules.Position{Commit: 500 + int64(i), Change: 500 + int64(i)}
		c := rules.Command{
			ID: rules.CommandID(rules.SideDPS, pos, rules.KindUpsert, "A1234BC"), Kind: rules.KindUpsert, PrisonNumber: "A1234BC",
			Origin: rules.SideDPS, Target: rules.SideNOMIS, SourcePosition: pos, SourceCommitTime: time.Now().UTC().Truncate(time.Microsecond),
			DPSAlertID: &alertID,
			After: &rules.AlertState{Code: "XA", TypeCode: "X", ActiveFrom: rules.DateOf(2024, time.March, 1), Status: rules.StatusActive,
				Description: &desc, CreatedBy: "JSMITH", CreatedAt: time.Date(2024, 3, 1, 10, 30, 0, 0, time.UTC)},
		}
		k, v := encode.Native(&c)
		rec, err := cmds.Record(k, v)
		require.NoError(t, err)
		ids = append(ids, c.ID)
		keys, values = append(keys, rec.Key), append(values, rec.Value)
	}
	entry := func(stage string, off int64, k, value []byte, held bool, heldBehind, alertKey *string) *kgo.Record {
		routing := prefix + schemas.TopicCommandsNOMIS + "/1"
		if alertKey != nil {
			routing = *alertKey
		}
		rec, err := dlq.Record(map[string]any{"routing_key": routing}, map[string]any{
			"topic": prefix + schemas.TopicCommandsNOMIS, "partition": int32(1), "offset": off,
			"key": schemas.OptBytes(k), "value": schemas.OptBytes(value), "headers": []any{},
			"stage": stage, "error": "no_current_booking: prisoner A1234BC", "error_kind": "refused", "attempt": int32(1),
			"failed_at": schemas.Timestamp(time.Now()), "held": held, "held_behind": schemas.OptString(heldBehind),
			"alert_key": schemas.OptString(alertKey),
		})
		require.NoError(t, err)
		return rec
	}
	require.NoError(t, cl.ProduceSync(ctx,
		entry(applydlq.StageApplyNOMIS, 7, keys[0], values[0], false, nil, &key),
		entry(applydlq.StageApplyNOMIS, 8, keys[1], values[1], true, &ids[0], &key),
		entry(applydlq.StageTransform, 3, nil, []byte("change record"), false, nil, nil),
	).FirstErr())
	nomis.Exec(t, `INSERT INTO alertsync.alertsync_dlq_holds (hold_key, prison_number, first_command_id, reason, held_commands)
		VALUES ($1, 'A1234BC', $2, 'no_current_booking', 2)`, key, ids[0])

	common := []string{"--kafka.brokers=" + strings.Join(brokers, ","), "--registry.url=" + reg.URL(), "--topics.prefix=" + prefix,
		"--nomis.dsn=" + nomis.DSN, "--dps.dsn=postgres://alertsync@127.0.0.1:1/alerts", "--log.level=warn"}
	dlqRun := func(args ...string) (string, string, error) {
		return run(t, append([]string{"dlq"}, append(args, common...)...)...)
	}

	out, errOut, err := dlqRun("list")
	require.NoError(t, err, errOut)
	require.Contains(t, out, "3 entries (1 held), 2 in open holds")
	require.Contains(t, out, applydlq.StageTransform)
	require.NotContains(t, out, "SECRET")

	out, errOut, err = dlqRun("list", "--json", "--stage", "apply-nomis", "--alert-key", key)
	require.NoError(t, err, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	for i, l := range lines {
		var e map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &e))
		require.Equal(t, "open", e["hold"])
		require.Equal(t, ids[i], e["command_id"])
		require.Equal(t, float64(len(values[i])), e["value_size"])
		require.NotContains(t, e, "value")
	}

	var ue *UsageError
	// No entry of the NOMIS capture: nothing to ask it for.
	out, errOut, err = dlqRun("redrive", "--stage", "capture.nomis", "--all")
	require.NoError(t, err, errOut)
	require.Equal(t, "capture.nomis: no entries in "+prefix+"alertsync.dlq: nothing to redrive\n", out)
	// The transformer's entry has no alert key: it holds nothing.
	out, errOut, err = dlqRun("redrive", "--stage", "transform", "--all")
	require.NoError(t, err, errOut)
	require.Contains(t, out, "transform: no open holds in "+prefix+"alertsync.transform.holds: nothing to redrive")
	for _, args := range [][]string{{"redrive", "--all"}, {"redrive", "--stage", "apply-nomis"}, {"redrive", "--stage", "nope", "--all"}, {"list", "--stage", "nope"}, {"frob"},
		{"redrive", "--stage", "apply-nomis", "--all", "--discard-failed"}, {"redrive", "--stage", "capture.nomis", "--all", "--discard-failed"},
		{"redrive", "--stage", "apply-nomis", "--all", "--since", "1h"}, {"redrive", "--stage", "capture.nomis", "--all", "--since", "soon"}} {
		_, _, err = dlqRun(args...)
		require.ErrorAs(t, err, &ue, "%v", args)
	}

	out, errOut, err = dlqRun("redrive", "--stage", "apply-nomis", "--all")
	require.NoError(t, err, errOut)
	require.Contains(t, out, "hold deleted from NOMIS alertsync.alertsync_dlq_holds")
	require.Contains(t, out, "apply-nomis: redriven 1 hold, 2 commands")
	require.Zero(t, pgtest.QueryValue[int](t, nomis, "SELECT count(*)::int FROM alertsync.alertsync_dlq_holds"))
	commands := prefix + schemas.TopicCommandsNOMIS
	recs := topictest.Reader{Brokers: brokers, Registry: srcl}.Until(t, 2, 20*time.Second, commands)
	require.Len(t, recs, 2)
	for i, r := range recs {
		require.Equal(t, int32(1), r.Partition, "the original partition")
		require.Equal(t, ids[i], r.Value["command_id"])
		require.Len(t, r.Headers, 1)
		require.Contains(t, r.Headers[applydlq.HeaderRedrivenFrom], prefix+schemas.TopicDLQ+"/")
	}

	out, errOut, err = dlqRun("redrive", "--stage", "apply-nomis", "--alert-key", key)
	require.NoError(t, err, errOut)
	require.Contains(t, out, "no open hold on "+key)
	out, errOut, err = dlqRun("list", "--stage", "apply-nomis")
	require.NoError(t, err, errOut)
	require.Contains(t, out, "2 entries (1 held), 0 in open holds")
}

func TestParseSince(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	got, err := parseSince("2026-11-27T08:30:00Z", now)
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC), got)
	got, err = parseSince("90m", now)
	require.NoError(t, err)
	require.Equal(t, now.Add(-90*time.Minute), got)
	for _, bad := range []string{"yesterday", "-1h", "0s", "2026-11-27"} {
		_, err := parseSince(bad, now)
		require.ErrorContains(t, err, "neither an RFC 3339 time nor a positive duration", bad)
	}
}
