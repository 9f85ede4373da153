package nomis

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/rules"
)

var march1 = rules.DateOf(2024, time.March, 1)

// journal lists the offender_alerts journal rows as op:module:user.
const journalSQL = `SELECT coalesce(string_agg(operation || ':' || coalesce(module_name, '-') || ':' || user_id, ',' ORDER BY journal_id), '')
	FROM alertsync.alertsync_journal WHERE table_name = 'offender_alerts'`

// TestCreateUpdateDelete: an UPSERT of an unmapped alert inserts it on the
// prisoner's current booking at max + 1 (DPS_CREATED mapping with the DPS
// position); an UPSERT whose before-image matches updates it; a DELETE
// deletes the row and tombstones the mapping. Each write is the sync's:
// NOMIS's audit columns and the journal carry module DPS_SYNCHRONISATION
// and the command's user.
func TestCreateUpdateDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// NOMIS's own alerts: seq 1 on the current booking, 7 on an older one.
	h.asNOMISUser(t, `INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date)
		VALUES (10, 1, 'H', 'HA', 'ACTIVE', TIMESTAMP '2024-01-01 00:00:00'), (11, 7, 'X', 'XA', 'ACTIVE', TIMESTAMP '2020-01-01 00:00:00')`)
	r := h.start(t)

	id := newID(t)
	created := dpsState("XA", march1, "Risk to staff")
	gov := "Governor Smith"
	created.AuthorisedBy = &gov
	updated := modified(created, "DPSUSER2")
	desc, to := "Risk to staff and visitors", rules.DateOf(2024, time.June, 1)
	updated.Description, updated.ActiveTo, updated.Status = &desc, &to, rules.StatusInactive
	c1 := h.cmd(rules.KindUpsert, "A1234BC", id, nil, created)
	c2 := h.cmd(rules.KindUpsert, "A1234BC", id, created, updated)
	c3 := h.cmd(rules.KindDelete, "A1234BC", id, updated, nil)

	h.send(t, c1)
	h.waitApplied(t, r, 1)
	require.Equal(t, "X|XA|ACTIVE|2024-03-01 00:00:00||Risk to staff|Governor Smith|MDI|INST|DPSUSER1|2024-03-01 10:30:00|DPS_SYNCHRONISATION|DPSUSER1",
		pgtest.QueryValue[string](t, h.db, `SELECT concat_ws('|', alert_type, alert_code, alert_status, alert_date, coalesce(expiry_date::text, ''), comment_text,
			authorize_person_text, caseload_id, caseload_type, create_user_id, create_datetime, audit_module_name, audit_user_id)
			FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 2`), "inserted at max + 1 of the current booking")
	require.Equal(t, "10|2|A1234BC|DPS_CREATED|t", pgtest.QueryValue[string](t, h.db,
		`SELECT concat_ws('|', offender_book_id, alert_seq, offender_no, mapping_type, (dps_commit_pos, dps_change_pos) = ($2, $3))
		   FROM alertsync.alertsync_alert_mapping WHERE dps_alert_id = $1::uuid`, id, c1.SourcePosition.Commit, c1.SourcePosition.Change))

	h.send(t, c2)
	h.waitApplied(t, r, 2)
	require.Equal(t, "INACTIVE|2024-06-01 00:00:00|Risk to staff and visitors|DPSUSER2|t|DPSUSER2", pgtest.QueryValue[string](t, h.db,
		`SELECT concat_ws('|', alert_status, expiry_date, comment_text, modify_user_id, modify_datetime IS NOT NULL, audit_user_id)
		   FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 2`))

	h.send(t, c3)
	h.waitApplied(t, r, 3)
	require.Equal(t, 0, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 2"))
	require.Equal(t, 2, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM oms_owner.offender_alerts"), "NOMIS's own alerts stay")
	require.True(t, pgtest.QueryValue[bool](t, h.db,
		"SELECT deleted_at IS NOT NULL AND dps_change_pos = $2 FROM alertsync.alertsync_alert_mapping WHERE dps_alert_id = $1::uuid", id, c3.SourcePosition.Change),
		"the mapping is tombstoned with the delete's position")
	require.Equal(t, "I:OCDALERT:NOMISUSER,I:OCDALERT:NOMISUSER,I:DPS_SYNCHRONISATION:DPSUSER1,U:DPS_SYNCHRONISATION:DPSUSER2,D:DPS_SYNCHRONISATION:DPS_SYNCHRONISATION",
		pgtest.QueryValue[string](t, h.db, journalSQL), "the journal marks the apply's writes as the sync")

	outs := h.outcomes(t, 3)
	for _, c := range []rules.Command{c1, c2, c3} {
		requireOutcome(t, outs, c, apply.Applied, "")
		book, seq := nomisKeyOf(outs[c.ID][0])
		require.Equal(t, int64(10), book)
		require.Equal(t, int32(2), seq)
		require.Equal(t, "NOMIS", outs[c.ID][0].Value["target"])
	}
	require.NoError(t, r.halt(t))
}

// TestSequencesAreNeverReused: a new alert takes a sequence above every one
// the booking has had in the mapping, even of rows since deleted; an alert
// whose NOMIS row was deleted by a NOMIS user while DPS changed it is
// inserted again under a new sequence (DPS wins: the deletion's time is
// unknown), and so is one DPS restores after a delete.
func TestSequencesAreNeverReused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	a, b, c := newID(t), newID(t), newID(t)
	stA, stB, stC := dpsState("XA", march1, "a"), dpsState("HA", march1, "b"), dpsState("XEL", march1, "c")
	h.send(t,
		h.cmd(rules.KindUpsert, "A1234BC", a, nil, stA), // seq 1
		h.cmd(rules.KindUpsert, "A1234BC", b, nil, stB), // seq 2
		h.cmd(rules.KindDelete, "A1234BC", b, stB, nil), // seq 2 deleted; rows' max is 1 now
		h.cmd(rules.KindUpsert, "A1234BC", c, nil, stC)) // seq 3, not 2
	h.waitApplied(t, r, 4)
	seqOf := func(id string) int {
		return pgtest.QueryValue[int](t, h.db, "SELECT alert_seq::int FROM alertsync.alertsync_alert_mapping WHERE dps_alert_id = $1::uuid", id)
	}
	require.Equal(t, []int{1, 2, 3}, []int{seqOf(a), seqOf(b), seqOf(c)})

	h.asNOMISUser(t, "DELETE FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 3")
	editC := h.cmd(rules.KindUpsert, "A1234BC", c, stC, modified(stC, "DPSUSER2"))
	restoreB := h.cmd(rules.KindUpsert, "A1234BC", b, nil, stB)
	h.send(t, editC, restoreB)
	h.waitApplied(t, r, 6)
	require.Equal(t, 4, seqOf(c), "re-inserted above the old maximum")
	require.Equal(t, 5, seqOf(b), "restored above the old maximum")
	require.Equal(t, "1,4,5", pgtest.QueryValue[string](t, h.db,
		"SELECT string_agg(alert_seq::text, ',' ORDER BY alert_seq) FROM oms_owner.offender_alerts WHERE offender_book_id = 10"))
	require.Equal(t, 0, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.alertsync_alert_mapping WHERE deleted_at IS NOT NULL"))
	require.Equal(t, "DPS|t", pgtest.QueryValue[string](t, h.db,
		"SELECT concat_ws('|', winner, target_commit_time IS NULL) FROM alertsync.alertsync_conflicts WHERE dps_alert_id = $1::uuid", c))
	outs := h.outcomes(t, 6)
	requireOutcome(t, outs, editC, apply.Applied, apply.ReasonWon)
	requireOutcome(t, outs, restoreB, apply.Applied, "")
}

// TestRedeliveryIsNoop: the same commands delivered again change nothing:
// no second row, mapping or journal entry; each repeat is SKIPPED
// stale_position, under the same command id.
func TestRedeliveryIsNoop(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	c1 := h.cmd(rules.KindUpsert, "A1234BC", newID(t), nil, dpsState("XA", march1, "one"))
	c2 := h.cmd(rules.KindUpsert, "B2345CD", newID(t), nil, dpsState("HA", march1, "two"))
	h.send(t, c1, c2, c1, c2, c1)
	h.waitApplied(t, r, 5)
	require.Equal(t, 2, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM oms_owner.offender_alerts"))
	require.Equal(t, 2, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM alertsync.alertsync_alert_mapping"))
	require.Equal(t, "I:DPS_SYNCHRONISATION:DPSUSER1,I:DPS_SYNCHRONISATION:DPSUSER1", pgtest.QueryValue[string](t, h.db, journalSQL))
	outs := h.outcomes(t, 5)
	require.Len(t, outs[c1.ID], 3, "a repeat carries the same command id")
	var stale int
	for _, recs := range outs {
		for _, rec := range recs {
			if res, reason := outcomeOf(rec); res == apply.Skipped && reason == apply.ReasonStale {
				stale++
			}
		}
	}
	require.Equal(t, 3, stale)
}

// TestConflict: both sides changed the alert before either change synced
// (the command's before-image differs from the NOMIS row). The later commit
// wins, ties to DPS: a DPS change older than the NOMIS user's edit loses
// (CONFLICT, row untouched), one committed at the same instant wins
// (APPLIED conflict_won), and so does a later one; an older DPS delete
// loses too. Every decision is recorded.
func TestConflict(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	id := newID(t)
	base := dpsState("XA", march1, "base")
	h.send(t, h.cmd(rules.KindUpsert, "A1234BC", id, nil, base))
	h.waitApplied(t, r, 1)
	comment := func() string {
		return pgtest.QueryValue[string](t, h.db, "SELECT comment_text FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 1")
	}

	h.asNOMISUser(t, "UPDATE oms_owner.offender_alerts SET comment_text = 'edited in NOMIS' WHERE offender_book_id = 10")
	nomisAt := h.rowCommit(t, 10, 1)
	dpsEdit := modified(dpsState("XA", march1, "edited in DPS before NOMIS"), "DPSUSER2")
	older := h.cmd(rules.KindUpsert, "A1234BC", id, base, dpsEdit)
	older.SourceCommitTime = nomisAt.Add(-time.Second)
	h.send(t, older)
	h.waitApplied(t, r, 2)
	require.Equal(t, "edited in NOMIS", comment(), "the later NOMIS edit stands")

	h.asNOMISUser(t, "UPDATE oms_owner.offender_alerts SET comment_text = 'edited in NOMIS again' WHERE offender_book_id = 10")
	tieAt := h.rowCommit(t, 10, 1)
	tie := h.cmd(rules.KindUpsert, "A1234BC", id, dpsEdit, modified(dpsState("XA", march1, "edited in DPS at the same instant"), "DPSUSER2"))
	// A command carries its commit time in milliseconds (source.ts_ms);
	// the row's has microseconds: the same millisecond is a tie.
	tie.SourceCommitTime = tieAt.Truncate(time.Millisecond)
	h.send(t, tie)
	h.waitApplied(t, r, 3)
	require.Equal(t, "edited in DPS at the same instant", comment(), "a tie within the millisecond goes to DPS")

	h.asNOMISUser(t, "UPDATE oms_owner.offender_alerts SET comment_text = 'third NOMIS edit' WHERE offender_book_id = 10")
	later := h.cmd(rules.KindUpsert, "A1234BC", id, dpsEdit, modified(dpsState("XA", march1, "edited in DPS later"), "DPSUSER3"))
	later.SourceCommitTime = h.rowCommit(t, 10, 1).Add(time.Second)
	h.send(t, later)
	h.waitApplied(t, r, 4)
	require.Equal(t, "edited in DPS later", comment(), "the later DPS edit wins")

	h.asNOMISUser(t, "UPDATE oms_owner.offender_alerts SET comment_text = 'fourth NOMIS edit' WHERE offender_book_id = 10")
	del := h.cmd(rules.KindDelete, "A1234BC", id, later.After, nil)
	del.SourceCommitTime = h.rowCommit(t, 10, 1).Add(-time.Millisecond)
	h.send(t, del)
	h.waitApplied(t, r, 5)
	require.Equal(t, "fourth NOMIS edit", comment(), "an older DPS delete loses")
	require.True(t, pgtest.QueryValue[bool](t, h.db, "SELECT deleted_at IS NULL FROM alertsync.alertsync_alert_mapping WHERE dps_alert_id = $1::uuid", id))

	outs := h.outcomes(t, 5)
	requireOutcome(t, outs, older, apply.Conflict, apply.ReasonLost)
	requireOutcome(t, outs, tie, apply.Applied, apply.ReasonWon)
	requireOutcome(t, outs, later, apply.Applied, apply.ReasonWon)
	requireOutcome(t, outs, del, apply.Conflict, apply.ReasonLost)
	require.Equal(t, "NOMIS,DPS,DPS,NOMIS", pgtest.QueryValue[string](t, h.db, "SELECT string_agg(winner, ',' ORDER BY id) FROM alertsync.alertsync_conflicts"))
	require.True(t, pgtest.QueryValue[bool](t, h.db,
		"SELECT date_trunc('milliseconds', source_commit_time) = date_trunc('milliseconds', target_commit_time) FROM alertsync.alertsync_conflicts WHERE command_id = $1", tie.ID),
		"the tie was within one millisecond")
	require.Equal(t, "I:DPS_SYNCHRONISATION:DPSUSER1,U:OCDALERT:NOMISUSER,U:OCDALERT:NOMISUSER,U:DPS_SYNCHRONISATION:DPSUSER2,"+
		"U:OCDALERT:NOMISUSER,U:DPS_SYNCHRONISATION:DPSUSER3,U:OCDALERT:NOMISUSER",
		pgtest.QueryValue[string](t, h.db, journalSQL), "lost commands wrote nothing")
}

// TestOutcomes: one command each for the outcomes that need no conflict.
func TestOutcomes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	known, lapsing := newID(t), newID(t)
	st := dpsState("XA", march1, "known")
	// An alert that ended on 1 April 2024: ACTIVE when it reached NOMIS,
	// INACTIVE in DPS's before-image of a later edit (the status of a DPS
	// alert is computed as of the change's date).
	past := rules.DateOf(2024, time.April, 1)
	ending := dpsState("HA", march1, "ending")
	ending.ActiveTo = &past
	lapsed := *ending
	lapsed.Status = rules.StatusInactive
	lapsedEdit := modified(&lapsed, "DPSUSER2")
	edited := "edited after it lapsed"
	lapsedEdit.Description = &edited
	nomisSeq := int32(1)
	nomisBook := int64(20)
	long := strings.Repeat("x", 41)
	tooLong := dpsState("XA", march1, "authorised by too long")
	tooLong.AuthorisedBy = &long
	replace := h.cmd(rules.KindReplacePrisoner, "A1234BC", newID(t), nil, nil)
	replace.DPSAlertID = nil
	h.send(t, h.cmd(rules.KindUpsert, "A1234BC", known, nil, st), h.cmd(rules.KindUpsert, "A1234BC", lapsing, nil, ending))
	h.asNOMISUser(t, `INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text)
		VALUES (20, 1, 'H', 'HA', 'ACTIVE', TIMESTAMP '2024-03-01 00:00:00', 'made in NOMIS')`)
	byNOMISKey := h.cmd(rules.KindUpsert, "B2345CD", newID(t), dpsState("HA", march1, "made in NOMIS"), dpsState("HA", march1, "edited in DPS"))
	byNOMISKey.NOMISBookingID, byNOMISKey.NOMISAlertSeq = &nomisBook, &nomisSeq

	tests := []struct {
		name   string
		cmd    rules.Command
		result apply.Result
		reason string
	}{
		{"unchanged", h.cmd(rules.KindUpsert, "A1234BC", known, st, st), apply.Skipped, apply.ReasonUnchanged},
		{"lapsed in DPS, still ACTIVE in NOMIS: no conflict", h.cmd(rules.KindUpsert, "A1234BC", lapsing, &lapsed, lapsedEdit), apply.Applied, ""},
		{"delete of an alert NOMIS never had", h.cmd(rules.KindDelete, "A1234BC", newID(t), st, nil), apply.Skipped, apply.ReasonUnknown},
		{"unknown code", h.cmd(rules.KindUpsert, "A1234BC", newID(t), nil, dpsState("ZZZ", march1, "x")), apply.Failed, ReasonUnknownCode},
		{"value too long for NOMIS", h.cmd(rules.KindUpsert, "A1234BC", newID(t), nil, tooLong), apply.Failed, "refused_22001"},
		{"prisoner without a current booking", h.cmd(rules.KindUpsert, "C3456DE", newID(t), nil, st), apply.Failed, ReasonNoCurrentBooking},
		{"prisoner unknown to NOMIS", h.cmd(rules.KindUpsert, "Z9999ZZ", newID(t), nil, st), apply.Failed, ReasonNoCurrentBooking},
		{"replace is not for NOMIS", replace, apply.Failed, "unsupported_kind"},
		{"unmapped alert named by its NOMIS key", byNOMISKey, apply.Applied, ""},
	}
	for _, tt := range tests {
		h.send(t, tt.cmd)
	}
	h.waitApplied(t, r, 2+len(tests))
	outs := h.outcomes(t, 2+len(tests))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireOutcome(t, outs, tt.cmd, tt.result, tt.reason)
		})
	}
	require.Equal(t, "INACTIVE|2024-04-01 00:00:00|edited after it lapsed", pgtest.QueryValue[string](t, h.db,
		"SELECT concat_ws('|', alert_status, expiry_date, comment_text) FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 2"))
	require.Equal(t, "edited in DPS|NOMIS_CREATED", pgtest.QueryValue[string](t, h.db,
		`SELECT concat_ws('|', a.comment_text, m.mapping_type) FROM oms_owner.offender_alerts a
		   JOIN alertsync.alertsync_alert_mapping m USING (offender_book_id, alert_seq) WHERE a.offender_book_id = 20`))
	require.Equal(t, 3, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM oms_owner.offender_alerts"), "refused commands wrote nothing")
	require.Equal(t, 5.0, r.metric(t, "alertsync_apply_nomis_dlq_total", nil))
	// The value NOMIS refuses fails the set path's multi-row insert: that
	// batch is redone on the statement path, where that command alone fails.
	require.Equal(t, 1.0, r.metric(t, "alertsync_apply_nomis_statement_path_batches_total", map[string]string{"why": "refused"}))
}

// TestNoCurrentBookingHoldsLater: a prisoner without a current booking
// cannot receive: the command is FAILED no_current_booking and goes to the
// DLQ; later commands of the same alert are held (SKIPPED held, in the DLQ
// marked held); other alerts go on.
func TestNoCurrentBookingHoldsLater(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	id := newID(t)
	st := dpsState("XA", march1, "for a released prisoner")
	bad := h.cmd(rules.KindUpsert, "C3456DE", id, nil, st)
	later := h.cmd(rules.KindUpsert, "C3456DE", id, st, modified(st, "DPSUSER2"))
	other := h.cmd(rules.KindUpsert, "A1234BC", newID(t), nil, dpsState("XA", march1, "fine"))
	h.send(t, bad, later, other)
	h.waitApplied(t, r, 3)
	require.Equal(t, 1, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM oms_owner.offender_alerts"))
	require.Equal(t, "2|no_current_booking|"+bad.ID, pgtest.QueryValue[string](t, h.db,
		"SELECT concat_ws('|', held_commands, reason, first_command_id) FROM alertsync.alertsync_dlq_holds WHERE hold_key = $1", "dps:"+id))
	outs := h.outcomes(t, 3)
	requireOutcome(t, outs, bad, apply.Failed, ReasonNoCurrentBooking)
	requireOutcome(t, outs, later, apply.Skipped, apply.ReasonHeld)
	requireOutcome(t, outs, other, apply.Applied, "")
	rd := topictest.Reader{Brokers: h.brokers, Registry: h.srcl, ReadCommitted: true}
	dlq := rd.Until(t, 2, 20*time.Second, h.cfg.Pipeline.Topics.Prefix+"alertsync.dlq")
	require.Len(t, dlq, 2)
	held := 0
	for _, e := range dlq {
		require.Equal(t, "apply-nomis", e.Value["stage"])
		require.NotNil(t, e.Value["value"], "the command as consumed")
		if e.Value["held"] == true {
			held++
		}
	}
	require.Equal(t, 1, held)
	require.Equal(t, 1.0, r.metric(t, "alertsync_apply_nomis_dlq_total", nil))
	require.Equal(t, 1.0, r.metric(t, "alertsync_apply_nomis_held_total", nil))
	// The refusal is decided on the set path: no batch redone.
	require.Positive(t, r.metric(t, "alertsync_apply_nomis_committed_batches_total", map[string]string{"path": "set"}))
	require.Zero(t, r.metric(t, "alertsync_apply_nomis_statement_path_batches_total", map[string]string{"why": "case"}))
	require.Zero(t, r.metric(t, "alertsync_apply_nomis_statement_path_batches_total", map[string]string{"why": "refused"}))
}

// TestConcurrentNOMISUsers: NOMIS users insert alerts on the booking the
// apply inserts on, at the same time, allocating ALERT_SEQ as max + 1: some
// lock the booking row first (as the apply does), one does not; both try
// again when their sequence was taken. No command fails, no sequence is taken
// twice or skipped, every row is there.
func TestConcurrentNOMISUsers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cfg.Apply.BatchCommands = 4
	const n = 60
	cmds := make([]rules.Command, n)
	for i := range cmds {
		cmds[i] = h.cmd(rules.KindUpsert, "A1234BC", newID(t), nil, dpsState("XA", march1, "from DPS"))
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		wg         sync.WaitGroup
		inserted   atomic.Int64
		collisions atomic.Int64
		errs       = make(chan error, 3)
	)
	const insertNext = `INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text)
		SELECT 10, coalesce(max(alert_seq), 0) + 1, 'H', 'HA', 'ACTIVE', TIMESTAMP '2024-03-01 00:00:00', 'from NOMIS'
		  FROM oms_owner.offender_alerts WHERE offender_book_id = 10`
	user := func(lock bool) error {
		for ctx.Err() == nil {
			tx, err := h.db.Pool.Begin(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			_, err = tx.Exec(ctx, "SELECT set_config('nomis.audit_module_name', 'OCDALERT', true)")
			if err == nil && lock {
				_, err = tx.Exec(ctx, "SELECT 1 FROM oms_owner.offender_bookings WHERE offender_book_id = 10 FOR UPDATE")
			}
			if err == nil {
				_, err = tx.Exec(ctx, insertNext)
			}
			if err == nil {
				// Not ctx: a commit cut short by the cancel at the end may
				// still have committed, and the count would miss its row.
				err = tx.Commit(context.Background())
			}
			_ = tx.Rollback(context.Background())
			var pe *pgconn.PgError
			switch {
			case err == nil:
				inserted.Add(1)
			case ctx.Err() != nil:
				return nil
			case errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "40P01"):
				// Taken meanwhile by a writer that did not lock the
				// booking, or a deadlock between such a writer and one
				// that did (its foreign-key check waits for the locker,
				// the locker's insert for it): try again, as a NOMIS user
				// would.
				collisions.Add(1)
			default:
				return err
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	}
	for _, lock := range []bool{true, true, false} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := user(lock); err != nil {
				errs <- err
			}
		}()
	}
	r := h.start(t)
	h.send(t, cmds...)
	h.waitApplied(t, r, n)
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "a NOMIS user")
	}
	require.Positive(t, inserted.Load(), "NOMIS users inserted alongside the apply")
	t.Logf("NOMIS users inserted %d alerts alongside the apply's %d (%d collisions retried)", inserted.Load(), n, collisions.Load())

	total := int(inserted.Load()) + n
	require.Equal(t, total, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM oms_owner.offender_alerts WHERE offender_book_id = 10"))
	require.Equal(t, total, pgtest.QueryValue[int](t, h.db, "SELECT max(alert_seq)::int FROM oms_owner.offender_alerts WHERE offender_book_id = 10"),
		"sequences 1..n, none skipped")
	require.Equal(t, n, pgtest.QueryValue[int](t, h.db,
		`SELECT count(*)::int FROM alertsync.alertsync_alert_mapping m JOIN oms_owner.offender_alerts a USING (offender_book_id, alert_seq)
		  WHERE a.audit_module_name = 'DPS_SYNCHRONISATION' AND a.comment_text = 'from DPS'`), "every mapping names the apply's own row")
	outs := h.outcomes(t, n)
	for _, c := range cmds {
		requireOutcome(t, outs, c, apply.Applied, "")
	}
}

// TestResumesFromStoredOffsets and fencing: a restarted apply resumes at
// the offsets stored in NOMIS (nothing applied twice even though Kafka's
// copy of the offsets is gone); an apply whose claim was taken over cannot
// commit.
func TestResumesFromStoredOffsets(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	h.send(t, h.cmd(rules.KindUpsert, "A1234BC", newID(t), nil, dpsState("XA", march1, "one")))
	h.waitApplied(t, r, 1)
	require.NoError(t, r.halt(t))
	// Kafka's copy of the offsets is lost: only NOMIS's count.
	h.cfg.Apply.Group = "another-group-same-database"
	h.db.Exec(t, "UPDATE alertsync.alertsync_consumer_offsets SET consumer_group = 'another-group-same-database'")
	r2 := h.start(t)
	h.send(t, h.cmd(rules.KindUpsert, "A1234BC", newID(t), nil, dpsState("HA", march1, "two")))
	h.waitApplied(t, r2, 2)
	require.Equal(t, 2, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM oms_owner.offender_alerts"), "the first command was not applied again")
	require.Len(t, h.outcomes(t, 2), 2, "one outcome per command, none repeated by the restart")

	// A zombie: its claim is taken over, its next commit is refused and
	// writes nothing.
	st := newStore(newStandin(h.db.Pool, "Europe/London"))
	ctx := context.Background()
	fences, err := st.Claim(ctx, "zombie-group", "t", []int32{0}, "zombie")
	require.NoError(t, err)
	require.Equal(t, int64(-1), fences[0].Next, "nothing stored yet")
	_, err = st.Claim(ctx, "zombie-group", "t", []int32{0}, "successor")
	require.NoError(t, err)
	zombie := h.cmd(rules.KindUpsert, "A1234BC", newID(t), nil, dpsState("XA", march1, "zombie"))
	_, err = st.Apply(ctx, fences[0], []apply.Cmd{{Command: zombie}}, 5)
	require.ErrorIs(t, err, apply.ErrFenced)
	require.Equal(t, "successor", pgtest.QueryValue[string](t, h.db, "SELECT fence_owner FROM alertsync.alertsync_consumer_offsets WHERE consumer_group = 'zombie-group'"))
	require.Equal(t, 2, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM oms_owner.offender_alerts"), "the zombie wrote nothing")
}

func TestNewDialects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dialect string
		wantErr string
	}{
		{"postgres", ""},
		{"oracle", ""},
		{"mysql", "nomis.dialect"},
	}
	for _, tt := range tests {
		t.Run(tt.dialect, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			cfg.NOMIS.Dialect = tt.dialect
			cfg.Apply.Timezone = "Europe/London"
			_, err := New(cfg, Deps{})
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

// TestMatches checks the comparison of a NOMIS row with a state.
func TestMatches(t *testing.T) {
	t.Parallel()
	past := rules.DateOf(2024, time.April, 1)
	desc, empty := "text", ""
	base := row{code: "XA", status: "ACTIVE", from: march1, comment: &desc}
	st := func(edit func(*rules.AlertState)) *rules.AlertState {
		s := &rules.AlertState{Code: "XA", ActiveFrom: march1, Status: rules.StatusActive, Description: &desc}
		if edit != nil {
			edit(s)
		}
		return s
	}
	tests := []struct {
		name   string
		row    row
		st     *rules.AlertState
		lapsed bool
		want   bool
	}{
		{"equal", base, st(nil), false, true},
		{"other code", base, st(func(s *rules.AlertState) { s.Code = "HA" }), false, false},
		{"other start", base, st(func(s *rules.AlertState) { s.ActiveFrom = past }), false, false},
		{"end date added", base, st(func(s *rules.AlertState) { s.ActiveTo = &past }), false, false},
		{"other comment", base, st(func(s *rules.AlertState) { s.Description = nil }), false, false},
		{"empty comment is NULL", row{code: "XA", status: "ACTIVE", from: march1, comment: &empty}, st(func(s *rules.AlertState) { s.Description = nil }), false, true},
		{"authorised by added", base, st(func(s *rules.AlertState) { s.AuthorisedBy = &desc }), false, false},
		{"other status", base, st(func(s *rules.AlertState) { s.Status = rules.StatusInactive }), true, false},
		{"lapsed by date, before-image", row{code: "XA", status: "ACTIVE", from: march1, to: &past, comment: &desc},
			st(func(s *rules.AlertState) { s.ActiveTo, s.Status = &past, rules.StatusInactive }), true, true},
		{"lapsed by date, after-image", row{code: "XA", status: "ACTIVE", from: march1, to: &past, comment: &desc},
			st(func(s *rules.AlertState) { s.ActiveTo, s.Status = &past, rules.StatusInactive }), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, matches(&tt.row, tt.st, tt.lapsed))
		})
	}
}

// TestSequenceTakenByUnlockedWriter: a NOMIS user who inserts without
// locking the booking holds the sequence the apply chose, uncommitted; the
// apply waits for that user's commit and then takes the next sequence
// instead of failing (on the set path: the batch redone on the statement
// path, counted).
func TestSequenceTakenByUnlockedWriter(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	tx, err := h.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_type, alert_code, alert_status)
		VALUES (10, 1, 'H', 'HA', 'ACTIVE')`)
	require.NoError(t, err)

	r := h.start(t)
	c := h.cmd(rules.KindUpsert, "A1234BC", newID(t), nil, dpsState("XA", march1, "waits"))
	h.send(t, c)
	require.Eventually(t, func() bool {
		// This test's database only: the cluster is shared with tests running
		// in parallel, whose applies may be waiting too.
		return pgtest.QueryValue[bool](t, h.db, `SELECT EXISTS (SELECT FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'alertsync apply nomis'
			  AND wait_event_type = 'Lock' AND wait_event = 'transactionid')`)
	}, 30*time.Second, 20*time.Millisecond, "the apply waits for the NOMIS user's transaction")
	require.Zero(t, h.applied(t))
	require.NoError(t, tx.Commit(ctx))

	h.waitApplied(t, r, 1)
	require.Equal(t, 2, pgtest.QueryValue[int](t, h.db,
		"SELECT alert_seq::int FROM alertsync.alertsync_alert_mapping WHERE dps_alert_id = $1::uuid", *c.DPSAlertID))
	requireOutcome(t, h.outcomes(t, 1), c, apply.Applied, "")
	// The set path chose sequence 1 too, found it taken and left the batch
	// to the statement path, which took the next.
	require.Equal(t, 1.0, r.metric(t, "alertsync_apply_nomis_statement_path_batches_total", map[string]string{"why": "case"}))
	require.Equal(t, 1.0, r.metric(t, "alertsync_apply_nomis_committed_batches_total", map[string]string{"path": "statement"}))
	require.Zero(t, r.metric(t, "alertsync_apply_nomis_committed_batches_total", map[string]string{"path": "set"}))
}

// TestNOMISCreatedAlertFoundThroughDPSMapping: an alert created in NOMIS
// reached DPS through apply dps, which mapped it in the DPS database only. A
// DPS change of it carries just the DPS id: apply nomis finds the NOMIS row
// through the DPS-side mapping (read-only) and updates it, instead of
// creating a second NOMIS alert, and maps it on its own side.
func TestNOMISCreatedAlertFoundThroughDPSMapping(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.asNOMISUser(t, `INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text,
			create_user_id, create_datetime)
		VALUES (10, 4, 'X', 'XA', 'ACTIVE', TIMESTAMP '2024-03-01 00:00:00', 'Risk to staff', 'NOMISUSER', TIMESTAMP '2024-03-01 10:30:00')`)
	id := newID(t)
	h.dps.Exec(t, `INSERT INTO alertsync.alert_mapping (dps_alert_id, nomis_booking_id, nomis_alert_seq, offender_no, mapping_type)
		VALUES ($1::uuid, 10, 4, 'A1234BC', 'NOMIS_CREATED')`, id)
	r := h.start(t)
	before := dpsState("XA", march1, "Risk to staff")
	after := modified(before, "DPSUSER2")
	desc := "Risk to staff and visitors"
	after.Description = &desc
	h.send(t, h.cmd(rules.KindUpsert, "A1234BC", id, before, after))
	h.waitApplied(t, r, 1)
	require.Equal(t, 1, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM oms_owner.offender_alerts WHERE alert_code = 'XA'"), "no second NOMIS alert")
	require.Equal(t, desc, pgtest.QueryValue[string](t, h.db, "SELECT comment_text FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 4"))
	require.Equal(t, "10|4", pgtest.QueryValue[string](t, h.db,
		"SELECT concat_ws('|', offender_book_id, alert_seq) FROM alertsync.alertsync_alert_mapping WHERE dps_alert_id = $1::uuid", id))
}

// TestDPSSideKeyWinsAfterReplace: a prisoner replace in DPS (the resync
// after a new booking, a moved booking or a merge) re-points the DPS-side
// mapping to the alert's row on the current booking, while this side's
// mapping still names the old row, or gives the key to the replaced DPS
// alert. A DPS change then goes to the row the DPS-side mapping names, and
// this side's mapping follows: no change to the old row, no second row.
func TestDPSSideKeyWinsAfterReplace(t *testing.T) {
	t.Parallel()
	insert := func(t *testing.T, h *harness, seq int, text string) {
		t.Helper()
		h.asNOMISUser(t, `INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text,
				create_user_id, create_datetime)
			VALUES (10, $1, 'X', 'XA', 'ACTIVE', TIMESTAMP '2024-03-01 00:00:00', $2, 'NOMISUSER', TIMESTAMP '2024-03-01 10:30:00')`, seq, text)
	}
	mapHere := func(t *testing.T, h *harness, id string, seq int) {
		t.Helper()
		h.db.Exec(t, `INSERT INTO alertsync.alertsync_alert_mapping (dps_alert_id, offender_book_id, alert_seq, offender_no, mapping_type)
			VALUES ($1::uuid, 10, $2, 'A1234BC', 'DPS_CREATED')`, id, seq)
	}
	mapInDPS := func(t *testing.T, h *harness, id string, seq int) {
		t.Helper()
		h.dps.Exec(t, `INSERT INTO alertsync.alert_mapping (dps_alert_id, nomis_booking_id, nomis_alert_seq, offender_no, mapping_type)
			VALUES ($1::uuid, 10, $2, 'A1234BC', 'NOMIS_CREATED')`, id, seq)
	}
	comment := func(t *testing.T, h *harness, seq int) string {
		t.Helper()
		return pgtest.QueryValue[string](t, h.db, "SELECT comment_text FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = $1", seq)
	}
	before := dpsState("XA", march1, "Risk to staff")
	after := modified(dpsState("XA", march1, "Risk to staff and visitors"), "DPSUSER2")

	t.Run("the alert's copy on a new booking", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		id := newID(t)
		insert(t, h, 1, "Risk to staff") // the row this apply created, now on an old booking
		insert(t, h, 2, "Risk to staff") // NOMIS's copy on the current booking
		mapHere(t, h, id, 1)
		mapInDPS(t, h, id, 2)
		r := h.start(t)
		h.send(t, h.cmd(rules.KindUpsert, "A1234BC", id, before, after))
		h.waitApplied(t, r, 1)
		require.Equal(t, "Risk to staff and visitors", comment(t, h, 2), "the copy the DPS-side mapping names is updated")
		require.Equal(t, "Risk to staff", comment(t, h, 1), "the old booking's row is left alone")
		require.Equal(t, "10|2", pgtest.QueryValue[string](t, h.db,
			"SELECT concat_ws('|', offender_book_id, alert_seq) FROM alertsync.alertsync_alert_mapping WHERE dps_alert_id = $1::uuid", id))
	})
	t.Run("a merge gave the key to a new DPS alert", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		replaced, id := newID(t), newID(t)
		insert(t, h, 3, "Risk to staff")
		mapHere(t, h, replaced, 3) // the removed prison number's alert
		mapInDPS(t, h, id, 3)      // the retained number's alert, created by the replace
		r := h.start(t)
		h.send(t, h.cmd(rules.KindUpsert, "A1234BC", id, before, after))
		h.waitApplied(t, r, 1)
		require.Equal(t, 1, pgtest.QueryValue[int](t, h.db, "SELECT count(*)::int FROM oms_owner.offender_alerts"), "no second NOMIS row")
		require.Equal(t, "Risk to staff and visitors", comment(t, h, 3))
		require.Equal(t, id, pgtest.QueryValue[string](t, h.db,
			"SELECT dps_alert_id::text FROM alertsync.alertsync_alert_mapping WHERE offender_book_id = 10 AND alert_seq = 3"))
	})
}

// TestNotCreatedWhenDeletedInDPS: a create of an alert that DPS has deleted
// since (here, as a prisoner resync of the sync does it: a soft delete that
// sends no command to NOMIS) is SKIPPED deleted_in_dps and writes nothing to
// NOMIS, as when an old command comes back from `dlq redrive`; an alert DPS
// still has is created.
func TestNotCreatedWhenDeletedInDPS(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.dps.Exec(t, deploy.DPSSeedSQL())
	r := h.start(t)
	dpsAlert := func(id string, deleted bool) {
		h.dps.Exec(t, `INSERT INTO public.alert (id, alert_code_id, prison_number, description, active_from, created_at, deleted_at, version)
			SELECT $1::uuid, c.id, 'A1234BC', 'in DPS', DATE '2024-03-01', TIMESTAMP '2024-03-01 10:30:00',
			       CASE WHEN $2 THEN TIMESTAMP '2024-03-02 09:00:00' END, 0
			  FROM public.alert_code c WHERE c.code = 'XA'`, id, deleted)
	}
	gone, kept := newID(t), newID(t)
	dpsAlert(gone, true)
	dpsAlert(kept, false)
	c1 := h.cmd(rules.KindUpsert, "A1234BC", gone, nil, dpsState("XA", march1, "deleted in DPS since"))
	c2 := h.cmd(rules.KindUpsert, "A1234BC", kept, nil, dpsState("XA", march1, "still in DPS"))
	h.send(t, c1, c2)
	h.waitApplied(t, r, 2)

	out := h.outcomes(t, 2)
	require.Equal(t, "SKIPPED", out[c1.ID][0].Value["outcome"], "%+v", out[c1.ID][0].Value)
	require.Equal(t, map[string]any{"string": ReasonDeletedInDPS}, out[c1.ID][0].Value["reason"])
	require.Equal(t, "APPLIED", out[c2.ID][0].Value["outcome"], "%+v", out[c2.ID][0].Value)
	require.Equal(t, "still in DPS", pgtest.QueryValue[string](t, h.db,
		"SELECT string_agg(comment_text, ',') FROM oms_owner.offender_alerts WHERE offender_book_id = 10"), "only the alert DPS still has")
	require.Zero(t, pgtest.QueryValue[int](t, h.db,
		"SELECT count(*)::int FROM alertsync.alertsync_alert_mapping WHERE dps_alert_id = $1::uuid", gone))
}

// TestKafkaOffsetsCopiedForLag: the applied offsets are copied to the
// consumer group in Kafka (for lag monitoring only) at once after the
// first batch, then at most once per apply.kafka_commit_interval, and a
// last time when the apply stops.
func TestKafkaOffsetsCopiedForLag(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cfg.Apply.Group = kafkatest.Topic(t, "lag")
	h.cfg.Apply.KafkaCommitInterval = time.Hour
	topic := h.cfg.Pipeline.Topics.Prefix + schemas.TopicCommandsNOMIS
	adm := kadm.NewClient(kafkatest.Client(t, h.brokers))
	inKafka := func() int64 {
		t.Helper()
		offsets, err := adm.FetchOffsets(context.Background(), h.cfg.Apply.Group)
		require.NoError(t, err)
		var n int64
		offsets.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic {
				n += o.At
			}
		})
		return n
	}
	r := h.start(t)
	h.send(t, h.cmd(rules.KindUpsert, "A1234BC", newID(t), nil, dpsState("XA", march1, "first")))
	h.waitApplied(t, r, 1)
	require.Eventually(t, func() bool { return inKafka() == 1 }, 10*time.Second, 20*time.Millisecond, "the first batch's offset copied at once")
	h.send(t, h.cmd(rules.KindUpsert, "A1234BC", newID(t), nil, dpsState("XA", march1, "second")),
		h.cmd(rules.KindUpsert, "B2345CD", newID(t), nil, dpsState("XA", march1, "third")))
	h.waitApplied(t, r, 3)
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, int64(1), inKafka(), "not copied again within the interval")
	require.NoError(t, r.halt(t))
	require.Equal(t, int64(3), inKafka(), "copied when the apply stops")
}
