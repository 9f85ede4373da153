package nomis

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/testenv/metrictest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/transform/rules"
)

func london(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	return loc
}

// TestNextSweep: the next sweep is the first instant after now at which
// the London clock shows sweep_at: later today, else tomorrow; across the
// spring change (2026-03-29, 01:00 GMT -> 02:00 BST) a skipped time runs
// when the clock jumps; across the autumn change (2026-10-25, 02:00 BST ->
// 01:00 GMT) a repeated time runs once, the first time.
func TestNextSweep(t *testing.T) {
	t.Parallel()
	lon := london(t)
	utc := func(y int, m time.Month, d, h, mi int) time.Time { return time.Date(y, m, d, h, mi, 0, 0, time.UTC) }
	tests := []struct {
		name string
		now  time.Time
		at   string
		want time.Time // UTC
	}{
		{"later today (BST)", utc(2026, 6, 15, 0, 30), "02:00", utc(2026, 6, 15, 1, 0)},
		{"exactly at sweep time: tomorrow", utc(2026, 6, 15, 1, 0), "02:00", utc(2026, 6, 16, 1, 0)},
		{"just after: tomorrow", utc(2026, 6, 15, 1, 0).Add(time.Second), "02:00", utc(2026, 6, 16, 1, 0)},
		{"across midnight (GMT)", utc(2026, 1, 10, 23, 59), "00:05", utc(2026, 1, 11, 0, 5)},
		{"across midnight, London already on the next day (BST)", utc(2026, 7, 31, 23, 30), "00:10", utc(2026, 8, 1, 23, 10)},
		{"across the year end", utc(2026, 12, 31, 23, 0), "02:00", utc(2027, 1, 1, 2, 0)},
		{"spring: the day before (GMT)", utc(2026, 3, 28, 3, 0), "02:00", utc(2026, 3, 29, 1, 0)},
		{"spring: 02:00 exists as 02:00 BST", utc(2026, 3, 28, 3, 0), "02:00", utc(2026, 3, 29, 1, 0)},
		{"spring: 01:30 is skipped: runs at the jump", utc(2026, 3, 28, 12, 0), "01:30", utc(2026, 3, 29, 1, 0)},
		{"spring: 00:30 still GMT", utc(2026, 3, 28, 12, 0), "00:30", utc(2026, 3, 29, 0, 30)},
		{"spring: 03:00 BST", utc(2026, 3, 28, 12, 0), "03:00", utc(2026, 3, 29, 2, 0)},
		{"spring: the day after (BST)", utc(2026, 3, 29, 2, 0), "02:00", utc(2026, 3, 30, 1, 0)},
		{"autumn: 01:30 repeated: the first (BST)", utc(2026, 10, 24, 12, 0), "01:30", utc(2026, 10, 25, 0, 30)},
		{"autumn: after the first 01:30, not the second", utc(2026, 10, 25, 0, 45), "01:30", utc(2026, 10, 26, 1, 30)},
		{"autumn: 02:00 once, GMT", utc(2026, 10, 24, 12, 0), "02:00", utc(2026, 10, 25, 2, 0)},
		{"autumn: 00:30 still BST", utc(2026, 10, 24, 12, 0), "00:30", utc(2026, 10, 24, 23, 30)},
		{"autumn: the day after (GMT)", utc(2026, 10, 25, 2, 0), "02:00", utc(2026, 10, 26, 2, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			at, err := parseClock(tt.at)
			require.NoError(t, err)
			got := nextSweep(tt.now, at, lon)
			require.Equal(t, tt.want, got.UTC(), "next %s after %s (London %s)", tt.at, tt.now, tt.now.In(lon))
			require.True(t, got.After(tt.now))
		})
	}
}

// TestNextSweepEveryDay: stepping from one sweep to the next through 2026
// gives one sweep per London day, at 02:00 on every day the clock shows it.
func TestNextSweepEveryDay(t *testing.T) {
	t.Parallel()
	lon := london(t)
	for _, at := range []string{"00:00", "01:30", "02:00", "23:59"} {
		t.Run(at, func(t *testing.T) {
			t.Parallel()
			c, err := parseClock(at)
			require.NoError(t, err)
			now := time.Date(2025, 12, 31, 12, 0, 0, 0, lon)
			seen := map[string]bool{}
			for range 365 {
				next := nextSweep(now, c, lon)
				day := next.In(lon).Format(time.DateOnly)
				require.False(t, seen[day], "two sweeps on %s", day)
				seen[day] = true
				if day != "2026-03-29" || at != "01:30" {
					require.Equal(t, at, next.In(lon).Format("15:04"), "sweep of %s", day)
				}
				now = next
			}
			require.Len(t, seen, 365)
			require.True(t, seen["2026-03-29"] && seen["2026-10-25"])
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		at      string
		batch   int
		wantKey string // "" = valid
	}{
		{"defaults", "02:00", 500, ""},
		{"midnight, batch 1", "00:00", 1, ""},
		{"last minute, largest batch", "23:59", 100_000, ""},
		{"hour 24", "24:00", 500, "sweep_at"},
		{"one-digit hour", "2:00", 500, "sweep_at"},
		{"minute 60", "02:60", 500, "sweep_at"},
		{"no colon", "02-00", 500, "sweep_at"},
		{"sign", "+1:00", 500, "sweep_at"},
		{"empty", "", 500, "sweep_at"},
		{"with seconds", "02:00:00", 500, "sweep_at"},
		{"batch 0", "02:00", 0, "sweep_batch"},
		{"batch too large", "02:00", 100_001, "sweep_batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := Options{DPSLookup: true, Sweep: true, SweepAt: tt.at, SweepBatch: tt.batch}
			err := o.Validate()
			if tt.wantKey == "" {
				require.NoError(t, err)
				return
			}
			var ke *config.KeyError
			require.ErrorAs(t, err, &ke)
			require.Equal(t, tt.wantKey, ke.Key)
		})
	}
}

// sweepWorld is the expiry sweep's world: a NOMIS stand-in (schema, seed,
// sync-owned migrations, the prisoners of fixtureSQL) and a DPS database
// (schema, seed, sync-owned migrations), no Kafka.
type sweepWorld struct {
	cfg   Config
	nomis *pgtest.DB
	dps   *pgtest.DB
	code  int64 // DPS alert_code id of XA
}

func newSweepWorld(t *testing.T) *sweepWorld {
	t.Helper()
	ctx := context.Background()
	w := &sweepWorld{nomis: pgtest.NewDB(t), dps: pgtest.NewDB(t)}
	w.nomis.Exec(t, deploy.NOMISSchemaSQL())
	w.nomis.Exec(t, deploy.NOMISSeedSQL())
	set, err := migrate.Named("nomis")
	require.NoError(t, err)
	_, err = migrate.Up(ctx, w.nomis.SQL(t), set, migrate.Latest)
	require.NoError(t, err)
	w.nomis.Exec(t, fixtureSQL)
	setupDPS(t, w.dps, false)
	w.code = pgtest.QueryValue[int64](t, w.dps, "SELECT id FROM alert_code WHERE code = 'XA'")
	require.NoError(t, config.Load(&w.cfg, config.Sources{LookupEnv: func(string) (string, bool) { return "", false }}))
	w.cfg.NOMIS.DSN = w.nomis.DSN
	w.cfg.DPS.DSN = w.dps.DSN
	require.NoError(t, config.Validate(&w.cfg))
	require.True(t, w.cfg.Own.Sweep, "apply_nomis.sweep defaults to true")
	require.Equal(t, "02:00", w.cfg.Own.SweepAt)
	require.Equal(t, 500, w.cfg.Own.SweepBatch)
	return w
}

// setupDPS gives db the DPS tables and reference data, and the sync-owned
// migrations unless migrated says they are there already.
func setupDPS(t *testing.T, db *pgtest.DB, migrated bool) {
	t.Helper()
	db.Exec(t, deploy.DPSSchemaSQL())
	db.Exec(t, deploy.DPSSeedSQL())
	if migrated {
		return
	}
	set, err := migrate.Named("dps")
	require.NoError(t, err)
	_, err = migrate.Up(context.Background(), db.SQL(t), set, migrate.Latest)
	require.NoError(t, err)
}

// number is the prison number of a fixture booking.
func number(book int64) string {
	if book == 20 {
		return "B2345CD"
	}
	return "A1234BC"
}

// sweepCase is one DPS alert of the sweep test and the NOMIS row it has.
type sweepCase struct {
	name      string
	activeTo  *int // days after the sweep's date; nil: no end date
	deleted   bool // soft-deleted in DPS
	nomisMap  *nomisKey
	dpsMap    *nomisKey
	row       *nomisKey // its NOMIS row (ALERT_CODE XA); nil: none
	status    string
	expiry    *int // the row's EXPIRY_DATE, days after the sweep's date
	wantState string
	wantSwept bool // the sweep writes the row
}

func days(n int) *int                { return &n }
func key(b int64, s int32) *nomisKey { return &nomisKey{book: b, seq: s} }

// addAlert writes c's DPS alert, mappings and NOMIS row, the row as a
// NOMIS user.
func (w *sweepWorld) addAlert(t *testing.T, c sweepCase, today rules.Date) string {
	t.Helper()
	id := newID(t)
	book := int64(10)
	switch {
	case c.nomisMap != nil:
		book = c.nomisMap.book
	case c.dpsMap != nil:
		book = c.dpsMap.book
	case c.row != nil:
		book = c.row.book
	}
	var to *string
	if c.activeTo != nil {
		s := (today + rules.Date(*c.activeTo)).String()
		to = &s
	}
	w.dps.Exec(t, `INSERT INTO alert (id, alert_code_id, prison_number, description, active_from, active_to, created_at, deleted_at)
		VALUES ($1::uuid, $2, $3, 'Risk to staff', DATE '2024-03-01', $4::date, TIMESTAMP '2024-03-01 10:30:00',
		        CASE WHEN $5::boolean THEN TIMESTAMP '2026-01-01 09:00:00' END)`, id, w.code, number(book), to, c.deleted)
	if c.dpsMap != nil {
		w.dps.Exec(t, `INSERT INTO alertsync.alert_mapping (dps_alert_id, nomis_booking_id, nomis_alert_seq, offender_no, mapping_type)
			VALUES ($1::uuid, $2, $3, $4, 'NOMIS_CREATED')`, id, c.dpsMap.book, c.dpsMap.seq, number(book))
	}
	if c.nomisMap != nil {
		w.nomis.Exec(t, `INSERT INTO alertsync.alertsync_alert_mapping (dps_alert_id, offender_book_id, alert_seq, offender_no, mapping_type)
			VALUES ($1::uuid, $2, $3, $4, 'DPS_CREATED')`, id, c.nomisMap.book, c.nomisMap.seq, number(book))
	}
	if c.row != nil {
		w.nomisRow(t, *c.row, c.status, c.expiry, today)
	}
	return id
}

// nomisRow inserts an XA alert at k as a NOMIS user (module OCDALERT).
func (w *sweepWorld) nomisRow(t *testing.T, k nomisKey, status string, expiry *int, today rules.Date) {
	t.Helper()
	var exp *string
	if expiry != nil {
		s := (today + rules.Date(*expiry)).String()
		exp = &s
	}
	ctx := context.Background()
	tx, err := w.nomis.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, "SELECT set_config('nomis.audit_module_name', 'OCDALERT', true), set_config('nomis.audit_user_id', 'NOMISUSER', true)")
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date, expiry_date, modify_user_id)
		VALUES ($1, $2, 'X', 'XA', $3, TIMESTAMP '2024-03-01 00:00:00', $4::date, 'NOMISUSER')`, k.book, k.seq, status, exp)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
}

// rowState is a NOMIS row as status|expiry date|MODIFY_USER_ID|AUDIT_MODULE_NAME.
func (w *sweepWorld) rowState(t *testing.T, k nomisKey) string {
	t.Helper()
	return pgtest.QueryValue[string](t, w.nomis, `SELECT concat_ws('|', alert_status, coalesce(expiry_date::date::text, '-'), modify_user_id, audit_module_name)
		FROM oms_owner.offender_alerts WHERE offender_book_id = $1 AND alert_seq = $2`, k.book, k.seq)
}

// sweepJournal lists the journal rows after journal id after as
// op:module:user:status.
const sweepJournal = `SELECT coalesce(string_agg(operation || ':' || coalesce(module_name, '-') || ':' || user_id || ':' || (new_row->>'alert_status'),
		',' ORDER BY journal_id), '')
	FROM alertsync.alertsync_journal WHERE table_name = 'offender_alerts' AND journal_id > $1`

// TestSweep: of the DPS alerts whose active_to is on or before the sweep's
// date and that are not deleted, the NOMIS rows found through the NOMIS-side
// mapping, else the DPS-side one, turn INACTIVE (EXPIRY_DATE set from DPS
// where NOMIS had none), written as the sync: the journal marks them
// DPS_SYNCHRONISATION, so capture nomis publishes them with sync = true and
// they do not come back to DPS. Nothing else changes, batches of two
// included, and a second sweep changes nothing.
func TestSweep(t *testing.T) {
	t.Parallel()
	w := newSweepWorld(t)
	lon := london(t)
	now := time.Date(2026, 6, 15, 2, 0, 30, 0, lon)
	today := rules.DateIn(now, lon)
	d := func(n int) string { return (today + rules.Date(n)).String() }
	byDPS := "DPS_SYNCHRONISATION|DPS_SYNCHRONISATION"
	user := "NOMISUSER|OCDALERT"
	cases := []sweepCase{
		{name: "lapsed 10 days ago, NOMIS-side mapping", activeTo: days(-10), nomisMap: key(10, 1), row: key(10, 1), status: "ACTIVE",
			wantState: "INACTIVE|" + d(-10) + "|" + byDPS, wantSwept: true},
		{name: "lapsing today, DPS-side mapping only", activeTo: days(0), dpsMap: key(20, 1), row: key(20, 1), status: "ACTIVE", expiry: days(0),
			wantState: "INACTIVE|" + d(0) + "|" + byDPS, wantSwept: true},
		{name: "NOMIS-side mapping before a stale DPS-side one", activeTo: days(-1), nomisMap: key(10, 5), dpsMap: key(20, 3), row: key(10, 5), status: "ACTIVE",
			wantState: "INACTIVE|" + d(-1) + "|" + byDPS, wantSwept: true},
		{name: "ends tomorrow", activeTo: days(1), nomisMap: key(10, 2), row: key(10, 2), status: "ACTIVE", expiry: days(1),
			wantState: "ACTIVE|" + d(1) + "|" + user},
		{name: "no end date", dpsMap: key(20, 2), row: key(20, 2), status: "ACTIVE",
			wantState: "ACTIVE|-|" + user},
		{name: "deleted in DPS", activeTo: days(-3), deleted: true, nomisMap: key(10, 3), row: key(10, 3), status: "ACTIVE",
			wantState: "ACTIVE|-|" + user},
		{name: "already INACTIVE in NOMIS", activeTo: days(-5), nomisMap: key(10, 4), row: key(10, 4), status: "INACTIVE", expiry: days(-7),
			wantState: "INACTIVE|" + d(-7) + "|" + user},
		{name: "NOMIS holds a later expiry date", activeTo: days(-4), nomisMap: key(20, 4), row: key(20, 4), status: "ACTIVE", expiry: days(30),
			wantState: "ACTIVE|" + d(30) + "|" + user},
		{name: "no end date, NOMIS-side mapping", nomisMap: key(10, 6), row: key(10, 6), status: "ACTIVE",
			wantState: "ACTIVE|-|" + user},
		{name: "lapsed, DPS-side key mapped to another alert in NOMIS", activeTo: days(-2), dpsMap: key(10, 6)},
		{name: "lapsed, not mapped", activeTo: days(-6)},
		{name: "lapsed, mapped, NOMIS row gone", activeTo: days(-8), nomisMap: key(10, 7)},
	}
	for _, c := range cases {
		w.addAlert(t, c, today)
	}
	// The row a stale DPS-side mapping names: no lapsed alert of its own.
	w.nomisRow(t, *key(20, 3), "ACTIVE", nil, today)
	before := pgtest.QueryValue[int64](t, w.nomis, "SELECT coalesce(max(journal_id), 0) FROM alertsync.alertsync_journal")

	w.cfg.Own.SweepBatch = 2
	a, err := New(w.cfg, Deps{})
	require.NoError(t, err)
	a.now = func() time.Time { return now }
	res, err := a.SweepNow(t.Context())
	require.NoError(t, err)
	require.Equal(t, SweepResult{Date: today, Due: 8, Inactivated: 3}, res)

	for _, c := range cases {
		if c.row == nil {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.wantState, w.rowState(t, *c.row))
		})
	}
	require.Equal(t, "ACTIVE|-|"+user, w.rowState(t, *key(20, 3)), "the row of a stale DPS-side mapping")
	require.Equal(t, "U:DPS_SYNCHRONISATION:DPS_SYNCHRONISATION:INACTIVE,U:DPS_SYNCHRONISATION:DPS_SYNCHRONISATION:INACTIVE,U:DPS_SYNCHRONISATION:DPS_SYNCHRONISATION:INACTIVE",
		pgtest.QueryValue[string](t, w.nomis, sweepJournal, before), "the journal marks the sweep's writes as the sync")
	require.Equal(t, 0, pgtest.QueryValue[int](t, w.nomis, "SELECT count(*)::int FROM alertsync.alertsync_outcome_batches"), "no outcome: the sweep is not a command")
	require.Equal(t, 0, pgtest.QueryValue[int](t, w.nomis,
		"SELECT count(*)::int FROM alertsync.alertsync_alert_mapping WHERE dps_commit_pos IS NOT NULL OR deleted_at IS NOT NULL"), "mappings untouched")

	journal := pgtest.QueryValue[int64](t, w.nomis, "SELECT max(journal_id) FROM alertsync.alertsync_journal")
	w.cfg.Own.SweepBatch = 500
	a, err = New(w.cfg, Deps{})
	require.NoError(t, err)
	a.now = func() time.Time { return now.Add(time.Hour) }
	res, err = a.SweepNow(t.Context())
	require.NoError(t, err)
	require.Equal(t, SweepResult{Date: today, Due: 8, Inactivated: 0}, res, "a second sweep changes nothing")
	require.Empty(t, pgtest.QueryValue[string](t, w.nomis, sweepJournal, journal), "nor writes the journal")

	// A day later the alert that ended "tomorrow" has lapsed too.
	a.now = func() time.Time { return now.Add(24 * time.Hour) }
	res, err = a.SweepNow(t.Context())
	require.NoError(t, err)
	require.Equal(t, SweepResult{Date: today + 1, Due: 9, Inactivated: 1}, res)
	require.Equal(t, "INACTIVE|"+d(1)+"|"+byDPS, w.rowState(t, *key(10, 2)))
}

// TestSweepFailureCounted: a sweep that cannot read DPS (no alert table
// there) fails with the operation named, is counted, and does not mark a
// success.
func TestSweepFailureCounted(t *testing.T) {
	t.Parallel()
	w := newSweepWorld(t)
	w.dps.Exec(t, "DROP TABLE alert CASCADE")
	a, err := New(w.cfg, Deps{})
	require.NoError(t, err)
	d, err := a.openDialect(t.Context(), "test", 1)
	require.NoError(t, err)
	defer d.close()
	dps, err := a.openDPS(t.Context(), "test", 1)
	require.NoError(t, err)
	defer dps.Close()
	reg := prometheus.NewRegistry()
	_, err = a.sweeper(d, dps, reg).run(t.Context())
	require.ErrorContains(t, err, "reading lapsed alerts from DPS")
	require.Equal(t, 1.0, metrictest.Value(t, reg, "alertsync_apply_nomis_sweep_failures_total", nil))
	require.NotNil(t, metrictest.Find(t, reg, "alertsync_apply_nomis_sweep_last_success_timestamp_seconds", nil), "registered")
	require.Zero(t, metrictest.Value(t, reg, "alertsync_apply_nomis_sweep_last_success_timestamp_seconds", nil))
}

// TestSweepReadOnlyOnDPS: the sweep's DPS pool refuses writes.
func TestSweepReadOnlyOnDPS(t *testing.T) {
	t.Parallel()
	w := newSweepWorld(t)
	a, err := New(w.cfg, Deps{})
	require.NoError(t, err)
	dps, err := a.openDPS(t.Context(), "test", 1)
	require.NoError(t, err)
	defer dps.Close()
	_, err = dps.Exec(t.Context(), "DELETE FROM alert")
	require.Error(t, err)
	require.ErrorContains(t, err, "read-only")
}

// TestSweepScheduledInRun: a running apply sweeps when the clock reaches
// apply_nomis.sweep_at (its clock is shifted to 300 ms before 02:00 London),
// counts it in its metrics, and stops with the apply.
func TestSweepScheduledInRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	setupDPS(t, h.dps, true)
	w := &sweepWorld{cfg: h.cfg, nomis: h.db, dps: h.dps, code: pgtest.QueryValue[int64](t, h.dps, "SELECT id FROM alert_code WHERE code = 'XA'")}
	lon := london(t)
	at := time.Date(2026, 6, 15, 2, 0, 0, 0, lon)
	today := rules.DateIn(at, lon)
	w.addAlert(t, sweepCase{activeTo: days(-1), nomisMap: key(10, 1), row: key(10, 1), status: "ACTIVE"}, today)
	w.addAlert(t, sweepCase{activeTo: days(-1), dpsMap: key(20, 1), row: key(20, 1), status: "ACTIVE"}, today)

	h.cfg.Own.SweepAt = "02:00"
	srv := admin.New("127.0.0.1:0", time.Second, nil)
	a, err := New(h.cfg, Deps{Registry: h.srcl, Admin: srv})
	require.NoError(t, err)
	// The clock reads 300 ms before 02:00 when the apply first looks at
	// it, however long Run takes to get there (connections, migrations).
	var first sync.Once
	var began time.Time
	a.now = func() time.Time {
		first.Do(func() { began = time.Now() })
		return at.Add(-300*time.Millisecond + time.Since(began))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(cancel)

	deadline := time.Now().Add(30 * time.Second)
	for metrictest.Value(t, srv.Registry(), "alertsync_apply_nomis_sweep_last_success_timestamp_seconds", nil) == 0 {
		select {
		case err := <-done:
			t.Fatalf("apply stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "no sweep within 30s")
	}
	require.Equal(t, 2.0, metrictest.Value(t, srv.Registry(), "alertsync_apply_nomis_sweep_rows_total", nil))
	require.NotNil(t, metrictest.Find(t, srv.Registry(), "alertsync_apply_nomis_sweep_failures_total", nil), "registered")
	require.Zero(t, metrictest.Value(t, srv.Registry(), "alertsync_apply_nomis_sweep_failures_total", nil))
	require.Equal(t, 1.0, metrictest.Value(t, srv.Registry(), "alertsync_apply_nomis_sweep_seconds", nil), "one sweep timed")
	byDPS := "DPS_SYNCHRONISATION|DPS_SYNCHRONISATION"
	require.Equal(t, "INACTIVE|"+(today-1).String()+"|"+byDPS, w.rowState(t, *key(10, 1)))
	require.Equal(t, "INACTIVE|"+(today-1).String()+"|"+byDPS, w.rowState(t, *key(20, 1)))

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("apply did not stop within 30s")
	}
}
