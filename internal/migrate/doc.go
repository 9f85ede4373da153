// Package migrate applies versioned SQL migrations of the sync-owned schema
// objects (schema alertsync) over database/sql.
//
// A set ("dps", later "nomis") is a directory of files NNNN_name.sql with
// versions 1, 2, 3, … (Load, Named). Up applies the pending ones up to a
// target, each in its own transaction together with its row in the version
// table alertsync.schema_migrations (set_name, version, name, checksum,
// applied_at), so a migration is applied whole or not at all (on a dialect
// with transactional DDL, such as Postgres). Every step
// holds the dialect's migration lock (Postgres: pg_advisory_xact_lock), so
// concurrent migrators serialise and each migration is applied once; both
// callers succeed.
//
// A migration is never edited once applied: Up and Status compare the
// SHA-256 of each applied file with the recorded checksum, and Up refuses a
// mismatch with a *ChecksumError (errors.Is ErrChecksumMismatch) naming the
// file. A database that records a version the build does not know is refused
// with ErrUnknownVersion.
//
// Database-specific SQL (version table DDL, locking, placeholders, statement
// splitting) lives behind Dialect; Postgres and Oracle (internal/migrate/oracle.go, never run against a live Oracle here) are the dialects.
package migrate
