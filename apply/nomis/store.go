package nomis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/transform/rules"
)

// SyncModule is the module name apply nomis writes under: every
// transaction is marked with it before any write (the stand-in's
// nomis.audit_module_name; Oracle's session module and NOMIS context), so
// NOMIS's audit columns and the journal mark the sync's own writes
// (guarantee 3).
const SyncModule = "DPS_SYNCHRONISATION"

// store is the command logic of apply nomis, written once over a
// dialect: OFFENDER_ALERTS as a NOMIS writer marked as the sync, the
// mapping and per-alert positions, holds, the batch's outcomes (one outbox
// row) and the fenced consumed offset, all in one transaction per batch.
// It is the runner's apply.Store and, through the dialect, its
// apply.Outbox.
type store struct {
	dialect // Claim, Pending, Published
	// dpsViews reads what DPS holds for DPS alert ids, in one query: the
	// NOMIS key of each one's DPS-side mapping and whether the alert is
	// deleted (ids DPS does not know may be left out); nil when no DPS
	// database is set.
	dpsViews func(ctx context.Context, dpsIDs []string) (map[string]dpsView, error)
	// setPath applies batches on the set path (set.go) where the dialect
	// has one; onRedo, when set, hears of each batch redone on the
	// statement path, with why, and onPath of the path each committed batch
	// took.
	setPath bool
	onRedo  func(error)
	onPath  func(set bool)

	mu    sync.Mutex
	codes map[string]string // REFERENCE_CODES alert code → its parent ("": NULL)
}

// newStore returns the store over d.
func newStore(d dialect) *store { return &store{dialect: d} }

// Apply implements apply.Store.
func (s *store) Apply(ctx context.Context, f apply.Fence, cmds []apply.Cmd, next int64) ([]apply.Outcome, error) {
	outs, err := s.apply(ctx, f, cmds, next)
	if err != nil && !errors.Is(err, apply.ErrFenced) && !apply.Transient(err) && s.transient(err) {
		err = &transientError{err: err}
	}
	return outs, err
}

func (s *store) apply(ctx context.Context, f apply.Fence, cmds []apply.Cmd, next int64) ([]apply.Outcome, error) {
	views, err := s.readDPS(ctx, cmds)
	if err != nil {
		return nil, err
	}
	if s.setPath {
		outs, err := s.applyTx(ctx, f, cmds, next, views, true)
		if err == nil || !s.redo(err) {
			return outs, err
		}
		if s.onRedo != nil {
			s.onRedo(err)
		}
	}
	return s.applyTx(ctx, f, cmds, next, views, false)
}

// redo reports whether a batch that failed on the set path with err is
// redone on the statement path: a case left to it, or a write the database
// refused (on the statement path the command alone fails).
func (s *store) redo(err error) bool {
	if errors.Is(err, errStatementPath) {
		return true
	}
	if errors.Is(err, apply.ErrFenced) {
		return false
	}
	_, refused := s.refusal(err)
	return refused
}

// applyTx applies cmds in one transaction, on the set path when set and
// the dialect has one, else command by command.
func (s *store) applyTx(ctx context.Context, f apply.Fence, cmds []apply.Cmd, next int64, views map[string]dpsView, set bool) ([]apply.Outcome, error) {
	// begin marks the transaction as the sync before any write: NOMIS's
	// audit triggers and the journal trigger read the module from the
	// session.
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.rollback(context.WithoutCancel(ctx))
	st, hasSet := tx.(setTx)
	set = set && hasSet
	var outs []apply.Outcome
	if set {
		if outs, err = s.applySet(ctx, st, f, cmds, next, views); err != nil {
			return nil, err
		}
	} else {
		b := &batch{tx: tx, dps: views, outbox: make([]apply.OutboxRow, 0, len(cmds))}
		outs = make([]apply.Outcome, 0, len(cmds))
		for i := range cmds {
			o, err := s.one(ctx, b, &cmds[i])
			if err != nil {
				return nil, err
			}
			outs = append(outs, o)
		}
		if err := tx.writeOutbox(ctx, b.outbox); err != nil {
			return nil, err
		}
		if err := tx.commitFenced(ctx, f, next); err != nil {
			return nil, err
		}
	}
	if s.onPath != nil {
		s.onPath(set)
	}
	return outs, nil
}

// transientError marks an error of the dialect's driver that the dialect
// calls transient (an Oracle deadlock, a lost connection) so that the
// runner's apply.Transient retries the batch.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// Transient reports true: the batch may be retried (apply.Transient).
func (e *transientError) Transient() bool { return true }

// readDPS reads what DPS holds for the alerts of the batch's well-formed
// commands (nil without a DPS database): one query per batch, not per
// command.
func (s *store) readDPS(ctx context.Context, cmds []apply.Cmd) (map[string]dpsView, error) {
	if s.dpsViews == nil {
		return nil, nil
	}
	ids := make([]string, 0, len(cmds))
	seen := make(map[string]bool, len(cmds))
	for i := range cmds {
		c := &cmds[i]
		if c.Err != nil || malformed(&c.Command) != nil || seen[*c.DPSAlertID] {
			continue
		}
		seen[*c.DPSAlertID] = true
		ids = append(ids, *c.DPSAlertID)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return s.dpsViews(ctx, ids)
}

// batch is one apply transaction, what DPS holds for its alerts and the
// outcomes collected for its outbox row.
type batch struct {
	tx     writeTx
	dps    map[string]dpsView // by DPS alert id; nil without a DPS database
	outbox []apply.OutboxRow
}

// result is what one command did, with the NOMIS row it concerns.
type result struct {
	apply.Outcome
	key *nomisKey
}

type nomisKey struct {
	book int64
	seq  int32
}

// one applies one command inside a savepoint: a command NOMIS refuses is
// rolled back alone and recorded FAILED, with its DLQ entry, and holds
// later commands of the same alert; a transient error aborts the batch.
func (s *store) one(ctx context.Context, b *batch, c *apply.Cmd) (apply.Outcome, error) {
	tx := b.tx
	key := holdKey(c)
	if c.Err != nil {
		r := result{Outcome: apply.Outcome{CommandID: c.ID, Result: apply.Failed, Reason: apply.ReasonUndecodable}}
		return r.Outcome, s.record(ctx, b, c, r, &apply.DLQReason{Kind: "decode", Error: c.Err.Error()}, key)
	}
	if ref := malformed(&c.Command); ref != nil {
		r := result{Outcome: apply.Outcome{CommandID: c.ID, Result: apply.Failed, Reason: ref.Reason}}
		return r.Outcome, s.record(ctx, b, c, r, &apply.DLQReason{Kind: "refused", Error: ref.Error()}, "")
	}
	// A command without a before-image is DPS's create: it will most
	// likely insert, and needs the prisoner's current booking.
	bookingOf := ""
	if c.Kind == rules.KindUpsert && c.Before == nil {
		bookingOf = c.PrisonNumber
	}
	st, err := tx.startCommand(ctx, key, commandUser(&c.Command), *c.DPSAlertID, bookingOf)
	if err != nil {
		return apply.Outcome{}, fmt.Errorf("starting a command: %w", err)
	}
	if st.held {
		first := st.heldBehind
		r := result{Outcome: apply.Outcome{CommandID: c.ID, Result: apply.Skipped, Reason: apply.ReasonHeld}}
		return r.Outcome, s.record(ctx, b, c, r, &apply.DLQReason{Kind: "held", Error: "held behind command " + first, HeldBehind: &first}, "")
	}
	var r result
	switch c.Kind {
	case rules.KindUpsert:
		r, err = upsert(stmtPath{s: s, ctx: ctx, tx: tx, started: st}, &c.Command, b.dps[*c.DPSAlertID])
	case rules.KindDelete:
		r, err = remove(stmtPath{s: s, ctx: ctx, tx: tx, started: st}, &c.Command, b.dps[*c.DPSAlertID])
	default:
		err = &apply.Refusal{Reason: "unsupported_kind", Msg: "command kind " + c.Kind.String() + " is not applied to NOMIS"}
	}
	if err == nil {
		r.CommandID = c.ID
		return r.Outcome, s.record(ctx, b, c, r, nil, "")
	}
	if rerr := tx.rollbackToSavepoint(ctx); rerr != nil {
		return apply.Outcome{}, fmt.Errorf("rolling back a savepoint after %w: %w", err, rerr)
	}
	ref, ok := apply.AsRefusal(err)
	if !ok {
		ref, ok = s.refusal(err)
	}
	if !ok {
		return apply.Outcome{}, err
	}
	r = result{Outcome: apply.Outcome{CommandID: c.ID, Result: apply.Failed, Reason: ref.Reason}}
	return r.Outcome, s.record(ctx, b, c, r, &apply.DLQReason{Kind: "refused", Error: ref.Error()}, key)
}

// Reasons of refusals particular to NOMIS.
const (
	ReasonNoCurrentBooking = "no_current_booking" // the prisoner has no booking with BOOKING_SEQ 1
	ReasonUnknownCode      = "unknown_code"       // the code is not an ALERT_CODE in REFERENCE_CODES
	ReasonMalformed        = "malformed_command"  // a decoded command without a usable DPS id or prison number
	// ReasonDeletedInDPS: an upsert that would create the NOMIS row of an
	// alert DPS has deleted since (a later DPS change; for a delete by the
	// sync itself, such as a prisoner resync, no command follows).
	ReasonDeletedInDPS = "deleted_in_dps"
)

// malformed checks a command's kind and what the bookkeeping columns need
// of it (so that recording its outcome cannot fail): a UUID DPS id and a
// prison number that fits.
func malformed(c *rules.Command) *apply.Refusal {
	switch {
	case c.Kind != rules.KindUpsert && c.Kind != rules.KindDelete:
		return &apply.Refusal{Reason: "unsupported_kind", Msg: "command kind " + c.Kind.String() + " is not applied to NOMIS"}
	case c.DPSAlertID == nil:
		return &apply.Refusal{Reason: ReasonMalformed, Msg: "no DPS alert id"}
	case uuid.Validate(*c.DPSAlertID) != nil:
		return &apply.Refusal{Reason: ReasonMalformed, Msg: "the DPS alert id is not a UUID"}
	case c.PrisonNumber == "" || utf8.RuneCountInString(c.PrisonNumber) > 10:
		return &apply.Refusal{Reason: ReasonMalformed, Msg: "the prison number is empty or longer than 10 characters"}
	}
	return nil
}

// holdKey names the alert of a command for holds: "dps:<id>" (commands
// for NOMIS come from DPS), else "nomis:<book>:<seq>".
func holdKey(c *apply.Cmd) string {
	switch {
	case c.Err != nil:
		return ""
	case c.DPSAlertID != nil:
		return fit("dps:"+*c.DPSAlertID, 100)
	case c.NOMISBookingID != nil && c.NOMISAlertSeq != nil:
		return "nomis:" + strconv.FormatInt(*c.NOMISBookingID, 10) + ":" + strconv.Itoa(int(*c.NOMISAlertSeq))
	}
	return ""
}

// commandUser is the NOMIS user of a command's writes: who modified or
// created the after-image, else the sync's own name (DPS before-images and
// deletes carry no user).
func commandUser(c *rules.Command) string {
	if st := c.After; st != nil {
		if st.ModifiedBy != nil && *st.ModifiedBy != "" {
			return *st.ModifiedBy
		}
		if st.CreatedBy != "" {
			return st.CreatedBy
		}
	}
	return rules.UnknownDPSUser
}

// record adds the outcome (and DLQ entry) of c to the batch's outbox row;
// a FAILED command with a hold key starts a hold.
func (s *store) record(ctx context.Context, b *batch, c *apply.Cmd, r result, d *apply.DLQReason, holdOn string) error {
	row := outboxRow(c, r, d)
	b.outbox = append(b.outbox, row)
	if r.Result == apply.Failed && holdOn != "" {
		if err := b.tx.startHold(ctx, hold{key: holdOn, prisonNumber: fit(c.PrisonNumber, 10), firstCommand: fit(row.CommandID, 64), reason: r.Reason}); err != nil {
			return fmt.Errorf("starting a hold on %s: %w", holdOn, err)
		}
	}
	return nil
}

// fit cuts s to at most n characters.
func fit(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// alertType returns the NOMIS type of alert code code: its REFERENCE_CODES
// parent, else fallback. A code NOMIS does not have is refused. Known codes
// are cached.
func (s *store) alertType(ctx context.Context, tx writeTx, code, fallback string) (string, error) {
	if parent, ok := s.cachedParent(code); ok {
		return typeOf(parent, fallback), nil
	}
	parent, ok, err := tx.alertParent(ctx, code)
	if err != nil {
		return "", fmt.Errorf("looking up alert code %s: %w", code, err)
	}
	if !ok {
		return "", &apply.Refusal{Reason: ReasonUnknownCode, Msg: "alert code " + code + " is not in NOMIS's REFERENCE_CODES"}
	}
	s.cacheParent(code, parent)
	return typeOf(parent, fallback), nil
}

// typeOf is the ALERT_TYPE of a code with REFERENCE_CODES parent parent
// ("": NULL, then fallback).
func typeOf(parent, fallback string) string {
	if parent != "" {
		return parent
	}
	return fallback
}

// cachedParent returns the cached parent of a known alert code.
func (s *store) cachedParent(code string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	parent, ok := s.codes[code]
	return parent, ok
}

// cacheParent caches the parent of a known alert code ("": NULL).
func (s *store) cacheParent(code, parent string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.codes == nil {
		s.codes = map[string]string{}
	}
	s.codes[code] = parent
}
