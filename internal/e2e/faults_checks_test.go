//go:build broker

package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/testenv/pgtest"
)

// ledgers is what the users of both sides committed, read back from the
// e2e_ledger tables: per side and op how many, and per alert how many
// changes (NOMIS alerts by "booking/seq", DPS alerts by id).
type ledgers struct {
	byOp    map[string]int // "NOMIS create" → n
	byAlert map[string]int // "NOMIS 300001/4", "DPS <uuid>" → n
}

func (l ledgers) total(side string) int {
	n := 0
	for k, v := range l.byOp {
		if strings.HasPrefix(k, side+" ") {
			n += v
		}
	}
	return n
}

func readLedgers(t *testing.T, w *world) ledgers {
	t.Helper()
	l := ledgers{byOp: map[string]int{}, byAlert: map[string]int{}}
	for _, db := range []*pgtest.DB{w.nomis, w.dps} {
		rows, err := db.Pool.Query(context.Background(), `SELECT side, op,
			CASE WHEN side = 'NOMIS' THEN booking::text || '/' || alert_seq::text ELSE dps_alert_id::text END
			FROM e2e_ledger.change`)
		require.NoError(t, err)
		for rows.Next() {
			var side, op, key string
			require.NoError(t, rows.Scan(&side, &op, &key))
			l.byOp[side+" "+op]++
			l.byAlert[side+" "+key]++
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	return l
}

// distinct returns the commands by id (a change sent again after a fault
// carries the same deterministic id).
func (tr traffic) distinct(cmds []command) map[string]command {
	out := map[string]command{}
	for _, c := range cmds {
		out[c.id] = c
	}
	return out
}

// answered counts the distinct commands that have an outcome.
func (tr traffic) answered() int {
	has := map[string]bool{}
	for _, o := range tr.outcomes {
		has[o.commandID] = true
	}
	n := 0
	for id := range tr.distinct(append(append([]command{}, tr.toDPS...), tr.toNOMIS...)) {
		if has[id] {
			n++
		}
	}
	return n
}

// checkExactlyOnce checks the delivered traffic and both stores against the
// ledgers and returns the counts for the summary:
//   - no loop: every command to DPS comes from NOMIS and every command to
//     NOMIS from DPS;
//   - per alert, as many distinct commands as its side's users made
//     changes (none lost, none made up);
//   - every command applied: at least one APPLIED outcome, and any other
//     outcome of it only a repeat (APPLIED again: an outbox row published
//     twice) or a SKIPPED stale_position (a redelivered command); no DLQ.
//     Except: a command to NOMIS for an alert DPS has deleted may be
//     SKIPPED deleted_in_dps (its create came after the delete) and then
//     unknown_alert (its later changes);
//   - per NOMIS alert, one DPS audit event of source NOMIS per change (no
//     duplicate effect); one mapping row per created alert on each side;
//     as many alert rows as were created (DPS) or are live (NOMIS).
func (w *world) checkExactlyOnce(t *testing.T, led ledgers, tr traffic) [][2]string {
	t.Helper()
	for _, c := range tr.toDPS {
		require.Equal(t, "NOMIS", c.origin, "a command to DPS that did not come from NOMIS (a loop): %+v", c)
	}
	for _, c := range tr.toNOMIS {
		require.Equal(t, "DPS", c.origin, "a command to NOMIS that did not come from DPS (a loop): %+v", c)
	}

	toDPS, toNOMIS := tr.distinct(tr.toDPS), tr.distinct(tr.toNOMIS)
	perAlert := map[string]int{}
	for _, c := range toDPS {
		perAlert["NOMIS "+c.nomisKey]++
	}
	for _, c := range toNOMIS {
		perAlert["DPS "+c.dpsID]++
	}
	requireSameCounts(t, led.byAlert, perAlert, "user changes per alert (ledger) against distinct commands per alert (topics)")

	byCmd := traffic{outcomes: tr.outcomes}.outcomesByCommand()
	results := map[string]int{}
	repeats := 0
	deletedInDPS := w.deletedDPSAlerts(t)
	inNOMIS := map[string]bool{}   // DPS alerts a command to NOMIS was applied for
	neverMade := map[string]bool{} // DPS alerts with a command to NOMIS skipped as gone
	for id := range mergeKeys(toDPS, toNOMIS) {
		outs := byCmd[id]
		applied, gone := 0, 0
		for _, o := range outs {
			key := o.target + " " + o.result + " " + o.reason
			switch {
			case o.result == "APPLIED" && o.reason == "":
				applied++
				if o.target == "NOMIS" {
					inNOMIS[toNOMIS[id].dpsID] = true
				}
				if applied > 1 {
					repeats++
					continue
				}
			case o.result == "SKIPPED" && o.reason == "stale_position":
				repeats++
			case o.target == "NOMIS" && o.result == "SKIPPED" && (o.reason == "deleted_in_dps" || o.reason == "unknown_alert"):
				// A DPS alert created (and maybe edited) and deleted
				// before apply nomis got to its create: the create is
				// not made (DPS has deleted the alert since), so its
				// later changes meet no NOMIS alert. Only for an alert
				// DPS has deleted.
				require.True(t, deletedInDPS[toNOMIS[id].dpsID], "command %s: %s for an alert DPS has not deleted (all outcomes: %+v)", id, key, outs)
				neverMade[toNOMIS[id].dpsID] = true
				gone++
			default:
				require.Failf(t, "unexpected outcome", "command %s: %s (all outcomes: %+v)", id, key, outs)
			}
			results[key]++
		}
		require.Positive(t, applied+gone, "command %s was never applied: outcomes %+v", id, outs)
		delete(byCmd, id)
	}
	require.Empty(t, byCmd, "outcomes of commands never sent")
	require.Zero(t, tr.dlq, "records in the DLQ")

	w.requireOneAlertPerNOMISKey(t)

	// No duplicate effect: per NOMIS alert, one DPS audit event of source
	// NOMIS per NOMIS change.
	audits := map[string]int{}
	rows, err := w.dps.Pool.Query(context.Background(), `SELECT m.nomis_booking_id::text || '/' || m.nomis_alert_seq::text, count(e.id)::int
		FROM alertsync.alert_mapping m JOIN public.audit_event e ON e.alert_id = m.dps_alert_id AND e.source = 'NOMIS'
		WHERE m.mapping_type = 'NOMIS_CREATED' GROUP BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var key string
		var n int
		require.NoError(t, rows.Scan(&key, &n))
		audits["NOMIS "+key] = n
	}
	require.NoError(t, rows.Err())
	rows.Close()
	nomisLed := map[string]int{}
	for k, v := range led.byAlert {
		if strings.HasPrefix(k, "NOMIS ") {
			nomisLed[k] = v
		}
	}
	requireSameCounts(t, nomisLed, audits, "NOMIS user changes per alert (ledger) against DPS audit events of source NOMIS per alert")
	require.Zero(t, pgtest.QueryValue[int](t, w.dps, `SELECT count(*)::int FROM public.audit_event e
		WHERE e.source = 'NOMIS' AND e.alert_id NOT IN (SELECT dps_alert_id FROM alertsync.alert_mapping WHERE mapping_type = 'NOMIS_CREATED')`),
		"DPS audit events of source NOMIS on alerts the sync did not create")

	mapDPS := pgtest.QueryValue[int](t, w.dps, `SELECT count(*)::int FROM alertsync.alert_mapping WHERE mapping_type = 'NOMIS_CREATED'`)
	require.Equal(t, led.byOp["NOMIS create"], mapDPS, "DPS mapping rows of alerts created from NOMIS against NOMIS creates")
	// An alert whose every command to NOMIS was skipped as gone was never
	// made in NOMIS; one with a skipped later command after an applied
	// create was (its delete is what the skip is).
	for id := range inNOMIS {
		delete(neverMade, id)
	}
	mapNOMIS := pgtest.QueryValue[int](t, w.nomis, `SELECT count(*)::int FROM alertsync.alertsync_alert_mapping WHERE mapping_type = 'DPS_CREATED'`)
	require.Equal(t, led.byOp["DPS create"]-len(neverMade), mapNOMIS,
		"NOMIS mapping rows of alerts created from DPS against DPS creates less the %d deleted in DPS before apply nomis made them", len(neverMade))
	dpsRows := pgtest.QueryValue[int](t, w.dps, `SELECT count(*)::int FROM public.alert`)
	require.Equal(t, led.byOp["DPS create"]+led.byOp["NOMIS create"], dpsRows, "DPS alert rows (live or soft-deleted) against creates on both sides")
	nomisRows := pgtest.QueryValue[int](t, w.nomis, `SELECT count(*)::int FROM oms_owner.offender_alerts`)
	live := led.byOp["NOMIS create"] - led.byOp["NOMIS delete"] + led.byOp["DPS create"] - led.byOp["DPS delete"]
	require.Equal(t, live, nomisRows, "NOMIS alert rows against live alerts of both sides")

	return [][2]string{
		{"commands to DPS (records / distinct)", fmt.Sprintf("%d / %d", len(tr.toDPS), len(toDPS))},
		{"commands to NOMIS (records / distinct)", fmt.Sprintf("%d / %d", len(tr.toNOMIS), len(toNOMIS))},
		{"outcomes (records)", fmt.Sprintf("%d", len(tr.outcomes))},
		{"DPS alerts deleted before apply nomis made them", fmt.Sprintf("%d", len(neverMade))},
		{"outcomes by target, result, reason", strings.ReplaceAll(describe(results), "\n", "; ")},
		{"repeated deliveries (outcomes beyond the first APPLIED)", fmt.Sprintf("%d", repeats)},
		{"DPS audit events of source NOMIS", fmt.Sprintf("%d", sumValues(audits))},
		{"mapping rows (DPS NOMIS_CREATED / NOMIS DPS_CREATED)", fmt.Sprintf("%d / %d", mapDPS, mapNOMIS)},
		{"alert rows (DPS incl. soft-deleted / NOMIS)", fmt.Sprintf("%d / %d", dpsRows, nomisRows)},
		{"DLQ records", fmt.Sprintf("%d", tr.dlq)},
	}
}

// requireSameCounts fails with the first differing keys when want and got
// differ.
func requireSameCounts(t *testing.T, want, got map[string]int, what string) {
	t.Helper()
	var diffs []string
	for k, v := range want {
		if got[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s: want %d, got %d", k, v, got[k]))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: want 0, got %d", k, v))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 20 {
		diffs = append(diffs[:20], fmt.Sprintf("… and %d more", len(diffs)-20))
	}
	require.Empty(t, diffs, "%s (%d keys expected)", what, len(want))
}

func mergeKeys[V any](ms ...map[string]V) map[string]struct{} {
	out := map[string]struct{}{}
	for _, m := range ms {
		for k := range m {
			out[k] = struct{}{}
		}
	}
	return out
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// requireOneAlertPerNOMISKey fails t (and goes on) when a NOMIS key is linked to an alert
// the sync created in DPS (DPS-side mapping, NOMIS_CREATED) and to one the
// sync created in NOMIS (NOMIS-side mapping, DPS_CREATED): two alerts then
// shared one key. A NOMIS-side mapping marked deleted does not count: the
// sync deleted its row, and NOMIS gives the key (ALERT_SEQ = max + 1) to the
// next alert created on the booking, which is a new alert on both sides.
// The message gives each such key's history from the
// ledgers and both mappings, with commit times.
func (w *world) requireOneAlertPerNOMISKey(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	keys := func(db *pgtest.DB, sql string) map[string]string {
		out := map[string]string{}
		rows, err := db.Pool.Query(ctx, sql)
		require.NoError(t, err)
		defer rows.Close()
		for rows.Next() {
			var k, v string
			require.NoError(t, rows.Scan(&k, &v))
			out[k] = v
		}
		require.NoError(t, rows.Err())
		return out
	}
	fromNOMIS := keys(w.dps, `SELECT nomis_booking_id::text || '/' || nomis_alert_seq::text,
		format('DPS-side mapping %s → DPS %s, created %s, updated %s', mapping_type, dps_alert_id, created_at, updated_at)
		FROM alertsync.alert_mapping WHERE mapping_type = 'NOMIS_CREATED'`)
	fromDPS := keys(w.nomis, `SELECT offender_book_id::text || '/' || alert_seq::text,
		format('NOMIS-side mapping %s → DPS %s, created %s, updated %s, deleted %s', mapping_type, dps_alert_id, created_at, updated_at, deleted_at)
		FROM alertsync.alertsync_alert_mapping WHERE mapping_type = 'DPS_CREATED' AND deleted_at IS NULL`)
	var both []string
	for k, v := range fromDPS {
		if u, ok := fromNOMIS[k]; ok {
			hist := keys(w.nomis, fmt.Sprintf(`SELECT id::text, format('NOMIS user %%s committed %%s', op, pg_xact_commit_timestamp(xmin))
				FROM e2e_ledger.change WHERE side = 'NOMIS' AND booking::text || '/' || alert_seq::text = '%s'`, k))
			dpsID := strings.Fields(strings.SplitN(v, "→ DPS ", 2)[1])[0]
			dpsHist := keys(w.dps, fmt.Sprintf(`SELECT id::text, format('DPS user %%s of %%s committed %%s', op, dps_alert_id, pg_xact_commit_timestamp(xmin))
				FROM e2e_ledger.change WHERE dps_alert_id = '%s'`, strings.TrimSuffix(dpsID, ",")))
			var lines []string
			for _, m := range []map[string]string{hist, dpsHist} {
				for _, l := range m {
					lines = append(lines, l)
				}
			}
			sort.Strings(lines)
			both = append(both, fmt.Sprintf("NOMIS key %s:\n  %s\n  %s\n  %s", k, u, v, strings.Join(lines, "\n  ")))
		}
	}
	sort.Strings(both)
	assert.Empty(t, both, "NOMIS keys linked to two alerts, one created from each side")
}

// deletedDPSAlerts returns the ids of the DPS alerts deleted in DPS.
func (w *world) deletedDPSAlerts(t *testing.T) map[string]bool {
	t.Helper()
	rows, err := w.dps.Pool.Query(context.Background(), "SELECT id::text FROM public.alert WHERE deleted_at IS NOT NULL")
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		out[id] = true
	}
	require.NoError(t, rows.Err())
	return out
}
