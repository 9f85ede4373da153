package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestSeedIsGeneratedFromReference(t *testing.T) {
	t.Parallel()
	want, err := deploy.RenderDPSSeed()
	require.NoError(t, err)
	require.Equal(t, want, deploy.DPSSeedSQL(), "dps/seed.sql is out of date: run `go generate ./deploy`")
}

func TestReferenceData(t *testing.T) {
	t.Parallel()
	types, codes := deploy.AlertTypes(), deploy.AlertCodes()
	require.GreaterOrEqual(t, len(types), 15)
	require.GreaterOrEqual(t, len(codes), 60)

	perType := map[string]int{}
	var restricted, deactivated int
	for _, c := range codes {
		perType[c.TypeCode]++
		if c.Restricted {
			restricted++
		}
		if !c.Active() {
			deactivated++
		}
	}
	for _, ty := range types {
		require.Positive(t, perType[ty.Code], "type %s has codes", ty.Code)
	}
	require.Positive(t, restricted, "some codes are restricted")
	require.Positive(t, deactivated, "some codes are deactivated")

	byCode := map[string]deploy.AlertCode{}
	for _, c := range codes {
		byCode[c.Code] = c
	}
	for _, want := range []struct{ typ, code, desc string }{
		{"X", "XA", "Arsonist"}, {"X", "XEL", "Escape List"}, {"X", "XSA", "Staff Assaulter"},
		{"H", "HA", "ACCT Open (HMPS)"}, {"H", "HS", "Self Harm"},
	} {
		require.Equal(t, want.typ, byCode[want.code].TypeCode, want.code)
		require.Equal(t, want.desc, byCode[want.code].Description, want.code)
	}

	// Callers get copies.
	codes[0].Description = "changed"
	require.NotEqual(t, "changed", deploy.AlertCodes()[0].Description)
}

func TestSchemaAndSeedApplyTwice(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	for range 2 {
		db.Exec(t, deploy.DPSSchemaSQL())
		db.Exec(t, deploy.DPSSeedSQL())
	}
	require.Equal(t, len(deploy.AlertTypes()), pgtest.QueryValue[int](t, db, "SELECT count(*)::int FROM alert_type"))
	require.Equal(t, len(deploy.AlertCodes()), pgtest.QueryValue[int](t, db, "SELECT count(*)::int FROM alert_code"))
}

func seededDB(t *testing.T) *pgtest.DB {
	t.Helper()
	db := pgtest.NewDB(t)
	db.Exec(t, deploy.DPSSchemaSQL())
	db.Exec(t, deploy.DPSSeedSQL())
	return db
}

func TestSeedMatchesGoView(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := seededDB(t)

	var wantTypes []string
	for _, ty := range deploy.AlertTypes() {
		wantTypes = append(wantTypes, fmt.Sprintf("%s|%s|%d|%s|%s", ty.Code, ty.Description, ty.ListSequence,
			ty.DeactivatedAt, deploy.SeedCreatedAt))
	}
	rows, err := db.Pool.Query(ctx, `SELECT format('%s|%s|%s|%s|%s', code, description, list_sequence,
	        coalesce(to_char(deactivated_at, 'YYYY-MM-DD HH24:MI:SS'), ''), to_char(created_at, 'YYYY-MM-DD HH24:MI:SS'))
	   FROM alert_type ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close() // collect closes it too; Close is idempotent
	gotTypes := collect(t, rows)
	require.Equal(t, wantTypes, gotTypes)

	var wantCodes []string
	for _, c := range deploy.AlertCodes() {
		wantCodes = append(wantCodes, fmt.Sprintf("%s|%s|%s|%t|%d|%s", c.TypeCode, c.Code, c.Description, c.Restricted,
			c.ListSequence, c.DeactivatedAt))
	}
	rows, err = db.Pool.Query(ctx, `SELECT format('%s|%s|%s|%s|%s|%s', t.code, c.code, c.description, c.restricted,
	        c.list_sequence, coalesce(to_char(c.deactivated_at, 'YYYY-MM-DD HH24:MI:SS'), ''))
	   FROM alert_code c JOIN alert_type t ON t.id = c.alert_type_id ORDER BY c.id`)
	require.NoError(t, err)
	defer rows.Close()
	require.Equal(t, wantCodes, collect(t, rows))
}

type rowsScanner interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close()
}

func collect(t *testing.T, rows rowsScanner) []string {
	t.Helper()
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		// format('%s') renders booleans as t/f.
		out = append(out, strings.NewReplacer("|t|", "|true|", "|f|", "|false|").Replace(s))
	}
	require.NoError(t, rows.Err())
	return out
}

func TestSchemaColumns(t *testing.T) {
	t.Parallel()
	db := seededDB(t)
	want := map[string][]string{
		"alert_type": {
			"id bigint NO nextval", "code varchar(12) NO", "description varchar(40) NO", "list_sequence integer NO 0",
			"created_at timestamp NO now()", "created_by varchar(64) NO", "modified_at timestamp YES",
			"modified_by varchar(64) YES", "deactivated_at timestamp YES", "deactivated_by varchar(64) YES",
		},
		"alert_code": {
			"id bigint NO nextval", "alert_type_id bigint NO", "code varchar(12) NO", "description varchar(40) NO",
			"restricted boolean NO false", "list_sequence integer NO 0", "created_at timestamp NO now()",
			"created_by varchar(64) NO", "modified_at timestamp YES", "modified_by varchar(64) YES",
			"deactivated_at timestamp YES", "deactivated_by varchar(64) YES",
		},
		"alert": {
			"id uuid NO", "alert_code_id bigint NO", "prison_number varchar(10) NO", "description text YES",
			"authorised_by varchar(40) YES", "active_from date NO", "active_to date YES", "created_at timestamp NO",
			"last_modified_at timestamp YES", "deleted_at timestamp YES", "prison_code_when_created varchar(6) YES",
			"version integer NO 0",
		},
		"audit_event": {
			"id uuid NO", "alert_id uuid NO", "action varchar(20) NO", "description text NO", "actioned_at timestamp NO",
			"actioned_by varchar(64) NO", "actioned_by_display_name varchar(255) NO", "source varchar(12) NO",
			"description_updated boolean YES", "authorised_by_updated boolean YES", "active_from_updated boolean YES",
			"active_to_updated boolean YES",
		},
	}
	for table, cols := range want {
		t.Run(table, func(t *testing.T) {
			rows, err := db.Pool.Query(context.Background(), `
SELECT concat_ws(' ', column_name,
         replace(replace(data_type, 'character varying', 'varchar'), 'timestamp without time zone', 'timestamp')
           || coalesce('(' || character_maximum_length || ')', ''),
         is_nullable,
         CASE WHEN column_default LIKE 'nextval%' THEN 'nextval' ELSE column_default END)
  FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`, table)
			require.NoError(t, err)
			defer rows.Close()
			require.Equal(t, cols, collect(t, rows))
		})
	}
}

func TestAlertReplicaIdentityFull(t *testing.T) {
	t.Parallel()
	db := seededDB(t)
	require.Equal(t, "f", pgtest.QueryValue[string](t, db, "SELECT relreplident::text FROM pg_class WHERE oid = 'public.alert'::regclass"))
}

func TestConstraints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := seededDB(t)
	codeID := pgtest.QueryValue[int64](t, db, "SELECT id FROM alert_code WHERE code = 'XA'")
	alertID := uuid.Must(uuid.NewV7())
	db.Exec(t, `INSERT INTO alert (id, alert_code_id, prison_number, active_from, created_at)
	            VALUES ($1, $2, 'A1234BC', current_date, localtimestamp)`, alertID, codeID)

	insertAlert := `INSERT INTO alert (id, alert_code_id, prison_number, description, active_from, created_at)
	                VALUES ($1, $2, $3, $4, current_date, localtimestamp)`
	insertAudit := `INSERT INTO audit_event (id, alert_id, action, description, actioned_at, actioned_by,
	                  actioned_by_display_name, source)
	                VALUES ($1, $2, $3, 'Alert created', localtimestamp, $4, 'A User', $5)`
	tests := []struct {
		name     string
		sql      string
		args     []any
		wantCode string // "" = accepted
	}{
		{"alert accepted", insertAlert, []any{uuid.New(), codeID, "A1234BC", "text"}, ""},
		{"second active alert with the same code", insertAlert, []any{uuid.New(), codeID, "A1234BC", nil}, ""},
		{"description of 4000 chars", insertAlert, []any{uuid.New(), codeID, "A1234BC", strings.Repeat("x", 4000)}, ""},
		{"description of 4000 multi-byte chars", insertAlert, []any{uuid.New(), codeID, "A1234BC", strings.Repeat("é", 4000)}, ""},
		{"description of 4001 chars", insertAlert, []any{uuid.New(), codeID, "A1234BC", strings.Repeat("x", 4001)}, "23514"},
		{"prison number NULL", insertAlert, []any{uuid.New(), codeID, nil, nil}, "23502"},
		{"prison number too long", insertAlert, []any{uuid.New(), codeID, "A1234BCDEFG", nil}, "22001"},
		{"unknown alert code", insertAlert, []any{uuid.New(), int64(-1), "A1234BC", nil}, "23503"},
		{"active_from NULL", `INSERT INTO alert (id, alert_code_id, prison_number, created_at) VALUES ($1, $2, 'A1234BC', localtimestamp)`,
			[]any{uuid.New(), codeID}, "23502"},
		{"audit event accepted", insertAudit, []any{uuid.New(), alertID, "CREATED", "USER1", "DPS"}, ""},
		{"audit event from NOMIS", insertAudit, []any{uuid.New(), alertID, "INACTIVE", "USER1", "NOMIS"}, ""},
		{"audit action unknown", insertAudit, []any{uuid.New(), alertID, "ARCHIVED", "USER1", "DPS"}, "23514"},
		{"audit source unknown", insertAudit, []any{uuid.New(), alertID, "UPDATED", "USER1", "OTHER"}, "23514"},
		{"audit actioned_by NULL", insertAudit, []any{uuid.New(), alertID, "UPDATED", nil, "DPS"}, "23502"},
		{"audit for unknown alert", insertAudit, []any{uuid.New(), uuid.New(), "CREATED", "USER1", "DPS"}, "23503"},
		{"alert code description too long",
			`INSERT INTO alert_code (alert_type_id, code, description, created_by) SELECT id, 'ZZ', $1, 'ME' FROM alert_type WHERE code = 'X'`,
			[]any{strings.Repeat("d", 41)}, "22001"},
		{"duplicate alert code", `INSERT INTO alert_code (alert_type_id, code, description, created_by) SELECT id, 'XA', 'dup', 'ME' FROM alert_type WHERE code = 'X'`,
			nil, "23505"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.Pool.Exec(ctx, tt.sql, tt.args...)
			if tt.wantCode == "" {
				require.NoError(t, err)
				return
			}
			var pgErr *pgconn.PgError
			require.True(t, errors.As(err, &pgErr), "want SQLSTATE %s, got %v", tt.wantCode, err)
			require.Equal(t, tt.wantCode, pgErr.Code, pgErr.Message)
		})
	}
	require.Equal(t, 5, pgtest.QueryValue[int](t, db,
		"SELECT count(*)::int FROM alert WHERE alert_code_id = $1 AND (active_to IS NULL OR active_to > current_date)", codeID),
		"active alerts with the same code coexist")
}

func TestMigrationFiles(t *testing.T) {
	t.Parallel()
	fsys, ok := deploy.Migrations("dps")
	require.True(t, ok)
	_, ok = deploy.Migrations("nope")
	require.False(t, ok)
	for _, name := range []string{"0001_alert_mapping.sql", "0002_consumer_offsets.sql"} {
		_, err := fsys.Open(name)
		require.NoError(t, err, name)
	}
}

func TestDPSMigrationConstraints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	set, err := migrate.Named("dps")
	require.NoError(t, err)
	_, err = migrate.Up(ctx, db.SQL(t), set, migrate.Latest)
	require.NoError(t, err)

	insertMapping := `INSERT INTO alertsync.alert_mapping (dps_alert_id, nomis_booking_id, nomis_alert_seq, offender_no,
	                    mapping_type, dps_commit_pos, dps_change_pos) VALUES ($1, $2, $3, 'A1234BC', $4, $5, $6)`
	upsertOffset := `INSERT INTO alertsync.consumer_offsets (consumer_group, topic, kafka_partition, next_offset, fence_epoch)
	                 VALUES ('apply-dps', 'alertsync.commands.dps', $1, $2, $3)`
	tests := []struct {
		name     string
		sql      string
		args     []any
		wantCode string
	}{
		{"mapping accepted", insertMapping, []any{uuid.New(), 1, 1, "NOMIS_CREATED", 10, 11}, ""},
		{"mapping without NOMIS key yet", insertMapping, []any{uuid.New(), nil, nil, "DPS_CREATED", nil, nil}, ""},
		{"same NOMIS key twice", insertMapping, []any{uuid.New(), 1, 1, "MIGRATED", nil, nil}, "23505"},
		{"half a NOMIS key", insertMapping, []any{uuid.New(), 2, nil, "MIGRATED", nil, nil}, "23514"},
		{"half a position", insertMapping, []any{uuid.New(), 3, 1, "MIGRATED", 10, nil}, "23514"},
		{"unknown mapping type", insertMapping, []any{uuid.New(), 4, 1, "GUESSED", nil, nil}, "23514"},
		{"offset accepted", upsertOffset, []any{0, 0, 1}, ""},
		{"offset key twice", upsertOffset, []any{0, 5, 2}, "23505"},
		{"negative partition", upsertOffset, []any{-1, 0, 1}, "23514"},
		{"negative offset", upsertOffset, []any{1, -1, 1}, "23514"},
		{"empty outcome batch", `INSERT INTO alertsync.outcome_batches (commands, payload) VALUES (0, '\x01')`, nil, "23514"},
		{"outcome batch without payload", `INSERT INTO alertsync.outcome_batches (commands) VALUES (1)`, nil, "23502"},
		{"outcome batch accepted", `INSERT INTO alertsync.outcome_batches (commands, payload) VALUES (1, '\x01')`, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.Pool.Exec(ctx, tt.sql, tt.args...)
			if tt.wantCode == "" {
				require.NoError(t, err)
				return
			}
			var pgErr *pgconn.PgError
			require.True(t, errors.As(err, &pgErr), "want SQLSTATE %s, got %v", tt.wantCode, err)
			require.Equal(t, tt.wantCode, pgErr.Code, pgErr.Message)
		})
	}
}

// TestOutcomeBatchesUpgrade: the migration to one outbox row per batch
// refuses while the per-command outbox still holds unpublished outcomes
// (dropping them would lose them) and goes through once they are
// published, on both PostgreSQL targets.
func TestOutcomeBatchesUpgrade(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ set, table, insert string }{
		{"dps", "alertsync.outcome_outbox", "INSERT INTO alertsync.outcome_outbox (command_id, outcome) VALUES ('c1', 'APPLIED')"},
		{"nomis", "alertsync.alertsync_outcome_outbox", `INSERT INTO alertsync.alertsync_outcome_outbox (command_id, outcome, offender_book_id, alert_seq)
			VALUES ('c1', 'APPLIED', 10, 1)`},
	} {
		t.Run(tt.set, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := pgtest.NewDB(t)
			if tt.set == "nomis" {
				db.Exec(t, deploy.NOMISSchemaSQL())
			}
			set, err := migrate.Named(tt.set)
			require.NoError(t, err)
			before := -1
			for i, m := range set.Migrations {
				if strings.HasSuffix(m.File, "_outcome_batches.sql") {
					before = i
				}
			}
			require.Positive(t, before, "no outcome_batches migration in %s", tt.set)
			_, err = migrate.Up(ctx, db.SQL(t), set, before)
			require.NoError(t, err)
			db.Exec(t, tt.insert)
			_, err = migrate.Up(ctx, db.SQL(t), set, migrate.Latest)
			require.ErrorContains(t, err, "still has unpublished outcomes")
			db.Exec(t, "UPDATE "+tt.table+" SET published_at = now()")
			_, err = migrate.Up(ctx, db.SQL(t), set, migrate.Latest)
			require.NoError(t, err)
			require.Equal(t, 0, pgtest.QueryValue[int](t, db, "SELECT count(*)::int FROM pg_tables WHERE schemaname || '.' || tablename = '"+tt.table+"'"))
		})
	}
}
