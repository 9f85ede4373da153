package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReconcileFindsPlantedDifferences plants each kind of difference
// (and each compared field) into an identical pair of databases and checks
// reconcile reports exactly it.
func TestReconcileFindsPlantedDifferences(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		nomis, dps string // SQL run on each side after the fixture
		want       []string
	}{
		{name: "identical", want: []string{}},
		{name: "missing in DPS", dps: `DELETE FROM alert WHERE id = '` + u1 + `'`,
			want: []string{"A1111AA missing_in_dps side= match=false fields="}},
		{name: "missing in NOMIS", nomis: `DELETE FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 2`,
			want: []string{"A1111AA missing_in_nomis side= match=false fields="}},
		{name: "field code", nomis: `UPDATE oms_owner.offender_alerts SET alert_code = 'XCU' WHERE offender_book_id = 10 AND alert_seq = 1`,
			want: []string{"A1111AA field side= match=false fields=code"}},
		{name: "field type", nomis: `UPDATE oms_owner.offender_alerts SET alert_type = 'H' WHERE offender_book_id = 10 AND alert_seq = 1`,
			want: []string{"A1111AA field side= match=false fields=type"}},
		{name: "field active_from", dps: `UPDATE alert SET active_from = DATE '2024-03-02' WHERE id = '` + u1 + `'`,
			want: []string{"A1111AA field side= match=false fields=active_from"}},
		{name: "field active_to", dps: `UPDATE alert SET active_to = DATE '2099-01-01' WHERE id = '` + u1 + `'`,
			want: []string{"A1111AA field side= match=false fields=active_to"}},
		{name: "field active_to of an INACTIVE alert without expiry", dps: `UPDATE alert SET active_to = NULL WHERE id = '` + u3 + `'`,
			want: []string{"A1111AA field side= match=false fields=active_to,status"}},
		{name: "field status", nomis: `UPDATE oms_owner.offender_alerts SET alert_status = 'ACTIVE' WHERE offender_book_id = 10 AND alert_seq = 2`,
			want: []string{"A1111AA field side= match=false fields=status"}},
		{name: "field description", dps: `UPDATE alert SET description = 'Risk to visitors' WHERE id = '` + u1 + `'`,
			want: []string{"A1111AA field side= match=false fields=description"}},
		{name: "field description beyond NOMIS's 4000 bytes", dps: `UPDATE alert SET description = repeat('é', 1999) || 'x' WHERE id = '` + u3 + `'`,
			want: []string{"A1111AA field side= match=false fields=description"}},
		{name: "field authorised_by", nomis: `UPDATE oms_owner.offender_alerts SET authorize_person_text = 'Deputy' WHERE offender_book_id = 10 AND alert_seq = 1`,
			want: []string{"A1111AA field side= match=false fields=authorised_by"}},
		{name: "unmapped NOMIS alert",
			nomis: `INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_date, alert_type, alert_code, alert_status)
			        VALUES (40, 2, TIMESTAMP '2024-05-01 00:00:00', 'H', 'HA', 'ACTIVE')`,
			want: []string{"D4444DD unmapped side=NOMIS match=false fields="}},
		{name: "unmapped DPS alert of a prisoner NOMIS does not list",
			dps: `INSERT INTO alert (id, alert_code_id, prison_number, active_from, created_at)
			      VALUES ('` + u4 + `', (SELECT id FROM alert_code WHERE code = 'HA'), 'C3333CC', DATE '2024-05-01', now())`,
			want: []string{"C3333CC unmapped side=DPS match=false fields="}},
		{name: "unmapped on both sides but matching",
			nomis: `INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_date, alert_type, alert_code, alert_status, comment_text)
			        VALUES (40, 2, TIMESTAMP '2024-05-01 00:00:00', 'H', 'HA', 'ACTIVE', 'a')`,
			dps: `INSERT INTO alert (id, alert_code_id, prison_number, description, active_from, created_at)
			      VALUES ('` + u4 + `', (SELECT id FROM alert_code WHERE code = 'HA'), 'D4444DD', 'b', DATE '2024-05-01', now())`,
			want: []string{"D4444DD unmapped side= match=true fields=description"}},
		{name: "deleted in DPS but present in NOMIS", dps: `UPDATE alert SET deleted_at = now() WHERE id = '` + u1 + `'`,
			want: []string{"A1111AA deleted_but_present side=NOMIS match=false fields="}},
		{name: "mapping deleted but both present", dps: `UPDATE alertsync.alert_mapping SET deleted = true, deleted_at = now() WHERE dps_alert_id = '` + u2 + `'`,
			want: []string{"A1111AA deleted_but_present side=NOMIS match=false fields="}},
		// The sync deleted the row its NOMIS-side mapping names; a row under
		// that key now is an alert NOMIS created since (ALERT_SEQ is max + 1):
		// without a DPS counterpart it is unmapped, not the deleted one.
		{name: "present in NOMIS under a key whose NOMIS-side mapping is deleted",
			nomis: `UPDATE alertsync.alertsync_alert_mapping SET deleted_at = now() WHERE dps_alert_id = '` + u1 + `'`,
			dps:   `DELETE FROM alert WHERE id = '` + u1 + `'`,
			want:  []string{"A1111AA unmapped side=NOMIS match=false fields="}},
		{name: "DPS-side mapping deleted, DPS alert live, NOMIS row gone",
			nomis: `DELETE FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 2`,
			dps:   `UPDATE alertsync.alert_mapping SET deleted = true, deleted_at = now() WHERE dps_alert_id = '` + u2 + `'`,
			want:  []string{"A1111AA deleted_but_present side=DPS match=false fields="}},
		{name: "NOMIS code DPS does not know", nomis: `UPDATE oms_owner.offender_alerts SET alert_code = 'NOSUCH' WHERE offender_book_id = 40 AND alert_seq = 1`,
			want: []string{"D4444DD field side= match=false fields=code"}},
		{name: "invalid NOMIS row", nomis: `UPDATE oms_owner.offender_alerts SET alert_code = 'NOSUCH', alert_type = '' WHERE offender_book_id = 40 AND alert_seq = 1`,
			want: []string{"D4444DD invalid side=NOMIS match=false fields="}},
		{name: "alerts of an older booking are not compared",
			nomis: `UPDATE oms_owner.offender_alerts SET comment_text = 'changed' WHERE offender_book_id = 11`,
			want:  []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newFixtureWorld(t)
			if tc.nomis != "" {
				w.nomis.Exec(t, tc.nomis)
			}
			if tc.dps != "" {
				w.dps.Exec(t, tc.dps)
			}
			for _, page := range []int{1, 1000} {
				res, err := w.reconciler(t, page).Run(t.Context(), RunOptions{})
				require.NoError(t, err)
				require.Equal(t, tc.want, summary(res.Differences), "page size %d", page)
				// A1111AA and D4444DD (B2222BB has no current booking), and
				// C3333CC when DPS has it.
				require.Equal(t, 2+boolInt(strings.Contains(tc.dps, "C3333CC")), res.PrisonersChecked, "page size %d", page)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestReconcileCounts checks the counts of a clean run and --prison-number.
func TestReconcileCounts(t *testing.T) {
	t.Parallel()
	w := newFixtureWorld(t)
	res, err := w.reconciler(t, 2).Run(t.Context(), RunOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, res.PrisonersChecked, "A1111AA and D4444DD: B2222BB has no current booking, DPS adds none")
	require.Equal(t, 4, res.NOMISAlerts)
	require.Equal(t, 4, res.DPSAlerts)
	require.Empty(t, res.Differences)

	w.dps.Exec(t, `UPDATE alert SET description = 'changed' WHERE id = '`+u5+`'`)
	res, err = w.reconciler(t, 2).Run(t.Context(), RunOptions{PrisonNumber: "A1111AA"})
	require.NoError(t, err)
	require.Equal(t, 1, res.PrisonersChecked)
	require.Empty(t, res.Differences, "the difference is D4444DD's")
	res, err = w.reconciler(t, 2).Run(t.Context(), RunOptions{PrisonNumber: "D4444DD"})
	require.NoError(t, err)
	require.Equal(t, []string{"D4444DD field side= match=false fields=description"}, summary(res.Differences))
}

// TestRecheck: a difference that is gone when the prisoner is read again
// is not reported; one that stays is.
func TestRecheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		fix   string // DPS SQL run between the passes
		want  []string
		reads int
	}{
		{name: "difference gone by the re-check", fix: `UPDATE alert SET description = 'Risk to staff' WHERE id = '` + u1 + `'`, want: []string{}},
		{name: "difference still there", fix: `SELECT 1`, want: []string{"A1111AA field side= match=false fields=description"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newFixtureWorld(t)
			w.dps.Exec(t, `UPDATE alert SET description = 'in flight' WHERE id = '`+u1+`'`)
			r := w.reconciler(t, 1000)
			var hooked []string
			r.beforeRecheck = func(_ context.Context, prisoners []string) error {
				hooked = prisoners
				w.dps.Exec(t, tc.fix)
				return nil
			}
			res, err := r.Run(t.Context(), RunOptions{})
			require.NoError(t, err)
			require.Equal(t, []string{"A1111AA"}, hooked, "only the differing prisoner is re-read")
			require.Equal(t, 1, res.Rechecked)
			require.Equal(t, tc.want, summary(res.Differences))
		})
	}
}

// TestReportHidesValues: values appear only with ShowValues.
func TestReportHidesValues(t *testing.T) {
	t.Parallel()
	w := newFixtureWorld(t)
	w.dps.Exec(t, `UPDATE alert SET description = 'secret text' WHERE id = '`+u1+`'`)
	for _, show := range []bool{false, true} {
		res, err := w.reconciler(t, 1000).Run(t.Context(), RunOptions{ShowValues: show})
		require.NoError(t, err)
		var table, js bytes.Buffer
		require.NoError(t, WriteTable(&table, res))
		require.NoError(t, WriteJSON(&js, res))
		require.Equal(t, show, strings.Contains(table.String(), "secret text"), table.String())
		require.Equal(t, show, strings.Contains(js.String(), "secret text"), js.String())
		require.Contains(t, table.String(), "description")
		var back Result
		require.NoError(t, json.Unmarshal(js.Bytes(), &back))
		require.Len(t, back.Differences, 1)
		require.Equal(t, KindField, back.Differences[0].Kind)
	}
}
