package cli

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
)

// TestApplyNOMISSweepNow: `alertsync apply nomis --sweep-now` runs one
// expiry sweep with the configuration, prints the counts and exits 0 (no
// Kafka needed): a lapsed DPS alert mapped to NOMIS turns INACTIVE there;
// a second run changes nothing.
func TestApplyNOMISSweepNow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nomis, dps := pgtest.NewDB(t), pgtest.NewDB(t)
	nomis.Exec(t, deploy.NOMISSchemaSQL())
	nomis.Exec(t, deploy.NOMISSeedSQL())
	dps.Exec(t, deploy.DPSSchemaSQL())
	dps.Exec(t, deploy.DPSSeedSQL())
	for name, db := range map[string]*pgtest.DB{"nomis": nomis, "dps": dps} {
		set, err := migrate.Named(name)
		require.NoError(t, err)
		_, err = migrate.Up(ctx, db.SQL(t), set, migrate.Latest)
		require.NoError(t, err)
	}
	nomis.Exec(t, `
		INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id) VALUES (1, 'A1234BC', 1);
		INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
		VALUES (10, TIMESTAMP '2024-03-01 10:00:00', 1, 1, 1, 'Y', 'MDI');
		INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date)
		VALUES (10, 1, 'X', 'XA', 'ACTIVE', TIMESTAMP '2024-03-01 00:00:00'), (10, 2, 'X', 'XA', 'ACTIVE', TIMESTAMP '2024-03-01 00:00:00');
		INSERT INTO alertsync.alertsync_alert_mapping (dps_alert_id, offender_book_id, alert_seq, offender_no, mapping_type)
		VALUES ('0190e0a0-0000-7000-8000-000000000001', 10, 1, 'A1234BC', 'DPS_CREATED'),
		       ('0190e0a0-0000-7000-8000-000000000002', 10, 2, 'A1234BC', 'DPS_CREATED');`)
	dps.Exec(t, `INSERT INTO alert (id, alert_code_id, prison_number, active_from, active_to, created_at)
		SELECT v.id::uuid, c.id, 'A1234BC', DATE '2024-03-01', v.active_to, TIMESTAMP '2024-03-01 10:30:00'
		  FROM alert_code c, (VALUES ('0190e0a0-0000-7000-8000-000000000001', DATE '2024-06-01'),
		                             ('0190e0a0-0000-7000-8000-000000000002', NULL::date)) AS v(id, active_to)
		 WHERE c.code = 'XA'`)

	args := []string{"apply", "nomis", "--sweep-now", "--nomis.dsn", nomis.DSN, "--dps.dsn", dps.DSN}
	out, errOut, err := run(t, args...)
	require.NoError(t, err, errOut)
	require.Regexp(t, `^expiry sweep of \d{4}-\d\d-\d\d: 1 lapsed DPS alerts, 1 NOMIS alerts set INACTIVE\n$`, out)
	require.Equal(t, "INACTIVE|2024-06-01|DPS_SYNCHRONISATION,ACTIVE", pgtest.QueryValue[string](t, nomis,
		`SELECT string_agg(concat_ws('|', alert_status, expiry_date::date, audit_module_name), ',' ORDER BY alert_seq) FROM oms_owner.offender_alerts`))

	out, errOut, err = run(t, args...)
	require.NoError(t, err, errOut)
	require.Contains(t, out, ": 1 lapsed DPS alerts, 0 NOMIS alerts set INACTIVE\n", "a second sweep changes nothing")

	_, _, err = run(t, "apply", "nomis", "--sweep-now", "--nomis.dsn", nomis.DSN, "--dps.dsn", dps.DSN, "--apply_nomis.sweep_at", "25:00")
	require.ErrorContains(t, err, "apply_nomis.sweep_at")
}
