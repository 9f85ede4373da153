package nomis

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"github.com/alertsync/alertsync/internal/config"
)

// Dialect is everything the capture says to the NOMIS database, for one kind
// of database: the PostgreSQL stand-in (postgres.go) and, later, Oracle. All
// SQL of a dialect lives in its own file; the capture itself runs no SQL.
//
// The capture calls the methods from one goroutine, on one *sql.Conn it
// holds for a session: TryLock first, then Migrate (once per process, when
// configured), Check, Listen, and then Keys, Rows, AlertContexts, Delete, Backlog
// and the Waiter in a loop. Every method honours ctx. An error from a method
// is an outage (retried with backoff) unless Permanent says otherwise.
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
	// Delete removes published journal rows by journal id.
	Delete(ctx context.Context, conn *sql.Conn, ids []int64) error
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

// dialects are the dialects this build has, by nomis.dialect value. The
// Oracle dialect is not built yet.
var dialects = map[string]func(Options) Dialect{
	"postgres": func(o Options) Dialect { return newPostgres(o) },
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
