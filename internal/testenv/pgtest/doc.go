// Package pgtest gives tests a real PostgreSQL 15 server.
//
// One throwaway cluster (internal/pgcluster, fsync off) serves each test
// package. Wire it with
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Main runs the tests and then stops the cluster and removes its directory;
// the cluster itself starts lazily on the first NewDB or Cluster call, so a
// package whose selected tests need no database starts none. Calling NewDB or
// Cluster without Main fails the test with a message saying so.
//
// NewDB creates a fresh database with a unique name for one test and returns
// its DSN, a *pgxpool.Pool and helpers. At the test's cleanup the pool and any
// *sql.DB opened through DB.SQL are closed, the database's sessions and
// replication connections are terminated, its logical replication slots are
// dropped, and the database is dropped. Tests using different databases may
// run in parallel.
//
// Cluster returns the shared cluster, for tests that need its port, DSNs of
// their own or a Restart/Kill. Restarting the shared cluster interrupts every
// other test of the package that is using it at the time, so such tests must
// not call t.Parallel; NewCluster starts a private cluster instead, stopped at
// the test's cleanup, and NewDBOn creates a database on it. After a Restart
// or Kill, call DB.Pool.Reset(): the pool's idle connections died with the
// server.
//
// Throwaway clusters live under $PGTEST_TMPDIR, else /dev/shm when writable
// (tmpfs), else the default temp dir, and start from a cached initdb result.
//
// If the PostgreSQL binaries are missing the tests fail (never skip) with a
// message naming `apt-get install postgresql-15`; PG_BIN overrides the binary
// directory (default /usr/lib/postgresql/15/bin).
package pgtest
