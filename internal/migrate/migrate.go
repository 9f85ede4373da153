package migrate

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"path"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/alertsync/alertsync/deploy"
)

// Latest as Up's target applies every migration of the set.
const Latest = math.MaxInt32

// Migration is one NNNN_name.sql file.
type Migration struct {
	Version  int    // NNNN
	Name     string // name part, without version and extension
	File     string // file name, e.g. 0001_alert_mapping.sql
	SQL      string
	Checksum string // hex SHA-256 of the file's bytes
}

// Set is an ordered list of migrations with contiguous versions from 1.
type Set struct {
	Name       string
	Migrations []Migration
}

var fileRE = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// Load reads the migrations of set name from the *.sql files at the root of
// fsys. Every .sql file must be named NNNN_name.sql (lower-case name) and the
// versions must run 1, 2, 3, … without gaps or duplicates.
func Load(name string, fsys fs.FS) (*Set, error) {
	paths, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("listing migrations of set %q: %w", name, err)
	}
	set := &Set{Name: name}
	for _, p := range paths {
		m := fileRE.FindStringSubmatch(path.Base(p))
		if m == nil {
			return nil, fmt.Errorf("loading set %q: file %s is not named NNNN_name.sql", name, p)
		}
		version, _ := strconv.Atoi(m[1]) // four digits
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("reading migration %s of set %q: %w", p, name, err)
		}
		sum := sha256.Sum256(body)
		set.Migrations = append(set.Migrations, Migration{
			Version: version, Name: m[2], File: path.Base(p), SQL: string(body), Checksum: hex.EncodeToString(sum[:]),
		})
	}
	sort.Slice(set.Migrations, func(i, j int) bool { return set.Migrations[i].Version < set.Migrations[j].Version })
	for i, m := range set.Migrations {
		if m.Version != i+1 {
			return nil, fmt.Errorf("loading set %q: %s has version %d, want %d (versions run from 1 without gaps or duplicates)",
				name, m.File, m.Version, i+1)
		}
	}
	return set, nil
}

// Named returns a set shipped in package deploy ("dps").
func Named(name string) (*Set, error) {
	fsys, ok := deploy.Migrations(name)
	if !ok {
		return nil, fmt.Errorf("unknown migration set %q (known: %v)", name, deploy.MigrationSets())
	}
	return Load(name, fsys)
}

// Latest returns the highest version of the set (0 when empty).
func (s *Set) Latest() int { return len(s.Migrations) }

// ErrChecksumMismatch is wrapped by a *ChecksumError.
var ErrChecksumMismatch = errors.New("migration changed after it was applied")

// ChecksumError reports an applied migration whose file no longer matches
// what was applied.
type ChecksumError struct {
	Set, File       string
	Applied, Loaded string // checksums
}

// Error names the changed file and says how to recover.
func (e *ChecksumError) Error() string {
	return fmt.Sprintf("migration %s of set %q changed after it was applied (applied checksum %s, file %s); "+
		"restore the file and add the change as a new migration", e.File, e.Set, e.Applied, e.Loaded)
}

// Unwrap makes errors.Is(err, ErrChecksumMismatch) hold.
func (e *ChecksumError) Unwrap() error { return ErrChecksumMismatch }

// ErrUnknownVersion is returned when the database records a migration of the
// set that this build does not have (the database is newer than the binary).
var ErrUnknownVersion = errors.New("database has a migration this build does not know")

// Option adjusts Up and Status.
type Option func(*options)

type options struct {
	dialect Dialect
	log     *slog.Logger
}

// WithDialect selects the database dialect. Default: Postgres.
func WithDialect(d Dialect) Option { return func(o *options) { o.dialect = d } }

// WithLogger logs each applied migration. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

func buildOptions(opts []Option) options {
	o := options{dialect: Postgres{}, log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Result tells what Up did.
type Result struct {
	// Applied lists the versions this call applied, in order.
	Applied []int
	// Version is the highest applied version of the set afterwards.
	Version int
}

type appliedRow struct {
	version   int
	name      string
	checksum  string
	appliedAt time.Time
}

// Up applies the set's migrations with versions up to target (Latest for
// all) that the database has not applied yet, each in its own transaction
// under the dialect's lock, recording it in the version table. Concurrent
// callers serialise on the lock; each migration is applied once. Before
// applying anything, and again under the lock of every step, it verifies the
// checksums of applied migrations and fails with a *ChecksumError naming the
// changed file.
func Up(ctx context.Context, db *sql.DB, set *Set, target int, opts ...Option) (Result, error) {
	o := buildOptions(opts)
	conn, err := db.Conn(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("migrating set %q: opening connection: %w", set.Name, err)
	}
	defer func() { _ = conn.Close() }() // returns the connection to the pool

	var res Result
	// Step 0 creates the version table; each later step applies at most one
	// migration, until none is pending.
	for step := 0; ; step++ {
		var done bool
		err := locked(ctx, conn, o.dialect, func(tx *sql.Tx) error {
			if step == 0 {
				return o.dialect.CreateVersionTable(ctx, tx)
			}
			rows, err := readApplied(ctx, tx, o.dialect, set.Name)
			if err != nil {
				return err
			}
			if err := verify(set, rows); err != nil {
				return err
			}
			res.Version = highest(rows)
			next := nextPending(set, rows, target)
			if next == nil {
				done = true
				return nil
			}
			begin := time.Now()
			for _, stmt := range o.dialect.Statements(next.SQL) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("applying migration %s of set %q: %w", next.File, set.Name, err)
				}
			}
			_, err = tx.ExecContext(ctx,
				o.dialect.Query("INSERT INTO {table} (set_name, version, name, checksum) VALUES (?, ?, ?, ?)"),
				set.Name, next.Version, next.Name, next.Checksum)
			if err != nil {
				return fmt.Errorf("recording migration %s of set %q: %w", next.File, set.Name, err)
			}
			o.log.Info("migration applied", "set", set.Name, "version", next.Version, "file", next.File,
				"seconds", time.Since(begin).Seconds())
			res.Applied = append(res.Applied, next.Version)
			res.Version = next.Version
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("migrating set %q (%s): %w", set.Name, o.dialect.Name(), err)
		}
		if done {
			return res, nil
		}
	}
}

// locked runs fn in a transaction on conn holding the migration lock.
func locked(ctx context.Context, conn *sql.Conn, d Dialect, fn func(*sql.Tx) error) (err error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() {
		if uerr := d.Unlock(context.WithoutCancel(ctx), conn); uerr != nil && err == nil {
			err = fmt.Errorf("releasing migration lock: %w", uerr)
		}
	}()
	if err := d.Lock(ctx, conn, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func readApplied(ctx context.Context, q querier, d Dialect, set string) (map[int]appliedRow, error) {
	rows, err := q.QueryContext(ctx,
		d.Query("SELECT version, name, checksum, applied_at FROM {table} WHERE set_name = ?"), set)
	if err != nil {
		return nil, fmt.Errorf("reading applied migrations: %w", err)
	}
	defer func() { _ = rows.Close() }() // rows.Err below reports read failures
	applied := map[int]appliedRow{}
	for rows.Next() {
		var r appliedRow
		if err := rows.Scan(&r.version, &r.name, &r.checksum, &r.appliedAt); err != nil {
			return nil, fmt.Errorf("reading applied migrations: %w", err)
		}
		applied[r.version] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading applied migrations: %w", err)
	}
	return applied, nil
}

// verify checks every applied migration against the set.
func verify(set *Set, applied map[int]appliedRow) error {
	for v, r := range applied {
		if v < 1 || v > len(set.Migrations) {
			return fmt.Errorf("%w: set %q version %d (%s) is applied but this build knows versions 1–%d; "+
				"run a newer alertsync", ErrUnknownVersion, set.Name, v, r.name, len(set.Migrations))
		}
		m := set.Migrations[v-1]
		if r.checksum != m.Checksum {
			return &ChecksumError{Set: set.Name, File: m.File, Applied: r.checksum, Loaded: m.Checksum}
		}
	}
	return nil
}

func highest(applied map[int]appliedRow) int {
	h := 0
	for v := range applied {
		h = max(h, v)
	}
	return h
}

func nextPending(set *Set, applied map[int]appliedRow, target int) *Migration {
	for i := range set.Migrations {
		m := &set.Migrations[i]
		if m.Version > target {
			return nil
		}
		if _, ok := applied[m.Version]; !ok {
			return m
		}
	}
	return nil
}

// State is one migration's status in a database.
type State struct {
	Migration
	Applied   bool
	AppliedAt time.Time // zero when not applied
	// Changed is true when the file no longer matches the applied checksum.
	Changed bool
}

// Status reports each migration of the set as applied or pending, without
// changing the database (no version table is created). It fails with
// ErrUnknownVersion when the database has versions the set does not.
func Status(ctx context.Context, db *sql.DB, set *Set, opts ...Option) ([]State, error) {
	o := buildOptions(opts)
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading status of set %q: opening connection: %w", set.Name, err)
	}
	defer func() { _ = conn.Close() }() // returns the connection to the pool
	exists, err := o.dialect.VersionTableExists(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("reading status of set %q: %w", set.Name, err)
	}
	applied := map[int]appliedRow{}
	if exists {
		if applied, err = readApplied(ctx, conn, o.dialect, set.Name); err != nil {
			return nil, fmt.Errorf("reading status of set %q: %w", set.Name, err)
		}
	}
	states := make([]State, 0, len(set.Migrations))
	for _, m := range set.Migrations {
		s := State{Migration: m}
		if r, ok := applied[m.Version]; ok {
			s.Applied, s.AppliedAt, s.Changed = true, r.appliedAt, r.checksum != m.Checksum
		}
		states = append(states, s)
	}
	for v, r := range applied {
		if v < 1 || v > len(set.Migrations) {
			return states, fmt.Errorf("reading status of set %q: %w: version %d (%s)", set.Name, ErrUnknownVersion, v, r.name)
		}
	}
	return states, nil
}
