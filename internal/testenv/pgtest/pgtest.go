package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/alertsync/alertsync/internal/pgcluster"
)

var (
	mu       sync.Mutex
	inMain   bool
	shared   *pgcluster.Cluster
	startErr error
	dbSeq    atomic.Int64
)

// Runner is what Run runs: a *testing.M, or another test environment's
// wrapper around one (so that packages needing several environments compose
// them: pgtest.Run(kafkatest.Wrap(m))).
type Runner interface{ Run() int }

// Main runs the package's tests and stops the shared cluster afterwards. Call
// it from TestMain; it does not return (it calls os.Exit with the tests'
// status), so TestMain's deferred calls do not run.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run runs m, then stops the shared cluster, and returns the exit code.
func Run(m Runner) int {
	mu.Lock()
	inMain = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	c := shared
	shared = nil
	mu.Unlock()
	if c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := c.Stop(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stopping the shared cluster: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		cancel()
	}
	return code
}

// sharedCluster starts the package's cluster on first use.
func sharedCluster() (*pgcluster.Cluster, error) {
	mu.Lock()
	defer mu.Unlock()
	if !inMain {
		return nil, fmt.Errorf("pgtest: the package has no TestMain calling pgtest.Main; " +
			"add `func TestMain(m *testing.M) { pgtest.Main(m) }` so the cluster is stopped after the tests")
	}
	if shared != nil || startErr != nil {
		return shared, startErr
	}
	c, err := pgcluster.Start(context.Background(), pgcluster.Options{NoFsync: true, InitCache: true, TempDir: tempBase()})
	if err != nil {
		startErr = fmt.Errorf("pgtest: starting the shared PostgreSQL cluster: %w", err)
		return nil, startErr
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "pgtest: PostgreSQL cluster on port %d ready in %s\n", c.Port(), c.StartupTime().Round(time.Millisecond))
	}
	shared = c
	return c, nil
}

// Cluster returns the package's shared cluster, starting it if needed.
func Cluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	c, err := sharedCluster()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NewCluster starts a private cluster for t (fsync off, temporary
// directory), stopped and removed at t's cleanup. opts may adjust it.
func NewCluster(t testing.TB, opts pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	opts.NoFsync = true
	opts.InitCache = true
	if opts.TempDir == "" && opts.Dir == "" {
		opts.TempDir = tempBase()
	}
	c, err := pgcluster.Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("pgtest: starting a private PostgreSQL cluster: %v", err)
	}
	t.Logf("pgtest: private PostgreSQL cluster on port %d ready in %s", c.Port(), c.StartupTime().Round(time.Millisecond))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("pgtest: stopping private cluster: %v", err)
		}
	})
	return c
}

// tempBase returns where throwaway clusters go: $PGTEST_TMPDIR when set,
// else /dev/shm when it is a writable directory (a tmpfs: initdb-cache copies
// and start-up are several times faster there), else the default temp dir.
func tempBase() string {
	if dir := os.Getenv("PGTEST_TMPDIR"); dir != "" {
		return dir
	}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if probe, err := os.MkdirTemp("/dev/shm", "pgtest-probe-"); err == nil {
			_ = os.Remove(probe)
			return "/dev/shm"
		}
	}
	return ""
}

// DB is one test's database on the shared cluster.
type DB struct {
	// Name is the database name, unique within the cluster.
	Name string
	// DSN is a postgres:// URL for the database (superuser, sslmode=disable).
	DSN string
	// Pool is a connection pool on the database, closed at the test's cleanup.
	Pool *pgxpool.Pool
}

// NewDB creates a fresh database on the shared cluster for t and drops it at
// t's cleanup.
func NewDB(t testing.TB) *DB {
	t.Helper()
	return NewDBOn(t, Cluster(t))
}

// NewDBOn creates a fresh database on c for t and drops it at t's cleanup.
func NewDBOn(t testing.TB, c *pgcluster.Cluster) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := dbName(t.Name())
	if err := c.CreateDB(ctx, name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.DropDB(ctx, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	dsn := c.DSN(name)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: opening pool on %s: %v", name, err)
	}
	t.Cleanup(pool.Close)
	return &DB{Name: name, DSN: dsn, Pool: pool}
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// dbName derives a unique, readable database name from a test name.
func dbName(testName string) string {
	base := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(testName), "_"), "_")
	if len(base) > 40 {
		base = base[:40]
	}
	return fmt.Sprintf("t_%s_%d", base, dbSeq.Add(1))
}

// SQL opens a database/sql handle (pgx stdlib driver) on the database,
// closed at t's cleanup.
func (d *DB) SQL(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", d.DSN)
	if err != nil {
		t.Fatalf("pgtest: opening database/sql handle on %s: %v", d.Name, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// Exec runs sql (one or more statements when args is empty, in one implicit
// transaction) and fails t on error.
func (d *DB) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := d.Pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("pgtest: executing on %s: %v", d.Name, err)
	}
}

// QueryValue runs a query returning one row with one column and scans it
// into a T, failing the test on error.
func QueryValue[T any](t testing.TB, d *DB, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := d.Pool.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("pgtest: querying %s: %v", d.Name, err)
	}
	return v
}
