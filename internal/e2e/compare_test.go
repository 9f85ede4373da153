//go:build broker

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/proctest"
)

// storedAlert is one live alert of a prisoner, in the mapped fields both
// systems hold, as text.
type storedAlert struct {
	code, from, to, status, description, authorised string
	// openEnded: a NOMIS alert INACTIVE without EXPIRY_DATE, which DPS
	// holds with active_to = the date it was made inactive (lossy, see
	// transform/rules): any active_to up to today matches it.
	openEnded bool
}

func (a storedAlert) String() string {
	to := a.to
	if a.openEnded {
		to = "(none)"
	}
	return fmt.Sprintf("{%s %s..%s %s desc=%q auth=%q}", a.code, a.from, to, a.status, a.description, a.authorised)
}

// matches reports whether NOMIS alert a and DPS alert d hold the same
// mapped values.
func (a storedAlert) matches(d storedAlert, today string) bool {
	if a.code != d.code || a.from != d.from || a.status != d.status || a.description != d.description || a.authorised != d.authorised {
		return false
	}
	if a.openEnded {
		return d.to != "" && d.to <= today
	}
	return a.to == d.to
}

// compareStores compares, for each prison number, the live alerts on the
// prisoner's current NOMIS booking with the prisoner's DPS alerts that are
// not soft-deleted, on every mapped field (code, dates, status, comment,
// authorised by), and returns the differences ("" when none). It pairs
// alerts by value rather than through the mapping tables: the quick check
// the tests poll while waiting; each test ends with the real `alertsync
// reconcile` (world.reconcile).
func compareStores(t *testing.T, w *world, numbers ...string) string {
	t.Helper()
	day := today()
	var diffs []string
	for _, pn := range numbers {
		nomis := w.nomisAlerts(t, pn)
		dps := w.dpsAlerts(t, pn, day)
		used := make([]bool, len(dps))
		var onlyNOMIS []storedAlert
	nextNOMIS:
		for _, n := range nomis {
			for i, d := range dps {
				if !used[i] && n.matches(d, day) {
					used[i] = true
					continue nextNOMIS
				}
			}
			onlyNOMIS = append(onlyNOMIS, n)
		}
		var onlyDPS []storedAlert
		for i, d := range dps {
			if !used[i] {
				onlyDPS = append(onlyDPS, d)
			}
		}
		if len(onlyNOMIS)+len(onlyDPS) > 0 {
			diffs = append(diffs, fmt.Sprintf("%s: only in NOMIS %v, only in DPS %v", pn, onlyNOMIS, onlyDPS))
		}
	}
	return strings.Join(diffs, "; ")
}

// nomisAlerts reads the alerts on pn's current booking.
func (w *world) nomisAlerts(t *testing.T, pn string) []storedAlert {
	t.Helper()
	rows, err := w.nomis.Pool.Query(context.Background(), `
SELECT a.alert_code, to_char(a.alert_date, 'YYYY-MM-DD'), coalesce(to_char(a.expiry_date, 'YYYY-MM-DD'), ''), a.alert_status,
       coalesce(a.comment_text, ''), coalesce(a.authorize_person_text, '')
  FROM oms_owner.offender_alerts a
  JOIN oms_owner.offender_bookings b ON b.offender_book_id = a.offender_book_id AND b.booking_seq = 1
  JOIN oms_owner.offenders o ON o.offender_id = b.offender_id
 WHERE o.offender_id_display = $1`, pn)
	require.NoError(t, err)
	defer rows.Close()
	var out []storedAlert
	for rows.Next() {
		var a storedAlert
		require.NoError(t, rows.Scan(&a.code, &a.from, &a.to, &a.status, &a.description, &a.authorised))
		a.openEnded = a.status == "INACTIVE" && a.to == ""
		out = append(out, a)
	}
	require.NoError(t, rows.Err())
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// dpsAlerts reads pn's live DPS alerts; status is derived as DPS does
// (active while active_to is null or after today).
func (w *world) dpsAlerts(t *testing.T, pn, day string) []storedAlert {
	t.Helper()
	rows, err := w.dps.Pool.Query(context.Background(), `
SELECT c.code, to_char(a.active_from, 'YYYY-MM-DD'), coalesce(to_char(a.active_to, 'YYYY-MM-DD'), ''),
       CASE WHEN a.active_to IS NULL OR a.active_to > $2::date THEN 'ACTIVE' ELSE 'INACTIVE' END,
       coalesce(a.description, ''), coalesce(a.authorised_by, '')
  FROM public.alert a JOIN public.alert_code c ON c.id = a.alert_code_id
 WHERE a.prison_number = $1 AND a.deleted_at IS NULL`, pn, day)
	require.NoError(t, err)
	defer rows.Close()
	var out []storedAlert
	for rows.Next() {
		var a storedAlert
		require.NoError(t, rows.Scan(&a.code, &a.from, &a.to, &a.status, &a.description, &a.authorised))
		out = append(out, a)
	}
	require.NoError(t, rows.Err())
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// storeState is every alert row's change marker on both sides – DPS id →
// version and deleted flag, NOMIS key → last audit time – for checking that
// nothing moves once the pipeline is quiet.
func (w *world) storeState(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	rows, err := w.dps.Pool.Query(context.Background(), `SELECT id::text, version, deleted_at IS NOT NULL FROM public.alert`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		var version int
		var deleted bool
		require.NoError(t, rows.Scan(&id, &version, &deleted))
		out["dps "+id] = fmt.Sprintf("version %d deleted %t", version, deleted)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	rows, err = w.nomis.Pool.Query(context.Background(), `SELECT offender_book_id::bigint, alert_seq::bigint, coalesce(audit_timestamp::text, ''), xmin::text
		FROM oms_owner.offender_alerts`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var book, seq int64
		var audit, xmin string
		require.NoError(t, rows.Scan(&book, &seq, &audit, &xmin))
		out[fmt.Sprintf("nomis %d/%d", book, seq)] = "audited " + audit + " xmin " + xmin
	}
	require.NoError(t, rows.Err())
	return out
}

// conflictLog lists the conflict decisions both applies recorded, for
// failure messages.
func (w *world) conflictLog(t *testing.T) string {
	t.Helper()
	var parts []string
	for _, q := range []struct {
		side string
		db   *pgtest.DB
		sql  string
	}{
		{"apply dps", w.dps, `SELECT dps_alert_id::text, winner, source_commit_time::text, coalesce(target_commit_time::text, 'null') FROM alertsync.conflicts ORDER BY id`},
		{"apply nomis", w.nomis, `SELECT dps_alert_id::text, winner, source_commit_time::text, coalesce(target_commit_time::text, 'null') FROM alertsync.alertsync_conflicts ORDER BY id`},
	} {
		rows, err := q.db.Pool.Query(context.Background(), q.sql)
		require.NoError(t, err)
		for rows.Next() {
			var id, winner, src, tgt string
			require.NoError(t, rows.Scan(&id, &winner, &src, &tgt))
			parts = append(parts, fmt.Sprintf("%s: alert %s winner %s source %s target %s", q.side, id, winner, src, tgt))
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	return strings.Join(parts, "; ")
}

// reconcile runs `alertsync reconcile --json` on the two databases and
// requires it to report no difference (exit 0).
func (w *world) reconcile(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.bin, "reconcile", "--json")
	cmd.Env = proctest.Env(map[string]string{
		"ALERTSYNC_DPS_DSN":       w.dps.DSN,
		"ALERTSYNC_NOMIS_DSN":     w.nomis.DSN,
		"ALERTSYNC_NOMIS_DIALECT": "postgres",
		"ALERTSYNC_LOG_FORMAT":    "json",
	})
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "alertsync reconcile reports differences or failed:\n%s", out)
}
