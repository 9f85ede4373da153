package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/reconcile"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
)

const reconcileAlertID = "00000000-0000-7000-8000-0000000000aa"

// reconcileDBs returns a NOMIS stand-in and a DPS database holding the
// same alert of A1234BC, mapped on the DPS side.
func reconcileDBs(t *testing.T) (nomis, dps *pgtest.DB) {
	t.Helper()
	nomis, dps = pgtest.NewDB(t), pgtest.NewDB(t)
	nomis.Exec(t, deploy.NOMISSchemaSQL())
	nomis.Exec(t, deploy.NOMISSeedSQL())
	dps.Exec(t, deploy.DPSSchemaSQL())
	dps.Exec(t, deploy.DPSSeedSQL())
	for name, d := range map[string]*pgtest.DB{"nomis": nomis, "dps": dps} {
		set, err := migrate.Named(name)
		require.NoError(t, err)
		_, err = migrate.Up(t.Context(), d.SQL(t), set, migrate.Latest)
		require.NoError(t, err)
	}
	nomis.Exec(t, `
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id) VALUES (1, 'A1234BC', 1);
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag)
VALUES (10, TIMESTAMP '2024-03-01 10:00:00', 1, 1, 1, 'Y');
INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_date, alert_type, alert_code, alert_status, comment_text)
VALUES (10, 1, TIMESTAMP '2024-03-01 10:00:00', 'X', 'XA', 'ACTIVE', 'Risk to staff');`)
	dps.Exec(t, `
INSERT INTO alert (id, alert_code_id, prison_number, description, active_from, created_at)
VALUES ('`+reconcileAlertID+`', (SELECT id FROM alert_code WHERE code = 'XA'), 'A1234BC', 'Risk to staff', DATE '2024-03-01', now());
INSERT INTO alertsync.alert_mapping (dps_alert_id, nomis_booking_id, nomis_alert_seq, offender_no, mapping_type)
VALUES ('`+reconcileAlertID+`', 10, 1, 'A1234BC', 'NOMIS_CREATED');`)
	return nomis, dps
}

// TestReconcileCommand: exit status 0 and an empty JSON report on equal
// sides; an error wrapping ErrDifferences (exit 1) and the difference in
// the JSON report when they differ; the same from the real binary.
func TestReconcileCommand(t *testing.T) {
	t.Parallel()
	nomis, dps := reconcileDBs(t)
	args := []string{"reconcile", "--json", "--dps.dsn=" + dps.DSN, "--nomis.dsn=" + nomis.DSN, "--reconcile.recheck_delay=0s", "--log.level=error"}

	out, errOut, err := run(t, args...)
	require.NoError(t, err, errOut)
	var res reconcile.Result
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	require.Equal(t, 1, res.PrisonersChecked)
	require.Empty(t, res.Differences)

	dps.Exec(t, `UPDATE alert SET active_from = DATE '2024-03-02' WHERE id = '`+reconcileAlertID+`'`)
	out, errOut, err = run(t, args...)
	require.ErrorIs(t, err, reconcile.ErrDifferences, errOut)
	var ue *UsageError
	require.False(t, errors.As(err, &ue), "differences are exit 1, not a usage error")
	res = reconcile.Result{}
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	require.Len(t, res.Differences, 1)
	require.Equal(t, reconcile.KindField, res.Differences[0].Kind)
	require.Equal(t, "active_from", res.Differences[0].Fields[0].Field)
	require.Nil(t, res.Differences[0].Fields[0].DPS, "no values without --show-values")

	_, _, err = run(t, "reconcile", "--dps.dsn="+dps.DSN, "extra")
	require.ErrorAs(t, err, &ue, "a stray argument is a usage error")
	out, _, err = run(t, "reconcile", "--dps.dsn="+dps.DSN, "--nomis.dsn="+nomis.DSN, "--reconcile.recheck_delay=0s", "--prison-number=Z9999ZZ", "--log.level=error")
	require.NoError(t, err, "another prisoner is clean")
	require.Contains(t, out, "no differences")
	_, _, err = run(t, "reconcile", "--dps.dsn="+dps.DSN, "--nomis.dsn="+nomis.DSN, "--reconcile.page_size=0")
	require.ErrorContains(t, err, "reconcile.page_size")

	bin := filepath.Join(t.TempDir(), "alertsync")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../../cmd/alertsync")
	b, err := build.CombinedOutput()
	require.NoError(t, err, string(b))
	for _, tc := range []struct {
		fix  string
		code int
	}{
		{"SELECT 1", 1},
		{`UPDATE alert SET active_from = DATE '2024-03-01' WHERE id = '` + reconcileAlertID + `'`, 0},
	} {
		dps.Exec(t, tc.fix)
		cmd := exec.CommandContext(t.Context(), bin, args...)
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		require.Equal(t, tc.code, code, buf.String())
	}
}

// TestReconcileJob: with --every, reconcile runs repeatedly and serves its
// counts on /metrics.
func TestReconcileJob(t *testing.T) {
	t.Parallel()
	nomis, dps := reconcileDBs(t)
	dps.Exec(t, `UPDATE alert SET description = 'changed' WHERE id = '`+reconcileAlertID+`'`)
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"reconcile", "--every=200ms", "--admin.listen=" + addr, "--dps.dsn=" + dps.DSN, "--nomis.dsn=" + nomis.DSN,
			"--reconcile.recheck_delay=0s", "--log.level=error"}, io.Discard, os.Stderr)
	}()
	var body string
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/metrics") //nolint:noctx // a test poll
		if err != nil {
			return false
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return strings.Contains(body, `alertsync_reconcile_runs_total{result="differences"} 2`)
	}, 30*time.Second, 50*time.Millisecond, "two runs with differences on /metrics")
	require.Contains(t, body, "alertsync_reconcile_prisoners_checked 1")
	require.Contains(t, body, `alertsync_reconcile_differences{kind="field"} 1`)
	require.Contains(t, body, "alertsync_reconcile_last_run_duration_seconds")
	cancel()
	require.NoError(t, <-done, "a cancelled job stops cleanly")
}
