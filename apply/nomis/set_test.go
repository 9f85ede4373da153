package nomis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/transform/rules"
)

// pathWorld is one NOMIS stand-in (and its DPS database) with a store
// applying batches directly, on the set path or command by command.
type pathWorld struct {
	h      *harness
	st     *store
	fence  apply.Fence
	next   int64
	set    int // batches committed on the set path
	stmt   int // and on the statement path
	redone []error
	outs   []apply.Outcome
}

func newPathWorld(t *testing.T, set bool, setup func(h *harness)) *pathWorld {
	t.Helper()
	w := &pathWorld{h: newHarness(t)}
	w.h.dps.Exec(t, deploy.DPSSeedSQL())
	setup(w.h)
	d := newStandin(w.h.db.Pool, w.h.cfg.Apply.Timezone)
	w.st = newStore(d)
	w.st.setPath = set
	w.st.dpsViews = func(ctx context.Context, ids []string) (map[string]dpsView, error) {
		return readDPSViews(ctx, w.h.dps.Pool, ids)
	}
	w.st.onPath = func(set bool) {
		if set {
			w.set++
		} else {
			w.stmt++
		}
	}
	w.st.onRedo = func(err error) { w.redone = append(w.redone, err) }
	fences, err := d.Claim(context.Background(), "equivalence", "commands", []int32{0}, "test")
	require.NoError(t, err)
	w.fence = fences[0]
	return w
}

// apply applies one batch.
func (w *pathWorld) apply(t *testing.T, cmds []rules.Command) {
	t.Helper()
	batch := make([]apply.Cmd, len(cmds))
	for i := range cmds {
		batch[i] = apply.Cmd{Command: cmds[i], Record: &kgo.Record{Topic: "commands", Offset: w.next + int64(i)}}
	}
	w.next += int64(len(cmds))
	outs, err := w.st.Apply(context.Background(), w.fence, batch, w.next)
	require.NoError(t, err)
	w.outs = append(w.outs, outs...)
}

// dump is what both paths must leave the same: NOMIS's rows as a NOMIS
// screen shows them (no times of writing), the mapping, holds, conflicts
// and the outbox rows.
func (w *pathWorld) dump(t *testing.T) map[string][]string {
	t.Helper()
	q := map[string]string{
		"alerts": `SELECT concat_ws('|', offender_book_id, alert_seq, root_offender_id, alert_type, alert_code, alert_status, alert_date, expiry_date,
				comment_text, authorize_person_text, caseload_id, caseload_type, verified_flag, create_date, create_user_id,
				modify_user_id, modify_datetime IS NULL, audit_user_id, audit_module_name)
			FROM oms_owner.offender_alerts ORDER BY offender_book_id, alert_seq`,
		"mapping": `SELECT concat_ws('|', dps_alert_id, offender_book_id, alert_seq, offender_no, mapping_type, dps_commit_pos, dps_change_pos,
				deleted_at IS NULL) FROM alertsync.alertsync_alert_mapping ORDER BY dps_alert_id`,
		"holds": `SELECT concat_ws('|', hold_key, prison_number, first_command_id, reason, held_commands)
			FROM alertsync.alertsync_dlq_holds ORDER BY hold_key`,
		"conflicts": `SELECT concat_ws('|', command_id, dps_alert_id, offender_book_id, alert_seq, winner, source_commit_time,
				target_commit_time IS NULL) FROM alertsync.alertsync_conflicts ORDER BY id`,
	}
	out := map[string][]string{}
	for name, sql := range q {
		rows, err := w.h.db.Pool.Query(context.Background(), sql)
		require.NoError(t, err)
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			out[name] = append(out[name], s)
		}
		require.NoError(t, rows.Err())
	}
	batches, err := w.st.Pending(context.Background(), 1_000_000)
	require.NoError(t, err)
	for _, b := range batches {
		for _, r := range b.Rows {
			s := fmt.Sprintf("%s %s %s %s", r.CommandID, r.Result, str(r.Reason), str(r.DPSAlertID))
			if r.NOMISBookingID != nil && r.NOMISAlertSeq != nil {
				s += fmt.Sprintf(" %d/%d", *r.NOMISBookingID, *r.NOMISAlertSeq)
			}
			if d := r.DLQ; d != nil {
				s += fmt.Sprintf(" dlq %d %s %q %s %s", d.Offset, d.ErrorKind, d.Error, str(d.HeldBehind), str(d.AlertKey))
			}
			out["outbox"] = append(out["outbox"], s)
		}
	}
	for _, o := range w.outs {
		out["outcomes"] = append(out["outcomes"], fmt.Sprintf("%s %s %s %s", o.CommandID, o.Result, o.Reason, o.DPSAlertID))
	}
	return out
}

func str(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

// TestSetPathMatchesStatementPath: a random workload of DPS commands —
// creates (on prisoners with and without a current booking, with codes
// NOMIS has and one it lacks), updates and deletes with matching and stale
// before-images winning and losing conflicts, repeats of earlier commands,
// several changes of one alert in one batch, changes of alerts that came
// from NOMIS (found through the DPS-side mapping or the key the command
// carries), of an alert whose DPS-side mapping moved to another row (a
// prisoner replace), of alerts DPS has deleted — with NOMIS users editing
// between batches, applied in the same batches on the set path to one NOMIS
// stand-in and command by command to another, leaves both with the same
// NOMIS rows (every column but the times of writing), mapping, holds,
// conflicts, outcomes and outbox rows; most batches take the set path, and
// the cases it leaves to the statement path are redone there.
func TestSetPathMatchesStatementPath(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			equivalence(t, seed)
		})
	}
}

func equivalence(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99)) //nolint:gosec // a test workload
	nomisIDs := []string{"0190a3c4-0000-7000-8000-00000000000a", "0190a3c4-0000-7000-8000-00000000000b",
		"0190a3c4-0000-7000-8000-00000000000c", "0190a3c4-0000-7000-8000-00000000000d"}
	replaced := "0190a3c4-0000-7000-8000-00000000000e" // the alert a replace took key 10/3 from
	gone := []string{"0190a3c4-0000-7000-8000-0000000000f1", "0190a3c4-0000-7000-8000-0000000000f2"}
	setup := func(h *harness) {
		for seq := 1; seq <= 4; seq++ {
			h.asNOMISUser(t, `INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date,
					comment_text, create_user_id, create_datetime)
				VALUES (10, $1, 'X', 'XA', 'ACTIVE', TIMESTAMP '2024-03-01 00:00:00', 'Risk to staff', 'NOMISUSER', TIMESTAMP '2024-03-01 10:30:00')`, seq)
		}
		for i, id := range nomisIDs {
			h.dps.Exec(t, `INSERT INTO alertsync.alert_mapping (dps_alert_id, nomis_booking_id, nomis_alert_seq, offender_no, mapping_type)
				VALUES ($1::uuid, 10, $2, 'A1234BC', 'NOMIS_CREATED')`, id, i+1)
		}
		h.db.Exec(t, `INSERT INTO alertsync.alertsync_alert_mapping (dps_alert_id, offender_book_id, alert_seq, offender_no, mapping_type)
			VALUES ($1::uuid, 10, 3, 'A1234BC', 'DPS_CREATED')`, replaced)
		for _, id := range gone {
			h.dps.Exec(t, `INSERT INTO public.alert (id, alert_code_id, prison_number, description, active_from, created_at, deleted_at, version)
				SELECT $1::uuid, c.id, 'A1234BC', 'in DPS', DATE '2024-03-01', TIMESTAMP '2024-03-01 10:30:00', TIMESTAMP '2024-03-02 09:00:00', 0
				  FROM public.alert_code c WHERE c.code = 'XA'`, id)
		}
	}
	set, stmt := newPathWorld(t, true, setup), newPathWorld(t, false, setup)

	// What DPS holds of each alert: the state its next command's
	// before-image carries.
	states := map[string]*rules.AlertState{}
	number := map[string]string{}
	for _, id := range nomisIDs {
		states[id], number[id] = dpsState("XA", march1, "Risk to staff"), "A1234BC"
	}
	var ids []string // alerts DPS created
	var sent []rules.Command
	prisoners := []string{"A1234BC", "A1234BC", "B2345CD", "C3456DE"}
	codes := []string{"XA", "XA", "XEL", "XSA", "ZZZ"}
	users := []string{"DPSUSER1", "DPSUSER2", "DPSUSER3"}
	win, lose := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond), time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	known := func() string {
		all := append(append([]string(nil), nomisIDs...), ids...)
		return all[rng.IntN(len(all))]
	}
	next := func() rules.Command {
		h := set.h
		switch op := rng.IntN(20); {
		case op < 5 || len(ids) == 0: // a DPS create
			id := fmt.Sprintf("0190a3c4-1111-7000-8000-%012d", len(ids))
			ids = append(ids, id)
			st := dpsState(codes[rng.IntN(len(codes))], march1, "created "+id[len(id)-4:])
			if st.Code == "ZZZ" && rng.IntN(2) == 0 {
				st.Code = "XA"
			}
			states[id], number[id] = st, prisoners[rng.IntN(len(prisoners))]
			return h.cmd(rules.KindUpsert, number[id], id, nil, st)
		case op < 12: // an update, its before-image DPS's last state or not
			id := known()
			before := states[id]
			if rng.IntN(5) == 0 {
				before = modified(before, "SOMEONE")
				d := "what DPS thought"
				before.Description = &d
			}
			after := modified(states[id], users[rng.IntN(len(users))])
			d := fmt.Sprintf("changed %d", len(sent))
			after.Description = &d
			if rng.IntN(4) == 0 {
				to := rules.DateOf(2024, time.April, 1)
				after.ActiveTo, after.Status = &to, rules.StatusInactive
			}
			states[id] = after
			c := h.cmd(rules.KindUpsert, number[id], id, before, after)
			if rng.IntN(3) == 0 {
				c.SourceCommitTime = lose
			} else {
				c.SourceCommitTime = win
			}
			if strings.HasSuffix(id, "b") && rng.IntN(2) == 0 { // the key a command from a NOMIS-made alert carries
				book, seq := int64(10), int32(2)
				c.NOMISBookingID, c.NOMISAlertSeq = &book, &seq
			}
			return c
		case op < 14: // a delete
			id := known()
			c := h.cmd(rules.KindDelete, number[id], id, states[id], nil)
			c.SourceCommitTime = win
			return c
		case op < 16 && len(sent) > 0: // a command again
			return sent[rng.IntN(len(sent))]
		case op < 17: // a create of an alert DPS has deleted since
			return h.cmd(rules.KindUpsert, "A1234BC", gone[rng.IntN(len(gone))], nil, dpsState("XA", march1, "deleted in DPS"))
		case op < 18: // a change of an alert neither side knows
			id := fmt.Sprintf("0190a3c4-2222-7000-8000-%012d", len(sent))
			return h.cmd(rules.KindUpsert, "B2345CD", id, dpsState("XA", march1, "x"), dpsState("XA", march1, "y"))
		default: // the alert whose DPS-side mapping a replace moved
			id := nomisIDs[2]
			after := modified(states[id], "DPSUSER1")
			d := fmt.Sprintf("after the replace %d", len(sent))
			after.Description = &d
			c := h.cmd(rules.KindUpsert, "A1234BC", id, states[id], after)
			states[id] = after
			c.SourceCommitTime = win
			return c
		}
	}
	for range 60 {
		n := 1 + rng.IntN(12)
		batch := make([]rules.Command, n)
		for i := range batch {
			batch[i] = next()
			sent = append(sent, batch[i])
		}
		set.apply(t, batch)
		stmt.apply(t, batch)
		if rng.IntN(4) == 0 { // a NOMIS user edits an alert
			k := rng.IntN(1000)
			for _, w := range []*pathWorld{set, stmt} {
				w.h.asNOMISUser(t, `UPDATE oms_owner.offender_alerts SET comment_text = comment_text || ' (NOMIS)', modify_user_id = 'NOMISUSER'
					WHERE (offender_book_id, alert_seq) = (SELECT offender_book_id, alert_seq FROM oms_owner.offender_alerts
					                                        ORDER BY offender_book_id, alert_seq
					                                        OFFSET $1 % greatest((SELECT count(*) FROM oms_owner.offender_alerts), 1) LIMIT 1)`, k)
			}
		}
	}
	want, got := stmt.dump(t), set.dump(t)
	for _, name := range []string{"outcomes", "outbox", "alerts", "mapping", "holds", "conflicts"} {
		require.Equal(t, want[name], got[name], "%s: set path (got) against statement path (want)", name)
	}
	require.Zero(t, stmt.set)
	require.Greater(t, set.set, 2*(set.stmt), "most batches on the set path: %d set, %d statement, redone: %v", set.set, set.stmt, set.redone)
	require.Equal(t, set.stmt, len(set.redone), "a batch leaves the set path only to be redone")
	results := map[string]int{}
	for _, o := range set.outs {
		results[string(o.Result)+" "+o.Reason]++
	}
	t.Logf("seed %d: %d commands in 60 batches, %d on the set path, %d redone: %v; outcomes %v", seed, len(sent), set.set, set.stmt, set.redone, results)
	for _, want := range []string{"APPLIED ", "APPLIED " + apply.ReasonWon, "CONFLICT " + apply.ReasonLost, "SKIPPED " + apply.ReasonStale,
		"SKIPPED " + apply.ReasonHeld, "FAILED " + ReasonNoCurrentBooking, "SKIPPED " + ReasonDeletedInDPS} {
		require.Positive(t, results[want], "the workload makes %q outcomes", want)
	}
	require.Positive(t, pgtest.QueryValue[int](t, set.h.db, "SELECT count(*)::int FROM oms_owner.offender_alerts WHERE alert_seq > 4"))
}

// TestPipedTx: a stand-in transaction sends its BEGIN and its marking as
// the sync with its first statement, whatever that is; one that sent
// nothing commits without a round trip; a transaction the server aborted
// does not commit; a rollback undoes what was sent; the connection goes
// back to the pool every time.
func TestPipedTx(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ctx := context.Background()
	begin := func() *pipedTx {
		conn, err := db.Pool.Acquire(ctx)
		require.NoError(t, err)
		tx := &pipedTx{conn: conn}
		t.Cleanup(func() { tx.Rollback(ctx) }) // a no-op once ended; else the pool's close would wait
		return tx
	}
	idle := func() {
		t.Helper()
		require.Zero(t, db.Pool.Stat().AcquiredConns(), "connection released")
	}

	tx := begin()
	require.NoError(t, tx.Commit(ctx))
	idle()
	require.ErrorIs(t, tx.Commit(ctx), pgx.ErrTxClosed)

	tx = begin()
	var module string
	require.NoError(t, tx.QueryRow(ctx, "SELECT current_setting('nomis.audit_module_name')").Scan(&module))
	require.Equal(t, SyncModule, module, "marked as the sync")
	_, err := tx.Exec(ctx, "SELECT 1/0")
	require.Error(t, err)
	require.ErrorIs(t, tx.Commit(ctx), pgx.ErrTxCommitRollback)
	idle()

	tx = begin()
	_, err = tx.Exec(ctx, "CREATE TABLE piped (x int)") // the first statement: BEGIN goes with it
	require.NoError(t, err)
	b := &pgx.Batch{}
	b.Queue("INSERT INTO piped VALUES (1)")
	b.Queue("SELECT current_setting('nomis.audit_module_name')")
	br := tx.SendBatch(ctx, b)
	_, err = br.Exec()
	require.NoError(t, err)
	require.NoError(t, br.QueryRow().Scan(&module))
	require.Equal(t, SyncModule, module)
	require.NoError(t, br.Close())
	tx.Rollback(ctx)
	idle()
	require.Zero(t, pgtest.QueryValue[int](t, db, "SELECT count(*)::int FROM pg_class WHERE relname = 'piped'"), "rolled back")

	db.Exec(t, "CREATE TABLE piped (x int)")
	tx = begin()
	b = &pgx.Batch{}
	b.Queue("INSERT INTO piped VALUES (1)")
	b.Queue("INSERT INTO piped VALUES (2)")
	br = tx.SendBatch(ctx, b) // a batch first: BEGIN and the marking go before it
	require.NoError(t, br.Close())
	require.NoError(t, tx.Commit(ctx))
	idle()
	require.Equal(t, 2, pgtest.QueryValue[int](t, db, "SELECT count(*)::int FROM piped"))
}
