package dlq

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
	"github.com/alertsync/alertsync/schemas"
)

const key = "nomis:10:1"

// TestRedriveAppliesHeldCommandsInOrder is the operator's path out of the
// DLQ with a real apply dps: a command DPS refuses (an alert code DPS does
// not have) fails and holds the next command of its alert; dlq list shows
// both with the hold open and no alert text. A redrive before the cause is
// fixed fails again and starts a new hold (safe to repeat); once the code
// exists, a redrive applies both commands in order, the hold is gone, dlq
// list shows every entry closed, and a further redrive is a no-op. On the
// way: a hold whose entries are not all in the DLQ is left alone, a dry run
// changes nothing, and an unreachable DPS drops the HOLD column only.
func TestRedriveAppliesHeldCommandsInOrder(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.startApply(t)
	bad := w.cmd("A1234BC", 10, 1, nil, state("XQQ", "SECRET-ONE"))
	later := w.cmd("A1234BC", 10, 1, state("XQQ", "SECRET-ONE"), state("XQQ", "SECRET-TWO"))
	other := w.cmd("A1234BC", 10, 2, nil, state("XA", "SECRET-OTHER"))
	w.send(t, bad, later, other)

	es := w.waitEntries(t, 2, ListOptions{Stage: StageApplyDPS, AlertKey: key})
	commands := w.cfg.Topics.Prefix + schemas.TopicCommandsDPS
	require.Equal(t, false, es[0]["held"])
	require.Equal(t, bad.ID, es[0]["command_id"])
	require.Equal(t, "refused", es[0]["error_kind"])
	require.Equal(t, true, es[1]["held"])
	require.Equal(t, bad.ID, es[1]["held_behind"])
	require.Equal(t, later.ID, es[1]["command_id"])
	for _, e := range es {
		require.Equal(t, HoldOpen, e["hold"])
		require.Equal(t, key, e["alert_key"])
		require.Equal(t, StageApplyDPS, e["stage"])
		require.Equal(t, commands, e["topic"])
		require.Greater(t, e["value_size"], 0.0)
	}
	require.Less(t, es[0]["offset"], es[1]["offset"], "DLQ order is command order")
	require.Empty(t, w.listJSON(t, ListOptions{Stage: StageTransform}))
	require.Empty(t, w.listJSON(t, ListOptions{AlertKey: "nomis:10:2"}), "the other alert was applied")

	table, notes := w.list(t, w.cfg, ListOptions{})
	require.Empty(t, notes)
	require.Contains(t, table, "HOLD")
	require.Equal(t, 2, strings.Count(table, "  open  "), table)
	require.Contains(t, table, "2 entries (1 held), 2 in open holds")
	require.NotContains(t, table, "SECRET", "alert text is never printed")

	down := w.cfg
	down.DPS.DSN = "postgres://alertsync@127.0.0.1:1/alerts"
	down.Own.ConnectTimeout = 2 * time.Second
	table, notes = w.list(t, down, ListOptions{})
	require.Contains(t, notes, "the holds of apply-dps cannot be read")
	require.Contains(t, notes, "127.0.0.1:1")
	require.NotContains(t, table, "HOLD")
	require.Contains(t, table, bad.ID)

	// Entries missing from the DLQ (as while the relay lags): left alone.
	w.db.Exec(t, "UPDATE alertsync.dlq_holds SET held_commands = 3 WHERE hold_key = $1", key)
	out, err := w.redrive(t, RedriveOptions{Stage: StageApplyDPS, AlertKey: key})
	require.ErrorIs(t, err, ErrHoldsIncomplete)
	require.Contains(t, out, "2 of its 3 commands")
	require.Equal(t, 1, pgtest.QueryValue[int](t, w.db, "SELECT count(*)::int FROM alertsync.dlq_holds"))
	w.db.Exec(t, "UPDATE alertsync.dlq_holds SET held_commands = 2 WHERE hold_key = $1", key)

	out, err = w.redrive(t, RedriveOptions{Stage: StageApplyDPS, All: true, DryRun: true})
	require.NoError(t, err)
	require.Contains(t, out, "would delete the hold")
	require.Equal(t, 2, strings.Count(out, "  would redrive "), out)
	require.Equal(t, 1, pgtest.QueryValue[int](t, w.db, "SELECT count(*)::int FROM alertsync.dlq_holds"))

	// Redriven before the cause is fixed: fails again, holds again.
	out, err = w.redrive(t, RedriveOptions{Stage: StageApplyDPS, AlertKey: key})
	require.NoError(t, err, out)
	require.Contains(t, out, "hold deleted")
	require.Equal(t, 2, strings.Count(out, "  redriven "), out)
	w.waitFor(t, "a new hold", "SELECT EXISTS (SELECT 1 FROM alertsync.dlq_holds WHERE hold_key = $1 AND held_commands = 2)", key)
	es = w.waitEntries(t, 4, ListOptions{Stage: StageApplyDPS, AlertKey: key})
	require.Equal(t, []any{HoldClosed, HoldClosed, HoldOpen, HoldOpen}, []any{es[0]["hold"], es[1]["hold"], es[2]["hold"], es[3]["hold"]})
	require.Equal(t, []any{bad.ID, later.ID}, []any{es[2]["command_id"], es[3]["command_id"]})

	// The cause fixed: the code exists in DPS now.
	w.db.Exec(t, `INSERT INTO alert_code (alert_type_id, code, description, created_by)
		SELECT id, 'XQQ', 'Test code', 'TEST' FROM alert_type WHERE code = 'X'`)
	out, err = w.redrive(t, RedriveOptions{Stage: StageApplyDPS, AlertKey: key})
	require.NoError(t, err, out)
	require.Contains(t, out, "redriven 1 hold, 2 commands")
	w.waitFor(t, "the later state applied", `SELECT EXISTS (SELECT 1 FROM alert a JOIN alertsync.alert_mapping m ON m.dps_alert_id = a.id
		WHERE m.nomis_booking_id = 10 AND m.nomis_alert_seq = 1 AND a.description = 'SECRET-TWO')`)
	require.Equal(t, "CREATED,UPDATED", pgtest.QueryValue[string](t, w.db, `SELECT string_agg(e.action, ',' ORDER BY e.actioned_at, e.action)
		FROM audit_event e JOIN alertsync.alert_mapping m ON m.dps_alert_id = e.alert_id WHERE m.nomis_booking_id = 10 AND m.nomis_alert_seq = 1`),
		"both commands applied, in order")
	require.Zero(t, pgtest.QueryValue[int](t, w.db, "SELECT count(*)::int FROM alertsync.dlq_holds"))
	require.Equal(t, 2, pgtest.QueryValue[int](t, w.db, "SELECT count(*)::int FROM alert"))

	es = w.listJSON(t, ListOptions{})
	require.Len(t, es, 4, "nothing new in the DLQ")
	for _, e := range es {
		require.Equal(t, HoldClosed, e["hold"])
	}

	out, err = w.redrive(t, RedriveOptions{Stage: StageApplyDPS, AlertKey: key})
	require.NoError(t, err)
	require.Contains(t, out, "no open hold on "+key+" in DPS")

	// The redriven records: the original command, one header naming the
	// DLQ entry, on the original partition.
	adm := kadm.NewClient(kafkatest.Client(t, w.brokers))
	ends := topictest.EndOffsets(context.Background(), t, adm, commands)
	recs := topictest.Reader{Brokers: w.brokers, Registry: w.srcl}.ToEnds(t, commands, ends)
	require.Len(t, recs, 7)
	var redriven []topictest.Record
	for _, r := range recs {
		if r.Headers != nil {
			redriven = append(redriven, r)
		}
	}
	require.Len(t, redriven, 4)
	want := []string{bad.ID, later.ID, bad.ID, later.ID}
	dlqRefs := []string{ref(es[0]), ref(es[1]), ref(es[2]), ref(es[3])}
	partition := int32(es[0]["partition"].(float64))
	for i, r := range redriven {
		require.Equal(t, want[i], r.Value["command_id"])
		require.Equal(t, map[string]string{HeaderRedrivenFrom: dlqRefs[i]}, r.Headers)
		require.Equal(t, partition, r.Partition)
	}
}

func ref(e map[string]any) string {
	return e["dlq_topic"].(string) + "/" + strconv.Itoa(int(e["dlq_partition"].(float64))) + "/" + strconv.Itoa(int(e["dlq_offset"].(float64)))
}

// TestRedriveRefusals: redrive needs a known stage and one alert key or
// all, and discards failed records at the transformer only; each refusal
// comes before anything is read.
func TestRedriveRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts RedriveOptions
		want error
		text string
	}{
		{"discard on capture", RedriveOptions{Stage: StageCaptureNOMIS, AlertKey: key, DiscardFailed: true}, ErrRedriveUnsupported, "for the transform stage only"},
		{"capture, neither key nor all", RedriveOptions{Stage: StageCaptureNOMIS}, nil, "either an alert key or all"},
		{"since on an apply", RedriveOptions{Stage: StageApplyNOMIS, All: true, Since: time.Now()}, ErrRedriveUnsupported, "for the capture.nomis stage only"},
		{"discard on an apply", RedriveOptions{Stage: StageApplyDPS, AlertKey: key, DiscardFailed: true}, ErrRedriveUnsupported, "for the transform stage only"},
		{"transform, key and all", RedriveOptions{Stage: StageTransform, All: true, AlertKey: key}, nil, "either an alert key or all"},
		{"unknown stage", RedriveOptions{Stage: "apply.dps", All: true}, ErrUnknownStage, `"apply.dps"`},
		{"no stage", RedriveOptions{All: true}, nil, "a stage is required"},
		{"key and all", RedriveOptions{Stage: StageApplyDPS, All: true, AlertKey: key}, nil, "either an alert key or all"},
		{"neither key nor all", RedriveOptions{Stage: StageApplyNOMIS}, nil, "either an alert key or all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			// No Kafka, registry or database: nothing may be reached.
			err := Redrive(t.Context(), Config{}, Deps{}, tt.opts, &out)
			require.Error(t, err)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
			}
			require.ErrorContains(t, err, tt.text)
			require.Empty(t, out.String())
		})
	}
}

// TestListUnknownStage: a --stage that names no stage is refused.
func TestListUnknownStage(t *testing.T) {
	t.Parallel()
	err := List(t.Context(), Config{}, Deps{}, ListOptions{Stage: "apply"}, nil, nil)
	require.ErrorIs(t, err, ErrUnknownStage)
}
