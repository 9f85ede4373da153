package transform

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/hold"
	"github.com/alertsync/alertsync/transform/rules"
)

// TestGate: what a hold decides about each kind of record of its alert.
func TestGate(t *testing.T) {
	t.Parallel()
	const key = "dps:1"
	pos := func(o int64) hold.Pos { return hold.Pos{Topic: "dps.public.alert", Partition: 2, Offset: o} }
	live := func(o int64) *kgo.Record { return &kgo.Record{Topic: "dps.public.alert", Partition: 2, Offset: o} }
	redriven := func(o, of int64, discard bool) *kgo.Record {
		r := live(o)
		r.Headers = []kgo.RecordHeader{{Key: "alertsync-actioned-by", Value: []byte("someone")},
			{Key: hold.HeaderRedriveOf, Value: []byte(pos(of).String())}}
		if discard {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: hold.HeaderRedriveDiscard, Value: []byte("true")})
		}
		return r
	}
	held := &Transformer{holds: newHoldBook()}
	held.holds.committed[key] = &hold.Hold{Key: key, Pending: []hold.Pos{pos(3), pos(5)}, HeadFailed: true}
	// A hold whose first record was held behind a failure since redriven.
	behind := &Transformer{holds: newHoldBook()}
	behind.holds.committed[key] = &hold.Hold{Key: key, Pending: []hold.Pos{pos(5)}}
	free := &Transformer{holds: newHoldBook()}
	for _, tc := range []struct {
		name string
		t    *Transformer
		rec  *kgo.Record
		want gateDecision
	}{
		{"no hold: a live record passes", free, live(9), gatePass},
		{"no hold: a redriven copy is stale", free, redriven(9, 3, false), gateStale},
		{"a new live record is held", held, live(9), gateHold},
		{"a live record already held (a replay) waits", held, live(5), gateWaiting},
		{"a live record older than the failure (a replay) passes", held, live(1), gatePass},
		{"a live record of another partition is held", held, &kgo.Record{Topic: "dps.public.alert", Partition: 1, Offset: 1}, gateHold},
		{"the copy of the failed record passes", held, redriven(9, 3, false), gatePass},
		{"the copy of the failed record, discarded", held, redriven(9, 3, true), gateDiscard},
		{"the copy of a later record waits its turn", held, redriven(9, 5, false), gateWaiting},
		{"a first record that did not fail is never discarded", behind, redriven(9, 5, true), gatePass},
		{"a live record older than the first held passes", behind, live(4), gatePass},
		{"a copy of a record not held is stale", held, redriven(9, 4, false), gateStale},
		{"a header not naming a record is ignored", held, &kgo.Record{Topic: "dps.public.alert", Partition: 2, Offset: 9,
			Headers: []kgo.RecordHeader{{Key: hold.HeaderRedriveOf, Value: []byte("nonsense")}}}, gateHold},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.t.gate(tc.rec, key, redriveHeaders(tc.rec)))
		})
	}
}

// TestHoldBook: a transaction's changes are seen by that transaction,
// leave the committed holds alone until it commits, and are forgotten when
// it does not.
func TestHoldBook(t *testing.T) {
	t.Parallel()
	tr := &Transformer{holds: newHoldBook()}
	now := time.Now()
	rec := func(o int64) *kgo.Record { return &kgo.Record{Topic: "t", Partition: 0, Offset: o} }

	tr.startHold("k", "A1234BC", "mapping", "unknown_code", rec(1), now)
	tr.holdBehind("k", rec(2), now)
	require.Len(t, tr.holds.get("k").Pending, 2)
	require.Nil(t, tr.holds.committed["k"], "not committed yet")
	tr.holds.discard()
	require.Nil(t, tr.holds.get("k"), "a transaction that does not commit leaves nothing")
	require.True(t, tr.holds.empty())

	tr.startHold("k", "A1234BC", "mapping", "unknown_code", rec(1), now)
	tr.holdBehind("k", rec(2), now)
	tr.holds.commit()
	require.Equal(t, []hold.Pos{{Topic: "t", Offset: 1}, {Topic: "t", Offset: 2}}, tr.holds.committed["k"].Pending)

	// Releasing in a transaction: the committed hold is untouched until commit.
	copyOf := func(o int64) hold.Pos { return hold.Pos{Topic: "t", Offset: o} }
	require.True(t, tr.holds.committed["k"].HeadFailed)
	tr.refailed("k", "mapping", "text_too_long", now)
	require.Equal(t, "text_too_long", tr.holds.get("k").Reason, "a failure again: its reason")
	require.Equal(t, "unknown_code", tr.holds.committed["k"].Reason, "edited on a copy")
	tr.released("k", copyOf(1), now)
	require.Len(t, tr.holds.get("k").Pending, 1)
	require.False(t, tr.holds.get("k").HeadFailed, "the next one was held, not failed")
	require.Len(t, tr.holds.committed["k"].Pending, 2, "edited on a copy")
	tr.released("k", copyOf(2), now)
	require.Nil(t, tr.holds.get("k"), "released after the last")
	tr.holds.discard()
	require.Len(t, tr.holds.get("k").Pending, 2, "the release did not commit")
	tr.released("k", copyOf(1), now)
	tr.released("k", copyOf(2), now)
	tr.holds.commit()
	require.True(t, tr.holds.empty())

	// A replayed record older than a hold's first fails again: it goes
	// first, the records held stay behind it.
	tr.startHold("k", "A1234BC", "mapping", "unknown_code", rec(5), now)
	tr.holds.commit()
	tr.released("k", copyOf(5), now)
	require.Nil(t, tr.holds.get("k"))
	tr.holds.discard()
	tr.startHold("k", "A1234BC", "mapping", "text_too_long", rec(2), now)
	require.Equal(t, []hold.Pos{{Topic: "t", Offset: 2}, {Topic: "t", Offset: 5}}, tr.holds.get("k").Pending)
	require.True(t, tr.holds.get("k").HeadFailed)
	require.Equal(t, "text_too_long", tr.holds.get("k").Reason)
}

// TestHoldsFollowPartitions: holds started by one replica are kept by the
// replica a rebalance gives their partitions to: a second replica joins,
// takes some partitions, and holds the later records of alerts on them.
func TestHoldsFollowPartitions(t *testing.T) {
	t.Parallel()
	h, r1 := startSeeded(t, 200*time.Millisecond)
	ids := make([]string, 12)
	for i := range ids {
		ids[i] = fmt.Sprintf("0190a3c4-1b2c-7d8e-9f00-%012d", 900+i)
		h.dpsAlert(t, rules.OpCreate, ids[i], "A1234BC", 99, false) // unknown code: a hold each
	}
	dlq := h.reader().Until(t, len(ids), 30*time.Second, h.name(schemas.TopicDLQ))
	parts := map[int32]bool{}
	for _, e := range dlq {
		parts[e.Value["partition"].(int32)] = true
	}
	require.Len(t, parts, 3, "the alerts are spread over every partition")
	r1.waitMetric(t, "alertsync_transform_holds_open", nil, float64(len(ids)), 10*time.Second)

	h.cfg.Transform.ReplicaID = "r2"
	r2 := h.start(t)
	waitBothAssigned(t, h)
	for _, id := range ids {
		h.dpsAlert(t, rules.OpUpdate, id, "A1234BC", 10, false) // a known code now, but held
	}
	dlq = h.reader().Until(t, 2*len(ids), 30*time.Second, h.name(schemas.TopicDLQ))
	heldN := 0
	for _, e := range dlq {
		if e.Value["held"] == true {
			heldN++
		}
	}
	if heldN != len(ids) {
		for _, c := range h.all(t, schemas.TopicCommandsNOMIS) {
			t.Logf("command of %s from %s", unionString(c.Value["dps_alert_id"]), c.Headers[HeaderSource])
		}
		for name, r := range map[string]*run{"r1": r1, "r2": r2} {
			for _, res := range []string{"dlq", "command", "waiting", "stale"} {
				t.Logf("%s records_total{result=%s} %v", name, res,
					r.metric(t, "alertsync_transform_records_total", map[string]string{"topic": h.name(schemas.TopicDPSAlert), "result": res}))
			}
			t.Logf("%s holds_open %v, transactions aborted %v", name, r.metric(t, "alertsync_transform_holds_open", nil),
				r.metric(t, "alertsync_transform_transactions_total", map[string]string{"result": "aborted"}))
		}
	}
	require.Equal(t, len(ids), heldN, "every later change is held, whichever replica has its partition")
	require.Empty(t, h.all(t, schemas.TopicCommandsNOMIS), "no command for a held alert")
	require.Positive(t, r2.metric(t, "alertsync_transform_records_total", map[string]string{"topic": h.name(schemas.TopicDPSAlert), "result": "dlq"}),
		"the second replica held records it took over")
	require.Len(t, h.openHolds(t), len(ids))
	require.NoError(t, r2.halt(t))
	require.NoError(t, r1.halt(t))
}
