package reconcile

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
)

// benchPrisoners and benchAlertsPerPrisoner size the benchmark: 100,000
// prisoners with 5 alerts each on both sides.
const (
	benchPrisoners         = 100_000
	benchAlertsPerPrisoner = 5
)

// benchNOMISSQL seeds the NOMIS stand-in (triggers off: the journal is not
// what is measured). Odd alert sequences are mapped on the NOMIS side,
// even ones on the DPS side; the fifth alert is INACTIVE with an expiry.
const benchNOMISSQL = `
SET session_replication_role = replica;
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id)
SELECT i, chr(65 + i / 10000) || lpad((i % 10000)::text, 4, '0') || 'BC', i FROM generate_series(0, 99999) i;
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag)
SELECT i + 1, TIMESTAMP '2024-01-01 09:00:00', i, i, 1, 'Y' FROM generate_series(0, 99999) i;
INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_date, expiry_date, alert_type, alert_code, alert_status,
                                       authorize_person_text, comment_text, caseload_id)
SELECT i + 1, s, TIMESTAMP '2023-01-01 10:00:00' + (i % 300) * INTERVAL '1 day',
       CASE WHEN s = 5 THEN TIMESTAMP '2024-06-01 00:00:00' END,
       left((ARRAY['XA','HA','XCA','XCU','HS'])[s], 1), (ARRAY['XA','HA','XCA','XCU','HS'])[s],
       CASE WHEN s = 5 THEN 'INACTIVE' ELSE 'ACTIVE' END,
       'Governor', 'Comment on alert ' || i || '/' || s, 'MDI'
  FROM generate_series(0, 99999) i, generate_series(1, 5) s;
INSERT INTO alertsync.alertsync_alert_mapping (dps_alert_id, offender_book_id, alert_seq, offender_no, mapping_type)
SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(i * 8 + s), 12, '0'))::uuid, i + 1, s,
       chr(65 + i / 10000) || lpad((i % 10000)::text, 4, '0') || 'BC', 'DPS_CREATED'
  FROM generate_series(0, 99999) i, generate_series(1, 5, 2) s;`

// benchDPSSQL seeds the DPS twin of benchNOMISSQL.
const benchDPSSQL = `
SET session_replication_role = replica;
INSERT INTO alert (id, alert_code_id, prison_number, description, authorised_by, active_from, active_to, created_at, prison_code_when_created)
SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(i * 8 + s), 12, '0'))::uuid,
       (SELECT id FROM alert_code WHERE code = (ARRAY['XA','HA','XCA','XCU','HS'])[s]),
       chr(65 + i / 10000) || lpad((i % 10000)::text, 4, '0') || 'BC',
       'Comment on alert ' || i || '/' || s, 'Governor', DATE '2023-01-01' + (i % 300),
       CASE WHEN s = 5 THEN DATE '2024-06-01' END, TIMESTAMP '2023-01-01 10:00:00', 'MDI'
  FROM generate_series(0, 99999) i, generate_series(1, 5) s;
INSERT INTO alertsync.alert_mapping (dps_alert_id, nomis_booking_id, nomis_alert_seq, offender_no, mapping_type)
SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(i * 8 + s), 12, '0'))::uuid, i + 1, s,
       chr(65 + i / 10000) || lpad((i % 10000)::text, 4, '0') || 'BC', 'NOMIS_CREATED'
  FROM generate_series(0, 99999) i, generate_series(2, 4, 2) s;`

// BenchmarkReconcile measures a full reconcile of 100,000 prisoners with
// 500,000 alerts on each side (no differences), in prisoners/s, against a
// plain full scan of both alert tables read the same way (database/sql,
// both sides at once) with no ordering, grouping or comparison.
func BenchmarkReconcile(b *testing.B) {
	w := newWorld(b)
	start := time.Now()
	w.nomis.Exec(b, benchNOMISSQL)
	w.dps.Exec(b, benchDPSSQL)
	w.nomis.Exec(b, "VACUUM ANALYZE")
	w.dps.Exec(b, "VACUUM ANALYZE")
	b.Logf("seeded %d prisoners × %d alerts per side in %s", benchPrisoners, benchAlertsPerPrisoner, time.Since(start).Round(time.Millisecond))

	b.Run("reconcile", func(b *testing.B) {
		r := w.reconciler(b, 2000)
		b.ResetTimer()
		for range b.N {
			res, err := r.Run(context.Background(), RunOptions{})
			require.NoError(b, err)
			require.Equal(b, benchPrisoners, res.PrisonersChecked)
			require.Equal(b, benchPrisoners*benchAlertsPerPrisoner, res.NOMISAlerts)
			require.Empty(b, res.Differences)
		}
		b.ReportMetric(float64(b.N*benchPrisoners)/b.Elapsed().Seconds(), "prisoners/s")
	})
	b.Run("full_scan", func(b *testing.B) {
		for range b.N {
			var g errgroup.Group
			g.Go(func() error {
				return scanAll(w.nomisDB, `SELECT a.offender_book_id::bigint, a.alert_seq::int, a.alert_date, a.expiry_date, a.alert_type, a.alert_code,
				       a.alert_status, a.authorize_person_text, a.comment_text, a.create_datetime, a.create_user_id FROM oms_owner.offender_alerts a`, 11)
			})
			g.Go(func() error {
				return scanAll(w.dpsDB, `SELECT a.prison_number, a.id::text, a.alert_code_id, a.description, a.authorised_by,
				       a.active_from, a.active_to, a.created_at, a.deleted_at FROM alert a`, 9)
			})
			require.NoError(b, g.Wait())
		}
		b.ReportMetric(float64(b.N*benchPrisoners)/b.Elapsed().Seconds(), "prisoners/s")
	})
}

// scanAll reads every row of q, n columns each.
func scanAll(db *sql.DB, q string, n int) error {
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }()
	dest := make([]any, n)
	for i := range dest {
		dest[i] = new(any)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
	}
	return rows.Err()
}
