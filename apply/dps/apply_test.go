package dps

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
	"github.com/alertsync/alertsync/transform/rules"
)

var march1 = rules.DateOf(2024, time.March, 1)

// TestCreateUpdateDelete: an UPSERT for an unmapped alert creates it (UUIDv7
// id, CREATED audit event from NOMIS, NOMIS_CREATED mapping); an UPSERT
// whose before-image matches updates it (version, UPDATED with the changed
// fields' flags); a DELETE soft-deletes it (DELETED, mapping marked). Each
// transaction carries the sync marker; each command has one APPLIED outcome.
func TestCreateUpdateDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.db.Exec(t, "SELECT pg_create_logical_replication_slot('marker_probe', 'test_decoding')")
	t.Cleanup(func() { h.db.Exec(t, "SELECT pg_drop_replication_slot('marker_probe')") })
	r := h.start(t)

	created := nomisState("XA", march1, "Risk to staff")
	updated := nomisState("XA", march1, "Risk to staff and visitors")
	to := rules.DateOf(2025, time.January, 1)
	updated.ActiveTo = &to
	c1 := h.cmd(rules.KindUpsert, "A1234BC", 10, 1, nil, created)
	c2 := h.cmd(rules.KindUpsert, "A1234BC", 10, 1, created, updated)
	c3 := h.cmd(rules.KindDelete, "A1234BC", 10, 1, updated, nil)
	h.send(t, c1)
	h.waitApplied(t, r, 1)
	id := pgtest.QueryValue[string](t, h.db, "SELECT id::text FROM alert")
	require.Equal(t, "7", id[14:15], "a UUIDv7 id")
	require.Equal(t, "Risk to staff", pgtest.QueryValue[string](t, h.db, "SELECT description FROM alert"))
	require.Equal(t, "NOMIS_CREATED", pgtest.QueryValue[string](t, h.db, "SELECT mapping_type FROM alertsync.alert_mapping WHERE nomis_booking_id = 10 AND nomis_alert_seq = 1"))

	h.send(t, c2, c3)
	h.waitApplied(t, r, 3)
	require.Equal(t, "Risk to staff and visitors", pgtest.QueryValue[string](t, h.db, "SELECT description FROM alert"))
	require.Equal(t, 2, pgtest.QueryValue[int](t, h.db, "SELECT version FROM alert"))
	require.True(t, pgtest.QueryValue[bool](t, h.db, "SELECT deleted_at IS NOT NULL FROM alert"))
	require.True(t, pgtest.QueryValue[bool](t, h.db, "SELECT deleted FROM alertsync.alert_mapping"))
	require.Equal(t, "CREATED,UPDATED,DELETED", pgtest.QueryValue[string](t, h.db,
		"SELECT string_agg(action, ',' ORDER BY actioned_at, CASE action WHEN 'CREATED' THEN 1 WHEN 'UPDATED' THEN 2 ELSE 3 END) FROM audit_event"))
	require.Equal(t, 3, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM audit_event WHERE source = 'NOMIS' AND actioned_by = 'JSMITH'"))
	require.Equal(t, "t,f,f,t", pgtest.QueryValue[string](t, h.db,
		"SELECT concat_ws(',', description_updated, authorised_by_updated, active_from_updated, active_to_updated) FROM audit_event WHERE action = 'UPDATED'"))
	require.Equal(t, "Updated alert description, active to in NOMIS", pgtest.QueryValue[string](t, h.db, "SELECT description FROM audit_event WHERE action = 'UPDATED'"))

	outs := h.outcomes(t, 3)
	for _, c := range []rules.Command{c1, c2, c3} {
		require.Len(t, outs[c.ID], 1, "one outcome per command")
		res, _ := outcomeOf(outs[c.ID])
		require.Equal(t, apply.Applied, res)
	}
	// Every transaction that changed an alert carries the marker before its
	// first change. c1 had a transaction of its own; c2 and c3 may share one
	// (they may arrive in one fetch).
	const perTxn = `SELECT xid,
		min(lsn) FILTER (WHERE data = 'message: transactional: 1 prefix: alertsync, sz: 9 content:apply-dps') AS marker,
		min(lsn) FILTER (WHERE data LIKE 'table public.alert:%') AS first_change
		FROM pg_logical_slot_peek_changes('marker_probe', NULL, NULL) GROUP BY xid`
	txns := pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM ("+perTxn+") t WHERE first_change IS NOT NULL")
	require.GreaterOrEqual(t, txns, 2, "c1 was applied before c2 and c3 were sent")
	require.LessOrEqual(t, txns, 3)
	require.Equal(t, 0, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM ("+perTxn+") t WHERE first_change IS NOT NULL AND (marker IS NULL OR marker > first_change)"),
		"a transaction changed an alert without the marker before the change")
	require.NoError(t, r.halt(t))
}

// TestRedeliveryIsNoop: the same commands delivered again (a producer retry,
// a replay) change nothing: no second row, audit event or mapping; each is
// SKIPPED stale_position.
func TestRedeliveryIsNoop(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	c1 := h.cmd(rules.KindUpsert, "A1234BC", 10, 1, nil, nomisState("XA", march1, "one"))
	c2 := h.cmd(rules.KindUpsert, "A1234BC", 10, 2, nil, nomisState("HA", march1, "two"))
	h.send(t, c1, c2, c1, c2, c1)
	h.waitApplied(t, r, 5)
	require.Equal(t, 2, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alert"))
	require.Equal(t, 2, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM audit_event"))
	require.Equal(t, 2, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.alert_mapping"))
	outs := h.outcomes(t, 5)
	require.Len(t, outs[c1.ID], 3, "a repeat carries the same command id")
	var stale int
	for _, recs := range outs {
		for _, rec := range recs {
			if res, reason := outcomeOf([]topictest.Record{rec}); res == apply.Skipped && reason == apply.ReasonStale {
				stale++
			}
		}
	}
	require.Equal(t, 3, stale)
}

// TestConflict: both sides changed the alert before either change synced
// (the command's before-image differs from the DPS row). The later commit
// wins: a NOMIS change older than the DPS user's edit loses (CONFLICT, row
// untouched); one committed after it wins (APPLIED conflict_won). Both
// decisions are recorded.
func TestConflict(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	base := nomisState("XA", march1, "base")
	h.send(t, h.cmd(rules.KindUpsert, "A1234BC", 10, 1, nil, base))
	h.waitApplied(t, r, 1)

	nomisEdit := nomisState("XA", march1, "edited in NOMIS")
	older := h.cmd(rules.KindUpsert, "A1234BC", 10, 1, base, nomisEdit)
	older.SourceCommitTime = time.Now().UTC().Add(-time.Minute).Truncate(time.Microsecond)
	// A DPS user edits the alert now: after the NOMIS commit above.
	h.db.Exec(t, "UPDATE alert SET description = 'edited in DPS', version = version + 1")
	h.send(t, older)
	h.waitApplied(t, r, 2)
	require.Equal(t, "edited in DPS", pgtest.QueryValue[string](t, h.db, "SELECT description FROM alert"), "the later DPS edit stands")

	later := h.cmd(rules.KindUpsert, "A1234BC", 10, 1, nomisEdit, nomisState("XA", march1, "edited in NOMIS again"))
	later.SourceCommitTime = time.Now().UTC().Add(time.Minute).Truncate(time.Microsecond)
	h.send(t, later)
	h.waitApplied(t, r, 3)
	require.Equal(t, "edited in NOMIS again", pgtest.QueryValue[string](t, h.db, "SELECT description FROM alert"), "the later NOMIS edit wins")

	outs := h.outcomes(t, 3)
	res, reason := outcomeOf(outs[older.ID])
	require.Equal(t, apply.Conflict, res)
	require.Equal(t, apply.ReasonLost, reason)
	res, reason = outcomeOf(outs[later.ID])
	require.Equal(t, apply.Applied, res)
	require.Equal(t, apply.ReasonWon, reason)
	require.Equal(t, "DPS,NOMIS", pgtest.QueryValue[string](t, h.db, "SELECT string_agg(winner, ',' ORDER BY id) FROM alertsync.conflicts"))
}

// TestReplacePrisoner: a prisoner snapshot replaces the prisoner's alerts:
// an alert with the same code and dates keeps its DPS row and audit
// history, a new one is created, one no longer in NOMIS is soft-deleted,
// two of one code both stand; the mappings follow, and the same replace
// again changes nothing.
func TestReplacePrisoner(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	keep := nomisState("XA", march1, "kept")
	gone := nomisState("HA", march1, "gone")
	h.send(t, h.cmd(rules.KindUpsert, "A1234BC", 10, 1, nil, keep), h.cmd(rules.KindUpsert, "A1234BC", 10, 2, nil, gone))
	h.waitApplied(t, r, 2)
	keptID := pgtest.QueryValue[string](t, h.db, "SELECT a.id::text FROM alert a JOIN alert_code c ON c.id = a.alert_code_id WHERE c.code = 'XA'")

	book, seq1, seq2, seq3 := int64(20), int32(1), int32(2), int32(3) // the new booking's alerts
	repl := h.cmd(rules.KindReplacePrisoner, "A1234BC", 0, 0, nil, nil)
	repl.NOMISBookingID, repl.NOMISAlertSeq = nil, nil
	reason := "NEW_BOOKING"
	repl.Reason = &reason
	repl.Alerts = []rules.SnapshotAlert{
		{NOMISBookingID: &book, NOMISAlertSeq: &seq1, Position: repl.SourcePosition, State: *keep},
		{NOMISBookingID: &book, NOMISAlertSeq: &seq2, Position: repl.SourcePosition, State: *nomisState("XA", rules.DateOf(2024, 6, 1), "second XA")},
		{NOMISBookingID: &book, NOMISAlertSeq: &seq3, Position: repl.SourcePosition, State: *nomisState("HA", rules.DateOf(2024, 7, 1), "new HA")},
	}
	again := repl
	again.ID = "0190a3c4-1b2c-5d8e-9f00-0000000000ff"
	h.send(t, repl, again)
	h.waitApplied(t, r, 4)

	require.Equal(t, 3, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alert WHERE deleted_at IS NULL"))
	require.Equal(t, 2, pgtest.QueryValue[int](t, h.db,
		"SELECT count(*)::int FROM alert a JOIN alert_code c ON c.id = a.alert_code_id WHERE c.code = 'XA' AND deleted_at IS NULL"), "two alerts of one code")
	require.False(t, pgtest.QueryValue[bool](t, h.db, "SELECT deleted_at IS NOT NULL FROM alert WHERE id = $1::uuid", keptID), "the matching alert is kept")
	require.Equal(t, 1, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM audit_event WHERE alert_id = $1::uuid", keptID), "with its audit history")
	require.Equal(t, keptID, pgtest.QueryValue[string](t, h.db, "SELECT dps_alert_id::text FROM alertsync.alert_mapping WHERE nomis_booking_id = 20 AND nomis_alert_seq = 1"))
	require.Equal(t, 1, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alert WHERE deleted_at IS NOT NULL"), "the alert no longer in NOMIS is deleted")
	require.Equal(t, 3, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.alert_mapping WHERE NOT deleted AND nomis_booking_id = 20"))
	outs := h.outcomes(t, 4)
	res, _ := outcomeOf(outs[repl.ID])
	require.Equal(t, apply.Applied, res)
	res, why := outcomeOf(outs[again.ID])
	require.Equal(t, apply.Skipped, res)
	require.Equal(t, apply.ReasonUnchanged, why)
}

// TestRefusedCommandHoldsLater: a command DPS refuses (an unknown code) is
// FAILED and goes to the DLQ; later commands of the same alert are held
// (SKIPPED held, in the DLQ marked held); other alerts go on.
func TestRefusedCommandHoldsLater(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	bad := h.cmd(rules.KindUpsert, "A1234BC", 10, 1, nil, nomisState("ZZZ", march1, "unknown code"))
	later := h.cmd(rules.KindUpsert, "A1234BC", 10, 1, nomisState("ZZZ", march1, "unknown code"), nomisState("XA", march1, "fixed"))
	other := h.cmd(rules.KindUpsert, "A1234BC", 10, 2, nil, nomisState("XA", march1, "fine"))
	h.send(t, bad, later, other)
	h.waitApplied(t, r, 3)
	require.Equal(t, 1, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alert"))
	require.Equal(t, 2, pgtest.QueryValue[int](t, h.db, "SELECT held_commands FROM alertsync.dlq_holds WHERE hold_key = 'nomis:10:1'"))
	outs := h.outcomes(t, 3)
	res, reason := outcomeOf(outs[bad.ID])
	require.Equal(t, apply.Failed, res)
	require.Equal(t, "unknown_code", reason)
	res, reason = outcomeOf(outs[later.ID])
	require.Equal(t, apply.Skipped, res)
	require.Equal(t, apply.ReasonHeld, reason)
	res, _ = outcomeOf(outs[other.ID])
	require.Equal(t, apply.Applied, res)
	rd := topictest.Reader{Brokers: h.brokers, Registry: h.srcl, ReadCommitted: true}
	dlq := rd.Until(t, 2, 20*time.Second, h.cfg.Pipeline.Topics.Prefix+"alertsync.dlq")
	require.Len(t, dlq, 2)
	held := 0
	for _, e := range dlq {
		require.Equal(t, "apply-dps", e.Value["stage"])
		require.NotNil(t, e.Value["value"], "the command as consumed")
		if e.Value["held"] == true {
			held++
		}
	}
	require.Equal(t, 1, held)
	require.Equal(t, 1.0, r.metric(t, "alertsync_apply_dps_dlq_total", nil))
	require.Equal(t, 1.0, r.metric(t, "alertsync_apply_dps_held_total", nil))
}

// TestResumesFromStoredOffsets and fencing: a restarted apply resumes at
// the offsets stored in DPS (nothing applied twice even though Kafka's
// copy of the offsets is gone); an apply whose claim was taken over cannot
// commit.
func TestResumesFromStoredOffsets(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	h.send(t, h.cmd(rules.KindUpsert, "A1234BC", 10, 1, nil, nomisState("XA", march1, "one")))
	h.waitApplied(t, r, 1)
	require.NoError(t, r.halt(t))
	// Kafka's copy of the offsets is lost: only DPS's count.
	h.cfg.Apply.Group = "another-group-same-database"
	h.db.Exec(t, "UPDATE alertsync.consumer_offsets SET consumer_group = 'another-group-same-database'")
	r2 := h.start(t)
	h.send(t, h.cmd(rules.KindUpsert, "A1234BC", 10, 2, nil, nomisState("HA", march1, "two")))
	h.waitApplied(t, r2, 2)
	require.Equal(t, 2, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM audit_event"), "the first command was not applied again")

	// A zombie: its claim is taken over, its next commit is refused.
	st := &store{pool: h.db.Pool, tz: "Europe/London", loc: time.UTC, PGBookkeeping: &apply.PGBookkeeping{Pool: h.db.Pool,
		Offsets: "alertsync.consumer_offsets", Outbox: "alertsync.outcome_batches"}}
	ctx := context.Background()
	fences, err := st.Claim(ctx, "zombie-group", "t", []int32{0}, "zombie")
	require.NoError(t, err)
	_, err = st.Claim(ctx, "zombie-group", "t", []int32{0}, "successor")
	require.NoError(t, err)
	_, err = st.Apply(ctx, fences[0], nil, 5)
	require.ErrorIs(t, err, apply.ErrFenced)
	require.Equal(t, "successor", pgtest.QueryValue[string](t, h.db, "SELECT fence_owner FROM alertsync.consumer_offsets WHERE consumer_group = 'zombie-group'"))
}

// TestDatabaseRefusal: a command the database itself refuses (a
// description over DPS's 4,000 characters breaks a CHECK constraint) fails
// alone: the batch is redone with a savepoint per command, the commands
// around it are applied, it is FAILED with the SQLSTATE and in the DLQ.
func TestDatabaseRefusal(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	long := strings.Repeat("x", 4001)
	before := h.cmd(rules.KindUpsert, "A1234BC", 10, 1, nil, nomisState("XA", march1, "before"))
	bad := h.cmd(rules.KindUpsert, "A1234BC", 10, 2, nil, nomisState("XA", march1, long))
	after := h.cmd(rules.KindUpsert, "A1234BC", 10, 3, nil, nomisState("HA", march1, "after"))
	h.send(t, before, bad, after)
	h.waitApplied(t, r, 3)
	require.Equal(t, 2, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alert"))
	outs := h.outcomes(t, 3)
	res, reason := outcomeOf(outs[bad.ID])
	require.Equal(t, apply.Failed, res)
	require.Equal(t, "refused_23514", reason)
	for _, c := range []rules.Command{before, after} {
		res, _ := outcomeOf(outs[c.ID])
		require.Equal(t, apply.Applied, res)
	}
	require.Equal(t, 1, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.dlq_holds WHERE hold_key = 'nomis:10:2'"))
}

// TestReorderedIsNoop: a command that arrives after a newer one of the
// same alert (its position is older) changes nothing: SKIPPED
// stale_position, the newer state stands.
func TestReorderedIsNoop(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	first := nomisState("XA", march1, "first")
	c1 := h.cmd(rules.KindUpsert, "A1234BC", 10, 1, nil, first)
	older := h.cmd(rules.KindUpsert, "A1234BC", 10, 1, first, nomisState("XA", march1, "older"))
	newer := h.cmd(rules.KindUpsert, "A1234BC", 10, 1, first, nomisState("XA", march1, "newer"))
	h.send(t, c1, newer, older)
	h.waitApplied(t, r, 3)
	require.Equal(t, "newer", pgtest.QueryValue[string](t, h.db, "SELECT description FROM alert"))
	require.Equal(t, 2, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM audit_event"))
	outs := h.outcomes(t, 3)
	res, reason := outcomeOf(outs[older.ID])
	require.Equal(t, apply.Skipped, res)
	require.Equal(t, apply.ReasonStale, reason)
}

// TestReusedNOMISKeyIsANewAlert: NOMIS allocates ALERT_SEQ as max + 1, so
// after its alert was deleted a new alert may take the same key. The new
// alert becomes a new DPS alert (new id, its own CREATED event), the
// deleted one stays deleted, and the key's mapping moves to the new one,
// also when the command still names the old DPS id (a NOMIS-side mapping
// left behind) and whether the delete and the new create arrive in one
// batch (set path) or in two.
func TestReusedNOMISKeyIsANewAlert(t *testing.T) {
	t.Parallel()
	for _, oneBatch := range []bool{false, true} {
		t.Run(map[bool]string{false: "separate batches", true: "one batch"}[oneBatch], func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			r := h.start(t)
			first := nomisState("XA", march1, "first alert")
			create := h.cmd(rules.KindUpsert, "A1234BC", 10, 1, nil, first)
			h.send(t, create)
			h.waitApplied(t, r, 1)
			oldID := pgtest.QueryValue[string](t, h.db, "SELECT id::text FROM alert")

			del := h.cmd(rules.KindDelete, "A1234BC", 10, 1, first, nil)
			again := h.cmd(rules.KindUpsert, "A1234BC", 10, 1, nil, nomisState("HA", march1, "second alert on the same key"))
			again.DPSAlertID = &oldID
			if oneBatch {
				h.send(t, del, again)
			} else {
				h.send(t, del)
				h.waitApplied(t, r, 2)
				h.send(t, again)
			}
			h.waitApplied(t, r, 3)

			require.Equal(t, 2, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alert"))
			require.True(t, pgtest.QueryValue[bool](t, h.db, "SELECT deleted_at IS NOT NULL FROM alert WHERE id = $1::uuid", oldID), "the old alert stays deleted")
			newID := pgtest.QueryValue[string](t, h.db, "SELECT id::text FROM alert WHERE deleted_at IS NULL")
			require.NotEqual(t, oldID, newID)
			require.Equal(t, "second alert on the same key", pgtest.QueryValue[string](t, h.db, "SELECT description FROM alert WHERE id = $1::uuid", newID))
			require.Equal(t, "CREATED,DELETED", pgtest.QueryValue[string](t, h.db,
				"SELECT string_agg(action, ',' ORDER BY actioned_at, action) FROM audit_event WHERE alert_id = $1::uuid", oldID))
			require.Equal(t, "CREATED", pgtest.QueryValue[string](t, h.db,
				"SELECT string_agg(action, ',') FROM audit_event WHERE alert_id = $1::uuid", newID))
			require.Equal(t, newID, pgtest.QueryValue[string](t, h.db,
				"SELECT dps_alert_id::text FROM alertsync.alert_mapping WHERE nomis_booking_id = 10 AND nomis_alert_seq = 1 AND NOT deleted"))
			outs := h.outcomes(t, 3)
			res, reason := outcomeOf(outs[again.ID])
			require.Equal(t, apply.Applied, res)
			require.Empty(t, reason, "a create, not a conflict won")
		})
	}
}
