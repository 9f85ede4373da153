//go:build broker

package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/proctest"
)

// scenarioPrisonersSQL seeds ps in NOMIS as seedSQL does: a current booking
// (BOOKING_SEQ 1) and an older one (booking + 5000, BOOKING_SEQ 2) each.
func scenarioPrisonersSQL(ps ...prisoner) string { return prisonersSQL(5000, ps...) }

// nomisSession runs statements in one transaction of a NOMIS session whose
// module is module (and, when set, whose additional info is info), as the
// NOMIS screens and jobs behind bookings and merges do.
func nomisSession(t *testing.T, db *pgtest.DB, module, info string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT set_config('nomis.audit_module_name', $1, true), set_config('nomis.audit_user_id', 'NOMIS_ADMIN', true),
		set_config('nomis.audit_additional_info', $2, true)`, module, info)
	require.NoError(t, err)
	for _, s := range stmts {
		_, err := tx.Exec(ctx, s)
		require.NoError(t, err, "%s", s)
	}
	require.NoError(t, tx.Commit(ctx))
}

// dpsAlertCount counts pn's DPS alert rows (soft-deleted ones included).
func dpsAlertCount(t *testing.T, w *world, pn string) int {
	t.Helper()
	return pgtest.QueryValue[int](t, w.dps, "SELECT count(*)::int FROM public.alert WHERE prison_number = $1", pn)
}

// dpsAlertID is the id of pn's live DPS alert of code.
func dpsAlertID(t *testing.T, w *world, pn, code string) string {
	t.Helper()
	return pgtest.QueryValue[string](t, w.dps, `SELECT a.id::text FROM public.alert a JOIN public.alert_code c ON c.id = a.alert_code_id
		WHERE a.prison_number = $1 AND c.code = $2 AND a.deleted_at IS NULL`, pn, code)
}

// TestE2EPrisonerResyncs plays the NOMIS prisoner-level changes of
// DOMAIN.md ("Prisoner-level changes → full resync", ADR004) on synced
// prisoners: a new booking whose alerts NOMIS copies over, a recall that
// makes the older booking current again, a booking moved to another
// prisoner, and a merge of two prison numbers. After each, DPS must show
// exactly the alerts of the prisoner's current NOMIS booking (a merged-away
// or booking-less prison number none), later changes must follow the
// alerts to their new NOMIS rows, and nothing may loop.
func TestE2EPrisonerResyncs(t *testing.T) {
	began := time.Now()
	var (
		fresh   = prisoner{"B2001RA", 201, 2201} // new booking with copied alerts
		recall  = prisoner{"B2002RB", 202, 2202} // recall switch
		keeper  = prisoner{"B2003RC", 203, 2203} // receives the moved booking
		giver   = prisoner{"B2004RD", 204, 2204} // loses its current booking
		retains = prisoner{"B2005RE", 205, 2205} // merge: retained number
		removed = prisoner{"B2006RF", 206, 2206} // merge: removed number
	)
	all := []prisoner{fresh, recall, keeper, giver, retains, removed}
	// The recalled prisoner's older booking holds alerts from before the
	// pipeline existed; they stay in NOMIS until that booking is current.
	seed := scenarioPrisonersSQL(all...) + fmt.Sprintf(`
INSERT INTO oms_owner.offender_alerts (offender_book_id, root_offender_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text, caseload_type)
VALUES (%[1]d, %[2]d, 1, 'H', 'HA', 'ACTIVE', TIMESTAMP '2021-02-03 00:00:00', 'ACCT from the last sentence', 'INST'),
       (%[1]d, %[2]d, 2, 'X', 'XEL', 'ACTIVE', TIMESTAMP '2021-03-04 00:00:00', NULL, 'INST');`, recall.booking+5000, recall.offender)

	bin := proctest.BuildAlertsync(t)
	w := newWorldWith(t, bin, pgtest.NewDB(t), pgtest.NewDB(t), worldOptions{seed: seed})
	nu := nomisUser{db: w.nomis, user: "NOMIS_USER3"}
	du := dpsUser{db: w.dps, user: "dps.user.three@justice.example"}
	fromDPS := 0

	numbers := func(ps ...prisoner) []string {
		out := make([]string, 0, len(ps))
		for _, p := range ps {
			out = append(out, p.number)
		}
		return out
	}
	syncedAll := func(t *testing.T, after string, ps ...prisoner) {
		t.Helper()
		start := time.Now()
		w.eventually(t, syncWait+10*time.Second, after, func() string {
			d := compareStores(t, w, numbers(ps...)...)
			if d != "" && time.Since(start) > syncWait {
				d += "\noutcomes: " + w.outcomesOf(t, numbers(ps...)...) + "\nNOMIS rows on every booking: " + w.nomisRowsOf(t, ps...) +
					"\nDPS rows: " + w.dpsRowsOf(t, numbers(ps...)...)
			}
			return d
		})
		t.Logf("%s: synced in %s", after, time.Since(start).Round(time.Millisecond))
	}

	// Every prisoner starts with an alert made in NOMIS; three also have
	// one made in DPS.
	for _, p := range all {
		nu.do(t, func(tx pgx.Tx) { nu.create(t, tx, p, "X", "XA", "Arson risk of "+p.number, "Officer Nine") })
	}
	du.do(t, func(tx pgx.Tx) {
		du.create(t, tx, fresh.number, "VI", "Victim (DPS)", "")
		du.create(t, tx, retains.number, "RSS", "Risk to staff (DPS)", "")
		du.create(t, tx, removed.number, "XSA", "Staff assaulter (DPS)", "")
	})
	fromDPS += 3
	syncedAll(t, "the alerts before any prisoner-level change", all...)

	t.Run("new booking with copied alerts", func(t *testing.T) {
		// An inactive alert on the old booking is not copied: it must
		// leave DPS.
		var inactive nomisKey
		nu.do(t, func(tx pgx.Tx) { inactive = nu.create(t, tx, fresh, "H", "HS", "Self harm (closed)", "") })
		nu.do(t, func(tx pgx.Tx) {
			nu.update(t, tx, inactive, "alert_status = 'INACTIVE', expiry_date = $3::date", today())
		})
		syncedAll(t, "inactive alert on the booking to be replaced", fresh)
		rowsBefore := dpsAlertCount(t, w, fresh.number)
		newBooking := fresh.booking + 10000
		// OIDADMIS admits the prisoner: the old bookings are renumbered and
		// the new one is BOOKING_SEQ 1; the booking copy follows in its own
		// transaction, marked OMKCOPY.COPY_BOOKING_DATA.
		nomisSession(t, w.nomis, "OIDADMIS", "",
			fmt.Sprintf("UPDATE oms_owner.offender_bookings SET booking_seq = booking_seq + 1 WHERE offender_id = %d", fresh.offender),
			fmt.Sprintf(`INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
				VALUES (%d, date_trunc('second', now() AT TIME ZONE 'Europe/London'), %d, %d, 1, 'Y', 'MDI')`, newBooking, fresh.offender, fresh.offender))
		time.Sleep(200 * time.Millisecond)
		nomisSession(t, w.nomis, "OIDADMIS", "OMKCOPY.COPY_BOOKING_DATA", fmt.Sprintf(`
INSERT INTO oms_owner.offender_alerts (offender_book_id, root_offender_id, alert_seq, alert_type, alert_code, alert_status, alert_date,
    expiry_date, comment_text, authorize_person_text, caseload_id, caseload_type)
SELECT %d, root_offender_id, row_number() OVER (ORDER BY alert_seq), alert_type, alert_code, alert_status, alert_date,
       expiry_date, comment_text, authorize_person_text, caseload_id, caseload_type
  FROM oms_owner.offender_alerts WHERE offender_book_id = %d AND alert_status = 'ACTIVE'`, newBooking, fresh.booking))
		require.Equal(t, 2, pgtest.QueryValue[int](t, w.nomis, "SELECT count(*)::int FROM oms_owner.offender_alerts WHERE offender_book_id = $1", newBooking),
			"the copy put the two active alerts on the new booking")
		syncedAll(t, "new booking", fresh)
		require.Equal(t, rowsBefore, dpsAlertCount(t, w, fresh.number),
			"the resync kept the DPS alerts matching the copies (same code and dates) instead of creating new ones")
		require.Equal(t, 1, pgtest.QueryValue[int](t, w.dps, `SELECT count(*)::int FROM public.alert a JOIN public.alert_code c ON c.id = a.alert_code_id
			WHERE a.prison_number = $1 AND c.code = 'HS' AND a.deleted_at IS NOT NULL`, fresh.number), "the alert not copied left DPS")

		// A DPS change of a copied alert now goes to the copy on the new
		// booking.
		vi := dpsAlertID(t, w, fresh.number, "VI")
		du.do(t, func(tx pgx.Tx) {
			du.update(t, tx, vi, [4]bool{true}, "description = $2", "Victim (DPS, after the new booking)")
		})
		fromDPS++
		syncedAll(t, "DPS update after the new booking", fresh)
		require.Equal(t, "Victim (DPS, after the new booking)", pgtest.QueryValue[string](t, w.nomis,
			"SELECT comment_text FROM oms_owner.offender_alerts WHERE offender_book_id = $1 AND alert_code = 'VI'", newBooking))
		require.Equal(t, "Victim (DPS)", pgtest.QueryValue[string](t, w.nomis,
			"SELECT comment_text FROM oms_owner.offender_alerts WHERE offender_book_id = $1 AND alert_code = 'VI'", fresh.booking),
			"the old booking's alert is history and stays as it was")
	})

	t.Run("recall switch", func(t *testing.T) {
		nomisSession(t, w.nomis, "OIDADMIS", "", fmt.Sprintf(
			"UPDATE oms_owner.offender_bookings SET booking_seq = CASE offender_book_id WHEN %d THEN 1 ELSE 2 END WHERE offender_id = %d",
			recall.booking+5000, recall.offender))
		syncedAll(t, "recall switch", recall)
		// The older booking's alert, now current, is mapped: a NOMIS edit
		// of it updates the DPS alert the resync created.
		nu.do(t, func(tx pgx.Tx) {
			nu.update(t, tx, nomisKey{booking: recall.booking + 5000, seq: 1}, "comment_text = $3", "ACCT reopened on recall")
		})
		syncedAll(t, "NOMIS update after the recall", recall)
		require.Equal(t, 1, pgtest.QueryValue[int](t, w.dps, `SELECT count(*)::int FROM public.alert a JOIN public.alert_code c ON c.id = a.alert_code_id
			WHERE a.prison_number = $1 AND c.code = 'HA'`, recall.number), "the edit updated the resync's alert, not a new one")
	})

	t.Run("booking moved to another prisoner", func(t *testing.T) {
		// The giver's current booking belonged to the keeper all along
		// (OIDBOOKM): it becomes the keeper's current booking; the giver
		// is left with only its older booking.
		nomisSession(t, w.nomis, "OIDBOOKM", "",
			fmt.Sprintf("UPDATE oms_owner.offender_bookings SET booking_seq = booking_seq + 1 WHERE offender_id = %d", keeper.offender),
			fmt.Sprintf("UPDATE oms_owner.offender_bookings SET offender_id = %[1]d, root_offender_id = %[1]d, booking_seq = 1 WHERE offender_book_id = %[2]d",
				keeper.offender, giver.booking))
		syncedAll(t, "booking moved", keeper, giver)
		require.Zero(t, pgtest.QueryValue[int](t, w.dps, "SELECT count(*)::int FROM public.alert WHERE prison_number = $1 AND deleted_at IS NULL", giver.number),
			"a prisoner without a current booking has no DPS alerts")
		require.Equal(t, []string{"XA"}, codesOf(w.dpsAlerts(t, keeper.number, today())), "the keeper shows the moved booking's alert")
	})

	t.Run("merge of two prison numbers", func(t *testing.T) {
		// The removed number's bookings go to the retained offender, its
		// current booking becoming the current one, and the removed
		// offender row is deleted.
		nomisSession(t, w.nomis, "MERGE", "",
			fmt.Sprintf("UPDATE oms_owner.offender_bookings SET booking_seq = booking_seq + 1 WHERE offender_id = %d", retains.offender),
			fmt.Sprintf("UPDATE oms_owner.offender_bookings SET offender_id = %[1]d, root_offender_id = %[1]d WHERE offender_book_id = %[2]d",
				retains.offender, removed.booking),
			fmt.Sprintf("UPDATE oms_owner.offender_bookings SET offender_id = %[1]d, root_offender_id = %[1]d, booking_seq = 4 WHERE offender_book_id = %[2]d",
				retains.offender, removed.booking+5000),
			fmt.Sprintf("DELETE FROM oms_owner.offenders WHERE offender_id = %d", removed.offender))
		syncedAll(t, "merge", retains, removed)
		require.Zero(t, pgtest.QueryValue[int](t, w.dps, "SELECT count(*)::int FROM public.alert WHERE prison_number = $1 AND deleted_at IS NULL", removed.number),
			"a merged-away prison number ends with no alerts")
		require.Equal(t, []string{"XA", "XSA"}, codesOf(w.dpsAlerts(t, retains.number, today())), "the retained number shows the merged booking's alerts")

		// A DPS change of an alert that came over with the merge reaches
		// its NOMIS row, now under the retained prisoner.
		xsa := dpsAlertID(t, w, retains.number, "XSA")
		du.do(t, func(tx pgx.Tx) {
			du.update(t, tx, xsa, [4]bool{false, true}, "authorised_by = $2", "Governor after merge")
		})
		fromDPS++
		syncedAll(t, "DPS update after the merge", retains)
	})

	t.Run("no loops", func(t *testing.T) { w.quietNoLoop(t, fromDPS) })

	t.Run("reconcile", func(t *testing.T) {
		require.Empty(t, compareStores(t, w, numbers(all...)...), "NOMIS and DPS differ")
		w.reconcile(t)
	})
	t.Logf("TestE2EPrisonerResyncs took %s", time.Since(began).Round(time.Millisecond))
}

func codesOf(as []storedAlert) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.code)
	}
	return out
}

// loadPrisoners and loadAlerts size the initial-load scenario: every
// prisoner has four alerts on the current booking and one on an older one.
const (
	loadPrisoners = 10000
	loadAlerts    = 5 * loadPrisoners
)

// initialLoadSeedSQL fills NOMIS, before the pipeline exists, with
// loadPrisoners prisoners (L0000AA…L9999AA; offender 500000+i, current
// booking 600000+i, older booking 700000+i) and loadAlerts alerts: on each
// current booking four, with duplicate codes on every tenth prisoner, dates
// with a time of day, INACTIVE alerts with and without an expiry date,
// expiry dates before the start date, start dates in the future, a start
// in 1970, null comments and authorisers, non-ASCII text; and one on each
// older booking, which must not reach DPS. (An INACTIVE alert whose expiry
// is still to come is left out: DPS has no status and shows it active, a
// documented loss, not what this scenario checks.)
const initialLoadSeedSQL = `
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id)
SELECT 500000 + i, 'L' || lpad(i::text, 4, '0') || 'AA', 500000 + i FROM generate_series(0, 9999) i;
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
SELECT 600000 + i, TIMESTAMP '2025-01-01 10:00:00', 500000 + i, 500000 + i, 1, 'Y', 'MDI' FROM generate_series(0, 9999) i
UNION ALL
SELECT 700000 + i, TIMESTAMP '2019-01-01 10:00:00', 500000 + i, 500000 + i, 2, 'N', 'LEI' FROM generate_series(0, 9999) i;
WITH codes (n, typ, code) AS (VALUES (0, 'X', 'XA'), (1, 'H', 'HA'), (2, 'R', 'RSS'), (3, 'V', 'VI'),
                                     (4, 'X', 'XEL'), (5, 'X', 'XSA'), (6, 'H', 'HS'), (7, 'X', 'XCU')),
a AS (
  SELECT i, j,
         CASE WHEN j = 2 AND i % 10 = 0 THEN (i * 7 + 1) % 8 ELSE (i * 7 + j) % 8 END AS n,
         CASE WHEN j = 4 AND i % 11 = 0 THEN TIMESTAMP '2031-06-01 00:00:00'
              WHEN j = 3 AND i % 25 = 0 THEN TIMESTAMP '2022-05-06 14:35:17'
              WHEN j = 1 AND i % 97 = 0 THEN TIMESTAMP '1970-01-01 00:00:00'
              ELSE TIMESTAMP '2020-01-01 00:00:00' + ((i * 13 + j) % 2000) * INTERVAL '1 day' END AS alert_date,
         CASE WHEN j = 2 AND i % 17 = 0 THEN 'INACTIVE_OPEN'
              WHEN j = 4 AND i % 31 = 0 AND i % 11 <> 0 THEN 'INACTIVE_BEFORE'
              WHEN j = 3 AND i % 19 = 0 THEN 'INACTIVE_PAST'
              WHEN j = 1 AND i % 13 = 0 THEN 'ACTIVE_FUTURE'
              ELSE 'ACTIVE' END AS kind
    FROM generate_series(0, 9999) i, generate_series(1, 4) j)
INSERT INTO oms_owner.offender_alerts (offender_book_id, root_offender_id, alert_seq, alert_type, alert_code, alert_status, alert_date,
    expiry_date, comment_text, authorize_person_text, caseload_type, create_user_id)
SELECT 600000 + a.i, 500000 + a.i, a.j, c.typ, c.code,
       CASE WHEN a.kind LIKE 'INACTIVE%' THEN 'INACTIVE' ELSE 'ACTIVE' END,
       a.alert_date,
       CASE a.kind WHEN 'INACTIVE_BEFORE' THEN a.alert_date - INTERVAL '30 days'
                   WHEN 'INACTIVE_PAST' THEN TIMESTAMP '2024-12-24 00:00:00'
                   WHEN 'ACTIVE_FUTURE' THEN TIMESTAMP '2032-02-29 00:00:00' END,
       CASE WHEN a.i % 5 = 0 THEN NULL WHEN a.i % 7 = 0 THEN 'Café risk ☕ ' || a.i ELSE 'Loaded alert ' || a.i || '/' || a.j END,
       CASE WHEN a.i % 3 = 0 THEN 'Governor ' || a.j END,
       'INST', 'MIGRATION'
  FROM a JOIN codes c ON c.n = a.n;
INSERT INTO oms_owner.offender_alerts (offender_book_id, root_offender_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text, caseload_type)
SELECT 700000 + i, 500000 + i, 1, 'X', 'XA', 'ACTIVE', TIMESTAMP '2019-02-01 00:00:00', 'On the old booking', 'INST' FROM generate_series(0, 9999) i;
`

// TestE2EInitialLoad starts the pipeline on a NOMIS that already holds
// loadPrisoners prisoners and loadAlerts alerts, with capture nomis's
// initial load on (capture.initial_load = auto): DPS must end holding every
// alert of a current booking and none of an older one, `alertsync
// reconcile` must find no difference, and then a change on each side must
// sync.
func TestE2EInitialLoad(t *testing.T) {
	began := time.Now()
	bin := proctest.BuildAlertsync(t)
	nomisDB := pgtest.NewDB(t)
	w := newWorldWith(t, bin, pgtest.NewDB(t), nomisDB, worldOptions{seed: initialLoadSeedSQL, initialLoad: true, readyTimeout: 120 * time.Second})
	require.Equal(t, loadAlerts, pgtest.QueryValue[int](t, w.nomis,
		"SELECT count(*)::int FROM oms_owner.offender_alerts WHERE offender_book_id BETWEEN 600000 AND 799999"), "the seed")
	current := pgtest.QueryValue[int](t, w.nomis, "SELECT count(*)::int FROM oms_owner.offender_alerts WHERE offender_book_id BETWEEN 600000 AND 699999")
	require.Equal(t, 4*loadPrisoners, current)

	w.eventually(t, 150*time.Second, "DPS holds every current-booking alert of the initial load", func() string {
		n := pgtest.QueryValue[int](t, w.dps, "SELECT count(*)::int FROM public.alert WHERE prison_number LIKE 'L____AA' AND deleted_at IS NULL")
		if n != current {
			return fmt.Sprintf("%d of %d alerts in DPS", n, current)
		}
		return ""
	})
	loaded := time.Since(w.started)
	t.Logf("initial load of %d prisoners, %d alerts (%d on current bookings): in DPS %s after the components started",
		loadPrisoners, loadAlerts, current, loaded.Round(time.Millisecond))
	require.Equal(t, current, pgtest.QueryValue[int](t, w.dps, "SELECT count(*)::int FROM public.alert WHERE prison_number LIKE 'L____AA'"),
		"nothing created twice, nothing from an older booking")
	require.Equal(t, "NOMIS", pgtest.QueryValue[string](t, w.dps,
		"SELECT string_agg(DISTINCT e.source, ',') FROM public.audit_event e JOIN public.alert a ON a.id = e.alert_id WHERE a.prison_number LIKE 'L____AA'"),
		"the load's DPS audit events have source NOMIS")
	require.Empty(t, w.dlqList(t), "DLQ entries after the load")
	sample := []string{"L0000AA", "L0017AA", "L0025AA", "L0031AA", "L0097AA", "L0143AA", "L9999AA"}
	require.Empty(t, compareStores(t, w, sample...), "NOMIS and DPS differ on sampled prisoners")
	recStart := time.Now()
	w.reconcile(t)
	t.Logf("reconcile of %d prisoners: %s", loadPrisoners, time.Since(recStart).Round(time.Millisecond))

	t.Run("live changes after the load", func(t *testing.T) {
		nu := nomisUser{db: w.nomis, user: "NOMIS_USER4"}
		du := dpsUser{db: w.dps, user: "dps.user.four@justice.example"}
		p1 := prisoner{"L0001AA", 500001, 600001}
		p2 := prisoner{"L0002AA", 500002, 600002}
		var k nomisKey
		nu.do(t, func(tx pgx.Tx) { k = nu.create(t, tx, p1, "X", "XEL", "Escape list after migration", "") })
		require.Equal(t, int64(5), k.seq, "the next ALERT_SEQ after the four loaded")
		w.synced(t, p1.number, "NOMIS create after the load")
		du.do(t, func(tx pgx.Tx) { du.create(t, tx, p2.number, "VI", "Victim, after migration", "") })
		w.synced(t, p2.number, "DPS create after the load")
		loadedID := pgtest.QueryValue[string](t, w.dps, `SELECT a.id::text FROM public.alert a WHERE a.prison_number = $1 AND a.deleted_at IS NULL
			AND NOT EXISTS (SELECT 1 FROM public.audit_event e WHERE e.alert_id = a.id AND e.source = 'DPS') ORDER BY a.id LIMIT 1`, p2.number)
		du.do(t, func(tx pgx.Tx) {
			du.update(t, tx, loadedID, [4]bool{true}, "description = $2", "Edited in DPS after migration")
		})
		w.synced(t, p2.number, "DPS update of a migrated alert")
		require.Empty(t, w.dlqList(t), "DLQ entries after the live changes")
	})
	w.reconcile(t)
	t.Logf("TestE2EInitialLoad took %s", time.Since(began).Round(time.Millisecond))
}

// writeSwitches writes the transform config file's sync switches.
func writeSwitches(t *testing.T, file string, dpsToNOMIS bool) {
	t.Helper()
	require.NoError(t, os.WriteFile(file, fmt.Appendf(nil, "sync:\n  nomis_to_dps: true\n  dps_to_nomis: %t\n", dpsToNOMIS), 0o600))
}

// switchDPSToNOMIS rewrites the file, sends SIGHUP to transform and waits
// until its metric says the direction is as asked.
func (w *world) switchDPSToNOMIS(t *testing.T, file string, on bool) {
	t.Helper()
	writeSwitches(t, file, on)
	require.NoError(t, syscall.Kill(w.procByName(t, "transform").PID(), syscall.SIGHUP))
	want := 0.0
	if on {
		want = 1
	}
	w.eventually(t, 15*time.Second, fmt.Sprintf("transform switches dps_to_nomis to %t", on), func() string {
		if v := w.metric(t, "transform", "alertsync_transform_direction_enabled", `direction="dps_to_nomis"`); v != want {
			return fmt.Sprintf("alertsync_transform_direction_enabled{direction=\"dps_to_nomis\"} = %v", v)
		}
		return ""
	})
}

// TestE2EDirectionSwitch turns DPS → NOMIS off and on again (sync.dps_to_nomis
// in transform's --config file, reloaded on SIGHUP) while users on both
// sides change alerts.
//
// Documented behaviour (docs/transform.md "Direction switches",
// docs/configuration.md sync.dps_to_nomis): while a direction is off its
// records are consumed, committed and counted
// (alertsync_transform_skipped_total) and produce no command; turning it on
// again continues from the current position, so the changes made while it
// was off are NOT applied to the other side until an operator stops every
// transformer and runs `alertsync transform replay --direction dps_to_nomis
// --from T`; the replayed records produce their commands again with the
// same ids, and the applies skip those already applied. The test checks
// exactly that, then that the replay brings both sides into agreement.
func TestE2EDirectionSwitch(t *testing.T) {
	began := time.Now()
	p := prisoner{"B3001SA", 301, 3301}
	file := filepath.Join(t.TempDir(), "alertsync.yaml")
	writeSwitches(t, file, true)
	bin := proctest.BuildAlertsync(t)
	w := newWorldWith(t, bin, pgtest.NewDB(t), pgtest.NewDB(t), worldOptions{seed: scenarioPrisonersSQL(p), transformConfig: file})
	nu := nomisUser{db: w.nomis, user: "NOMIS_USER5"}
	du := dpsUser{db: w.dps, user: "dps.user.five@justice.example"}
	nomisComment := func(code string) string {
		return pgtest.QueryValue[string](t, w.nomis, "SELECT coalesce(max(comment_text), '(none)') FROM oms_owner.offender_alerts WHERE offender_book_id = $1 AND alert_code = $2",
			p.booking, code)
	}

	var d0 string
	var n0 nomisKey
	du.do(t, func(tx pgx.Tx) { d0 = du.create(t, tx, p.number, "XA", "D0 as created", "") })
	nu.do(t, func(tx pgx.Tx) { n0 = nu.create(t, tx, p, "H", "HA", "N0 as created", "") })
	w.synced(t, p.number, "both sides on")

	offAt := time.Now()
	w.switchDPSToNOMIS(t, file, false)
	skippedBefore := w.metric(t, "transform", "alertsync_transform_skipped_total", `direction="dps_to_nomis"`)
	du.do(t, func(tx pgx.Tx) { du.update(t, tx, d0, [4]bool{true}, "description = $2", "D0 edited while off") })
	du.do(t, func(tx pgx.Tx) { du.create(t, tx, p.number, "XEL", "D1 made while off", "") })
	nu.do(t, func(tx pgx.Tx) { nu.update(t, tx, n0, "comment_text = $3", "N0 edited while DPS→NOMIS is off") })
	nu.do(t, func(tx pgx.Tx) { nu.create(t, tx, p, "R", "RSS", "N1 made while DPS→NOMIS is off", "") })

	t.Run("while off", func(t *testing.T) {
		w.eventually(t, syncWait, "the DPS changes consumed and skipped", func() string {
			if v := w.metric(t, "transform", "alertsync_transform_skipped_total", `direction="dps_to_nomis"`); v < skippedBefore+2 {
				return fmt.Sprintf("alertsync_transform_skipped_total{direction=\"dps_to_nomis\"} = %v (was %v)", v, skippedBefore)
			}
			return ""
		})
		w.eventually(t, syncWait, "NOMIS → DPS still flows", func() string {
			got := codesOf(w.dpsAlerts(t, p.number, today()))
			if strings.Join(got, ",") != "HA,RSS,XA,XEL" {
				return fmt.Sprintf("DPS codes %v", got)
			}
			if d := pgtest.QueryValue[string](t, w.dps, "SELECT description FROM public.alert WHERE id = $1", dpsAlertID(t, w, p.number, "HA")); d != "N0 edited while DPS→NOMIS is off" {
				return "DPS HA description " + d
			}
			return ""
		})
		require.Equal(t, "(none)", nomisComment("XEL"), "a DPS create while off reached NOMIS")
		require.Equal(t, "D0 as created", nomisComment("XA"), "a DPS edit while off reached NOMIS")
	})

	w.switchDPSToNOMIS(t, file, true)

	t.Run("on again: later changes flow, the off period is not replayed", func(t *testing.T) {
		du.do(t, func(tx pgx.Tx) { du.create(t, tx, p.number, "VI", "D2 made after switching on", "") })
		w.eventually(t, syncWait, "the DPS create after switching on reaches NOMIS", func() string {
			if c := nomisComment("VI"); c != "D2 made after switching on" {
				return "NOMIS VI comment " + c
			}
			return ""
		})
		time.Sleep(quietFor)
		require.Equal(t, "(none)", nomisComment("XEL"), "turning the direction on replayed a create made while off")
		require.Equal(t, "D0 as created", nomisComment("XA"), "turning the direction on replayed an edit made while off")
		require.NotEmpty(t, compareStores(t, w, p.number), "the stores agree although the off period was not replayed")
	})

	// The replay, at the top level: the restarted transform lives as long
	// as the test.
	w.stopProc(t, "transform")
	start := time.Now()
	out, errOut, code := w.cli(t, "transform", nil, "transform", "replay", "--direction", "dps_to_nomis", "--from", offAt.UTC().Format(time.RFC3339Nano))
	require.Zero(t, code, "alertsync transform replay failed:\n%s\n%s", out, errOut)
	t.Logf("transform replay (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	w.startProc(t, "transform")

	t.Run("replay brings the off period over", func(t *testing.T) {
		w.synced(t, p.number, "replay")
		require.Equal(t, "D0 edited while off", nomisComment("XA"))
		require.Equal(t, "D1 made while off", nomisComment("XEL"))
		require.Equal(t, "D2 made after switching on", nomisComment("VI"))
	})

	t.Run("no loops", func(t *testing.T) {
		// D0 create and D2 create, then the replay of D0 edit, D1 create
		// and D2 create (same command id as before, skipped by apply nomis).
		w.quietNoLoop(t, 5)
	})
	t.Run("reconcile", func(t *testing.T) { w.reconcile(t) })
	t.Logf("TestE2EDirectionSwitch took %s", time.Since(began).Round(time.Millisecond))
}

// countDLQ counts entries of stage (and alert key, when set) by kind, held
// or not, and hold state: "kind held=false hold=open".
func countDLQ(entries []dlqEntry, stage, key string) map[string]int {
	out := map[string]int{}
	for _, e := range entries {
		if e.Stage == stage && (key == "" || e.AlertKey == key) {
			out[fmt.Sprintf("%s held=%t hold=%s", e.ErrorKind, e.Held, e.Hold)]++
		}
	}
	return out
}

// TestE2EBadInput puts bad input in at the sources: an alert code DPS does
// not know, a DPS alert for a prisoner with no current NOMIS booking, an
// over-long DPS description, a NOMIS alert DPS refuses, and NOMIS rows the
// capture cannot read (redriven by a resync of their prisoner). Each bad record
// lands in the DLQ with its reason and holds the alert's later changes (at
// the applies and at the transformer); after the cause is fixed,
// `alertsync dlq redrive` brings both sides into agreement (for the
// over-long NOMIS comment, which cannot be mended, by discarding it and
// redriving the user's shortening held behind it).
func TestE2EBadInput(t *testing.T) {
	began := time.Now()
	var (
		unknown  = prisoner{"B4001QA", 401, 4401} // an alert code only NOMIS knows
		unbooked = prisoner{"B4002QB", 402, 4402} // no current booking
		refused  = prisoner{"B4003QC", 403, 4403} // a row DPS refuses
		long     = prisoner{"B4004QD", 404, 4404} // an over-long DPS description
		late     = prisoner{"B4005QE", 405, 4405} // no current booking, redriven after the resync
		longN    = prisoner{"B4006QF", 406, 4406} // a NOMIS comment longer than DPS holds
		unread   = prisoner{"B4007QG", 407, 4407} // NOMIS rows the capture cannot read
	)
	// NOMIS's COMMENT_TEXT widened (as MAX_STRING_SIZE=EXTENDED with a
	// byte-length column would allow): a comment of more than 4000
	// characters, which DPS cannot hold.
	seed := scenarioPrisonersSQL(unknown, refused, long, longN, unread) + `
ALTER TABLE oms_owner.offender_alerts DROP CONSTRAINT offender_alerts_comment_bytes, ALTER COLUMN comment_text TYPE varchar(8000);`
	seed += `
INSERT INTO oms_owner.reference_codes (domain, code, description, list_seq, active_flag, parent_domain, parent_code)
VALUES ('ALERT_CODE', 'XZZ', 'Security - new local code', 99, 'Y', 'ALERT', 'X');`
	for _, p := range []prisoner{unbooked, late} {
		seed += fmt.Sprintf(`
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id) VALUES (%[1]d, '%[2]s', %[1]d);
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
VALUES (%[3]d + 5000, TIMESTAMP '2021-01-01 09:00:00', %[1]d, %[1]d, 2, 'N', 'LEI');`, p.offender, p.number, p.booking)
	}
	// A DPS rule NOMIS does not have: DPS refuses alerts authorised by
	// "UNVERIFIED".
	const refuseSQL = `ALTER TABLE public.alert ADD CONSTRAINT e2e_refuse_unverified CHECK (authorised_by IS DISTINCT FROM 'UNVERIFIED')`
	bin := proctest.BuildAlertsync(t)
	// A resync delay of 10s (5s by default) leaves room, on a loaded
	// machine, for the redrive that must beat the new booking's resync
	// (fix and redrive, below).
	const resyncDelay = 10 * time.Second
	w := newWorldWith(t, bin, pgtest.NewDB(t), pgtest.NewDB(t), worldOptions{seed: seed, dpsSeed: refuseSQL, resyncDelay: resyncDelay})
	nu := nomisUser{db: w.nomis, user: "NOMIS_USER6"}
	du := dpsUser{db: w.dps, user: "dps.user.six@justice.example"}
	key := func(k nomisKey) string { return fmt.Sprintf("nomis:%d:%d", k.booking, k.seq) }

	var unknownKey, refusedKey nomisKey
	var unbookedID string
	nu.do(t, func(tx pgx.Tx) { unknownKey = nu.create(t, tx, unknown, "X", "XZZ", "New local code", "") })
	nu.do(t, func(tx pgx.Tx) { nu.update(t, tx, unknownKey, "comment_text = $3", "New local code, edited") })
	nu.do(t, func(tx pgx.Tx) { refusedKey = nu.create(t, tx, refused, "X", "XA", "Refused by DPS", "UNVERIFIED") })
	nu.do(t, func(tx pgx.Tx) { nu.update(t, tx, refusedKey, "comment_text = $3", "Refused, first edit") })
	nu.do(t, func(tx pgx.Tx) { nu.update(t, tx, refusedKey, "comment_text = $3", "Refused, second edit") })
	du.do(t, func(tx pgx.Tx) {
		unbookedID = du.create(t, tx, unbooked.number, "XA", "For a prisoner with no booking", "")
	})
	du.do(t, func(tx pgx.Tx) { du.update(t, tx, unbookedID, [4]bool{true}, "description = $2", "No booking, edited") })
	var lateID string
	du.do(t, func(tx pgx.Tx) { lateID = du.create(t, tx, late.number, "XA", "No booking, redriven late", "") })
	var longNKey nomisKey
	nu.do(t, func(tx pgx.Tx) { longNKey = nu.create(t, tx, longN, "X", "XA", strings.Repeat("n", 4500), "") })
	longText := strings.Repeat("é", 4000) // 4000 characters DPS accepts, 8000 bytes NOMIS cannot hold
	du.do(t, func(tx pgx.Tx) { du.create(t, tx, long.number, "XA", longText, "") })

	t.Run("DLQ entries with reasons, later changes held", func(t *testing.T) {
		var entries []dlqEntry
		w.eventually(t, 45*time.Second, "the bad input in the DLQ", func() string {
			entries = w.dlqList(t)
			if len(entries) < 9 {
				return fmt.Sprintf("%d DLQ entries: %+v", len(entries), entries)
			}
			return ""
		})
		t.Logf("DLQ: %+v", entries)
		// Neither the transformer nor DPS knows XZZ: the transformer
		// passes the NOMIS alert on with its NOMIS type, apply dps refuses
		// the create (unknown_code, naming the code) and holds the edit.
		require.Equal(t, map[string]int{"refused held=false hold=open": 1, "held held=true hold=open": 1},
			countDLQ(entries, "apply-dps", key(unknownKey)))
		for _, e := range entries {
			if e.AlertKey == key(unknownKey) && !e.Held {
				require.Contains(t, e.Error, "unknown_code")
				require.Contains(t, e.Error, "XZZ", "the reason names the code")
			}
		}
		// DPS refuses the create; the two edits are held behind it.
		require.Equal(t, 3, sum(countDLQ(entries, "apply-dps", key(refusedKey))), "%+v", countDLQ(entries, "apply-dps", key(refusedKey)))
		require.Equal(t, 2, countHeld(entries, "apply-dps", key(refusedKey)), "the two edits are held")
		// NOMIS has no booking to put the DPS alert on; the edit is held.
		dpsKey := "dps:" + unbookedID
		require.Equal(t, 2, sum(countDLQ(entries, "apply-nomis", dpsKey)), "%+v", entries)
		require.Equal(t, 1, countHeld(entries, "apply-nomis", dpsKey))
		for _, e := range entries {
			if e.Stage == "apply-nomis" && !e.Held {
				require.Contains(t, e.Error, "no_current_booking")
			}
		}
		// Over-long text is not bad input: cut to 4000 bytes for NOMIS.
		w.eventually(t, syncWait, "the long description in NOMIS", func() string {
			if n := pgtest.QueryValue[int](t, w.nomis, "SELECT coalesce(max(octet_length(comment_text)), 0)::int FROM oms_owner.offender_alerts WHERE offender_book_id = $1", long.booking); n != 4000 {
				return fmt.Sprintf("NOMIS comment of %d bytes", n)
			}
			return ""
		})
		require.Equal(t, map[string]int{"refused held=false hold=open": 1}, countDLQ(entries, "apply-nomis", "dps:"+lateID))
		// The over-long NOMIS comment: the transformer's DLQ, with the
		// length, never the text.
		require.Equal(t, map[string]int{"mapping held=false hold=open": 1}, countDLQ(entries, "transform", key(longNKey)))
		for _, e := range entries {
			if e.AlertKey == key(longNKey) {
				require.Contains(t, e.Error, "text_too_long")
				require.Contains(t, e.Error, "4500 characters")
				require.NotContains(t, e.Error, "nnnn")
			}
		}
		require.Len(t, entries, 9, "nothing else in the DLQ")
		require.Zero(t, pgtest.QueryValue[int](t, w.dps, "SELECT count(*)::int FROM public.alert WHERE prison_number IN ($1, $2)", unknown.number, refused.number))
	})

	t.Run("fix and redrive", func(t *testing.T) {
		// The refused alert: drop the DPS rule, redrive apply dps.
		w.dps.Exec(t, "ALTER TABLE public.alert DROP CONSTRAINT e2e_refuse_unverified")
		out, errOut, code := w.cli(t, "apply-dps", nil, "dlq", "redrive", "--stage", "apply-dps", "--alert-key", key(refusedKey))
		require.Zero(t, code, "dlq redrive apply-dps:\n%s\n%s", out, errOut)
		t.Logf("redrive apply-dps:\n%s", out)
		w.synced(t, refused.number, "redrive of the refused alert")
		require.Equal(t, "Refused, second edit", pgtest.QueryValue[string](t, w.dps, "SELECT description FROM public.alert WHERE prison_number = $1", refused.number))

		// The booking-less prisoner: NOMIS admits them (a new current
		// booking), then apply nomis's held commands are redriven. The
		// new booking makes NOMIS authoritative for the prisoner (a
		// resync, resyncDelay after it): the redrive must
		// put the alert on the booking before that snapshot is read, or
		// the resync would soft-delete the DPS alert NOMIS does not have
		// yet (see the report of this test in docs/testing-e2e.md).
		for _, p := range []prisoner{unbooked, late} {
			nomisSession(t, w.nomis, "OIDADMIS", "", fmt.Sprintf(`INSERT INTO oms_owner.offender_bookings
				(offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
				VALUES (%[1]d, date_trunc('second', now() AT TIME ZONE 'Europe/London'), %[2]d, %[2]d, 1, 'Y', 'MDI')`, p.booking, p.offender))
		}
		out, errOut, code = w.cli(t, "apply-nomis", nil, "dlq", "redrive", "--stage", "apply-nomis", "--alert-key", "dps:"+unbookedID)
		require.Zero(t, code, "dlq redrive apply-nomis:\n%s\n%s", out, errOut)
		t.Logf("redrive apply-nomis:\n%s", out)
		w.synced(t, unbooked.number, "redrive of the booking-less prisoner's alert")
		time.Sleep(resyncDelay + time.Second) // past the resync the new booking called for
		w.synced(t, unbooked.number, "the new booking's resync")
		require.Equal(t, "No booking, edited", pgtest.QueryValue[string](t, w.nomis,
			"SELECT comment_text FROM oms_owner.offender_alerts WHERE offender_book_id = $1", unbooked.booking))

		// The other prisoner's alert is redriven only after the resync,
		// which (NOMIS being authoritative for the new booking, which does
		// not have it) soft-deleted it in DPS: the redriven create must
		// not bring it back into NOMIS.
		w.eventually(t, syncWait, "the resync's soft delete in DPS", func() string {
			if !pgtest.QueryValue[bool](t, w.dps, "SELECT deleted_at IS NOT NULL FROM public.alert WHERE id = $1::uuid", lateID) {
				return "alert " + lateID + " not deleted in DPS"
			}
			return ""
		})
		out, errOut, code = w.cli(t, "apply-nomis", nil, "dlq", "redrive", "--stage", "apply-nomis", "--alert-key", "dps:"+lateID)
		require.Zero(t, code, "dlq redrive apply-nomis after the resync:\n%s\n%s", out, errOut)
		t.Logf("redrive apply-nomis after the resync:\n%s", out)
		w.eventually(t, syncWait, "the late redrive skipped", func() string {
			n := 0
			for _, o := range w.readTraffic(t).outcomes {
				if o.prisonNumber == late.number && o.result == "SKIPPED" && o.reason == "deleted_in_dps" {
					n++
				}
			}
			if n == 0 {
				return "no SKIPPED deleted_in_dps outcome for the late redrive: " + w.outcomesOf(t, late.number)
			}
			return ""
		})
		require.Zero(t, pgtest.QueryValue[int](t, w.nomis,
			"SELECT count(*)::int FROM oms_owner.offender_alerts WHERE offender_book_id = $1", late.booking), "the redrive brought the alert back")
		w.synced(t, late.number, "the late redrive")

		// The unknown code: DPS learns it, then apply dps's held commands
		// are redriven.
		w.dps.Exec(t, `INSERT INTO public.alert_code (alert_type_id, code, description, restricted, list_sequence, created_at, created_by)
			SELECT id, 'XZZ', 'Security - new local code', false, 99, now(), 'e2e' FROM public.alert_type WHERE code = 'X'`)
		out, errOut, code = w.cli(t, "apply-dps", nil, "dlq", "redrive", "--stage", "apply-dps", "--alert-key", key(unknownKey))
		require.Zero(t, code, "dlq redrive of the unknown code's alert:\n%s\n%s", out, errOut)
		w.synced(t, unknown.number, "the unknown code's alert after the fix")
		require.Equal(t, "New local code, edited", pgtest.QueryValue[string](t, w.dps, "SELECT description FROM public.alert WHERE prison_number = $1", unknown.number))

		// The over-long NOMIS comment: a NOMIS user shortens it. That
		// change is held behind the failed one in the transformer's hold…
		nu.do(t, func(tx pgx.Tx) { nu.update(t, tx, longNKey, "comment_text = $3", "Shortened to fit DPS") })
		w.eventually(t, syncWait, "the shortening held by the transformer", func() string {
			got := countDLQ(w.dlqList(t), "transform", key(longNKey))
			if want := map[string]int{"mapping held=false hold=open": 1, "held held=true hold=open": 1}; !maps.Equal(got, want) {
				return fmt.Sprintf("transform DLQ entries of %s: %v, want %v", key(longNKey), got, want)
			}
			return ""
		})
		require.Zero(t, pgtest.QueryValue[int](t, w.dps, "SELECT count(*)::int FROM public.alert WHERE prison_number = $1", longN.number),
			"the held change reached DPS")
		// …and the failed record cannot be mended (its text is what it
		// is): redrive discards it and sends the shortening on, which
		// carries the alert's whole state.
		out, errOut, code = w.cli(t, "apply-dps", nil, "dlq", "redrive", "--stage", "transform", "--alert-key", key(longNKey), "--discard-failed")
		require.Zero(t, code, "dlq redrive --stage transform:\n%s\n%s", out, errOut)
		t.Logf("redrive transform:\n%s", out)
		require.Contains(t, out, "transform: redriven 1 hold, 2 records")
		w.synced(t, longN.number, "the shortened NOMIS comment, redriven")
		require.Equal(t, "Shortened to fit DPS", pgtest.QueryValue[string](t, w.dps, "SELECT description FROM public.alert WHERE prison_number = $1", longN.number))
		w.eventually(t, syncWait, "the transformer's hold released", func() string {
			for _, e := range w.dlqList(t) {
				if e.Stage == "transform" && e.Hold != "closed" {
					return fmt.Sprintf("transform entry still held: %+v", e)
				}
			}
			return ""
		})
	})

	t.Run("rows the capture cannot read: redrive resyncs the prisoner", func(t *testing.T) {
		// Two synced alerts; a NOMIS user then types an expiry date in the
		// year 10000 on both (the stand-in's timestamp takes it; the
		// capture reads four-digit years only). Every later change of
		// those rows carries the bad value in its old image: the
		// correction of the first and the deletion of the second go to
		// the DLQ too, and DPS keeps the state before the typo.
		var kept, gone nomisKey
		nu.do(t, func(tx pgx.Tx) {
			kept = nu.create(t, tx, unread, "X", "XA", "Kept", "")
			gone = nu.create(t, tx, unread, "X", "HA", "Deleted later", "")
		})
		w.synced(t, unread.number, "the two alerts the capture will not read")
		nu.do(t, func(tx pgx.Tx) {
			nu.update(t, tx, kept, "expiry_date = $3::timestamp", "10000-01-01 00:00:00")
			nu.update(t, tx, gone, "expiry_date = $3::timestamp", "10000-06-01 00:00:00")
		})
		nu.do(t, func(tx pgx.Tx) { nu.update(t, tx, kept, "expiry_date = NULL, comment_text = $3", "Kept, corrected") })
		nu.do(t, func(tx pgx.Tx) { nu.remove(t, tx, gone) })
		w.eventually(t, syncWait, "the unreadable rows in the DLQ", func() string {
			got := map[string]int{}
			for _, e := range w.dlqList(t) {
				if e.Stage == "capture.nomis" {
					got[e.AlertKey]++
					require.Equal(t, "bad_value", e.ErrorKind, "%+v", e)
					require.Contains(t, e.Error, "column expiry_date")
					require.NotContains(t, e.Error, "10000")
				}
			}
			if want := map[string]int{key(kept): 2, key(gone): 2}; !maps.Equal(got, want) {
				return fmt.Sprintf("capture.nomis entries %v, want %v", got, want)
			}
			return ""
		})
		require.NotEmpty(t, compareStores(t, w, unread.number), "DPS still has the state before the typo")

		out, errOut, code := w.cli(t, "apply-nomis", nil, "dlq", "redrive", "--stage", "capture.nomis", "--all")
		require.Zero(t, code, "dlq redrive --stage capture.nomis:\n%s\n%s", out, errOut)
		t.Logf("redrive capture.nomis:\n%s", out)
		require.Contains(t, out, "capture.nomis: requested 1 prisoner resync (REDRIVE) for 4 entries")
		require.Equal(t, 4, strings.Count(out, fmt.Sprintf("resync of booking %d", unread.booking)), out)
		w.synced(t, unread.number, "the capture's redrive (a REDRIVE resync)")
		require.Equal(t, "Kept, corrected", pgtest.QueryValue[string](t, w.dps,
			"SELECT description FROM public.alert WHERE prison_number = $1 AND deleted_at IS NULL", unread.number))
		require.Equal(t, 1, pgtest.QueryValue[int](t, w.dps,
			"SELECT count(*)::int FROM public.alert WHERE prison_number = $1 AND deleted_at IS NOT NULL", unread.number), "the deletion came over")
	})

	t.Run("holds closed, stores agree, reconcile", func(t *testing.T) {
		for _, e := range w.dlqList(t) {
			require.NotEqual(t, "open", e.Hold, "a hold is still open: %+v", e)
		}
		require.Empty(t, compareStores(t, w, unknown.number, unbooked.number, refused.number, late.number, longN.number, unread.number), "NOMIS and DPS differ")
		before := w.storeState(t)
		time.Sleep(quietFor)
		require.Equal(t, before, w.storeState(t), "alert rows changed after the pipeline went quiet (a loop?)")
		w.reconcile(t)
	})
	t.Logf("TestE2EBadInput took %s", time.Since(began).Round(time.Millisecond))
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func countHeld(entries []dlqEntry, stage, key string) int {
	n := 0
	for _, e := range entries {
		if e.Stage == stage && e.AlertKey == key && e.Held {
			n++
		}
	}
	return n
}
