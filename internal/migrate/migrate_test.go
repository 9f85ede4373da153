package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func mapFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, body := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(body)}
	}
	return fsys
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		files    map[string]string
		versions []int
		wantErr  string
	}{
		{
			name:     "ordered by version, other files ignored",
			files:    map[string]string{"0002_b.sql": "b", "0001_a.sql": "a", "README.md": "x"},
			versions: []int{1, 2},
		},
		{name: "empty set", files: map[string]string{}, versions: nil},
		{name: "bad name", files: map[string]string{"1_a.sql": "a"}, wantErr: "1_a.sql is not named NNNN_name.sql"},
		{name: "upper case", files: map[string]string{"0001_Add.sql": "a"}, wantErr: "not named NNNN_name.sql"},
		{name: "gap", files: map[string]string{"0001_a.sql": "a", "0003_c.sql": "c"}, wantErr: "0003_c.sql has version 3, want 2"},
		{name: "duplicate", files: map[string]string{"0001_a.sql": "a", "0001_b.sql": "b"}, wantErr: "has version 1, want 2"},
		{name: "starts above 1", files: map[string]string{"0002_b.sql": "b"}, wantErr: "want 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			set, err := migrate.Load("test", mapFS(tt.files))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			var got []int
			for _, m := range set.Migrations {
				got = append(got, m.Version)
				require.Len(t, m.Checksum, 64)
			}
			require.Equal(t, tt.versions, got)
		})
	}
}

func TestNamed(t *testing.T) {
	t.Parallel()
	set, err := migrate.Named("dps")
	require.NoError(t, err)
	require.GreaterOrEqual(t, set.Latest(), 2)
	require.Equal(t, "alert_mapping", set.Migrations[0].Name)
	require.Equal(t, "consumer_offsets", set.Migrations[1].Name)

	_, err = migrate.Named("oracle")
	require.ErrorContains(t, err, `unknown migration set "oracle"`)
}

func dpsSet(t *testing.T) *migrate.Set {
	t.Helper()
	set, err := migrate.Named("dps")
	require.NoError(t, err)
	return set
}

func versions(from, to int) []int {
	var v []int
	for i := from; i <= to; i++ {
		v = append(v, i)
	}
	return v
}

func TestUpTwiceIsNoOp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	sqlDB := db.SQL(t)
	set := dpsSet(t)
	n := set.Latest()

	states, err := migrate.Status(ctx, sqlDB, set)
	require.NoError(t, err)
	require.Len(t, states, n)
	for _, s := range states {
		require.False(t, s.Applied, s.File)
	}
	require.False(t, pgtest.QueryValue[bool](t, db, "SELECT to_regclass('alertsync.schema_migrations') IS NOT NULL"),
		"Status does not create the version table")

	res, err := migrate.Up(ctx, sqlDB, set, migrate.Latest)
	require.NoError(t, err)
	require.Equal(t, versions(1, n), res.Applied)
	require.Equal(t, n, res.Version)

	res, err = migrate.Up(ctx, sqlDB, set, migrate.Latest)
	require.NoError(t, err)
	require.Empty(t, res.Applied)
	require.Equal(t, n, res.Version)

	states, err = migrate.Status(ctx, sqlDB, set)
	require.NoError(t, err)
	for _, s := range states {
		require.True(t, s.Applied, s.File)
		require.False(t, s.Changed, s.File)
		require.False(t, s.AppliedAt.IsZero(), s.File)
	}
	require.Equal(t, n, pgtest.QueryValue[int](t, db, "SELECT count(*)::int FROM alertsync.schema_migrations WHERE set_name = 'dps'"))
}

// dumpSchema lists the objects of the alertsync schema and the recorded
// migrations, one line each, sorted, for comparing two databases.
func dumpSchema(t *testing.T, pool *pgxpool.Pool, schema string) []string {
	t.Helper()
	queries := []string{
		`SELECT format('rel %s kind=%s replident=%s', c.relname, c.relkind, c.relreplident)
		   FROM pg_class c WHERE c.relnamespace = $1::regnamespace`,
		`SELECT format('col %s.%s #%s %s null=%s default=%s identity=%s', table_name, column_name, ordinal_position,
		               data_type || coalesce('(' || character_maximum_length || ')', ''), is_nullable,
		               coalesce(column_default, '-'), is_identity)
		   FROM information_schema.columns WHERE table_schema = $1`,
		`SELECT format('con %s on %s: %s', con.conname, c.relname, pg_get_constraintdef(con.oid))
		   FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
		  WHERE con.connamespace = $1::regnamespace`,
		`SELECT format('idx %s', indexdef) FROM pg_indexes WHERE schemaname = $1`,
		`SELECT format('seq %s', sequence_name) FROM information_schema.sequences WHERE sequence_schema = $1`,
		`SELECT format('fn %s', p.proname) FROM pg_proc p WHERE p.pronamespace = $1::regnamespace`,
		`SELECT format('trg %s', t.tgname) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
		  WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal`,
	}
	var out []string
	for _, q := range queries {
		rows, err := pool.Query(context.Background(), q, schema)
		require.NoError(t, err)
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			out = append(out, s)
		}
		require.NoError(t, rows.Err())
	}
	if schema == "alertsync" {
		rows, err := pool.Query(context.Background(),
			"SELECT format('migration %s %s %s %s', set_name, version, name, checksum) FROM alertsync.schema_migrations")
		require.NoError(t, err)
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			out = append(out, s)
		}
		require.NoError(t, rows.Err())
	}
	sort.Strings(out)
	return out
}

func TestUpFromEveryEarlierVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	set := dpsSet(t)
	n := set.Latest()

	straight := pgtest.NewDB(t)
	_, err := migrate.Up(ctx, straight.SQL(t), set, migrate.Latest)
	require.NoError(t, err)
	want := dumpSchema(t, straight.Pool, "alertsync")
	require.Contains(t, want, "rel alert_mapping kind=r replident=d")

	for k := 0; k < n; k++ {
		t.Run(fmt.Sprintf("from %d", k), func(t *testing.T) {
			t.Parallel()
			db := pgtest.NewDB(t)
			sqlDB := db.SQL(t)
			res, err := migrate.Up(ctx, sqlDB, set, k)
			require.NoError(t, err)
			require.Equal(t, versions(1, k), res.Applied)
			require.Equal(t, k, res.Version)

			res, err = migrate.Up(ctx, sqlDB, set, migrate.Latest)
			require.NoError(t, err)
			require.Equal(t, versions(k+1, n), res.Applied)
			require.Equal(t, want, dumpSchema(t, db.Pool, "alertsync"))
		})
	}
}

func TestChecksumMismatchRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	sqlDB := db.SQL(t)

	original, err := migrate.Load("t", mapFS(map[string]string{
		"0001_first.sql": "CREATE TABLE alertsync.first (id int)",
	}))
	require.NoError(t, err)
	_, err = migrate.Up(ctx, sqlDB, original, migrate.Latest)
	require.NoError(t, err)

	edited, err := migrate.Load("t", mapFS(map[string]string{
		"0001_first.sql":  "CREATE TABLE alertsync.first (id bigint)",
		"0002_second.sql": "CREATE TABLE alertsync.second (id int)",
	}))
	require.NoError(t, err)
	_, err = migrate.Up(ctx, sqlDB, edited, migrate.Latest)
	require.ErrorIs(t, err, migrate.ErrChecksumMismatch)
	var ce *migrate.ChecksumError
	require.True(t, errors.As(err, &ce))
	require.Equal(t, "0001_first.sql", ce.File)
	require.ErrorContains(t, err, "0001_first.sql")
	require.False(t, pgtest.QueryValue[bool](t, db, "SELECT to_regclass('alertsync.second') IS NOT NULL"),
		"nothing is applied after a mismatch")

	states, err := migrate.Status(ctx, sqlDB, edited)
	require.NoError(t, err)
	require.True(t, states[0].Changed)
	require.False(t, states[1].Applied)
}

func TestUnknownAppliedVersionRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	sqlDB := db.SQL(t)
	files := map[string]string{"0001_a.sql": "SELECT 1", "0002_b.sql": "SELECT 2"}
	newer, err := migrate.Load("t", mapFS(files))
	require.NoError(t, err)
	_, err = migrate.Up(ctx, sqlDB, newer, migrate.Latest)
	require.NoError(t, err)

	delete(files, "0002_b.sql")
	older, err := migrate.Load("t", mapFS(files))
	require.NoError(t, err)
	_, err = migrate.Up(ctx, sqlDB, older, migrate.Latest)
	require.ErrorIs(t, err, migrate.ErrUnknownVersion)
	_, err = migrate.Status(ctx, sqlDB, older)
	require.ErrorIs(t, err, migrate.ErrUnknownVersion)

	// Another set's versions in the same table are no concern of this set.
	other, err := migrate.Load("other", mapFS(map[string]string{"0001_x.sql": "SELECT 3"}))
	require.NoError(t, err)
	res, err := migrate.Up(ctx, sqlDB, other, migrate.Latest)
	require.NoError(t, err)
	require.Equal(t, []int{1}, res.Applied)
}

func TestFailedMigrationRollsBackWhole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	set, err := migrate.Load("t", mapFS(map[string]string{
		"0001_ok.sql":  "CREATE TABLE alertsync.ok (id int)",
		"0002_bad.sql": "CREATE TABLE alertsync.half (id int);\nSELECT no_such_function();",
	}))
	require.NoError(t, err)
	res, err := migrate.Up(ctx, db.SQL(t), set, migrate.Latest)
	require.ErrorContains(t, err, "0002_bad.sql")
	require.Equal(t, []int{1}, res.Applied)
	require.False(t, pgtest.QueryValue[bool](t, db, "SELECT to_regclass('alertsync.half') IS NOT NULL"))
	require.Equal(t, 1, pgtest.QueryValue[int](t, db, "SELECT max(version) FROM alertsync.schema_migrations"))
}

func TestConcurrentUpAppliesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	// Each migration fails if applied twice and is slow enough for the
	// migrators to overlap.
	set, err := migrate.Load("t", mapFS(map[string]string{
		"0001_a.sql": "SELECT pg_sleep(0.2); CREATE TABLE alertsync.a (id int); INSERT INTO alertsync.a VALUES (1)",
		"0002_b.sql": "SELECT pg_sleep(0.2); CREATE TABLE alertsync.b (id int)",
		"0003_c.sql": "SELECT pg_sleep(0.2); CREATE TABLE alertsync.c (id int)",
	}))
	require.NoError(t, err)

	const migrators = 4
	var wg sync.WaitGroup
	results := make([]migrate.Result, migrators)
	errs := make([]error, migrators)
	for i := range migrators {
		sqlDB := db.SQL(t) // separate handles, separate sessions
		wg.Go(func() {
			results[i], errs[i] = migrate.Up(ctx, sqlDB, set, migrate.Latest)
		})
	}
	wg.Wait()
	var applied []int
	for i := range migrators {
		require.NoError(t, errs[i], "migrator %d", i)
		require.Equal(t, 3, results[i].Version)
		applied = append(applied, results[i].Applied...)
	}
	slices.Sort(applied)
	require.Equal(t, []int{1, 2, 3}, applied, "each migration applied by exactly one migrator")
	require.Equal(t, 1, pgtest.QueryValue[int](t, db, "SELECT count(*)::int FROM alertsync.a"))
}

func TestConcurrentUpDPS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	set := dpsSet(t)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	results := make([]migrate.Result, 2)
	for i := range 2 {
		sqlDB := db.SQL(t)
		wg.Go(func() { results[i], errs[i] = migrate.Up(ctx, sqlDB, set, migrate.Latest) })
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.Equal(t, set.Latest(), len(results[0].Applied)+len(results[1].Applied))
}

func TestDPSMigrationsLeavePublicAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	db.Exec(t, deploy.DPSSchemaSQL())
	before := dumpSchema(t, db.Pool, "public")
	require.NotEmpty(t, before)
	_, err := migrate.Up(ctx, db.SQL(t), dpsSet(t), migrate.Latest)
	require.NoError(t, err)
	require.Equal(t, before, dumpSchema(t, db.Pool, "public"))
	for _, line := range dumpSchema(t, db.Pool, "alertsync") {
		require.False(t, strings.Contains(line, "public."), "alertsync object refers to the service's tables: %s", line)
	}
}
