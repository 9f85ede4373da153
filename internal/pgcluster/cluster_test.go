package pgcluster_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/pgcluster"
	"github.com/alertsync/alertsync/internal/testenv/cpustat"
)

func start(t *testing.T, opts pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	ctx := context.Background()
	c, err := pgcluster.Start(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Stop(context.Background())) })
	t.Logf("cluster started in %s (initdb %s) on port %d", c.StartupTime(), c.InitTime(), c.Port())
	return c
}

// fastTemp returns /dev/shm (tmpfs) when it is a directory, else "" (the
// default temp dir). Copying the initdb cache is several times faster there.
func fastTemp() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return ""
}

func connect(t *testing.T, c *pgcluster.Cluster, db string) *pgx.Conn {
	t.Helper()
	conn, err := c.Connect(context.Background(), db)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s string
	require.NoError(t, conn.QueryRow(context.Background(), sql, args...).Scan(&s))
	return s
}

func TestStartSettings(t *testing.T) {
	t.Parallel()
	c := start(t, pgcluster.Options{NoFsync: true})
	conn := connect(t, c, "postgres")

	tests := []struct{ setting, want string }{
		{"wal_level", "logical"},
		{"track_commit_timestamp", "on"},
		{"max_replication_slots", "20"},
		{"max_wal_senders", "20"},
		{"max_connections", "200"},
		{"listen_addresses", "127.0.0.1"},
		{"unix_socket_directories", c.SocketDir()},
		{"fsync", "off"},
		{"synchronous_commit", "on"},
		{"server_encoding", "UTF8"},
		{"port", strconv.Itoa(c.Port())},
	}
	for _, tt := range tests {
		t.Run(tt.setting, func(t *testing.T) {
			require.Equal(t, tt.want, queryString(t, conn, "SELECT current_setting($1)", tt.setting))
		})
	}
	t.Run("major version 15", func(t *testing.T) {
		v := queryString(t, conn, "SELECT current_setting('server_version_num')")
		require.Equal(t, "15", v[:2], "server_version_num %s", v)
	})
	t.Run("unix socket", func(t *testing.T) {
		pc, err := pgconn.Connect(context.Background(), "host="+c.SocketDir()+" port="+strconv.Itoa(c.Port())+
			" user=postgres dbname=postgres")
		require.NoError(t, err)
		require.NoError(t, pc.Close(context.Background()))
	})
	t.Run("replication connection with trust", func(t *testing.T) {
		pc, err := pgconn.Connect(context.Background(), c.DSN("postgres")+"&replication=database")
		require.NoError(t, err)
		defer func() { _ = pc.Close(context.Background()) }()
		sys, err := pglogrepl.IdentifySystem(context.Background(), pc)
		require.NoError(t, err)
		require.Equal(t, "postgres", sys.DBName)
	})
	t.Run("PID is the postmaster, every backend's parent", func(t *testing.T) {
		pid, err := strconv.Atoi(queryString(t, conn, "SELECT pg_backend_pid()::text"))
		require.NoError(t, err)
		st, err := cpustat.Stat(pid)
		require.NoError(t, err)
		require.Equal(t, c.PID(), st.PPID, "parent of backend %d", pid)
	})
	t.Run("server runs as the expected OS user", func(t *testing.T) {
		pid := queryString(t, conn, "SELECT pg_backend_pid()::text")
		fi, err := os.Stat("/proc/" + pid)
		require.NoError(t, err)
		st, ok := fi.Sys().(*syscall.Stat_t)
		require.True(t, ok, "stat of /proc/%s has no owner", pid)
		got := strconv.FormatUint(uint64(st.Uid), 10)
		want := strconv.Itoa(os.Geteuid())
		if want == "0" {
			u, err := user.Lookup("postgres")
			require.NoError(t, err, "root runs the server as OS user postgres")
			want = u.Uid
		}
		require.Equal(t, want, got)
	})
}

func TestStopRemovesTempDirAndIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := pgcluster.Start(ctx, pgcluster.Options{NoFsync: true, InitCache: true, TempDir: fastTemp()})
	require.NoError(t, err)
	dir, port := c.Dir(), c.Port()
	require.DirExists(t, dir)
	require.NoError(t, c.Stop(ctx))
	require.False(t, c.Running())
	require.NoDirExists(t, dir)
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.NoError(t, err, "port is released after Stop")
	require.NoError(t, l.Close())
	require.NoError(t, c.Stop(ctx), "second Stop")
	require.Error(t, c.Restart(ctx), "a stopped temporary cluster has no data left to restart")
}

func TestRestartAndKillKeepPortAndData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := start(t, pgcluster.Options{NoFsync: true, InitCache: true, TempDir: fastTemp()})
	port := c.Port()
	conn := connect(t, c, "postgres")
	_, err := conn.Exec(ctx, "CREATE TABLE t (n int); INSERT INTO t VALUES (1)")
	require.NoError(t, err)

	steps := []struct {
		name string
		stop func() error
		n    int
	}{
		{"restart while running", func() error { return nil }, 2},
		{"kill then restart", c.Kill, 3},
		{"kill twice then restart", func() error {
			if err := c.Kill(); err != nil {
				return err
			}
			return c.Kill()
		}, 4},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			// Committed just before the stop: must survive an immediate shutdown.
			conn := connect(t, c, "postgres")
			_, err := conn.Exec(ctx, "INSERT INTO t VALUES ($1)", s.n)
			require.NoError(t, err)
			require.NoError(t, s.stop())
			require.NoError(t, c.Restart(ctx))
			require.True(t, c.Running())
			require.Equal(t, port, c.Port())
			conn = connect(t, c, "postgres")
			require.Equal(t, strconv.Itoa(s.n), queryString(t, conn, "SELECT count(*)::text FROM t"))
		})
	}
}

func TestPersistentDir(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base, err := os.MkdirTemp("", "pgcluster-persist-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755), "the server's OS user must reach the cluster directory")
	dir := filepath.Join(base, "nested", "cluster")

	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, NoFsync: true})
	require.NoError(t, err)
	require.Positive(t, c.InitTime(), "first start runs initdb")
	port := c.Port()
	conn, err := c.Connect(ctx, "postgres")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('x')")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	require.NoError(t, c.Stop(ctx))
	require.FileExists(t, filepath.Join(dir, "data", "PG_VERSION"), "Stop keeps a persistent cluster")
	require.NoError(t, c.Restart(ctx), "a stopped persistent cluster can restart")
	require.Equal(t, port, c.Port())
	require.NoError(t, c.Stop(ctx))

	c2, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, NoFsync: true})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c2.Stop(context.Background())) })
	require.Zero(t, c2.InitTime(), "second start reuses the data directory")
	require.Equal(t, port, c2.Port(), "second start reuses the free previous port")
	conn2 := connect(t, c2, "postgres")
	require.Equal(t, "x", queryString(t, conn2, "SELECT v FROM kept"))

	// Starting a second server on the same running data directory fails
	// with the server's own explanation.
	_, err = pgcluster.Start(ctx, pgcluster.Options{Dir: dir, NoFsync: true, StartTimeout: 20 * time.Second})
	require.ErrorContains(t, err, "postmaster.pid")
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	emptyBin := t.TempDir()
	tests := []struct {
		name      string
		opts      pgcluster.Options
		wantIs    error
		wantInMsg string
	}{
		{
			name:      "missing binaries",
			opts:      pgcluster.Options{BinDir: emptyBin},
			wantIs:    pgcluster.ErrNotInstalled,
			wantInMsg: "apt-get install postgresql-15",
		},
		{
			name:      "bad setting reports the server log",
			opts:      pgcluster.Options{NoFsync: true, Settings: map[string]string{"shared_buffers": "'lots'"}},
			wantInMsg: `invalid value for parameter "shared_buffers"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := pgcluster.Start(context.Background(), tt.opts)
			if c != nil {
				_ = c.Stop(context.Background())
			}
			require.Error(t, err)
			if tt.wantIs != nil {
				require.ErrorIs(t, err, tt.wantIs)
			}
			require.ErrorContains(t, err, tt.wantInMsg)
		})
	}
}

func TestUnreachableDirWhenRoot(t *testing.T) {
	t.Parallel()
	// t.TempDir's parent is mode 0700 and owned by the caller.
	dir := filepath.Join(t.TempDir(), "cluster")
	c, err := pgcluster.Start(context.Background(), pgcluster.Options{Dir: dir, NoFsync: true})
	if os.Geteuid() == 0 {
		require.ErrorContains(t, err, `not reachable by OS user "postgres"`)
		return
	}
	// Not root: the server runs as the caller, who can reach its own dir.
	require.NoError(t, err)
	require.NoError(t, c.Stop(context.Background()))
}

func TestCreateAndDropDB(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := start(t, pgcluster.Options{NoFsync: true, InitCache: true, TempDir: fastTemp()})
	const db = "Mixed-Case db"
	require.NoError(t, c.CreateDB(ctx, db))
	require.Error(t, c.CreateDB(ctx, db), "creating an existing database")

	// Leave an idle session, an inactive slot and an active walsender on it.
	idle := connect(t, c, db)
	_, err := idle.Exec(ctx, "CREATE TABLE x (id int PRIMARY KEY); CREATE PUBLICATION p FOR TABLE x")
	require.NoError(t, err)
	_, err = idle.Exec(ctx, "SELECT pg_create_logical_replication_slot('inactive_slot', 'pgoutput')")
	require.NoError(t, err)
	repl, err := pgconn.Connect(ctx, c.DSN(db)+"&replication=database")
	require.NoError(t, err)
	t.Cleanup(func() { _ = repl.Close(context.Background()) })
	_, err = pglogrepl.CreateReplicationSlot(ctx, repl, "active_slot", "pgoutput", pglogrepl.CreateReplicationSlotOptions{})
	require.NoError(t, err)
	require.NoError(t, pglogrepl.StartReplication(ctx, repl, "active_slot", 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'p'"},
	}))

	admin := connect(t, c, "postgres")
	require.Eventually(t, func() bool {
		var active bool
		err := admin.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = 'active_slot'").Scan(&active)
		return err == nil && active
	}, 10*time.Second, 20*time.Millisecond, "walsender holds its slot")

	require.NoError(t, c.DropDB(ctx, db))
	require.Equal(t, "0", queryString(t, admin, "SELECT count(*)::text FROM pg_database WHERE datname = $1", db))
	require.Equal(t, "0", queryString(t, admin, "SELECT count(*)::text FROM pg_replication_slots"))
	require.NoError(t, c.DropDB(ctx, db), "dropping a missing database")

	var pgErr *pgconn.PgError
	_, err = c.Connect(ctx, db)
	require.True(t, errors.As(err, &pgErr), "connecting to the dropped database: %v", err)
	require.Equal(t, "3D000", pgErr.Code)
}

func TestInitCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Two clusters from the cache are independent copies.
	a := start(t, pgcluster.Options{NoFsync: true, InitCache: true, TempDir: fastTemp()})
	b := start(t, pgcluster.Options{NoFsync: true, InitCache: true, TempDir: fastTemp()})
	require.NotEqual(t, a.DataDir(), b.DataDir())
	ca := connect(t, a, "postgres")
	_, err := ca.Exec(ctx, "CREATE TABLE only_in_a (n int)")
	require.NoError(t, err)
	cb := connect(t, b, "postgres")
	require.Equal(t, "0", queryString(t, cb, "SELECT count(*)::text FROM pg_class WHERE relname = 'only_in_a'"))
	require.Equal(t, "logical", queryString(t, cb, "SELECT current_setting('wal_level')"))
	require.NoError(t, b.Restart(ctx))
	cb = connect(t, b, "postgres")
	require.Equal(t, "on", queryString(t, cb, "SELECT current_setting('track_commit_timestamp')"))
}

func TestLongDirGetsShortSocketDir(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base, err := os.MkdirTemp("", "pgcluster-long-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755))
	dir := filepath.Join(base, strings.Repeat("d", 60), strings.Repeat("e", 60))

	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, NoFsync: true, InitCache: true, TempDir: fastTemp()})
	require.NoError(t, err)
	sock := c.SocketDir()
	require.False(t, strings.HasPrefix(sock, dir), "socket dir %s must be short", sock)
	pc, err := pgconn.Connect(ctx, "host="+sock+" port="+strconv.Itoa(c.Port())+" user=postgres dbname=postgres")
	require.NoError(t, err)
	require.NoError(t, pc.Close(ctx))

	require.NoError(t, c.Stop(ctx))
	require.NoDirExists(t, sock, "Stop removes the separate socket dir")
	require.DirExists(t, filepath.Join(dir, "data"), "and keeps the persistent cluster")
	require.NoError(t, c.Restart(ctx))
	require.NoError(t, c.Stop(ctx))
}
