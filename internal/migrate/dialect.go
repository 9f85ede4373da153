package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// Dialect holds the database-specific SQL of the engine: the version table
// and the lock that serialises migrators. The engine runs every step on one
// *sql.Conn as: Lock, (work in tx), commit or roll back, Unlock.
type Dialect interface {
	// Name identifies the dialect in errors ("postgres").
	Name() string
	// VersionTableExists reports whether the version table exists, without
	// creating it.
	VersionTableExists(ctx context.Context, conn *sql.Conn) (bool, error)
	// CreateVersionTable creates the version table (and its schema) when
	// missing; it runs inside tx, under the lock.
	CreateVersionTable(ctx context.Context, tx *sql.Tx) error
	// Lock blocks until the caller holds the migration lock of the database.
	// A transaction-scoped lock is taken in tx and released when tx ends; a
	// session lock (for databases whose DDL commits implicitly) is taken on
	// conn and released by Unlock.
	Lock(ctx context.Context, conn *sql.Conn, tx *sql.Tx) error
	// Unlock releases a session lock taken by Lock; it runs after tx ended.
	Unlock(ctx context.Context, conn *sql.Conn) error
	// Statements splits a migration file into statements to execute in
	// order (Postgres executes a file as one multi-statement string).
	Statements(body string) []string
	// Query rewrites a query written with ? placeholders into the dialect's
	// own placeholders, and {table} into the version table's name.
	Query(q string) string
}

// VersionTable is the table recording applied migrations in Postgres.
const VersionTable = "alertsync.schema_migrations"

// postgresLockKey is the pg_advisory_xact_lock key that serialises
// migrators: the first 8 bytes of "alertsync.migrate" as a big-endian int64.
const postgresLockKey int64 = 0x616c65727473796e

// Postgres is the Dialect for PostgreSQL: the version table
// alertsync.schema_migrations and a transaction-scoped advisory lock. DDL is
// transactional, so each migration commits or rolls back whole.
type Postgres struct{}

// Name implements Dialect.
func (Postgres) Name() string { return "postgres" }

// VersionTableExists implements Dialect.
func (Postgres) VersionTableExists(ctx context.Context, conn *sql.Conn) (bool, error) {
	var exists bool
	err := conn.QueryRowContext(ctx, "SELECT to_regclass($1) IS NOT NULL", VersionTable).Scan(&exists)
	if err != nil {
		return false, fmt.Errorf("looking up %s: %w", VersionTable, err)
	}
	return exists, nil
}

// CreateVersionTable implements Dialect.
func (Postgres) CreateVersionTable(ctx context.Context, tx *sql.Tx) error {
	const ddl = `
CREATE SCHEMA IF NOT EXISTS alertsync;
CREATE TABLE IF NOT EXISTS alertsync.schema_migrations (
    set_name   varchar(32)  NOT NULL,
    version    integer      NOT NULL,
    name       varchar(255) NOT NULL,
    checksum   char(64)     NOT NULL,
    applied_at timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (set_name, version)
)`
	if _, err := tx.ExecContext(ctx, ddl); err != nil {
		return fmt.Errorf("creating %s: %w", VersionTable, err)
	}
	return nil
}

// Lock implements Dialect with pg_advisory_xact_lock, released at the end
// of tx.
func (Postgres) Lock(ctx context.Context, _ *sql.Conn, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", postgresLockKey); err != nil {
		return fmt.Errorf("taking migration lock: %w", err)
	}
	return nil
}

// Unlock implements Dialect; the advisory lock is already gone with the
// transaction.
func (Postgres) Unlock(context.Context, *sql.Conn) error { return nil }

// Statements implements Dialect: the whole file is one multi-statement
// string, executed with the simple query protocol.
func (Postgres) Statements(body string) []string { return []string{body} }

// Query implements Dialect: ? becomes $1, $2, … and {table} the version
// table. Queries must not contain a literal '?'.
func (Postgres) Query(q string) string {
	q = strings.ReplaceAll(q, "{table}", VersionTable)
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
