package transform

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/metrictest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/internal/fixture"
	"github.com/alertsync/alertsync/transform/rules"
)

const (
	dpsID1 = "0190a3c4-1b2c-7d8e-9f00-112233445566"
	dpsID2 = "0190a3c4-1b2c-7d8e-9f00-112233445577"
)

// byKind counts commands by topic and kind.
func byKind(recs []topictest.Record) map[string]int {
	out := map[string]int{}
	for _, r := range recs {
		topic := "dps"
		if strings.HasSuffix(r.Topic, schemas.TopicCommandsNOMIS) {
			topic = "nomis"
		}
		out[topic+" "+r.Value["kind"].(string)]++
	}
	return out
}

// TestMapsBothDirections: NOMIS changes become DPS commands, DPS changes
// NOMIS commands, a prisoner snapshot one REPLACE_PRISONER; the sync's own
// writes, booking copies and alerts on old bookings produce nothing; every
// command carries its ids, keys and source, read committed.
func TestMapsBothDirections(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seedReference(t)
	r := h.start(t)

	h.nomisAlert(t, rules.OpCreate, "A1234BC", 10, 1, "XA", nil, 1)
	h.nomisAlert(t, rules.OpUpdate, "A1234BC", 10, 1, "XA", nil, 1)
	h.nomisAlert(t, rules.OpDelete, "A1234BC", 10, 1, "XA", nil, 1)
	h.nomisAlert(t, rules.OpCreate, "A1234BC", 10, 2, "HA", &rules.NOMISSession{Module: fixture.Ptr("DPS_SYNCHRONISATION")}, 1)
	h.nomisAlert(t, rules.OpCreate, "A1234BC", 10, 3, "HA", &rules.NOMISSession{Module: fixture.Ptr("OCDALERT"), AdditionalInfo: fixture.Ptr(rules.BookingCopyInfo)}, 1)
	h.nomisAlert(t, rules.OpCreate, "A1234BC", 11, 1, "XA", nil, 2) // an old booking
	snap := rules.NOMISSnapshot{OffenderNo: "B2345CD", Reason: "NEW_BOOKING", Source: h.nextSource(false),
		Alerts: []rules.NOMISSnapshotAlert{{Position: rules.Position{Commit: 7, Change: 1}, Row: fixture.NOMISRowOf(20, 1, "XA", "X")}}}
	k, v := fixture.NOMISSnapshot(&snap)
	h.produce(t, schemas.TopicNOMISPrisonerAlerts, k, v)
	h.dpsAlert(t, rules.OpCreate, dpsID1, "C3456DE", 10, false)
	h.dpsAlert(t, rules.OpUpdate, dpsID1, "C3456DE", 10, false) // soft delete
	h.dpsAlert(t, rules.OpCreate, dpsID2, "C3456DE", 20, true)  // the sync's own

	recs := h.commands(t, 6, 30*time.Second)
	require.Equal(t, map[string]int{"dps UPSERT": 2, "dps DELETE": 1, "dps REPLACE_PRISONER": 1, "nomis UPSERT": 1, "nomis DELETE": 1}, byKind(recs))
	ids := map[string]bool{}
	for _, rec := range recs {
		id := rec.Value["command_id"].(string)
		require.False(t, ids[id], "command id %s repeated", id)
		ids[id] = true
		require.Equal(t, rec.Key["prison_number"], rec.Value["prison_number"], "keyed by prison number")
	}
	for _, rec := range recs {
		if rec.Value["kind"] == "REPLACE_PRISONER" {
			require.Equal(t, "B2345CD", rec.Value["prison_number"])
			require.Len(t, rec.Value["alerts"], 1)
		}
		if strings.HasSuffix(rec.Topic, schemas.TopicCommandsNOMIS) && rec.Value["kind"] == "UPSERT" {
			require.Equal(t, dpsID1, unionString(rec.Value["dps_alert_id"]))
			require.Equal(t, "C3456DE", rec.Value["prison_number"])
		}
	}
	// The drops, by reason, after the transaction that holds them.
	// The sync's own DPS write may be in a later transaction than the last
	// command read above, so each source topic is waited for.
	r.waitMetric(t, "alertsync_transform_records_total", map[string]string{"result": "dropped", "topic": h.name(schemas.TopicNOMISOffenderAlerts)}, 3, 10*time.Second)
	r.waitMetric(t, "alertsync_transform_records_total", map[string]string{"result": "dropped", "topic": h.name(schemas.TopicDPSAlert)}, 1, 10*time.Second)
	require.Equal(t, 2.0, r.metric(t, "alertsync_transform_dropped_total", map[string]string{"reason": "sync"}))
	require.Equal(t, 1.0, r.metric(t, "alertsync_transform_dropped_total", map[string]string{"reason": "booking_copy"}))
	require.Equal(t, 1.0, r.metric(t, "alertsync_transform_dropped_total", map[string]string{"reason": "not_current_booking"}))
	require.Equal(t, 2.0, r.metric(t, "alertsync_transform_commands_total", map[string]string{"target": "dps", "kind": "UPSERT"}))
	require.Equal(t, 2.0, r.metric(t, "alertsync_transform_reference_codes", nil))
	require.Zero(t, r.metric(t, "alertsync_transform_dlq_total", map[string]string{"topic": h.name(schemas.TopicNOMISOffenderAlerts), "error_kind": "mapping", "reason": "unknown_code"}))
	require.Equal(t, "running", string(r.t.comp.Status().State))
	require.Equal(t, 10.0, r.metric(t, "alertsync_transform_decoded_total", map[string]string{"path": "fast"}), "records of the current schemas are read straight from Avro binary")
	require.Zero(t, r.metric(t, "alertsync_transform_decoded_total", map[string]string{"path": "generic"}))
	require.NoError(t, r.halt(t))
}

// TestBadInputToDLQ: records that cannot be decoded or mapped land in the
// DLQ with stage, kind and reason and the original bytes; the records
// after them are transformed.
func TestBadInputToDLQ(t *testing.T) {
	t.Parallel()
	h, r := startSeeded(t, 300*time.Millisecond)

	h.produceRaw(t, schemas.TopicNOMISOffenderAlerts, []byte("not avro"), []byte("not avro either"))
	h.produceRaw(t, schemas.TopicDPSAlert, []byte{0, 0, 0, 0x7f, 0x7f, 1}, []byte{0, 0, 0, 0x7f, 0x7f, 2}) // unknown schema id
	h.nomisAlert(t, rules.OpCreate, "A1234BC", 10, 1, "NOPE", nil, 1)                                      // unknown code, no ALERT_TYPE to pass it on with
	missing := rules.NOMISAlertChange{Op: rules.OpCreate, Source: h.nextSource(false),
		Session: &rules.NOMISSession{Module: fixture.Ptr("OCDALERT")}, Context: &rules.NOMISContext{BookingSeq: fixture.Ptr(int32(1))}}
	row := fixture.NOMISRowOf(12, 1, "XA", "X")
	missing.After = &row
	k, v := fixture.NOMISAlert(&missing) // no prison number
	h.produce(t, schemas.TopicNOMISOffenderAlerts, k, v)
	undated := missing
	undatedRow := fixture.NOMISRowOf(10, 3, "XA", "X")
	undatedRow.AlertDate = time.Time{}
	undated.After, undated.Context = &undatedRow, &rules.NOMISContext{OffenderNo: fixture.Ptr("A1234BC"), BookingSeq: fixture.Ptr(int32(1))}
	k, v = fixture.NOMISAlert(&undated) // no alert date
	h.produce(t, schemas.TopicNOMISOffenderAlerts, k, v)
	h.nomisAlert(t, rules.OpCreate, "A1234BC", 10, 2, "XA", nil, 1) // a good one after them

	recs := h.commands(t, 1, 30*time.Second)
	require.Len(t, recs, 1)
	r.waitMetric(t, "alertsync_transform_records_total", map[string]string{"result": "dlq", "topic": h.name(schemas.TopicNOMISOffenderAlerts)}, 4, 10*time.Second)
	dlq := h.reader().Until(t, 5, 20*time.Second, h.name(schemas.TopicDLQ))
	require.Len(t, dlq, 5)
	reasons := map[string]int{}
	for _, e := range dlq {
		require.Equal(t, rules.StageTransform, e.Value["stage"])
		require.NotEmpty(t, e.Value["error"])
		require.NotContains(t, e.Value["error"], "Risk to staff", "the DLQ error quotes alert text")
		reasons[e.Value["error_kind"].(string)]++
		require.NotNil(t, e.Value["value"], "the original value is kept")
	}
	require.Equal(t, map[string]int{"decode": 2, "mapping": 3}, reasons)
	require.Equal(t, 1.0, r.metric(t, "alertsync_transform_dlq_total", map[string]string{"topic": h.name(schemas.TopicNOMISOffenderAlerts), "error_kind": "mapping", "reason": "unknown_code"}))
	require.Equal(t, 1.0, r.metric(t, "alertsync_transform_dlq_total", map[string]string{"topic": h.name(schemas.TopicNOMISOffenderAlerts), "error_kind": "mapping", "reason": "missing_prison_number"}))
	require.Equal(t, 1.0, r.metric(t, "alertsync_transform_dlq_total", map[string]string{"topic": h.name(schemas.TopicNOMISOffenderAlerts), "error_kind": "mapping", "reason": "malformed_date"}))
	require.Equal(t, 1.0, r.metric(t, "alertsync_transform_reference_wait_seconds", map[string]string{"result": "missing"}))
}

// TestScalesOut: two replicas in one group share the source partitions;
// every command is produced once.
func TestScalesOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seedReference(t)
	r1 := h.start(t)
	h.cfg.Transform.ReplicaID = "r2"
	r2 := h.start(t)
	waitBothAssigned(t, h)
	const n = 600
	for i := range n {
		h.nomisAlert(t, rules.OpCreate, "A"+strconv.Itoa(1000+i%50)+"BC", int64(100+i%50), int32(1+i/50), "XA", nil, 1)
	}
	recs := h.commands(t, n, 60*time.Second)
	ids := map[string]bool{}
	for _, rec := range recs {
		ids[rec.Value["command_id"].(string)] = true
	}
	require.Len(t, ids, n)
	require.Len(t, h.all(t, schemas.TopicCommandsDPS), n, "no command twice")
	require.Positive(t, r1.t.committed.Load(), "replica 1 transformed records")
	require.Positive(t, r2.t.committed.Load(), "replica 2 transformed records")
}

// waitBothAssigned waits until the group is stable with two members that
// each have partitions.
func waitBothAssigned(t *testing.T, h *harness) {
	t.Helper()
	adm := kadm.NewClient(kafkatest.Client(t, h.brokers))
	deadline := time.Now().Add(60 * time.Second)
	for {
		g, err := adm.DescribeGroups(context.Background(), h.cfg.Transform.Group)
		require.NoError(t, err)
		d := g[h.cfg.Transform.Group]
		assigned := 0
		for _, m := range d.Members {
			if c, ok := m.Assigned.AsConsumer(); ok && len(c.Topics) > 0 {
				assigned++
			}
		}
		if d.State == "Stable" && assigned == 2 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the group never had both replicas with partitions: %+v", d)
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNewCodeDoesNotRaceIntoDLQ: an alert whose code reaches the reference
// topic after the alert itself (the DPS capture writes the two topics
// independently) waits for it instead of going to the DLQ.
func TestNewCodeDoesNotRaceIntoDLQ(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cfg.Transform.ReferenceWait = 10 * time.Second
	h.seedReference(t)
	r := h.start(t)
	r.waitMetric(t, "alertsync_transform_reference_codes", nil, 2, 20*time.Second)

	h.dpsAlert(t, rules.OpCreate, dpsID1, "C3456DE", 30, false) // code 30 is not known yet
	h.nomisAlert(t, rules.OpCreate, "A1234BC", 10, 1, "NEWC", nil, 1)
	// The code goes out only once the alert waits for it (the waiting
	// gauge): a fixed sleep let a slow run fetch both together, and the
	// lag gauge (set when the alert is fetched) came 100+ ms before the
	// wait on a real broker, where the first fetch of a partition also
	// reads the holds topic (CI, 2026-11-28: nothing waited).
	r.waitMetric(t, "alertsync_transform_reference_waiting", nil, 1, 20*time.Second)
	k, v := fixture.AlertCode(30, 1, "NEWC")
	h.produce(t, schemas.TopicDPSAlertCode, k, v)

	recs := h.commands(t, 2, 30*time.Second)
	require.Equal(t, map[string]int{"dps UPSERT": 1, "nomis UPSERT": 1}, byKind(recs))
	for _, rec := range recs {
		if rec.Value["kind"] == "UPSERT" && strings.HasSuffix(rec.Topic, schemas.TopicCommandsNOMIS) {
			after := rec.Value["after"].(map[string]any)[schemas.TypeAlertState].(map[string]any)
			require.Equal(t, "NEWC", after["code"])
			require.Equal(t, "X", after["type_code"])
		}
	}
	require.Empty(t, h.all(t, schemas.TopicDLQ), "nothing in the DLQ")
	require.Equal(t, 1.0, r.metric(t, "alertsync_transform_reference_wait_seconds", map[string]string{"result": "found"}))
	require.Zero(t, r.metric(t, "alertsync_transform_reference_waiting", nil), "the wait is over")
}

// TestDirectionSwitches: records consumed while a direction is off produce
// no command, and turning it back on does not replay them; the other
// direction goes on meanwhile.
func TestDirectionSwitches(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cfg.Transform.SessionTimeout = 6 * time.Second // replay waits for the stopped replica to be forgotten
	h.seedReference(t)
	r := h.start(t)

	h.nomisAlert(t, rules.OpCreate, "A1234BC", 10, 1, "XA", nil, 1)
	h.commands(t, 1, 30*time.Second)

	r.t.SetSwitches(Switches{NOMISToDPS: false, DPSToNOMIS: true})
	require.Zero(t, r.metric(t, "alertsync_transform_direction_enabled", map[string]string{"direction": "nomis_to_dps"}))
	for seq := int32(2); seq <= 6; seq++ {
		h.nomisAlert(t, rules.OpCreate, "A1234BC", 10, seq, "XA", nil, 1)
	}
	h.dpsAlert(t, rules.OpCreate, dpsID1, "C3456DE", 10, false)
	r.waitMetric(t, "alertsync_transform_skipped_total", map[string]string{"direction": "nomis_to_dps"}, 5, 20*time.Second)
	r.waitMetric(t, "alertsync_transform_commands_total", map[string]string{"target": "nomis", "kind": "UPSERT"}, 1, 20*time.Second)

	r.t.SetSwitches(Switches{NOMISToDPS: true, DPSToNOMIS: true})
	h.nomisAlert(t, rules.OpCreate, "A1234BC", 10, 7, "XA", nil, 1)
	r.waitMetric(t, "alertsync_transform_commands_total", map[string]string{"target": "dps", "kind": "UPSERT"}, 2, 20*time.Second)

	dps := h.all(t, schemas.TopicCommandsDPS)
	var seqs []int32
	for _, c := range dps {
		seqs = append(seqs, c.Value["nomis_alert_seq"].(map[string]any)["int"].(int32))
	}
	require.ElementsMatch(t, []int32{1, 7}, seqs, "the records of the off period made no command, and were not replayed")
	require.Len(t, h.all(t, schemas.TopicCommandsNOMIS), 1)
	require.Equal(t, 5.0, r.metric(t, "alertsync_transform_skipped_total", map[string]string{"direction": "nomis_to_dps"}))

	// Asked to, the records of the off period are transformed after all.
	require.NoError(t, r.halt(t))
	var out strings.Builder
	require.NoError(t, Replay(context.Background(), h.cfg, NOMISToDPS, time.Now().Add(-time.Hour), &out, nil))
	require.Contains(t, out.String(), "rewound by 7 records")
	h.start(t)
	recs := h.reader().Until(t, 2+7, 30*time.Second, h.name(schemas.TopicCommandsDPS))
	seqs = seqs[:0]
	for _, c := range recs {
		seqs = append(seqs, c.Value["nomis_alert_seq"].(map[string]any)["int"].(int32))
	}
	require.ElementsMatch(t, []int32{1, 7, 1, 2, 3, 4, 5, 6, 7}, seqs)
}

// TestDPSUserFromHeader: the DPS user the capture attached to an alert
// record (schemas.HeaderActionedBy) becomes the NOMIS audit user of the
// command, shortened to 32 bytes by the documented rule; a record without
// it gets the fallback user.
func TestDPSUserFromHeader(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seedReference(t)
	h.start(t)
	long := "a.very.long.dps.user.name@justice.gov.uk"
	for _, c := range []struct {
		id, user string
	}{{dpsID1, "JSMITH_GEN"}, {dpsID2, long}, {"0190a3c4-1b2c-7d8e-9f00-112233445588", ""}} {
		row := fixture.DPSRowOf(c.id, "C3456DE", 10)
		ch := rules.DPSAlertChange{Op: rules.OpCreate, After: &row, Source: h.nextSource(false)}
		k, v := fixture.DPSAlert(&ch)
		rec, err := h.bound[schemas.TopicDPSAlert].Record(k, v)
		require.NoError(t, err)
		if c.user != "" {
			rec.Headers = []kgo.RecordHeader{{Key: schemas.HeaderActionedBy, Value: []byte(c.user)}}
		}
		require.NoError(t, h.prod.ProduceSync(context.Background(), rec).FirstErr())
	}
	users := map[string]string{}
	for _, rec := range h.commands(t, 3, 30*time.Second) {
		after := rec.Value["after"].(map[string]any)[schemas.TypeAlertState].(map[string]any)
		users[unionString(rec.Value["dps_alert_id"])] = after["created_by"].(string)
	}
	require.Equal(t, map[string]string{
		dpsID1:                                 "JSMITH_GEN",
		dpsID2:                                 rules.ShortenUser(long),
		"0190a3c4-1b2c-7d8e-9f00-112233445588": rules.UnknownDPSUser,
	}, users)
	require.LessOrEqual(t, len(users[dpsID2]), 32)
}

// TestLagGaugeCaughtUp: the captures write their topics in transactions,
// each followed by its commit marker. A transformer that has transformed
// every change is caught up: its lag gauge says 0 for each partition, not
// the 1 of the marker behind the last record.
func TestLagGaugeCaughtUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t)
	h.seedReference(t)
	h.prod = kafkatest.Client(t, h.brokers, kgo.DefaultProduceTopic("unused"), kgo.ProducerLinger(0),
		kgo.TransactionalID(h.cfg.Pipeline.Topics.Prefix+"capture"))
	r := h.start(t)
	const n = 9
	for i := range n {
		require.NoError(t, h.prod.BeginTransaction())
		h.nomisAlert(t, rules.OpCreate, "A"+strconv.Itoa(1000+i)+"BC", int64(100+i), 1, "XA", nil, 1)
		require.NoError(t, h.prod.EndTransaction(ctx, kgo.TryCommit))
	}
	h.commands(t, n, 30*time.Second)
	topic := h.name(schemas.TopicNOMISOffenderAlerts)
	ends := h.ends(t, schemas.TopicNOMISOffenderAlerts)
	lags := func() map[int32]float64 {
		out := map[int32]float64{}
		for p, end := range ends {
			if end == 0 {
				continue // no record: never fetched
			}
			m := metrictest.Find(t, r.srv.Registry(), "alertsync_transform_lag_records", map[string]string{"topic": topic, "partition": strconv.Itoa(int(p))})
			out[p] = -1
			if m != nil {
				out[p] = m.GetGauge().GetValue()
			}
		}
		return out
	}
	var last map[int32]float64
	require.Eventually(t, func() bool {
		last = lags()
		for _, v := range last {
			if v != 0 {
				return false
			}
		}
		return len(last) > 0
	}, 20*time.Second, 20*time.Millisecond, "lag per partition (-1: not reported): %v", &last)
	t.Logf("lag per partition once caught up: %v (end offsets, markers included: %v)", last, ends)
	// The group's committed offsets pass the markers too: alertsync lag
	// and any other tool see the group caught up.
	adm := kadm.NewClient(kafkatest.Client(t, h.brokers))
	var committed map[int32]int64
	require.Eventually(t, func() bool {
		offs, err := adm.FetchOffsetsForTopics(ctx, h.cfg.Transform.Group, topic)
		require.NoError(t, err)
		committed = map[int32]int64{}
		offs.Each(func(o kadm.OffsetResponse) { committed[o.Partition] = o.At })
		for p, end := range ends {
			if end > 0 && committed[p] != end {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "committed %v, end offsets %v", &committed, ends)
}
