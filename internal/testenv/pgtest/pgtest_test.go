package pgtest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/pgcluster"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func dbExists(t *testing.T, c *pgcluster.Cluster, name string) bool {
	t.Helper()
	conn, err := c.Connect(context.Background(), "postgres")
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	var n int
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n))
	return n == 1
}

func TestNewDBIsFreshAndDroppedAtCleanup(t *testing.T) {
	c := pgtest.Cluster(t)
	var names []string
	var slotDB string
	t.Run("use", func(t *testing.T) {
		a, b := pgtest.NewDB(t), pgtest.NewDB(t)
		require.NotEqual(t, a.Name, b.Name)
		require.Equal(t, c.DSN(a.Name), a.DSN)
		names = append(names, a.Name, b.Name)
		require.True(t, dbExists(t, c, a.Name))

		a.Exec(t, "CREATE TABLE only_here (n int); INSERT INTO only_here VALUES (1)")
		require.Equal(t, 1, pgtest.QueryValue[int](t, a, "SELECT count(*)::int FROM only_here"))
		require.False(t, pgtest.QueryValue[bool](t, b, "SELECT to_regclass('only_here') IS NOT NULL"))

		// Leave an open database/sql session and a logical slot behind.
		sqlDB := a.SQL(t)
		require.NoError(t, sqlDB.Ping())
		a.Exec(t, "SELECT pg_create_logical_replication_slot('left_behind', 'pgoutput')")
		slotDB = a.Name
	})
	for _, name := range names {
		require.False(t, dbExists(t, c, name), "database %s dropped at cleanup", name)
	}
	conn, err := c.Connect(context.Background(), "postgres")
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	var slots int
	require.NoError(t, conn.QueryRow(context.Background(),
		"SELECT count(*) FROM pg_replication_slots WHERE database = $1", slotDB).Scan(&slots))
	require.Zero(t, slots)
}

func TestDBNamesAreValidForAnyTestName(t *testing.T) {
	tests := []string{"with spaces and UPPER", "ünïcödé/and/slashes", "a_very_long_name_" +
		"that_goes_on_and_on_well_past_the_sixty_three_byte_identifier_limit_of_postgres"}
	for _, name := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := pgtest.NewDB(t)
			require.LessOrEqual(t, len(db.Name), 63)
			require.Equal(t, db.Name, pgtest.QueryValue[string](t, db, "SELECT current_database()"))
		})
	}
}

func TestSharedClusterSettings(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	require.Equal(t, "logical", pgtest.QueryValue[string](t, db, "SELECT current_setting('wal_level')"))
	require.Equal(t, "off", pgtest.QueryValue[string](t, db, "SELECT current_setting('fsync')"))
	require.Same(t, pgtest.Cluster(t), pgtest.Cluster(t), "one cluster per package")
}

func TestNewClusterIsPrivate(t *testing.T) {
	t.Parallel()
	c := pgtest.NewCluster(t, pgcluster.Options{})
	require.NotEqual(t, pgtest.Cluster(t).Port(), c.Port())
	db := pgtest.NewDBOn(t, c)
	db.Exec(t, "CREATE TABLE t (n int)")
	require.NoError(t, c.Restart(context.Background()))
	db.Pool.Reset() // its idle connections died with the server
	require.Equal(t, 0, pgtest.QueryValue[int](t, db, "SELECT count(*)::int FROM t"), "data kept across restart")
}
