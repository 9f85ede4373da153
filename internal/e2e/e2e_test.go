//go:build broker

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/monitor"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/proctest"
)

// syncWait bounds how long one user change may take to reach the other
// side.
const syncWait = 30 * time.Second

// quietFor is how long nothing may move after the last outcome.
const quietFor = 3 * time.Second

// ledger is what the users did, and so what the topics must show: one
// command in the opposite direction per user change, and per outcome
// ("<target> <result> <reason>") how many.
type ledger struct {
	fromNOMIS, fromDPS int
	results            map[string]int
}

func newLedger() *ledger { return &ledger{results: map[string]int{}} }

// nomis records n NOMIS user changes that DPS applies plainly.
func (l *ledger) nomis(n int) {
	l.fromNOMIS += n
	l.results["DPS APPLIED "] += n
}

// dps records n DPS user changes that NOMIS applies plainly.
func (l *ledger) dps(n int) {
	l.fromDPS += n
	l.results["NOMIS APPLIED "] += n
}

// synced waits until the two stores agree on prison number pn.
func (w *world) synced(t *testing.T, pn, after string) {
	t.Helper()
	start := time.Now()
	w.eventually(t, syncWait, "both stores agree on "+pn+" after "+after, func() string {
		if d := compareStores(t, w, pn); d != "" {
			return d + "\nconflict decisions: " + w.conflictLog(t)
		}
		return ""
	})
	t.Logf("%s: synced in %s", after, time.Since(start).Round(time.Millisecond))
}

// TestE2E runs the five components as processes on two databases (DPS and
// the NOMIS stand-in) and the real broker, and plays a NOMIS user's and a
// DPS user's alert lifecycles and a same-second conflict, each on its own
// prisoner; then it counts the commands and outcomes against the user
// changes and checks that nothing moves once the pipeline is quiet.
func TestE2E(t *testing.T) {
	began := time.Now()
	bin := proctest.BuildAlertsync(t)
	w := newWorld(t, bin, pgtest.NewDB(t), pgtest.NewDB(t))
	nu := nomisUser{db: w.nomis, user: "NOMIS_USER1"}
	du := dpsUser{db: w.dps, user: "dps.user.one@justice.example"}
	l := newLedger()

	t.Run("NOMIS user lifecycle", func(t *testing.T) {
		p := prisoners[0]
		var a, b nomisKey
		nu.do(t, func(tx pgx.Tx) { a = nu.create(t, tx, p, "X", "XA", "Sets fires when stressed", "Officer One") })
		w.synced(t, p.number, "NOMIS create")
		nu.do(t, func(tx pgx.Tx) {
			nu.update(t, tx, a, "comment_text = $3, authorize_person_text = $4", "Sets fires; see case notes", "SO Two")
		})
		w.synced(t, p.number, "NOMIS update")
		nu.do(t, func(tx pgx.Tx) { nu.update(t, tx, a, "expiry_date = $3::date", daysFromToday(30)) })
		w.synced(t, p.number, "NOMIS expiry date set")
		nu.do(t, func(tx pgx.Tx) { nu.update(t, tx, a, "alert_status = 'INACTIVE', expiry_date = $3::date", today()) })
		w.synced(t, p.number, "NOMIS made inactive")
		// The second alert comes before the delete: NOMIS gives a new alert
		// max(ALERT_SEQ)+1, which after deleting the only alert would reuse
		// its key (see "NOMIS reuses a deleted alert's ALERT_SEQ").
		nu.do(t, func(tx pgx.Tx) { b = nu.create(t, tx, p, "H", "HA", "ACCT opened", "") })
		w.synced(t, p.number, "NOMIS create (second alert)")
		nu.do(t, func(tx pgx.Tx) { nu.remove(t, tx, a) })
		w.synced(t, p.number, "NOMIS delete")
		// Inactive without an expiry date: DPS gets the date it happened.
		nu.do(t, func(tx pgx.Tx) { nu.update(t, tx, b, "alert_status = 'INACTIVE'") })
		w.synced(t, p.number, "NOMIS made inactive without expiry")
		l.nomis(7)

		require.Equal(t, 2, pgtest.QueryValue[int](t, w.dps, "SELECT count(*)::int FROM public.alert WHERE prison_number = $1", p.number),
			"one DPS alert per NOMIS alert")
		require.Equal(t, 1, pgtest.QueryValue[int](t, w.dps, "SELECT count(*)::int FROM public.alert WHERE prison_number = $1 AND deleted_at IS NOT NULL", p.number),
			"the NOMIS delete is a soft delete in DPS")
		require.Equal(t, today(), pgtest.QueryValue[string](t, w.dps,
			"SELECT to_char(a.active_to, 'YYYY-MM-DD') FROM public.alert a JOIN public.alert_code c ON c.id = a.alert_code_id WHERE a.prison_number = $1 AND c.code = 'HA'", p.number),
			"an alert made INACTIVE in NOMIS without expiry ends in DPS on the day it was made inactive")
		require.Zero(t, pgtest.QueryValue[int](t, w.dps,
			"SELECT count(*)::int FROM public.audit_event e JOIN public.alert a ON a.id = e.alert_id WHERE a.prison_number = $1 AND e.source <> 'NOMIS'", p.number),
			"every DPS audit event of a NOMIS change has source NOMIS")
	})

	t.Run("DPS user lifecycle", func(t *testing.T) {
		p := prisoners[1]
		var c string
		du.do(t, func(tx pgx.Tx) { c = du.create(t, tx, p.number, "XEL", "On the escape list", "Governor Reid") })
		w.synced(t, p.number, "DPS create")
		du.do(t, func(tx pgx.Tx) { du.update(t, tx, c, [4]bool{true}, "description = $2", "Escape list: review weekly") })
		w.synced(t, p.number, "DPS update")
		du.do(t, func(tx pgx.Tx) { du.update(t, tx, c, [4]bool{3: true}, "active_to = $2::date", daysFromToday(30)) })
		w.synced(t, p.number, "DPS active_to set")
		du.do(t, func(tx pgx.Tx) { du.update(t, tx, c, [4]bool{3: true}, "active_to = $2::date", today()) })
		w.synced(t, p.number, "DPS made inactive")
		du.do(t, func(tx pgx.Tx) { du.remove(t, tx, c) })
		w.synced(t, p.number, "DPS delete")
		du.do(t, func(tx pgx.Tx) { du.create(t, tx, p.number, "VI", "Victim of assault", "") })
		w.synced(t, p.number, "DPS create (second alert)")
		l.dps(6)

		require.Equal(t, 1, pgtest.QueryValue[int](t, w.nomis, "SELECT count(*)::int FROM oms_owner.offender_alerts WHERE offender_book_id = $1", p.booking),
			"the deleted alert is gone from NOMIS, the other one is on the current booking")
		require.Zero(t, pgtest.QueryValue[int](t, w.nomis, "SELECT count(*)::int FROM oms_owner.offender_alerts WHERE offender_book_id = $1", p.booking+5000),
			"nothing on the old booking")
		require.Equal(t, "DPS_SYNCHRONISATION", pgtest.QueryValue[string](t, w.nomis,
			"SELECT audit_module_name FROM oms_owner.offender_alerts WHERE offender_book_id = $1", p.booking), "the sync's NOMIS writes are marked")
	})

	t.Run("expiry sweep", func(t *testing.T) {
		// An alert lapses by date with no change to any row, so no command
		// tells NOMIS; the daily sweep of apply nomis does (DOMAIN.md). A
		// DPS alert cannot be made to lapse here without waiting for
		// midnight; an alert NOMIS still shows ACTIVE past its expiry date
		// is the same state: DPS has it ended, NOMIS active.
		p := prisoners[4]
		var a nomisKey
		nu.do(t, func(tx pgx.Tx) { a = nu.create(t, tx, p, "X", "XA", "Ended yesterday, still ACTIVE in NOMIS", "") })
		nu.do(t, func(tx pgx.Tx) {
			nu.update(t, tx, a, "alert_date = $3::date, expiry_date = $4::date", daysFromToday(-10), daysFromToday(-1))
		})
		l.nomis(2)
		// Not "synced": until the sweep, NOMIS shows it ACTIVE and DPS ended.
		w.eventually(t, syncWait, "the alert in DPS, ended yesterday", func() string {
			if got := pgtest.QueryValue[string](t, w.dps, "SELECT coalesce(max(to_char(active_to, 'YYYY-MM-DD')), '') FROM public.alert WHERE prison_number = $1",
				p.number); got != daysFromToday(-1) {
				return "DPS active_to " + got
			}
			return ""
		})
		version := pgtest.QueryValue[int](t, w.dps, "SELECT version FROM public.alert WHERE prison_number = $1", p.number)

		// The sweep, as ops run it (`apply nomis --sweep-now`, with the
		// running apply's configuration) while the pipeline runs.
		out, errOut, code := w.cli(t, "apply-nomis", nil, "apply", "nomis", "--sweep-now")
		require.Zero(t, code, "apply nomis --sweep-now:\n%s\n%s", out, errOut)
		require.Contains(t, out, ", 1 NOMIS alerts set INACTIVE", "the sweep: %s", out)
		require.Equal(t, "INACTIVE|DPS_SYNCHRONISATION", pgtest.QueryValue[string](t, w.nomis,
			"SELECT concat_ws('|', alert_status, audit_module_name) FROM oms_owner.offender_alerts WHERE offender_book_id = $1 AND alert_seq = $2",
			a.booking, a.seq), "the sweep's write is the sync's")
		w.synced(t, p.number, "the expiry sweep")
		// The sweep's write is the sync's: it comes back to DPS as nothing
		// (no command; the ledger's count is checked in "no loops").
		time.Sleep(2 * time.Second)
		require.Equal(t, version, pgtest.QueryValue[int](t, w.dps, "SELECT version FROM public.alert WHERE prison_number = $1", p.number),
			"the DPS alert changed after the sweep")
		out, _, code = w.cli(t, "apply-nomis", nil, "apply", "nomis", "--sweep-now")
		require.Zero(t, code)
		require.Contains(t, out, ", 0 NOMIS alerts set INACTIVE", "a second sweep changes nothing: %s", out)
	})

	t.Run("both sides edit the same alert within the same second", func(t *testing.T) {
		p := prisoners[2]
		var e, f string
		du.do(t, func(tx pgx.Tx) { e = du.create(t, tx, p.number, "RSS", "Risk to staff", "") })
		var fk nomisKey
		nu.do(t, func(tx pgx.Tx) { fk = nu.create(t, tx, p, "X", "XSA", "Assaulted staff", "") })
		l.dps(1)
		l.nomis(1)
		w.synced(t, p.number, "creates on both sides")
		ek := nomisKey{booking: p.booking, seq: pgtest.QueryValue[int64](t, w.nomis,
			"SELECT alert_seq::bigint FROM oms_owner.offender_alerts WHERE offender_book_id = $1 AND alert_code = 'RSS'", p.booking)}
		f = pgtest.QueryValue[string](t, w.dps,
			"SELECT a.id::text FROM public.alert a JOIN public.alert_code c ON c.id = a.alert_code_id WHERE a.prison_number = $1 AND c.code = 'XSA'", p.number)

		// Four open transactions, committed back to back: on E NOMIS
		// commits first and DPS wins; on F DPS commits first and NOMIS wins.
		// A few milliseconds apart: conflicts compare commit times at
		// millisecond precision (a command carries milliseconds), and two
		// commits in one millisecond are a tie, which goes to DPS
		// (TestE2EExactTie).
		nE, dE, dF, nF := nu.begin(t), du.begin(t), du.begin(t), nu.begin(t)
		nu.update(t, nE, ek, "comment_text = $3", "E as NOMIS saw it")
		du.update(t, dE, e, [4]bool{true}, "description = $2", "E as DPS saw it")
		du.update(t, dF, f, [4]bool{true}, "description = $2", "F as DPS saw it")
		nu.update(t, nF, fk, "comment_text = $3", "F as NOMIS saw it")
		first := time.Now()
		for _, tx := range []pgx.Tx{nE, dE, dF, nF} {
			require.NoError(t, tx.Commit(context.Background()))
			time.Sleep(3 * time.Millisecond)
		}
		require.Less(t, time.Since(first), time.Second, "the four edits did not commit within one second")
		l.fromNOMIS += 2
		l.fromDPS += 2
		l.results["NOMIS APPLIED conflict_won"]++ // E: DPS's later edit reaches NOMIS
		l.results["DPS CONFLICT conflict_lost"]++ // E: NOMIS's earlier edit loses in DPS
		l.results["DPS APPLIED conflict_won"]++   // F: NOMIS's later edit reaches DPS
		l.results["NOMIS CONFLICT conflict_lost"]++

		w.synced(t, p.number, "the conflicting edits")
		t.Logf("conflict decisions: %s", w.conflictLog(t))
		require.Equal(t, "E as DPS saw it", pgtest.QueryValue[string](t, w.dps, "SELECT description FROM public.alert WHERE id = $1", e))
		require.Equal(t, "F as NOMIS saw it", pgtest.QueryValue[string](t, w.dps, "SELECT description FROM public.alert WHERE id = $1", f))
	})

	t.Run("no loops", func(t *testing.T) { w.requireQuiet(t, l) })

	t.Run("reconcile", func(t *testing.T) {
		numbers := make([]string, 0, len(prisoners))
		for _, p := range prisoners {
			numbers = append(numbers, p.number)
		}
		require.Empty(t, compareStores(t, w, numbers...), "NOMIS and DPS differ")
		w.reconcile(t)
	})

	t.Run("monitor", func(t *testing.T) {
		// alertsync monitor over the five processes' admin servers: each
		// is running, with its figures.
		args := []string{"monitor", "--once", "--json", "--monitor.every=1s"}
		for _, p := range w.procs {
			args = append(args, p.name+"=http://"+p.adminAddr())
		}
		out, errOut, code := w.cli(t, "transform", nil, args...)
		require.Zero(t, code, "alertsync monitor:\n%s\n%s", out, errOut)
		var round monitor.Round
		require.NoError(t, json.Unmarshal([]byte(out), &round), out)
		got := make([]string, 0, len(round.Rows))
		for _, r := range round.Rows {
			got = append(got, r.Target+"/"+r.Component+" "+r.State)
			require.NotNil(t, r.UptimeSeconds, "%s", r.Component)
			require.NotNil(t, r.RSSBytes, "%s", r.Component)
			require.NotNil(t, r.Rate, "%s", r.Component)
			require.NotNil(t, r.Lag, "%s", r.Component)
			if r.Component != "capture-dps" {
				require.NotNil(t, r.DLQTotal, "%s", r.Component)
			}
		}
		require.Equal(t, []string{"capture-dps/capture-dps running", "capture-nomis/capture-nomis running", "transform/transform running",
			"apply-dps/apply-dps running", "apply-nomis/apply-nomis running"}, got)
		for _, r := range round.Rows[2:] {
			require.Equal(t, "records", r.LagUnit)
			require.Zero(t, *r.Lag, "%s: caught up", r.Component)
		}
		out, errOut, code = w.cli(t, "transform", nil, append([]string{"monitor", "--once", "--monitor.every=1s"}, args[4:]...)...)
		require.Zero(t, code, "alertsync monitor:\n%s\n%s", out, errOut)
		t.Logf("alertsync monitor --once:\n%s", out)
	})
	t.Logf("TestE2E took %s", time.Since(began).Round(time.Millisecond))
}

// TestE2EExactTie hosts DPS and the NOMIS stand-in in ONE database so that
// a single transaction can edit an alert on both sides: the two changes
// then carry the very same commit time, and both applies must give the
// tie to DPS.
func TestE2EExactTie(t *testing.T) {
	began := time.Now()
	bin := proctest.BuildAlertsync(t)
	db := pgtest.NewDB(t)
	w := newWorld(t, bin, db, db)
	nu := nomisUser{db: w.nomis, user: "NOMIS_USER2"}
	du := dpsUser{db: w.dps, user: "dps.user.two@justice.example"}
	l := newLedger()
	p := prisoners[3]

	var g string
	du.do(t, func(tx pgx.Tx) { g = du.create(t, tx, p.number, "XA", "G as created", "") })
	l.dps(1)
	w.synced(t, p.number, "DPS create")
	gk := nomisKey{booking: p.booking, seq: pgtest.QueryValue[int64](t, w.nomis,
		"SELECT alert_seq::bigint FROM oms_owner.offender_alerts WHERE offender_book_id = $1", p.booking)}

	nu.do(t, func(tx pgx.Tx) { // the NOMIS user's session, which also writes as the DPS service
		nu.update(t, tx, gk, "comment_text = $3", "G as NOMIS saw it")
		du.update(t, tx, g, [4]bool{true}, "description = $2", "G as DPS saw it")
	})
	l.fromNOMIS++
	l.fromDPS++
	l.results["NOMIS APPLIED conflict_won"]++
	l.results["DPS CONFLICT conflict_lost"]++
	w.synced(t, p.number, "the tied edits")
	t.Logf("conflict decisions: %s", w.conflictLog(t))
	require.Equal(t, "G as DPS saw it", pgtest.QueryValue[string](t, w.dps, "SELECT description FROM public.alert WHERE id = $1", g), "DPS wins a tie")

	w.requireQuiet(t, l)

	// Both applies saw the same two commit times and decided for DPS.
	// Commands carry the source commit time in milliseconds (source.ts_ms),
	// the applies read the target's in microseconds.
	const sameMilli = "date_trunc('milliseconds', source_commit_time) = date_trunc('milliseconds', target_commit_time)"
	require.Equal(t, 1, pgtest.QueryValue[int](t, w.dps,
		"SELECT count(*)::int FROM alertsync.conflicts WHERE dps_alert_id = $1 AND winner = 'DPS' AND "+sameMilli, g),
		"apply dps recorded one exact tie, won by DPS")
	require.Equal(t, 1, pgtest.QueryValue[int](t, w.nomis,
		"SELECT count(*)::int FROM alertsync.alertsync_conflicts WHERE dps_alert_id = $1 AND winner = 'DPS' AND "+sameMilli, g),
		"apply nomis recorded one exact tie, won by DPS")

	require.Empty(t, compareStores(t, w, p.number), "NOMIS and DPS differ")
	w.reconcile(t)
	t.Logf("TestE2EExactTie took %s", time.Since(began).Round(time.Millisecond))
}

// requireQuiet waits until every command has its outcome, then checks the
// traffic against the ledger – one command per user change, in the
// opposite direction only; one outcome per command, as expected; nothing
// in the DLQ – and that neither the topics nor the stores move for
// quietFor afterwards.
func (w *world) requireQuiet(t *testing.T, l *ledger) {
	t.Helper()
	want := l.fromNOMIS + l.fromDPS
	var tr traffic
	w.eventually(t, syncWait, "an outcome for every command", func() string {
		tr = w.readTraffic(t)
		if n := len(tr.toDPS) + len(tr.toNOMIS); n < want || len(tr.outcomes) < n {
			return fmt.Sprintf("%d commands (want %d), %d outcomes", n, want, len(tr.outcomes))
		}
		return ""
	})
	before := w.storeState(t)
	time.Sleep(quietFor)
	after := w.readTraffic(t)
	require.Equal(t, before, w.storeState(t), "alert rows changed after the pipeline went quiet (a loop?)")
	require.Equal(t, len(tr.toDPS), len(after.toDPS), "commands to DPS kept coming: %s", perPrisoner(after.toDPS))
	require.Equal(t, len(tr.toNOMIS), len(after.toNOMIS), "commands to NOMIS kept coming: %s", perPrisoner(after.toNOMIS))
	require.Equal(t, len(tr.outcomes), len(after.outcomes), "outcomes kept coming")

	require.Len(t, tr.toDPS, l.fromNOMIS, "one command to DPS per NOMIS user change: %s", perPrisoner(tr.toDPS))
	require.Len(t, tr.toNOMIS, l.fromDPS, "one command to NOMIS per DPS user change: %s", perPrisoner(tr.toNOMIS))
	for _, c := range tr.toDPS {
		require.Equal(t, "NOMIS", c.origin, "a command to DPS that did not come from NOMIS: %+v", c)
	}
	for _, c := range tr.toNOMIS {
		require.Equal(t, "DPS", c.origin, "a command to NOMIS that did not come from DPS: %+v", c)
	}
	byCmd := tr.outcomesByCommand()
	got := map[string]int{}
	for _, c := range append(append([]command{}, tr.toDPS...), tr.toNOMIS...) {
		outs := byCmd[c.id]
		require.Len(t, outs, 1, "outcomes of command %+v", c)
		got[outs[0].target+" "+outs[0].result+" "+outs[0].reason]++
		delete(byCmd, c.id)
	}
	require.Empty(t, byCmd, "outcomes of commands never sent")
	require.Equal(t, l.results, got, "outcomes by target, result and reason:\n%s", describe(got))
	require.Zero(t, tr.dlq, "records in the DLQ")
}

func describe(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, fmt.Sprintf("%s: %d", k, m[k]))
	}
	sort.Strings(keys)
	return strings.Join(keys, "\n")
}
