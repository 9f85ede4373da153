package transform

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	applydlq "github.com/alertsync/alertsync/apply/dlq"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/hold"
	"github.com/alertsync/alertsync/transform/internal/fixture"
	"github.com/alertsync/alertsync/transform/rules"
)

const dpsID3 = "0190a3c4-1b2c-7d8e-9f00-112233445588"

// dlqConfig is the configuration of `alertsync dlq` for the harness's
// cluster, registry and topics.
func (h *harness) dlqConfig(t *testing.T) applydlq.Config {
	t.Helper()
	var cfg applydlq.Config
	require.NoError(t, config.Load(&cfg, config.Sources{LookupEnv: func(string) (string, bool) { return "", false }}))
	cfg.Kafka.Brokers = h.brokers
	cfg.Topics = h.cfg.Pipeline.Topics
	cfg.Registry.URL = h.reg.URL()
	return cfg
}

// redrive runs `alertsync dlq redrive --stage transform` for key.
func (h *harness) redrive(t *testing.T, key string, discard bool) string {
	t.Helper()
	var out strings.Builder
	err := applydlq.Redrive(context.Background(), h.dlqConfig(t), applydlq.Deps{Registry: h.srcl},
		applydlq.RedriveOptions{Stage: applydlq.StageTransform, AlertKey: key, DiscardFailed: discard}, &out)
	require.NoError(t, err, out.String())
	t.Logf("redrive:\n%s", out.String())
	return out.String()
}

// openHolds reads the holds topic as dlq does.
func (h *harness) openHolds(t *testing.T) map[string]*hold.Hold {
	t.Helper()
	cl := kafkatest.Client(t, h.brokers)
	hs, err := hold.Read(context.Background(), kadm.NewClient(cl), func(o ...kgo.Opt) (*kgo.Client, error) {
		return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(h.brokers...)}, o...)...)
	}, h.codec, h.name(schemas.TopicTransformHolds))
	require.NoError(t, err)
	return hs
}

// dlqList returns the transform-stage entries as dlq list --json prints
// them.
func (h *harness) dlqList(t *testing.T) []map[string]any {
	t.Helper()
	var out, errOut strings.Builder
	require.NoError(t, applydlq.List(context.Background(), h.dlqConfig(t), applydlq.Deps{Registry: h.srcl},
		applydlq.ListOptions{Stage: applydlq.StageTransform, JSON: true}, &out, &errOut))
	require.Empty(t, errOut.String())
	var ls []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var e map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &e), l)
		ls = append(ls, e)
	}
	return ls
}

func unionBytes(v any) []byte {
	if m, ok := v.(map[string]any); ok {
		b, _ := m["bytes"].([]byte)
		return b
	}
	return nil
}

// TestHoldAndRedrive: a DPS alert whose code the reference data lacks goes
// to the DLQ and holds the alert's later changes (in the DLQ too, marked
// held behind it), across a restart on another replica; the other alerts
// go on. Once the code arrives, dlq redrive --stage transform sends the
// held records back, the transformer makes their commands in order and
// releases the hold; a redrive repeated after that changes nothing.
func TestHoldAndRedrive(t *testing.T) {
	t.Parallel()
	h, r := startSeeded(t, 300*time.Millisecond)
	const key = "dps:" + dpsID1

	h.dpsAlert(t, rules.OpCreate, dpsID1, "A1234BC", 99, false) // code 99: not in the reference data
	h.dpsAlert(t, rules.OpUpdate, dpsID1, "A1234BC", 99, false) // held behind it
	h.dpsAlert(t, rules.OpCreate, dpsID2, "A1234BC", 10, false) // another alert: goes on
	cmds := h.commands(t, 1, 30*time.Second)
	require.Equal(t, dpsID2, unionString(cmds[0].Value["dps_alert_id"]))
	dlq := h.reader().Until(t, 2, 20*time.Second, h.name(schemas.TopicDLQ))
	require.Len(t, dlq, 2)
	failed, held := dlq[0], dlq[1]
	require.Equal(t, "mapping", failed.Value["error_kind"])
	require.Equal(t, false, failed.Value["held"])
	require.Equal(t, key, unionString(failed.Value["alert_key"]))
	first := hold.Pos{Topic: failed.Value["topic"].(string), Partition: failed.Value["partition"].(int32), Offset: failed.Value["offset"].(int64)}
	require.Equal(t, ErrorKindHeld, held.Value["error_kind"])
	require.Equal(t, true, held.Value["held"])
	require.Equal(t, first.String(), unionString(held.Value["held_behind"]))
	require.Equal(t, key, unionString(held.Value["alert_key"]))
	require.Contains(t, held.Value["error"], "unknown_code")
	r.waitMetric(t, "alertsync_transform_holds_open", nil, 1, 10*time.Second)

	hs := h.openHolds(t)
	require.Len(t, hs, 1)
	require.Equal(t, "A1234BC", hs[key].PrisonNumber)
	require.Equal(t, "unknown_code", hs[key].Reason)
	require.Len(t, hs[key].Pending, 2)
	require.Equal(t, first, hs[key].Head())

	// Another replica takes over: it reads the hold and keeps holding.
	require.NoError(t, r.halt(t))
	h.cfg.Transform.ReplicaID = "r2"
	r = h.start(t)
	h.dpsAlert(t, rules.OpUpdate, dpsID1, "A1234BC", 99, false)
	h.dpsAlert(t, rules.OpCreate, dpsID3, "A1234BC", 10, false)
	require.Len(t, h.commands(t, 2, 30*time.Second), 2)
	require.Len(t, h.reader().Until(t, 3, 20*time.Second, h.name(schemas.TopicDLQ)), 3)
	require.Len(t, h.openHolds(t)[key].Pending, 3, "the third change is held too")
	for _, e := range h.dlqList(t) {
		require.Equal(t, applydlq.HoldOpen, e["hold"], "%+v", e)
	}

	// A redrive before the fix: the failed record fails again and stays
	// first (its new DLQ entry names it, and shows open); the records
	// behind it wait.
	require.Contains(t, h.redrive(t, key, false), "3 records")
	refail := h.reader().Until(t, 4, 20*time.Second, h.name(schemas.TopicDLQ))
	require.Len(t, refail, 4)
	again0 := refail[3]
	require.Equal(t, false, again0.Value["held"])
	require.Equal(t, first, hold.Pos{Topic: again0.Value["topic"].(string), Partition: again0.Value["partition"].(int32), Offset: again0.Value["offset"].(int64)},
		"the entry of a copy that failed again names the record it copies")
	r.waitMetric(t, "alertsync_transform_records_total", map[string]string{"topic": h.name(schemas.TopicDPSAlert), "result": resultWaiting}, 2, 10*time.Second)
	require.Len(t, h.openHolds(t)[key].Pending, 3, "all still held")
	require.Equal(t, first, h.openHolds(t)[key].Head())
	listed := h.dlqList(t)
	require.Len(t, listed, 4)
	for _, e := range listed {
		require.Equal(t, applydlq.HoldOpen, e["hold"], "%+v", e)
	}
	require.Len(t, h.all(t, schemas.TopicCommandsNOMIS), 2, "no command of the held alert")

	// The fix: the code reaches the reference data. Then the redrive.
	k, v := fixture.AlertCode(99, 1, "XB")
	h.produce(t, schemas.TopicDPSAlertCode, k, v)
	out := h.redrive(t, key, false)
	require.Contains(t, out, "3 records")
	waitCommands(t, h, 5)
	cmds = h.all(t, schemas.TopicCommandsNOMIS)
	var mine []topictest.Record
	for _, c := range cmds {
		if unionString(c.Value["dps_alert_id"]) == dpsID1 {
			mine = append(mine, c)
		}
	}
	if len(mine) != 3 {
		for _, c := range cmds {
			t.Logf("command %s/%d/%d %v %v %v", c.Topic, c.Partition, c.Offset, c.Value["command_id"], unionString(c.Value["dps_alert_id"]), c.Value["source_position"])
		}
	}
	require.Len(t, mine, 3, "one command per held change")
	for i := 1; i < len(mine); i++ {
		prev, cur := mine[i-1].Value["source_position"].(map[string]any), mine[i].Value["source_position"].(map[string]any)
		require.Less(t, prev["change"].(int64), cur["change"].(int64), "in source order")
	}
	r.waitMetric(t, "alertsync_transform_records_total", map[string]string{"topic": h.name(schemas.TopicDPSAlert), "result": "command"}, 4, 10*time.Second) // r2: the third alert and the three redriven
	require.Empty(t, h.openHolds(t), "the hold is released")
	require.Zero(t, r.metric(t, "alertsync_transform_holds_open", nil))
	for _, e := range h.dlqList(t) {
		require.Equal(t, applydlq.HoldClosed, e["hold"], "%+v", e)
	}

	// The same redrive again finds nothing; a copy sent anyway (a redrive
	// run twice at once) is stale and makes no command.
	require.Contains(t, h.redrive(t, key, false), "no open hold on "+key)
	again := &kgo.Record{Topic: failed.Value["topic"].(string), Partition: failed.Value["partition"].(int32),
		Key: unionBytes(failed.Value["key"]), Value: unionBytes(failed.Value["value"]),
		Headers: []kgo.RecordHeader{{Key: hold.HeaderRedriveOf, Value: []byte(first.String())}}}
	p := kafkatest.Client(t, h.brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, p.ProduceSync(context.Background(), again).FirstErr())
	r.waitMetric(t, "alertsync_transform_records_total", map[string]string{"topic": h.name(schemas.TopicDPSAlert), "result": resultStale}, 1, 10*time.Second)
	require.Len(t, h.all(t, schemas.TopicCommandsNOMIS), 5, "no command twice")
	require.NoError(t, r.halt(t))
}

// TestRedriveDiscardsFailed: a record that cannot be mended is released
// by dlq redrive --discard-failed; the changes held behind it, which carry
// the alert's whole state, are transformed. A redrive with discard run
// again once the failed record is gone (as after a produce that failed
// part way) discards nothing more.
func TestRedriveDiscardsFailed(t *testing.T) {
	t.Parallel()
	h, r := startSeeded(t, 200*time.Millisecond)
	const key = "dps:" + dpsID1
	h.dpsAlert(t, rules.OpCreate, dpsID1, "A1234BC", 98, false) // never mended
	h.dpsAlert(t, rules.OpUpdate, dpsID1, "A1234BC", 10, false) // later states with a known code: held
	h.dpsAlert(t, rules.OpUpdate, dpsID1, "A1234BC", 10, false)
	dlq := h.reader().Until(t, 3, 20*time.Second, h.name(schemas.TopicDLQ))
	require.Len(t, dlq, 3)
	r.waitMetric(t, "alertsync_transform_holds_open", nil, 1, 10*time.Second)

	// As a redrive whose produce failed after the first record: only the
	// failed record's copy, marked discard, went out.
	failed := dlq[0]
	first := hold.Pos{Topic: failed.Value["topic"].(string), Partition: failed.Value["partition"].(int32), Offset: failed.Value["offset"].(int64)}
	p := kafkatest.Client(t, h.brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, p.ProduceSync(context.Background(), &kgo.Record{Topic: first.Topic, Partition: first.Partition,
		Key: unionBytes(failed.Value["key"]), Value: unionBytes(failed.Value["value"]),
		Headers: []kgo.RecordHeader{{Key: hold.HeaderRedriveOf, Value: []byte(first.String())}, {Key: hold.HeaderRedriveDiscard, Value: []byte("true")}}}).FirstErr())
	r.waitMetric(t, "alertsync_transform_records_total", map[string]string{"topic": h.name(schemas.TopicDPSAlert), "result": resultDiscarded}, 1, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for h.openHolds(t)[key] == nil || len(h.openHolds(t)[key].Pending) != 2 {
		require.True(t, time.Now().Before(deadline), "the discard was not committed: %+v", h.openHolds(t)[key])
		time.Sleep(20 * time.Millisecond)
	}
	require.False(t, h.openHolds(t)[key].HeadFailed)

	// The same command again: the first record now is a held change, which
	// is transformed, not discarded.
	out := h.redrive(t, key, true)
	require.Contains(t, out, "not discarded")
	require.NotContains(t, out, "to discard")
	waitCommands(t, h, 2)
	for _, c := range h.all(t, schemas.TopicCommandsNOMIS) {
		require.Equal(t, dpsID1, unionString(c.Value["dps_alert_id"]))
	}
	require.Equal(t, 1.0, r.metric(t, "alertsync_transform_records_total", map[string]string{"topic": h.name(schemas.TopicDPSAlert), "result": resultDiscarded}))
	deadline = time.Now().Add(10 * time.Second)
	for len(h.openHolds(t)) > 0 {
		require.True(t, time.Now().Before(deadline), "the hold stayed open")
		time.Sleep(20 * time.Millisecond)
	}
	require.Len(t, h.all(t, schemas.TopicDLQ), 3, "nothing new in the DLQ")
	require.NoError(t, r.halt(t))
}

// waitCommands waits until the NOMIS command topic holds n commands, read
// committed, and checks it holds no more a moment later.
func waitCommands(t *testing.T, h *harness, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(h.all(t, schemas.TopicCommandsNOMIS)) < n {
		require.True(t, time.Now().Before(deadline), "%d of %d commands", len(h.all(t, schemas.TopicCommandsNOMIS)), n)
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	require.Len(t, h.all(t, schemas.TopicCommandsNOMIS), n)
}

// TestHoldsTopic: the holds topic is created compacted with the others.
func TestHoldsTopic(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seedReference(t)
	r := h.start(t)
	r.waitMetric(t, "alertsync_transform_direction_enabled", map[string]string{"direction": "nomis_to_dps"}, 1, 10*time.Second)
	adm := kadm.NewClient(kafkatest.Client(t, h.brokers))
	deadline := time.Now().Add(20 * time.Second)
	for {
		rcs, err := adm.DescribeTopicConfigs(context.Background(), h.name(schemas.TopicTransformHolds))
		if err == nil {
			if rc, err := rcs.On(h.name(schemas.TopicTransformHolds), nil); err == nil && rc.Err == nil {
				for _, c := range rc.Configs {
					if c.Key == "cleanup.policy" {
						require.Equal(t, "compact", c.MaybeValue())
						require.NoError(t, r.halt(t))
						return
					}
				}
			}
		}
		require.True(t, time.Now().Before(deadline), "no holds topic: %v", err)
		time.Sleep(50 * time.Millisecond)
	}
}
