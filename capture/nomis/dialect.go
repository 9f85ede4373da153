package nomis

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/alertsync/alertsync/internal/config"
)

// Dialect is everything the capture says to the NOMIS database, for one kind
// of database: the PostgreSQL stand-in (postgres.go) and Oracle (oracle.go). All
// SQL of a dialect lives in its own file; the capture itself runs no SQL.
//
// A capture session holds two connections. On the first (the session's:
// the lock is held on it) it calls TryLock, then Migrate (once per process,
// when configured), Check, Listen, PendingResyncs and the snapshot methods,
// and then Delete, DoneResyncs, Backlog and the Waiter in its loop; on the
// second, from another goroutine and at the same time, Keys, Rows,
// AlertContexts and PrisonNumbers, which read the next batch. No
// connection is used by two goroutines at once. Every method honours ctx.
// An error from a method is an outage (retried with backoff) unless
// Permanent says otherwise.
type Dialect interface {
	// Name is the nomis.dialect value of the dialect.
	Name() string
	// Open returns a handle on the NOMIS database of cfg without connecting.
	Open(cfg config.NOMIS) (*sql.DB, error)
	// TryLock takes the capture's lock for the life of conn's session and
	// reports whether it got it; when not, holder describes the session
	// holding it (for the error message).
	TryLock(ctx context.Context, conn *sql.Conn) (ok bool, holder string, err error)
	// Unlock releases the lock before conn is closed, so that a capture
	// started right after this one stops does not find it held.
	Unlock(ctx context.Context, conn *sql.Conn) error
	// Migrate applies the sync-owned objects (journal, journal triggers,
	// mapping, bookkeeping) that are missing; the NOMIS tables must exist
	// (else an error wrapping ErrNoNOMISTables).
	Migrate(ctx context.Context, db *sql.DB, log *slog.Logger) error
	// Check verifies that the journal can be read in commit order (else an
	// error wrapping ErrNoJournal or ErrCommitOrder) and returns the
	// database name published as source.db.
	Check(ctx context.Context, conn *sql.Conn) (database string, err error)
	// Listen subscribes conn to journal wake-ups and returns the Waiter that
	// waits for them, or nil when the dialect only polls.
	Listen(ctx context.Context, conn *sql.Conn) (Waiter, error)
	// Keys returns the positions of up to limit committed journal rows in
	// commit order, oldest first, from the start of the journal: the rows
	// whose commit lies below a horizon that no transaction invisible to the
	// reader can fall under (so never a row that could still be followed by
	// a visible row of an earlier commit). The rows below one horizon are a
	// stable prefix of commit order: every row a later call returns that this
	// one did not comes after all of this call's rows. The capture therefore
	// pages through one list of keys with Rows and asks for a new list only
	// when it has used it up. Only keys: the list may be long.
	Keys(ctx context.Context, conn *sql.Conn, limit int) ([]JournalKey, error)
	// Rows returns the journal rows of ids, in any order, with Commit and
	// CommitTime unset (the capture takes them from the keys); an id with
	// no row is left out.
	Rows(ctx context.Context, conn *sql.Conn, ids []int64) ([]JournalRow, error)
	// AlertContexts returns, in one round trip, the booking context and DPS
	// id of each key, as the database holds them now. Keys with no booking
	// have zero AlertContext fields; every key is in the map.
	AlertContexts(ctx context.Context, conn *sql.Conn, keys []AlertKey) (map[AlertKey]AlertContext, error)
	// Delete removes published journal rows by journal id and, in the same
	// transaction, records the prisoner resyncs those rows call for: each
	// Resync is stored as pending for its prison number, or, when one is
	// pending already, moves its Due to the later of the two (debounce).
	Delete(ctx context.Context, conn *sql.Conn, ids []int64, resyncs []Resync) error
	// PendingResyncs returns every pending prisoner resync (read at start:
	// the capture keeps them in memory afterwards).
	PendingResyncs(ctx context.Context, conn *sql.Conn) ([]Resync, error)
	// DoneResyncs removes the given pending resyncs once their snapshots are
	// acknowledged, each only if its Due is still the one given (a resync
	// re-armed meanwhile stays).
	DoneResyncs(ctx context.Context, conn *sql.Conn, done []Resync) error
	// RequestResyncs writes a resync request (request.go) for each of reqs
	// to the journal, in order, in one transaction, with module_name
	// RequestModule: the capture schedules the resyncs when it reads them.
	// Each request must pass Check. Used by dlq redrive, not the capture.
	RequestResyncs(ctx context.Context, conn *sql.Conn, reqs []ResyncRequest) error
	// PrisonNumbers returns the prison number (OFFENDERS.OFFENDER_ID_DISPLAY)
	// of each of offenderIDs that exists now; others are left out.
	PrisonNumbers(ctx context.Context, conn *sql.Conn, offenderIDs []int64) (map[int64]string, error)
	// BeginSnapshot starts a read-only transaction on conn whose reads all
	// see one consistent state of the database, and returns it with its
	// position P: every journal row the transaction does not see has a
	// position above P (Commit > P.Commit, or Commit = P.Commit and ID >
	// P.ID), so a consumer that applies the snapshot and
	// then every change positioned after P misses none. CommitTime is the time of the snapshot. The caller
	// ends the transaction.
	BeginSnapshot(ctx context.Context, conn *sql.Conn) (*sql.Tx, JournalKey, error)
	// SnapshotJournal returns the ids of the journal rows tx sees: the
	// changes its state reflects that are still in the journal.
	SnapshotJournal(ctx context.Context, tx *sql.Tx) ([]int64, error)
	// CurrentAlerts calls fn, in tx, for each alert on the current booking
	// (BOOKING_SEQ = 1) of each prisoner of nos — of every prisoner that has
	// a current booking when nos is nil — ordered by prison number, booking
	// id and alert sequence. A prisoner whose current booking has no alert
	// yields one PrisonerRow with a nil Alert; a prison number with no
	// current booking yields nothing. fn must not keep the row it is given.
	CurrentAlerts(ctx context.Context, tx *sql.Tx, nos []string, fn func(*PrisonerRow) error) error
	// InitialLoad returns the recorded completion of the initial load; ok is
	// false when there is none (the first start, or after a reset).
	InitialLoad(ctx context.Context, conn *sql.Conn) (done InitialLoadState, ok bool, err error)
	// RecordInitialLoad records a completed initial load, replacing any
	// earlier record.
	RecordInitialLoad(ctx context.Context, conn *sql.Conn, done InitialLoadState) error
	// Backlog returns how many rows the journal holds and the commit time of
	// the oldest (zero when empty).
	Backlog(ctx context.Context, conn *sql.Conn) (rows int64, oldest time.Time, err error)
	// Permanent reports whether err, from this dialect's driver, needs a
	// human (bad credentials, missing object or privilege) rather than a
	// retry.
	Permanent(err error) bool
	// JournalTable is the journal's qualified name, the original topic of
	// DLQ entries.
	JournalTable() string
}

// Waiter waits for journal wake-ups on the connection it was made for.
type Waiter interface {
	// Wait returns true as soon as a wake-up arrives (and any rows it
	// announces are readable), or false after timeout without one.
	Wait(ctx context.Context, timeout time.Duration) (bool, error)
}

// dialects are the dialects this build has, by nomis.dialect value.
var dialects = map[string]func(Options) Dialect{
	"postgres": func(o Options) Dialect { return newPostgres(o) },
	"oracle":   func(o Options) Dialect { return newOracle(o) },
}

// NewDialect returns the dialect named by nomis.dialect.
func NewDialect(name string, o Options) (Dialect, error) {
	mk, ok := dialects[name]
	if !ok {
		return nil, dialectError(name)
	}
	return mk(o), nil
}

// JournalRow is one row of the sync-owned journal: one changed NOMIS row.
type JournalRow struct {
	// ID is the journal sequence: the change part of the position, in
	// trigger order within a transaction.
	ID int64
	// Table is the changed table in lower case: offender_alerts,
	// offender_bookings or offenders.
	Table string
	// Operation is I, U or D.
	Operation string
	// Old and New are the row before (U, D) and after (I, U) as JSON
	// objects with lower-case column names; nil when NULL. They hold
	// personal data: never log them.
	Old, New []byte
	// Module, AdditionalInfo and User are the writing session's context
	// values when the trigger fired; nil when unset.
	Module, AdditionalInfo, User *string
	// TxID is the writing transaction's id as text.
	TxID string
	// Commit is the commit part of the position: the commit time in
	// microseconds since the epoch on the stand-in, the commit SCN on Oracle.
	Commit int64
	// CommitTime is the commit time of the writing transaction.
	CommitTime time.Time
}

// JournalKey is the position of a journal row in commit order: (Commit, ID).
type JournalKey struct {
	// ID is the journal id.
	ID int64
	// Commit is the commit part of the position, as in JournalRow.Commit.
	Commit int64
	// CommitTime is the commit time of the writing transaction.
	CommitTime time.Time
}

// Resync is a pending prisoner resync: a snapshot of the alerts on the
// current booking of OffenderNo, due at Due.
type Resync struct {
	// OffenderNo is the prison number (OFFENDER_ID_DISPLAY).
	OffenderNo string
	// Due is when the snapshot is to be read: the last change that called
	// for it plus capture.resync_delay.
	Due time.Time
	// Reason is the first reason recorded for it (ReasonNewBooking, …).
	Reason string
}

// PrisonerRow is one row of CurrentAlerts: an alert on a prisoner's current
// booking.
type PrisonerRow struct {
	// OffenderNo is the prison number.
	OffenderNo string
	// BookID is the current booking's OFFENDER_BOOK_ID.
	BookID int64
	// Alert is the OFFENDER_ALERTS row as a JSON object in the journal's
	// image format (lower-case column names, dates as ISO 8601 without zone),
	// nil when the booking has no alert. Personal data: never log it.
	Alert []byte
	// DPSAlertID is the alert's DPS id from ALERTSYNC_ALERT_MAPPING, nil
	// when unmapped.
	DPSAlertID *string
}

// InitialLoadState is the record of a completed initial load.
type InitialLoadState struct {
	// Position is the snapshot position the load was read at.
	Position JournalKey
	// Alerts is how many alerts it published.
	Alerts int64
	// Prisoners is how many prisoner snapshots it published.
	Prisoners int64
	// CompletedAt is when it was acknowledged.
	CompletedAt time.Time
}

// AlertKey is the primary key of OFFENDER_ALERTS.
type AlertKey struct {
	BookID int64
	Seq    int32
}

// AlertContext is what the capture adds to an alert record: the alert's
// booking and DPS twin as known when captured. A nil field is unknown (no
// such booking, or no mapping).
type AlertContext struct {
	OffenderNo *string
	BookingSeq *int32
	DPSAlertID *string
}

// resyncColumns splits resyncs into column arrays for a bulk statement,
// one entry per prison number (the latest Due, the first Reason).
func resyncColumns(resyncs []Resync) (nos []string, dues []time.Time, reasons []string) {
	at := make(map[string]int, len(resyncs))
	for _, r := range resyncs {
		if i, ok := at[r.OffenderNo]; ok {
			if r.Due.After(dues[i]) {
				dues[i] = r.Due
			}
			continue
		}
		at[r.OffenderNo] = len(nos)
		nos, dues, reasons = append(nos, r.OffenderNo), append(dues, r.Due), append(reasons, r.Reason)
	}
	return nos, dues, reasons
}

// querier is what both a connection and a transaction can run queries on.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// collect runs query on q and returns every row as scanned by scan; errors
// say what was being read. The dialects share it for their list reads.
func collect[T any](ctx context.Context, q querier, what string, scan func(*sql.Rows, *T) error, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	defer func() { _ = rows.Close() }()
	var out []T
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err != nil {
			return nil, fmt.Errorf("reading %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return out, nil
}

// scanResync scans offender_no, due_at, reason.
func scanResync(rows *sql.Rows, r *Resync) error { return rows.Scan(&r.OffenderNo, &r.Due, &r.Reason) }

// scanID scans one id.
func scanID(rows *sql.Rows, id *int64) error { return rows.Scan(id) }
