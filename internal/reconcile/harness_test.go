package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Alert ids of the fixture.
const (
	u1 = "00000000-0000-7000-8000-000000000001"
	u2 = "00000000-0000-7000-8000-000000000002"
	u3 = "00000000-0000-7000-8000-000000000003"
	u4 = "00000000-0000-7000-8000-000000000004"
	u5 = "00000000-0000-7000-8000-000000000005"
)

// nomisFixtureSQL: A1111AA has current booking 10 (three alerts) and an
// older booking 11 (one alert, never compared); B2222BB only an older
// booking; D4444DD current booking 40 with one alert. Seq 10:1 and 40:1
// are mapped on the NOMIS side, 10:2 and 10:3 on the DPS side. 10:3 is
// INACTIVE without expiry and has a comment of 4000 bytes (the DPS one is
// 4002 bytes: NOMIS holds it cut).
const nomisFixtureSQL = `
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id)
VALUES (1, 'A1111AA', 1), (2, 'B2222BB', 2), (4, 'D4444DD', 4);
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
VALUES (10, TIMESTAMP '2024-03-01 10:00:00', 1, 1, 1, 'Y', 'MDI'),
       (11, TIMESTAMP '2020-01-01 09:00:00', 1, 1, 2, 'N', 'LEI'),
       (20, TIMESTAMP '2019-01-01 09:00:00', 2, 2, 2, 'N', 'LEI'),
       (40, TIMESTAMP '2024-01-01 09:00:00', 4, 4, 1, 'Y', 'MDI');
INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_date, expiry_date, alert_type, alert_code, alert_status,
                                       authorize_person_text, comment_text, caseload_id)
VALUES (10, 1, TIMESTAMP '2024-03-01 10:00:00', NULL, 'X', 'XA', 'ACTIVE', 'Governor', 'Risk to staff', 'MDI'),
       (10, 2, TIMESTAMP '2024-01-01 09:00:00', TIMESTAMP '2024-02-01 00:00:00', 'H', 'HA', 'INACTIVE', NULL, NULL, 'MDI'),
       (10, 3, TIMESTAMP '2024-04-01 00:30:00', NULL, 'X', 'XCA', 'INACTIVE', NULL, repeat('é', 2000), 'MDI'),
       (11, 1, TIMESTAMP '2020-02-01 00:00:00', NULL, 'X', 'XA', 'ACTIVE', NULL, 'old booking', 'LEI'),
       (20, 1, TIMESTAMP '2019-02-01 00:00:00', NULL, 'X', 'XA', 'ACTIVE', NULL, 'old booking', 'LEI'),
       (40, 1, TIMESTAMP '2023-06-01 00:00:00', NULL, 'X', 'XA', 'ACTIVE', NULL, 'Note', 'MDI');
INSERT INTO alertsync.alertsync_alert_mapping (dps_alert_id, offender_book_id, alert_seq, offender_no, mapping_type)
VALUES ('` + u1 + `', 10, 1, 'A1111AA', 'DPS_CREATED'),
       ('` + u5 + `', 40, 1, 'D4444DD', 'MIGRATED');`

// dpsFixtureSQL is the DPS twin of nomisFixtureSQL.
const dpsFixtureSQL = `
INSERT INTO alert (id, alert_code_id, prison_number, description, authorised_by, active_from, active_to, created_at)
VALUES ('` + u1 + `', (SELECT id FROM alert_code WHERE code = 'XA'), 'A1111AA', 'Risk to staff', 'Governor', DATE '2024-03-01', NULL, TIMESTAMP '2024-03-01 10:00:00'),
       ('` + u2 + `', (SELECT id FROM alert_code WHERE code = 'HA'), 'A1111AA', NULL, NULL, DATE '2024-01-01', DATE '2024-02-01', TIMESTAMP '2024-01-01 09:00:00'),
       ('` + u3 + `', (SELECT id FROM alert_code WHERE code = 'XCA'), 'A1111AA', repeat('é', 2001), '', DATE '2024-04-01', DATE '2024-05-01', TIMESTAMP '2024-04-01 00:30:00'),
       ('` + u5 + `', (SELECT id FROM alert_code WHERE code = 'XA'), 'D4444DD', 'Note', NULL, DATE '2023-06-01', NULL, TIMESTAMP '2023-06-01 00:00:00');
INSERT INTO alertsync.alert_mapping (dps_alert_id, nomis_booking_id, nomis_alert_seq, offender_no, mapping_type)
VALUES ('` + u2 + `', 10, 2, 'A1111AA', 'NOMIS_CREATED'),
       ('` + u3 + `', 10, 3, 'A1111AA', 'NOMIS_CREATED'),
       ('` + u5 + `', 40, 1, 'D4444DD', 'MIGRATED');`

// world is a NOMIS stand-in and a DPS database with the sync's schema.
type world struct {
	nomis, dps     *pgtest.DB
	nomisDB, dpsDB *sql.DB
}

func newWorld(t testing.TB) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{nomis: pgtest.NewDB(t), dps: pgtest.NewDB(t)}
	w.nomis.Exec(t, deploy.NOMISSchemaSQL())
	w.nomis.Exec(t, deploy.NOMISSeedSQL())
	w.dps.Exec(t, deploy.DPSSchemaSQL())
	w.dps.Exec(t, deploy.DPSSeedSQL())
	w.nomisDB, w.dpsDB = w.nomis.SQL(t), w.dps.SQL(t)
	for _, s := range []struct {
		name string
		db   *sql.DB
	}{{"nomis", w.nomisDB}, {"dps", w.dpsDB}} {
		set, err := migrate.Named(s.name)
		require.NoError(t, err)
		_, err = migrate.Up(ctx, s.db, set, migrate.Latest)
		require.NoError(t, err)
	}
	return w
}

func newFixtureWorld(t testing.TB) *world {
	t.Helper()
	w := newWorld(t)
	w.nomis.Exec(t, nomisFixtureSQL)
	w.dps.Exec(t, dpsFixtureSQL)
	return w
}

// options are the test options: a page of 1 prisoner, so that every
// prisoner is a page boundary; no re-check delay.
func options(pageSize int) Options {
	return Options{Timezone: "Europe/London", PageSize: pageSize, RecheckDelay: 0, ConnectTimeout: 10 * time.Second, Every: 0}
}

func (w *world) reconciler(t testing.TB, pageSize int) *Reconciler {
	t.Helper()
	loc, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	r, err := New(NewStandinReader(w.nomisDB, loc), w.dpsDB, options(pageSize), Deps{})
	require.NoError(t, err)
	return r
}

// summary renders differences comparably: "prisoner kind side match
// fields", sorted.
func summary(diffs []Difference) []string {
	out := []string{}
	for _, d := range diffs {
		var fs []string
		for _, f := range d.Fields {
			fs = append(fs, f.Field)
		}
		sort.Strings(fs)
		out = append(out, fmt.Sprintf("%s %s side=%s match=%t fields=%s", d.PrisonNumber, d.Kind, d.Side, d.Match, strings.Join(fs, ",")))
	}
	sort.Strings(out)
	return out
}
