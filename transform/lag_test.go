package transform

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/metrictest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/internal/fixture"
	"github.com/alertsync/alertsync/transform/rules"
)

// fetchOf is a poll that brought records up to offset last of topic/part,
// whose last stable offset was stable.
func fetchOf(topic string, part int32, last, stable int64) kgo.Fetches {
	return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: topic, Partitions: []kgo.FetchPartition{{
		Partition: part, LastStableOffset: stable, Records: []*kgo.Record{{Topic: topic, Partition: part, Offset: last}},
	}}}}}}
}

func TestLagTracker(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lag"}, []string{"topic", "partition"})
	reg.MustRegister(g)
	l := newLagTracker(g)
	value := func(topic string, p int32) *float64 {
		m := metrictest.Find(t, reg, "lag", map[string]string{"topic": topic, "partition": strconv.Itoa(int(p))})
		if m == nil {
			return nil
		}
		v := m.GetGauge().GetValue()
		return &v
	}

	l.fetched(fetchOf("a", 0, 9, 10)) // caught up: the last record fetched is the marker at 9
	l.fetched(fetchOf("a", 1, 4, 30))
	require.InDelta(t, 0, *value("a", 0), 0)
	require.InDelta(t, 25, *value("a", 1), 0)

	// Listed offsets raise the lag of partitions tracked, never lower it
	// with an older listing, and add no partition never fetched.
	offsets := kadm.ListedOffsets{"a": {
		0: {Topic: "a", Partition: 0, Offset: 50},
		1: {Topic: "a", Partition: 1, Offset: 20}, // older than the fetch's 30
		2: {Topic: "a", Partition: 2, Offset: 70},
	}}
	l.listed(offsets)
	require.InDelta(t, 40, *value("a", 0), 0, "the transformer fetched nothing since: the lag grows")
	require.InDelta(t, 25, *value("a", 1), 0)
	require.Nil(t, value("a", 2), "not this replica's")

	l.fetched(fetchOf("a", 0, 49, 50))
	require.InDelta(t, 0, *value("a", 0), 0)

	l.forget(map[string][]int32{"a": {1}})
	require.Nil(t, value("a", 1), "revoked: the new owner reports it")
	l.listed(offsets)
	require.Nil(t, value("a", 1), "and a listing does not bring it back")
	require.NotNil(t, value("a", 0))
	l.forgetAll()
	require.Nil(t, value("a", 0))
}

// TestLagGaugeWhileStuck: a transformer stuck in a poll's mapping (a DPS
// alert waiting for its code's reference data) fetches nothing; its lag
// gauge still grows with what is written behind it, then falls to 0 once
// it goes on.
func TestLagGaugeWhileStuck(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cfg.Transform.ReferenceWait = 40 * time.Second
	h.seedReference(t)
	r := h.start(t)
	r.waitMetric(t, "alertsync_transform_reference_codes", nil, 2, 20*time.Second)

	h.dpsAlert(t, rules.OpCreate, dpsID1, "C3456DE", 30, false) // code 30 is not known yet: the poll waits
	r.waitMetric(t, "alertsync_transform_reference_waiting", nil, 1, 20*time.Second)
	const behind = 20
	for range behind {
		h.dpsAlert(t, rules.OpUpdate, dpsID1, "C3456DE", 10, false) // the same alert: the same partition
	}
	topic := h.name(schemas.TopicDPSAlert)
	var part int32 = -1
	for p, end := range h.ends(t, schemas.TopicDPSAlert) {
		if end > 0 {
			part = p
		}
	}
	labels := map[string]string{"topic": topic, "partition": strconv.Itoa(int(part))}
	r.waitMetric(t, "alertsync_transform_lag_records", labels, behind, 3*lagRefresh)
	require.Equal(t, 1.0, r.metric(t, "alertsync_transform_reference_waiting", nil), "still stuck")

	k, v := fixture.AlertCode(30, 1, "NEWC")
	h.produce(t, schemas.TopicDPSAlertCode, k, v)
	h.commands(t, 1+behind, 30*time.Second)
	require.Eventually(t, func() bool { return r.metric(t, "alertsync_transform_lag_records", labels) == 0 },
		20*time.Second, 20*time.Millisecond, "caught up")
}

// TestLagGaugeFollowsPartitions: when a second replica joins, the first
// stops reporting the lag of the partitions it gave up (their new owner
// reports them); summed over replicas, no partition counts twice.
func TestLagGaugeFollowsPartitions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seedReference(t)
	r1 := h.start(t)
	const n = 30
	for i := range n {
		h.nomisAlert(t, rules.OpCreate, "A"+strconv.Itoa(1000+i)+"BC", int64(100+i), 1, "XA", nil, 1)
	}
	h.commands(t, n, 30*time.Second)
	topic := h.name(schemas.TopicNOMISOffenderAlerts)
	reported := func(r *run) map[int32]bool {
		out := map[int32]bool{}
		for p := range int32(3) {
			if metrictest.Find(t, r.srv.Registry(), "alertsync_transform_lag_records", map[string]string{"topic": topic, "partition": strconv.Itoa(int(p))}) != nil {
				out[p] = true
			}
		}
		return out
	}
	require.Len(t, reported(r1), 3, "the only replica reports every partition it fetched from")

	h.cfg.Transform.ReplicaID = "r2"
	h.start(t)
	waitBothAssigned(t, h)
	adm := kadm.NewClient(kafkatest.Client(t, h.brokers))
	var owned map[int32]bool
	require.Eventually(t, func() bool {
		g, err := adm.DescribeGroups(context.Background(), h.cfg.Transform.Group)
		require.NoError(t, err)
		owned = map[int32]bool{}
		for _, m := range g[h.cfg.Transform.Group].Members {
			if c, ok := m.Assigned.AsConsumer(); ok && m.InstanceID != nil && *m.InstanceID == "r1" {
				for _, tp := range c.Topics {
					if tp.Topic == topic {
						for _, p := range tp.Partitions {
							owned[p] = true
						}
					}
				}
			}
		}
		got := reported(r1)
		for p := range got {
			if !owned[p] {
				return false
			}
		}
		return true
	}, 20*time.Second, 50*time.Millisecond, "replica 1 reports only partitions it owns (owns %v, reports %v)", &owned, reported(r1))
	require.Less(t, len(owned), 3, "the second replica took some of %s", topic)
}
