// Package pgcluster runs a local PostgreSQL server from the machine's own
// PostgreSQL binaries, for tests and for the embedded demo.
//
// Contract:
//
//   - Start initialises a cluster with initdb when its data directory is not
//     initialised yet, writes the server settings alertsync needs
//     (wal_level=logical, track_commit_timestamp=on, 20 replication slots and
//     WAL senders, 200 connections, trust authentication for local and
//     127.0.0.1 connections including replication) and starts the postmaster
//     as a child process listening on 127.0.0.1 and on a Unix socket in the
//     cluster's own directory. It returns once the server accepts connections,
//     or with an error that carries the tail of the server log.
//   - With Options.Dir empty the cluster lives in a temporary directory that
//     Stop removes. With Options.Dir set the cluster is persistent: Stop keeps
//     it, and the next Start reuses it (and its previous port when free).
//   - When the process runs as root, initdb and postgres run as the
//     "postgres" OS user (initdb refuses root) and the cluster directories are
//     chowned to it; every parent of the cluster directory must be
//     traversable by that user. Otherwise they run as the current user.
//   - Restart stops the server (fast shutdown, or nothing if Kill already
//     stopped it) and starts it again on the same port and data. Kill is an
//     immediate shutdown (SIGQUIT): no checkpoint, crash recovery on the next
//     start. Stop is a fast shutdown and is idempotent.
//   - The server is a child of the calling process in its own process group
//     (terminal signals do not reach it) and receives SIGQUIT if the caller
//     dies, so a crashed test does not leave a server running.
//   - Timezone and locale settings are left to callers (initdb runs with
//     --no-locale and UTF8 encoding).
//
// The binaries default to /usr/lib/postgresql/15/bin; the PG_BIN environment
// variable or Options.BinDir override it.
package pgcluster
