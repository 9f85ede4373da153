package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/pgcluster"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
)

// Session settings the NOMIS stand-in's audit and journal triggers read.
const (
	setModule     = "nomis.audit_module_name"
	setAdditional = "nomis.audit_additional_info"
	setUser       = "nomis.audit_user_id"
)

func TestNOMISSeedIsGeneratedFromReference(t *testing.T) {
	t.Parallel()
	want, err := deploy.RenderNOMISSeed()
	require.NoError(t, err)
	require.Equal(t, want, deploy.NOMISSeedSQL(), "nomis/seed.sql is out of date: run `go generate ./deploy`")
}

func TestNOMISSchemaAndSeedApplyTwice(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	for range 2 {
		db.Exec(t, deploy.NOMISSchemaSQL())
		db.Exec(t, deploy.NOMISSeedSQL())
	}
	require.Equal(t, len(deploy.AlertTypes()), pgtest.QueryValue[int](t, db,
		"SELECT count(*)::int FROM oms_owner.reference_codes WHERE domain = 'ALERT'"))
	require.Equal(t, len(deploy.AlertCodes()), pgtest.QueryValue[int](t, db,
		"SELECT count(*)::int FROM oms_owner.reference_codes WHERE domain = 'ALERT_CODE'"))
}

func TestMigrationSets(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"dps", "nomis"}, deploy.MigrationSets())
	for _, name := range deploy.MigrationSets() {
		_, ok := deploy.Migrations(name)
		require.True(t, ok, name)
	}
	set, err := migrate.Named("nomis")
	require.NoError(t, err)
	var names []string
	for _, m := range set.Migrations {
		names = append(names, m.Name)
	}
	require.Equal(t, []string{"journal", "journal_triggers", "alert_mapping", "consumer_offsets", "outcome_outbox", "dlq_holds", "journal_read_fast", "resync_and_state", "journal_trigger_cost", "wait_lock", "apply_outbox", "outcome_batches", "resync_requests"}, names)
}

// nomisDB returns a database with the NOMIS stand-in, its reference codes
// and every nomis migration.
func nomisDB(t *testing.T) *pgtest.DB {
	t.Helper()
	db := pgtest.NewDB(t)
	setUpNOMIS(t, db)
	return db
}

func setUpNOMIS(t *testing.T, db *pgtest.DB) {
	t.Helper()
	db.Exec(t, deploy.NOMISSchemaSQL())
	db.Exec(t, deploy.NOMISSeedSQL())
	_, err := migrate.Up(context.Background(), db.SQL(t), nomisSet(t), migrate.Latest)
	require.NoError(t, err)
}

func nomisSet(t *testing.T) *migrate.Set {
	t.Helper()
	set, err := migrate.Named("nomis")
	require.NoError(t, err)
	return set
}

// nomisFixture adds two offenders: 1 (A1234BC) with bookings 10 (current) and
// 11 (older), and 2 (B2345CD) with booking 20.
func nomisFixture(t *testing.T, db *pgtest.DB) {
	t.Helper()
	db.Exec(t, `
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id) VALUES (1, 'A1234BC', 1), (2, 'B2345CD', 2);
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
VALUES (10, TIMESTAMP '2024-03-01 10:00:00', 1, 1, 1, 'Y', 'MDI'),
       (11, TIMESTAMP '2020-01-01 09:00:00', 1, 1, 2, 'N', 'LEI'),
       (20, TIMESTAMP '2024-01-01 09:00:00', 2, 2, 1, 'Y', 'MDI');
DELETE FROM alertsync.alertsync_journal;`)
}

const insertAlertSQL = `INSERT INTO oms_owner.offender_alerts
    (offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text, caseload_type)
    VALUES (%d, %d, 'X', 'XA', 'ACTIVE', TIMESTAMP '2024-03-02 00:00:00', 'text', 'INST')`

func insertAlert(book, seq int) string { return fmt.Sprintf(insertAlertSQL, book, seq) }

// inSession runs stmts in one transaction with the given nomis.* settings set
// locally, as a NOMIS writer would, and returns the transaction's
// txid_current().
func inSession(t *testing.T, db *pgtest.DB, settings map[string]string, stmts ...string) int64 {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }() // no-op after Commit
	setLocal(t, tx, settings)
	for _, s := range stmts {
		_, err := tx.Exec(ctx, s)
		require.NoError(t, err, s)
	}
	var txid int64
	require.NoError(t, tx.QueryRow(ctx, "SELECT txid_current()").Scan(&txid))
	require.NoError(t, tx.Commit(ctx))
	return txid
}

func setLocal(t *testing.T, tx pgx.Tx, settings map[string]string) {
	t.Helper()
	for k, v := range settings {
		_, err := tx.Exec(context.Background(), "SELECT set_config($1, $2, true)", k, v)
		require.NoError(t, err)
	}
}

func TestNOMISSchemaColumns(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	db.Exec(t, deploy.NOMISSchemaSQL())
	audit := []string{
		"audit_timestamp timestamp(6) YES", "audit_user_id varchar(32) YES", "audit_module_name varchar(65) YES",
		"audit_client_user_id varchar(64) YES", "audit_client_ip_address varchar(39) YES",
		"audit_client_workstation_name varchar(64) YES", "audit_additional_info varchar(256) YES",
	}
	created := []string{
		"create_datetime timestamp(6) NO", "create_user_id varchar(32) NO",
		"modify_datetime timestamp(6) YES", "modify_user_id varchar(32) YES",
	}
	want := map[string][]string{
		"offenders": slices.Concat([]string{
			"offender_id numeric(10) NO", "offender_id_display varchar(10) YES", "root_offender_id numeric(10) YES",
		}, created, audit),
		"offender_bookings": slices.Concat([]string{
			"offender_book_id numeric(10) NO", "booking_begin_date timestamp(0) NO", "offender_id numeric(10) NO",
			"agy_loc_id varchar(6) YES", "active_flag varchar(1) NO", "root_offender_id numeric(10) YES",
			"booking_seq numeric(6) NO",
		}, created, audit),
		"offender_alerts": slices.Concat([]string{
			"alert_date timestamp(0) NO", "offender_book_id numeric(10) NO", "root_offender_id numeric(10) YES",
			"alert_seq numeric(6) NO", "alert_type varchar(12) NO", "alert_code varchar(12) NO",
			"authorize_person_text varchar(40) YES", "create_date timestamp(0) YES", "alert_status varchar(12) NO",
			"verified_flag varchar(1) NO", "expiry_date timestamp(0) YES", "comment_text varchar(4000) YES",
			"caseload_id varchar(6) YES", "modify_user_id varchar(32) YES", "modify_datetime timestamp(6) YES",
			"caseload_type varchar(12) YES", "create_datetime timestamp(6) NO", "create_user_id varchar(32) NO",
		}, audit),
		"reference_codes": {
			"domain varchar(12) NO", "code varchar(12) NO", "description varchar(40) NO", "list_seq numeric(6) YES",
			"active_flag varchar(1) NO", "system_data_flag varchar(1) NO", "modify_user_id varchar(32) YES",
			"expired_date timestamp(0) YES", "new_code varchar(12) YES", "parent_code varchar(12) YES",
			"parent_domain varchar(12) YES", "create_datetime timestamp(6) NO", "create_user_id varchar(32) NO",
			"modify_datetime timestamp(6) YES",
		},
	}
	for table, cols := range want {
		t.Run(table, func(t *testing.T) {
			got := queryLines(t, db.Pool, `
SELECT concat_ws(' ', column_name,
         CASE data_type
           WHEN 'numeric' THEN format('numeric(%s%s)', numeric_precision, ',' || nullif(numeric_scale, 0))
           WHEN 'character varying' THEN format('varchar(%s)', character_maximum_length)
           WHEN 'timestamp without time zone' THEN format('timestamp(%s)', datetime_precision)
           ELSE data_type END,
         is_nullable)
  FROM information_schema.columns WHERE table_schema = 'oms_owner' AND table_name = $1 ORDER BY ordinal_position`, table)
			require.Equal(t, cols, got)
		})
	}

	t.Run("keys and indexes", func(t *testing.T) {
		got := queryLines(t, db.Pool, `
SELECT format('%s.%s %s', c.relname, con.conname, pg_get_constraintdef(con.oid))
  FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
 WHERE con.connamespace = 'oms_owner'::regnamespace AND con.contype IN ('p', 'f', 'u')
 UNION ALL
SELECT format('index %s', indexdef) FROM pg_indexes
 WHERE schemaname = 'oms_owner' AND indexname NOT IN (SELECT conname FROM pg_constraint)
 ORDER BY 1`)
		require.Equal(t, []string{
			"index CREATE INDEX offender_bookings_ni1 ON oms_owner.offender_bookings USING btree (offender_id)",
			"index CREATE INDEX offender_bookings_ni2 ON oms_owner.offender_bookings USING btree (root_offender_id)",
			"index CREATE INDEX offenders_ni1 ON oms_owner.offenders USING btree (offender_id_display)",
			"index CREATE INDEX offenders_ni2 ON oms_owner.offenders USING btree (root_offender_id)",
			"offender_alerts.alerts_pk PRIMARY KEY (offender_book_id, alert_seq)",
			"offender_alerts.off_alert_off_bkg_f1 FOREIGN KEY (offender_book_id) REFERENCES oms_owner.offender_bookings(offender_book_id)",
			"offender_bookings.off_bkg_off_fk1 FOREIGN KEY (offender_id) REFERENCES oms_owner.offenders(offender_id)",
			"offender_bookings.offender_bookings_pk PRIMARY KEY (offender_book_id)",
			"offenders.offenders_pk PRIMARY KEY (offender_id)",
			"reference_codes.reference_codes_pk PRIMARY KEY (domain, code)",
		}, got)
	})
}

// queryLines runs a query returning one text column and returns its rows.
func queryLines(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

func requireSQLState(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		require.NoError(t, err)
		return
	}
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want SQLSTATE %s, got %v", want, err)
	require.Equal(t, want, pgErr.Code, pgErr.Message)
}

func TestNOMISConstraints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := nomisDB(t)
	nomisFixture(t, db)
	insert := `INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_type, alert_code, alert_status, comment_text)
	           VALUES ($1, $2, $3, 'XA', $4, $5)`
	tests := []struct {
		name     string
		sql      string
		args     []any
		wantCode string // "" = accepted
	}{
		{"alert accepted", insert, []any{10, 1, "X", "ACTIVE", "text"}, ""},
		{"comment of 4000 one-byte chars", insert, []any{10, 2, "X", "ACTIVE", strings.Repeat("x", 4000)}, ""},
		{"comment of 4000 bytes in 2000 chars", insert, []any{10, 3, "X", "ACTIVE", strings.Repeat("é", 2000)}, ""},
		{"comment of 4001 bytes", insert, []any{10, 4, "X", "ACTIVE", strings.Repeat("é", 2000) + "x"}, "23514"},
		{"comment of 4001 chars", insert, []any{10, 5, "X", "ACTIVE", strings.Repeat("x", 4001)}, "22001"},
		{"alert seq of 6 digits", insert, []any{10, 999999, "X", "ACTIVE", nil}, ""},
		{"alert seq of 7 digits", insert, []any{10, 1000000, "X", "ACTIVE", nil}, "22003"},
		{"same booking and seq", insert, []any{10, 1, "X", "ACTIVE", nil}, "23505"},
		{"unknown booking", insert, []any{99, 1, "X", "ACTIVE", nil}, "23503"},
		{"type of 13 chars", insert, []any{10, 6, strings.Repeat("T", 13), "ACTIVE", nil}, "22001"},
		{"status NULL", insert, []any{10, 7, "X", nil, nil}, "23502"},
		{"offender id of 11 digits", `INSERT INTO oms_owner.offenders (offender_id) VALUES (10000000000)`, nil, "22003"},
		{"booking of unknown offender", `INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, booking_seq)
		                                 VALUES (30, localtimestamp, 99, 1)`, nil, "23503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.Pool.Exec(ctx, tt.sql, tt.args...)
			requireSQLState(t, err, tt.wantCode)
		})
	}
	require.Equal(t, "N", pgtest.QueryValue[string](t, db,
		"SELECT verified_flag FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 1"), "VERIFIED_FLAG defaults to N")
	require.Zero(t, pgtest.QueryValue[int](t, db,
		"SELECT extract(microseconds FROM alert_date)::int % 1000000 FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 1"),
		"ALERT_DATE defaults to a whole second, as SYSDATE")
}

type auditCols struct {
	Module, Additional, User *string
	Stamped                  bool // AUDIT_TIMESTAMP set
}

func str(s string) *string { return &s }

func readAudit(t *testing.T, db *pgtest.DB, where string) auditCols {
	t.Helper()
	var a auditCols
	err := db.Pool.QueryRow(context.Background(),
		"SELECT audit_module_name, audit_additional_info, audit_user_id, audit_timestamp IS NOT NULL FROM "+where).
		Scan(&a.Module, &a.Additional, &a.User, &a.Stamped)
	require.NoError(t, err)
	return a
}

func TestNOMISAuditTrigger(t *testing.T) {
	t.Parallel()
	db := nomisDB(t)
	nomisFixture(t, db)
	su := pgtest.QueryValue[string](t, db, "SELECT session_user::text")
	long := strings.Repeat("M", 100)

	tests := []struct {
		name     string
		settings map[string]string
		stmts    []string
		where    string // table and condition of the row to check
		want     auditCols
	}{
		{
			name:     "alert insert stamped from the session",
			settings: map[string]string{setModule: "OIDALERT", setAdditional: "OMKCOPY.COPY_BOOKING_DATA", setUser: "JSMITH_GEN"},
			stmts:    []string{insertAlert(10, 1)},
			where:    "oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 1",
			want:     auditCols{str("OIDALERT"), str("OMKCOPY.COPY_BOOKING_DATA"), str("JSMITH_GEN"), true},
		},
		{
			name:     "update restamped from the updating session, not kept from the row",
			settings: map[string]string{setModule: "DPS_SYNCHRONISATION"},
			stmts:    []string{"UPDATE oms_owner.offender_alerts SET comment_text = 'new' WHERE offender_book_id = 10 AND alert_seq = 1"},
			where:    "oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 1",
			want:     auditCols{str("DPS_SYNCHRONISATION"), nil, str(su), true},
		},
		{
			name:     "a writer cannot set the audit columns itself",
			settings: map[string]string{setModule: "OIDALERT"},
			stmts: []string{`UPDATE oms_owner.offender_alerts SET audit_module_name = 'FORGED', audit_additional_info = 'FORGED'
			                  WHERE offender_book_id = 10 AND alert_seq = 1`},
			where: "oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 1",
			want:  auditCols{str("OIDALERT"), nil, str(su), true},
		},
		{
			name:  "no settings: NULL module and info, the session user",
			stmts: []string{insertAlert(10, 2)},
			where: "oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 2",
			want:  auditCols{nil, nil, str(su), true},
		},
		{
			name:     "empty settings count as unset",
			settings: map[string]string{setModule: "", setAdditional: ""},
			stmts:    []string{insertAlert(10, 3)},
			where:    "oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 3",
			want:     auditCols{nil, nil, str(su), true},
		},
		{
			name:     "values cut to the column length",
			settings: map[string]string{setModule: long, setAdditional: strings.Repeat("A", 300), setUser: strings.Repeat("U", 40)},
			stmts:    []string{insertAlert(10, 4)},
			where:    "oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 4",
			want:     auditCols{str(long[:65]), str(strings.Repeat("A", 256)), str(strings.Repeat("U", 32)), true},
		},
		{
			name:     "booking update stamped",
			settings: map[string]string{setModule: "OIDADMIS"},
			stmts:    []string{"UPDATE oms_owner.offender_bookings SET agy_loc_id = 'LEI' WHERE offender_book_id = 20"},
			where:    "oms_owner.offender_bookings WHERE offender_book_id = 20",
			want:     auditCols{str("OIDADMIS"), nil, str(su), true},
		},
		{
			name:     "offender insert stamped",
			settings: map[string]string{setModule: "OIDINMAT", setAdditional: "info"},
			stmts:    []string{"INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id) VALUES (3, 'C3456DE', 3)"},
			where:    "oms_owner.offenders WHERE offender_id = 3",
			want:     auditCols{str("OIDINMAT"), str("info"), str(su), true},
		},
	}
	for _, tt := range tests { // in order: later cases change rows of earlier ones
		t.Run(tt.name, func(t *testing.T) {
			inSession(t, db, tt.settings, tt.stmts...)
			require.Equal(t, tt.want, readAudit(t, db, tt.where))
		})
	}
}

func TestNOMISSeedMatchesReferenceAndDPS(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	db.Exec(t, deploy.DPSSchemaSQL())
	db.Exec(t, deploy.DPSSeedSQL())
	db.Exec(t, deploy.NOMISSchemaSQL())
	db.Exec(t, deploy.NOMISSeedSQL())

	// domain|code|description|list_seq|active|expired|parent_domain|parent_code
	var want []string
	for _, ty := range deploy.AlertTypes() {
		want = append(want, fmt.Sprintf("ALERT|%s|%s|%d|%t|%s||", ty.Code, ty.Description, ty.ListSequence, ty.Active(), ty.DeactivatedAt))
	}
	for _, c := range deploy.AlertCodes() {
		want = append(want, fmt.Sprintf("ALERT_CODE|%s|%s|%d|%t|%s|ALERT|%s", c.Code, c.Description, c.ListSequence, c.Active(),
			c.DeactivatedAt, c.TypeCode))
	}
	sort.Strings(want)

	nomis := queryLines(t, db.Pool, `
SELECT concat_ws('|', domain, code, description, list_seq, active_flag = 'Y',
                 coalesce(to_char(expired_date, 'YYYY-MM-DD HH24:MI:SS'), ''), coalesce(parent_domain, ''), coalesce(parent_code, ''))
  FROM oms_owner.reference_codes`)
	dps := queryLines(t, db.Pool, `
SELECT line FROM (
  SELECT concat_ws('|', 'ALERT', code, description, list_sequence, deactivated_at IS NULL,
                   coalesce(to_char(deactivated_at, 'YYYY-MM-DD HH24:MI:SS'), ''), '', '') AS line
    FROM alert_type
  UNION ALL
  SELECT concat_ws('|', 'ALERT_CODE', c.code, c.description, c.list_sequence, c.deactivated_at IS NULL,
                   coalesce(to_char(c.deactivated_at, 'YYYY-MM-DD HH24:MI:SS'), ''), 'ALERT', t.code)
    FROM alert_code c JOIN alert_type t ON t.id = c.alert_type_id) x`)

	fix := func(lines []string) []string { // concat_ws renders booleans as t/f
		out := make([]string, len(lines))
		for i, l := range lines {
			out[i] = strings.NewReplacer("|t|", "|true|", "|f|", "|false|").Replace(l)
		}
		sort.Strings(out)
		return out
	}
	require.Equal(t, want, fix(nomis), "NOMIS REFERENCE_CODES = reference CSVs")
	require.Equal(t, fix(dps), fix(nomis), "NOMIS REFERENCE_CODES = DPS alert_type + alert_code")
}

// dumpNOMISSchema lists the objects of a schema one line each, sorted, for
// comparing two databases.
func dumpNOMISSchema(t *testing.T, pool *pgxpool.Pool, schema string) []string {
	t.Helper()
	queries := []string{
		`SELECT format('rel %s kind=%s', c.relname, c.relkind) FROM pg_class c WHERE c.relnamespace = $1::regnamespace`,
		`SELECT format('col %s.%s #%s %s null=%s default=%s identity=%s', table_name, column_name, ordinal_position,
		               data_type || coalesce('(' || character_maximum_length || ')', '') || coalesce('(' || numeric_precision || ')', ''),
		               is_nullable, coalesce(column_default, '-'), is_identity)
		   FROM information_schema.columns WHERE table_schema = $1`,
		`SELECT format('con %s on %s: %s', con.conname, c.relname, pg_get_constraintdef(con.oid))
		   FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid WHERE con.connamespace = $1::regnamespace`,
		`SELECT format('idx %s', indexdef) FROM pg_indexes WHERE schemaname = $1`,
		`SELECT format('seq %s', sequence_name) FROM information_schema.sequences WHERE sequence_schema = $1`,
		`SELECT format('fn %s %s', p.proname, md5(pg_get_functiondef(p.oid))) FROM pg_proc p WHERE p.pronamespace = $1::regnamespace`,
		`SELECT format('trg %s', pg_get_triggerdef(tg.oid)) FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
		  WHERE c.relnamespace = $1::regnamespace AND NOT tg.tgisinternal`,
	}
	var out []string
	for _, q := range queries {
		out = append(out, queryLines(t, pool, q, schema)...)
	}
	if schema == "alertsync" {
		out = append(out, queryLines(t, pool,
			"SELECT format('migration %s %s %s %s', set_name, version, name, checksum) FROM alertsync.schema_migrations")...)
	}
	sort.Strings(out)
	return out
}

func TestNOMISMigrationsApplyTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	db.Exec(t, deploy.NOMISSchemaSQL())
	sqlDB := db.SQL(t)
	set := nomisSet(t)

	res, err := migrate.Up(ctx, sqlDB, set, migrate.Latest)
	require.NoError(t, err)
	require.Equal(t, versions(1, set.Latest()), res.Applied)
	res, err = migrate.Up(ctx, sqlDB, set, migrate.Latest)
	require.NoError(t, err)
	require.Empty(t, res.Applied)
	require.Equal(t, set.Latest(), res.Version)

	states, err := migrate.Status(ctx, sqlDB, set)
	require.NoError(t, err)
	for _, s := range states {
		require.True(t, s.Applied, s.File)
		require.False(t, s.Changed, s.File)
	}
}

func versions(from, to int) []int {
	var v []int
	for i := from; i <= to; i++ {
		v = append(v, i)
	}
	return v
}

func TestNOMISMigrationsFromEveryEarlierVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	set := nomisSet(t)
	n := set.Latest()

	straight := pgtest.NewDB(t)
	straight.Exec(t, deploy.NOMISSchemaSQL())
	_, err := migrate.Up(ctx, straight.SQL(t), set, migrate.Latest)
	require.NoError(t, err)
	want := slices.Concat(dumpNOMISSchema(t, straight.Pool, "alertsync"), dumpNOMISSchema(t, straight.Pool, "oms_owner"))
	require.Contains(t, want, "rel alertsync_journal kind=r")

	for k := 0; k < n; k++ {
		t.Run(fmt.Sprintf("from %d", k), func(t *testing.T) {
			t.Parallel()
			db := pgtest.NewDB(t)
			db.Exec(t, deploy.NOMISSchemaSQL())
			sqlDB := db.SQL(t)
			res, err := migrate.Up(ctx, sqlDB, set, k)
			require.NoError(t, err)
			require.Equal(t, versions(1, k), res.Applied)
			res, err = migrate.Up(ctx, sqlDB, set, migrate.Latest)
			require.NoError(t, err)
			require.Equal(t, versions(k+1, n), res.Applied)
			require.Equal(t, want, slices.Concat(dumpNOMISSchema(t, db.Pool, "alertsync"), dumpNOMISSchema(t, db.Pool, "oms_owner")))
		})
	}
}

func TestNOMISMigrationsOnlyAddTriggersToNOMIS(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	db.Exec(t, deploy.NOMISSchemaSQL())
	before := dumpNOMISSchema(t, db.Pool, "oms_owner")
	require.NotEmpty(t, before)
	_, err := migrate.Up(context.Background(), db.SQL(t), nomisSet(t), migrate.Latest)
	require.NoError(t, err)
	after := dumpNOMISSchema(t, db.Pool, "oms_owner")

	var added []string
	for _, line := range after {
		if !slices.Contains(before, line) {
			added = append(added, line)
		}
	}
	for _, line := range before {
		require.Contains(t, after, line, "a NOMIS object changed or vanished")
	}
	require.Len(t, added, 4, "the journal triggers: %q", added)
	for _, line := range added {
		require.True(t, strings.HasPrefix(line, "trg CREATE TRIGGER alertsync_journal"), "only journal triggers are added: %s", line)
		require.Contains(t, line, "AFTER")
	}
}

type journalRow struct {
	ID         int64
	Table, Op  string
	Old, New   map[string]any
	Module     *string
	Additional *string
	User       *string
	Txid       int64
}

// takeJournal returns the journal rows in id order and empties the journal.
func takeJournal(t *testing.T, db *pgtest.DB) []journalRow {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Pool.Query(ctx, `DELETE FROM alertsync.alertsync_journal
	    RETURNING journal_id, table_name, operation, old_row, new_row, module_name, additional_info, user_id, txid`)
	require.NoError(t, err)
	defer rows.Close()
	var out []journalRow
	for rows.Next() {
		var r journalRow
		require.NoError(t, rows.Scan(&r.ID, &r.Table, &r.Op, &r.Old, &r.New, &r.Module, &r.Additional, &r.User, &r.Txid))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func TestNOMISJournal(t *testing.T) {
	t.Parallel()
	db := nomisDB(t)
	nomisFixture(t, db)
	su := pgtest.QueryValue[string](t, db, "SELECT session_user::text")

	type want struct {
		table, op          string
		module, additional *string
		check              func(t *testing.T, r journalRow)
	}
	tests := []struct {
		name     string
		settings map[string]string
		stmts    []string
		want     []want
	}{
		{
			name:     "alert insert",
			settings: map[string]string{setModule: "OIDALERT", setUser: "JSMITH_GEN"},
			stmts:    []string{insertAlert(10, 1)},
			want: []want{{table: "offender_alerts", op: "I", module: str("OIDALERT"), check: func(t *testing.T, r journalRow) {
				require.Nil(t, r.Old)
				require.Equal(t, "XA", r.New["alert_code"])
				require.InDelta(t, 10, r.New["offender_book_id"], 0)
				require.InDelta(t, 1, r.New["alert_seq"], 0)
				require.Equal(t, "2024-03-02T00:00:00", r.New["alert_date"])
				require.Equal(t, "OIDALERT", r.New["audit_module_name"], "the after-image carries the audit trigger's values")
				require.Equal(t, "JSMITH_GEN", *r.User)
			}}},
		},
		{
			name:     "alert update by the sync",
			settings: map[string]string{setModule: "DPS_SYNCHRONISATION"},
			stmts:    []string{"UPDATE oms_owner.offender_alerts SET comment_text = 'changed' WHERE offender_book_id = 10 AND alert_seq = 1"},
			want: []want{{table: "offender_alerts", op: "U", module: str("DPS_SYNCHRONISATION"), check: func(t *testing.T, r journalRow) {
				require.Equal(t, "text", r.Old["comment_text"])
				require.Equal(t, "changed", r.New["comment_text"])
				require.Equal(t, "OIDALERT", r.Old["audit_module_name"])
				require.Equal(t, su, *r.User)
			}}},
		},
		{
			name:     "delete records the deleting session's module, not the row's",
			settings: map[string]string{setModule: "OIDDELET", setAdditional: "deleting"},
			stmts:    []string{"DELETE FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 1"},
			want: []want{{table: "offender_alerts", op: "D", module: str("OIDDELET"), additional: str("deleting"), check: func(t *testing.T, r journalRow) {
				require.Nil(t, r.New)
				require.Equal(t, "DPS_SYNCHRONISATION", r.Old["audit_module_name"], "the deleted row still carries the last writer's module")
			}}},
		},
		{
			name:     "booking copy marker",
			settings: map[string]string{setModule: "OIDADMIS", setAdditional: "OMKCOPY.COPY_BOOKING_DATA"},
			stmts:    []string{insertAlert(10, 2), insertAlert(10, 3)},
			want: []want{
				{table: "offender_alerts", op: "I", module: str("OIDADMIS"), additional: str("OMKCOPY.COPY_BOOKING_DATA")},
				{table: "offender_alerts", op: "I", module: str("OIDADMIS"), additional: str("OMKCOPY.COPY_BOOKING_DATA")},
			},
		},
		{
			name:  "no session settings",
			stmts: []string{"UPDATE oms_owner.offender_alerts SET alert_status = 'INACTIVE' WHERE offender_book_id = 10 AND alert_seq = 2"},
			want:  []want{{table: "offender_alerts", op: "U"}},
		},
		{
			name:     "module cut to 65 chars",
			settings: map[string]string{setModule: strings.Repeat("m", 70)},
			stmts:    []string{"DELETE FROM oms_owner.offender_alerts WHERE offender_book_id = 10 AND alert_seq = 3"},
			want:     []want{{table: "offender_alerts", op: "D", module: str(strings.Repeat("m", 65))}},
		},
		{
			name:     "offender prison number change (merge)",
			settings: map[string]string{setModule: "MERGE"},
			stmts:    []string{"UPDATE oms_owner.offenders SET offender_id_display = 'A1234BD' WHERE offender_id = 1"},
			want: []want{{table: "offenders", op: "U", module: str("MERGE"), check: func(t *testing.T, r journalRow) {
				require.Equal(t, "A1234BC", r.Old["offender_id_display"])
				require.Equal(t, "A1234BD", r.New["offender_id_display"])
			}}},
		},
		{
			name:     "offender insert and delete",
			settings: map[string]string{setModule: "OIDINMAT"},
			stmts: []string{"INSERT INTO oms_owner.offenders (offender_id, offender_id_display) VALUES (5, 'E5678FG')",
				"DELETE FROM oms_owner.offenders WHERE offender_id = 5"},
			want: []want{{table: "offenders", op: "I", module: str("OIDINMAT")}, {table: "offenders", op: "D", module: str("OIDINMAT")}},
		},
	}
	for _, tt := range tests { // in order: later cases change rows of earlier ones
		t.Run(tt.name, func(t *testing.T) {
			txid := inSession(t, db, tt.settings, tt.stmts...)
			got := takeJournal(t, db)
			require.Len(t, got, len(tt.want))
			for i, w := range tt.want {
				r := got[i]
				require.Equal(t, w.table, r.Table)
				require.Equal(t, w.op, r.Op)
				require.Equal(t, w.module, r.Module)
				require.Equal(t, w.additional, r.Additional)
				require.Equal(t, txid, r.Txid)
				require.NotNil(t, r.User)
				if w.check != nil {
					w.check(t, r)
				}
			}
		})
	}

	t.Run("rolled back writes leave nothing", func(t *testing.T) {
		ctx := context.Background()
		tx, err := db.Pool.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, insertAlert(10, 9))
		require.NoError(t, err)
		require.NoError(t, tx.Rollback(ctx))
		require.Empty(t, takeJournal(t, db))
	})
}

func TestNOMISBookingTrigger(t *testing.T) {
	t.Parallel()
	db := nomisDB(t)
	nomisFixture(t, db)
	tests := []struct {
		name   string
		stmt   string
		wantOp string // "" = not journalled
	}{
		{"agency change", "UPDATE oms_owner.offender_bookings SET agy_loc_id = 'LEI' WHERE offender_book_id = 10", ""},
		{"active flag change", "UPDATE oms_owner.offender_bookings SET active_flag = 'N' WHERE offender_book_id = 10", ""},
		{"booking seq set to itself", "UPDATE oms_owner.offender_bookings SET booking_seq = booking_seq, offender_id = offender_id WHERE offender_book_id = 10", ""},
		{"booking seq change", "UPDATE oms_owner.offender_bookings SET booking_seq = 3 WHERE offender_book_id = 11", "U"},
		{"booking moved to another offender", "UPDATE oms_owner.offender_bookings SET offender_id = 2 WHERE offender_book_id = 11", "U"},
		{"root offender change", "UPDATE oms_owner.offender_bookings SET root_offender_id = 2 WHERE offender_book_id = 11", "U"},
		{"root offender set to NULL", "UPDATE oms_owner.offender_bookings SET root_offender_id = NULL WHERE offender_book_id = 11", "U"},
		{"unrelated and key column together", "UPDATE oms_owner.offender_bookings SET agy_loc_id = 'MDI', booking_seq = 2 WHERE offender_book_id = 11", "U"},
		{"new booking", `INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq)
		                 VALUES (12, localtimestamp, 1, 1, 1)`, "I"},
		{"booking deleted", "DELETE FROM oms_owner.offender_bookings WHERE offender_book_id = 12", "D"},
	}
	for _, tt := range tests { // in order: later cases change rows of earlier ones
		t.Run(tt.name, func(t *testing.T) {
			inSession(t, db, map[string]string{setModule: "OIDADMIS"}, tt.stmt)
			got := takeJournal(t, db)
			if tt.wantOp == "" {
				require.Empty(t, got)
				return
			}
			require.Len(t, got, 1)
			require.Equal(t, "offender_bookings", got[0].Table)
			require.Equal(t, tt.wantOp, got[0].Op)
			require.Equal(t, "OIDADMIS", *got[0].Module)
		})
	}
}

func TestNOMISJournalNotify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := nomisDB(t)
	nomisFixture(t, db)
	listener, err := pgx.Connect(ctx, db.DSN)
	require.NoError(t, err)
	t.Cleanup(func() { _ = listener.Close(context.Background()) })
	_, err = listener.Exec(ctx, "LISTEN alertsync_journal")
	require.NoError(t, err)

	wait := func(d time.Duration) (*pgconn.Notification, error) {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return listener.WaitForNotification(ctx)
	}

	// While no capture waits (nobody holds the wait lock), a journalled
	// write notifies nobody.
	inSession(t, db, nil, insertAlert(10, 5))
	_, err = wait(300 * time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded, "no notification while no capture waits")

	// A writer between its journal row and its commit holds the wait lock
	// shared: a capture cannot start waiting (it would miss this writer's
	// wake-up) until the writer has ended.
	writer, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	_, err = writer.Exec(ctx, insertAlert(10, 6))
	require.NoError(t, err)
	var locked bool
	require.NoError(t, listener.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", waitLockKey).Scan(&locked))
	require.False(t, locked, "the wait lock is free while a journal writer is open")
	require.NoError(t, writer.Commit(ctx))
	_, err = wait(300 * time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded, "no notification from a writer that saw no waiting capture")
	// The capture now waits: it holds the lock exclusively.
	require.NoError(t, listener.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", waitLockKey).Scan(&locked))
	require.True(t, locked, "the wait lock is free once the writer has ended")

	// A rolled-back write wakes nobody.
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, insertAlert(10, 1))
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))
	_, err = wait(300 * time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded, "no notification for a rolled-back write")

	// A transaction of three rows wakes the poller once.
	inSession(t, db, nil, insertAlert(10, 1), insertAlert(10, 2),
		"UPDATE oms_owner.offender_alerts SET alert_status = 'INACTIVE' WHERE offender_book_id = 10")
	n, err := wait(10 * time.Second)
	require.NoError(t, err)
	require.Equal(t, "alertsync_journal", n.Channel)
	_, err = wait(300 * time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded, "one notification per transaction")

	// A change that is not journalled wakes nobody.
	inSession(t, db, nil, "UPDATE oms_owner.offender_bookings SET agy_loc_id = 'XXX' WHERE offender_book_id = 10")
	_, err = wait(300 * time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded, "no notification without a journal row")

	// Once the capture has stopped waiting, writers are quiet again.
	_, err = listener.Exec(ctx, "SELECT pg_advisory_unlock($1)", waitLockKey)
	require.NoError(t, err)
	inSession(t, db, nil, insertAlert(10, 7))
	_, err = wait(300 * time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded, "no notification after the capture stopped waiting")
}

// waitLockKey is the advisory lock a waiting capture holds (migration 0010;
// capture/nomis pgWaitKey).
const waitLockKey int64 = 7020111763708406132

type orderedRow struct {
	ID       int64
	CommitTS time.Time
	CommitUS int64
}

// readOrdered calls alertsync_journal_read and returns its rows in order.
func readOrdered(t *testing.T, db *pgtest.DB, limit int, settle string) []orderedRow {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(),
		"SELECT journal_id, commit_ts, commit_us FROM alertsync.alertsync_journal_read($1, $2::interval)", limit, settle)
	require.NoError(t, err)
	defer rows.Close()
	var out []orderedRow
	for rows.Next() {
		var r orderedRow
		require.NoError(t, rows.Scan(&r.ID, &r.CommitTS, &r.CommitUS))
		require.Equal(t, r.CommitTS.UnixMicro(), r.CommitUS, "commit_us is the commit time in microseconds")
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

func ids(rows []orderedRow) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

// journalIDsOf returns the journal ids of the alert rows of booking 10 with
// the given seq, in id order.
func journalIDsOf(t *testing.T, db *pgtest.DB, seq int) []int64 {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT journal_id FROM alertsync.alertsync_journal
	     WHERE table_name = 'offender_alerts' AND (new_row->>'alert_seq')::int = $1 ORDER BY journal_id`, seq)
	require.NoError(t, err)
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		out = append(out, id)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestNOMISJournalCommitOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := nomisDB(t)
	nomisFixture(t, db)

	// T1 writes first but commits second.
	t1, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = t1.Rollback(ctx) }()
	_, err = t1.Exec(ctx, insertAlert(10, 1))
	require.NoError(t, err)
	t2, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = t2.Rollback(ctx) }()
	_, err = t2.Exec(ctx, insertAlert(10, 2))
	require.NoError(t, err)
	require.NoError(t, t2.Commit(ctx))
	require.Equal(t, journalIDsOf(t, db, 2), ids(readOrdered(t, db, 100, "0")),
		"a writer that has not begun to commit holds nothing back: it will commit later")
	time.Sleep(5 * time.Millisecond) // commit times a clear step apart
	require.NoError(t, t1.Commit(ctx))

	first, second := journalIDsOf(t, db, 1), journalIDsOf(t, db, 2)
	require.Len(t, first, 1)
	require.Len(t, second, 1)
	require.Less(t, first[0], second[0], "precondition: T1's journal row has the smaller id")

	got := readOrdered(t, db, 100, "0")
	require.Equal(t, []int64{second[0], first[0]}, ids(got), "T2 committed first, so its row comes first")
	require.Less(t, got[0].CommitUS, got[1].CommitUS)

	require.Equal(t, []int64{second[0]}, ids(readOrdered(t, db, 1, "0")), "the limit keeps the earliest commits")
	require.Empty(t, readOrdered(t, db, 100, "1 hour"), "rows committed within the settle window wait")
	require.Equal(t, 2, pgtest.QueryValue[int](t, db, "SELECT count(*)::int FROM alertsync.alertsync_journal"),
		"reading deletes nothing")
}

// TestNOMISJournalReadWaitsForInvisibleCommit reproduces the race the read
// horizon exists for: T1 commits (its commit time recorded) but is not yet
// visible, as while it waits for a synchronous standby; T2 commits later and
// is visible at once. Publishing T2 then would put it ahead of T1's earlier
// commit. The cluster has a synchronous standby name that no standby answers
// to; sessions commit with synchronous_commit = local except T1.
//
// No capture waits here, so the writers send no NOTIFY: NOTIFY's commit
// lock makes notifying transactions commit one at a time (T2 would wait for
// T1), which would hide the race on the stand-in; the horizon must hold
// without it (Oracle has no NOTIFY).
func TestNOMISJournalReadWaitsForInvisibleCommit(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster := pgtest.NewCluster(t, pgcluster.Options{Settings: map[string]string{
		"synchronous_standby_names": "'alertsync_absent_standby'",
		"synchronous_commit":        "local",
	}})
	db := pgtest.NewDBOn(t, cluster)
	setUpNOMIS(t, db)
	nomisFixture(t, db)

	t1, err := pgx.Connect(ctx, db.DSN)
	require.NoError(t, err)
	t.Cleanup(func() { _ = t1.Close(context.Background()) })
	var pid int
	require.NoError(t, t1.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid))
	_, err = t1.Exec(ctx, "BEGIN; SET LOCAL synchronous_commit = on")
	require.NoError(t, err)
	_, err = t1.Exec(ctx, insertAlert(10, 1))
	require.NoError(t, err)
	committed := make(chan error, 1)
	go func() {
		_, err := t1.Exec(ctx, "COMMIT")
		committed <- err
	}()
	require.Eventually(t, func() bool {
		var waiting bool
		err := db.Pool.QueryRow(ctx,
			"SELECT coalesce(bool_or(wait_event = 'SyncRep'), false) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&waiting)
		return err == nil && waiting
	}, 30*time.Second, 10*time.Millisecond, "T1 waits for the standby after recording its commit")
	require.Zero(t, pgtest.QueryValue[int](t, db, "SELECT count(*)::int FROM alertsync.alertsync_journal"),
		"precondition: T1's row is not visible yet")

	inSession(t, db, nil, insertAlert(10, 2)) // T2: commits after T1, visible at once
	second := journalIDsOf(t, db, 2)
	require.Len(t, second, 1, "precondition: T2's row is visible")
	require.Empty(t, readOrdered(t, db, 100, "0"), "T2 waits behind T1's earlier, still invisible commit")

	// Release T1: cancelling the wait leaves the local commit in place.
	require.True(t, pgtest.QueryValue[bool](t, db, "SELECT pg_cancel_backend($1)", pid))
	select {
	case err := <-committed:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("T1's commit did not return after its wait was cancelled")
	}
	first := journalIDsOf(t, db, 1)
	require.Len(t, first, 1)
	got := readOrdered(t, db, 100, "0")
	require.Equal(t, []int64{first[0], second[0]}, ids(got), "T1 committed first, so its row comes first")
	require.Less(t, got[0].CommitUS, got[1].CommitUS)
}

func TestNOMISMigrationConstraints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := nomisDB(t)
	insertMapping := `INSERT INTO alertsync.alertsync_alert_mapping (dps_alert_id, offender_book_id, alert_seq, offender_no,
	                    mapping_type, nomis_commit_pos, nomis_change_pos) VALUES ($1, $2, $3, 'A1234BC', $4, $5, $6)`
	insertOffset := `INSERT INTO alertsync.alertsync_consumer_offsets (consumer_group, topic, kafka_partition, next_offset, fence_epoch)
	                 VALUES ('apply-nomis', 'alertsync.commands.nomis', $1, $2, $3)`
	id := uuid.New()
	tests := []struct {
		name     string
		sql      string
		args     []any
		wantCode string
	}{
		{"mapping accepted", insertMapping, []any{id, 10, 1, "DPS_CREATED", 10, 11}, ""},
		{"same NOMIS key twice", insertMapping, []any{uuid.New(), 10, 1, "MIGRATED", nil, nil}, "23505"},
		{"same DPS id twice", insertMapping, []any{id, 10, 2, "MIGRATED", nil, nil}, "23505"},
		{"NOMIS key missing", insertMapping, []any{uuid.New(), nil, nil, "MIGRATED", nil, nil}, "23502"},
		{"alert seq of 7 digits", insertMapping, []any{uuid.New(), 10, 1000000, "MIGRATED", nil, nil}, "22003"},
		{"half a position", insertMapping, []any{uuid.New(), 10, 3, "MIGRATED", 10, nil}, "23514"},
		{"unknown mapping type", insertMapping, []any{uuid.New(), 10, 4, "GUESSED", nil, nil}, "23514"},
		{"offset accepted", insertOffset, []any{0, 0, 1}, ""},
		{"offset key twice", insertOffset, []any{0, 5, 2}, "23505"},
		{"negative partition", insertOffset, []any{-1, 0, 1}, "23514"},
		{"negative offset", insertOffset, []any{1, -1, 1}, "23514"},
		{"empty outcome batch", `INSERT INTO alertsync.alertsync_outcome_batches (commands, payload) VALUES (0, '\x01')`, nil, "23514"},
		{"outcome batch accepted", `INSERT INTO alertsync.alertsync_outcome_batches (commands, payload) VALUES (1, '\x01')`, nil, ""},
		{"hold accepted", `INSERT INTO alertsync.alertsync_dlq_holds (hold_key, prison_number, first_command_id, reason)
		                   VALUES ('nomis:10:1', 'A1234BC', 'c1', 'DECODE')`, nil, ""},
		{"hold count zero", `INSERT INTO alertsync.alertsync_dlq_holds (hold_key, prison_number, first_command_id, reason, held_commands)
		                     VALUES ('nomis:10:2', 'A1234BC', 'c2', 'DECODE', 0)`, nil, "23514"},
		{"journal operation unknown", `INSERT INTO alertsync.alertsync_journal (table_name, operation, txid) VALUES ('offenders', 'X', 1)`, nil, "23514"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.Pool.Exec(ctx, tt.sql, tt.args...)
			requireSQLState(t, err, tt.wantCode)
		})
	}
}

// TestNOMISJournalTriggerRunsAsOwner writes as a NOMIS user with no rights on
// the alertsync schema and a search_path that puts look-alike functions and
// operators first: the journal still gets the true values, and the user
// cannot write the journal directly.
func TestNOMISJournalTriggerRunsAsOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := nomisDB(t)
	nomisFixture(t, db)
	role := "nomis_writer_" + db.Name[strings.LastIndex(db.Name, "_")+1:] // NOMIS user ids are at most 32 chars
	db.Exec(t, fmt.Sprintf(`
CREATE ROLE %[1]s LOGIN;
GRANT USAGE ON SCHEMA oms_owner TO %[1]s;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA oms_owner TO %[1]s;
CREATE SCHEMA evil;
GRANT USAGE ON SCHEMA evil TO %[1]s;
CREATE FUNCTION evil.left(text, integer) RETURNS text LANGUAGE sql AS 'SELECT ''HACKED''';
CREATE FUNCTION evil.to_json(anyelement) RETURNS json LANGUAGE sql AS 'SELECT ''"HACKED"''::json';
CREATE FUNCTION evil.eq(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.eq);`, role))
	t.Cleanup(func() {
		_, err := db.Pool.Exec(context.Background(), fmt.Sprintf("DROP OWNED BY %[1]s; DROP ROLE %[1]s", role))
		require.NoError(t, err)
	})

	cfg, err := pgx.ParseConfig(db.DSN)
	require.NoError(t, err)
	cfg.User = role
	writer, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = writer.Close(context.Background()) })

	_, err = writer.Exec(ctx, "SET search_path = evil, pg_catalog, oms_owner")
	require.NoError(t, err)
	_, err = writer.Exec(ctx, "SET nomis.audit_module_name = 'OIDALERT'")
	require.NoError(t, err)
	_, err = writer.Exec(ctx, insertAlert(10, 1))
	require.NoError(t, err)
	got := takeJournal(t, db)
	require.Len(t, got, 1)
	require.Equal(t, "I", got[0].Op)
	require.Equal(t, "OIDALERT", *got[0].Module)
	require.Nil(t, got[0].Additional)
	require.Equal(t, role, *got[0].User, "the writing session's user, not the trigger's owner")
	require.Equal(t, "XA", got[0].New["alert_code"])

	_, err = writer.Exec(ctx, `INSERT INTO alertsync.alertsync_journal (table_name, operation, txid) VALUES ('offenders', 'I', 1)`)
	requireSQLState(t, err, "42501")
}
