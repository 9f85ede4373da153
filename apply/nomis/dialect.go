package nomis

import (
	"context"
	"time"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/transform/rules"
)

// dialect is everything apply nomis says to the NOMIS database, for one
// kind of database: the PostgreSQL stand-in (standin.go) and Oracle
// (oracle.go). All SQL of a dialect lives in its own file; the command
// logic (store.go, writes.go) and the sweep's scheduling (sweep.go) run
// none.
//
// A dialect is safe for concurrent use: the runner applies partitions
// from several goroutines, each in its own writeTx, and the relay reads
// and deletes outbox batches meanwhile. Every method honours ctx.
type dialect interface {
	// Outbox is the outcome batches' table (apply.Outbox): Pending oldest
	// first, Published deletes the batches.
	apply.Outbox
	// Claim implements apply.Store.Claim over the stored offsets.
	Claim(ctx context.Context, group, topic string, partitions []int32, owner string) (map[int32]apply.Fence, error)
	// prepare applies or checks the sync-owned schema and what conflict
	// decisions need, at start; an error the operator must fix is an
	// *apply.FatalError.
	prepare(ctx context.Context) error
	// begin starts a read-committed transaction already marked as the sync
	// (module DPS_SYNCHRONISATION) before any write; the NOMIS user is the
	// dialect's default (the stand-in: the session user; Oracle:
	// DPS_SYNCHRONISATION) until setUser. The caller ends it with
	// commitFenced or rollback.
	begin(ctx context.Context) (writeTx, error)
	// inactivate runs the expiry sweep's NOMIS writes for one batch of
	// lapsed alerts in one transaction marked as the sync (module and user
	// DPS_SYNCHRONISATION) and returns how many rows it set INACTIVE (see
	// sweepSQL in standin.go for the rule).
	inactivate(ctx context.Context, date rules.Date, page []dueAlert) (int, error)
	// refusal returns err as a refusal when it is the database refusing
	// the command's data (a value too large, a check, unique or foreign-key
	// violation): reason refused_<code>, as the stand-in's SQLSTATE.
	refusal(err error) (*apply.Refusal, bool)
	// transient reports whether err is worth retrying the same transaction
	// for (deadlock, serialization failure, lost connection).
	transient(err error) bool
	// close releases the connections.
	close()
}

// writeTx is one apply transaction: the command writes, the mapping and
// positions, holds, conflicts, the batch's outcomes and the fenced offset.
// Not safe for concurrent use. After an error from any method but
// rollbackToSavepoint the caller rolls back (or rolls back to
// the command's savepoint when the error is a refusal).
type writeTx interface {
	// startCommand begins a command. It counts the command held when a
	// hold on holdKey is open (held, with the command the hold started
	// with; the caller then only records it held, whatever else was
	// done). Otherwise it has started the command's savepoint (ending the
	// previous command's, its writes kept; the commit ends the last one),
	// made user the NOMIS user of the writes that follow (the audit and
	// journal triggers read it) and read and locked the mapping row of DPS
	// alert dpsID (nil: none). With bookingOf (a create's prison number)
	// it may also read and lock that prisoner's current booking, as
	// currentBooking does, saving the create a round trip.
	// rollbackToSavepoint undoes the writes since the savepoint, the
	// transaction going on.
	startCommand(ctx context.Context, holdKey, user, dpsID, bookingOf string) (commandStart, error)
	rollbackToSavepoint(ctx context.Context) error
	// startHold starts a hold on key unless one exists.
	startHold(ctx context.Context, h hold) error
	// keyMapped reports whether some mapping row (deleted or not) holds k.
	keyMapped(ctx context.Context, k nomisKey) (bool, error)
	// releaseKey removes the mapping rows of DPS alerts other than dpsID
	// that hold k (stale since a prisoner replace re-pointed k in DPS).
	releaseKey(ctx context.Context, k nomisKey, dpsID string) error
	// readRow reads and locks the OFFENDER_ALERTS row at k; nil when there
	// is none.
	readRow(ctx context.Context, k nomisKey) (*row, error)
	// alertParent returns the PARENT_CODE of ALERT_CODE code in
	// REFERENCE_CODES ("" when NULL); ok is false when NOMIS has no such
	// code.
	alertParent(ctx context.Context, code string) (parent string, ok bool, err error)
	// currentBooking reads and locks the prisoner's current booking
	// (BOOKING_SEQ 1, the latest begun); ok is false when there is none.
	currentBooking(ctx context.Context, prisonNumber string) (book int64, root *int64, ok bool, err error)
	// insertAlert inserts in.state under ALERT_SEQ = 1 + the highest the
	// booking has in OFFENDER_ALERTS or in the mapping. taken is true (and
	// nothing written) when a NOMIS user took that sequence meanwhile: the
	// caller tries again.
	insertAlert(ctx context.Context, in insertion) (seq int32, taken bool, err error)
	// updateAlert writes st over the row at k (MODIFY_USER_ID user,
	// MODIFY_DATETIME now).
	updateAlert(ctx context.Context, k nomisKey, typ string, st *rules.AlertState, user string) error
	// deleteAlert deletes the row at k.
	deleteAlert(ctx context.Context, k nomisKey) error
	// recordConflict writes one row of the conflicts table.
	recordConflict(ctx context.Context, c conflict) error
	// setMapping inserts or updates the mapping row of m.dpsID.
	setMapping(ctx context.Context, m mappingWrite) error
	// writeOutbox writes the batch's outcomes as one outbox row (nothing
	// for none).
	writeOutbox(ctx context.Context, rows []apply.OutboxRow) error
	// commitFenced stores next as f's partition's next offset if f still
	// holds (apply.ErrFenced otherwise, nothing committed) and commits,
	// with the failure points apply.before_commit and apply.after_commit
	// around the commit.
	commitFenced(ctx context.Context, f apply.Fence, next int64) error
	// rollback ends the transaction undone; a no-op after commitFenced.
	rollback(ctx context.Context)
}

// hold is a row of the holds table.
type hold struct {
	key, prisonNumber, firstCommand, reason string
}

// conflict is a row of the conflicts table.
type conflict struct {
	commandID, dpsAlertID string
	key                   nomisKey
	winner                string // "DPS" or "NOMIS"
	sourceCommitTime      time.Time
	targetCommitTime      *time.Time
}

// insertion is an alert to insert on a booking.
type insertion struct {
	book  int64
	root  *int64
	typ   string
	state *rules.AlertState
}

// mappingWrite is the mapping row of a DPS alert after a command.
type mappingWrite struct {
	dpsID        string
	key          nomisKey
	prisonNumber string
	kind         string // mappingDPSCreated or mappingNOMISCreated, for a new row
	pos          rules.Position
	deleted      bool
}

// commandStart is what writeTx.startCommand found.
type commandStart struct {
	held       bool
	heldBehind string   // the first command of the hold, when held
	link       *link    // the alert's mapping row, locked; nil: none (or held)
	booking    *booking // the current booking read with it; nil: not read
}

// booking is a prisoner's current booking as currentBooking reads it; ok
// is false when there is none.
type booking struct {
	book int64
	root *int64
	ok   bool
}
