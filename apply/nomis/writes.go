package nomis

import (
	"context"
	"fmt"
	"time"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/transform/rules"
)

// Mapping types apply nomis writes.
const (
	mappingDPSCreated   = "DPS_CREATED"   // the sync inserted the NOMIS row
	mappingNOMISCreated = "NOMIS_CREATED" // the NOMIS row existed; the command named its key
)

// maxSeqAttempts bounds how often an insert takes the next ALERT_SEQ after
// a NOMIS user who does not lock the booking took the one it chose.
const maxSeqAttempts = 100

// link is where the command's alert is in NOMIS: a row of
// alertsync.alertsync_alert_mapping, or the NOMIS key the command carries
// when the mapping has no row for it.
type link struct {
	key     nomisKey
	pos     *rules.Position // newest DPS position applied; nil: none yet
	deleted bool
	mapped  bool // false: found by the command's NOMIS key only
}

// row is an OFFENDER_ALERTS row as apply nomis compares it.
type row struct {
	key        nomisKey
	code       string
	status     string
	from       rules.Date
	to         *rules.Date
	comment    *string
	authorised *string
	commitTime *time.Time // commit time of the row's last change; nil when unknown
}

// dpsView is what DPS holds for a command's alert: the NOMIS key of its
// DPS-side mapping (nil: none) and whether the alert is deleted there (false
// also when DPS has no such alert).
type dpsView struct {
	key     *nomisKey
	deleted bool
}

// lookup resolves the command's alert, locking its NOMIS row: by DPS id
// through l, its mapping row (read and locked by startCommand; nil: none),
// else by the NOMIS key the command carries when no mapping row holds that
// key; side is what DPS holds for the alert (zero without a DPS database).
func (s *store) lookup(ctx context.Context, tx writeTx, c *rules.Command, l *link, side dpsView) (*link, *row, error) {
	return resolve(txAlerts{ctx: ctx, tx: tx}, c, l, side)
}

// alerts is what resolve reads and changes: the transaction itself on the
// statement path (txAlerts), the batch read in advance on the set path.
type alerts interface {
	// row reads and locks the row at k (nil: none).
	row(k nomisKey) (*row, error)
	// keyMapped reports whether some mapping row (deleted or not) holds k.
	keyMapped(k nomisKey) (bool, error)
	// release removes the mapping rows of DPS alerts other than dpsID
	// that hold k.
	release(k nomisKey, dpsID string) error
}

// resolve is lookup over a.
func resolve(a alerts, c *rules.Command, l *link, side dpsView) (*link, *row, error) {
	if l == nil || !l.deleted {
		// A prisoner replace in DPS (the resync after a new booking, a
		// recall, a moved booking or a merge) re-points the DPS-side
		// mapping to the alert's row on the current booking; this side's
		// mapping, written when this apply created the NOMIS row, still
		// names the old row, or the key under another (since replaced) DPS
		// alert. The DPS-side key is the newer: follow it, taking the key
		// from any other alert's mapping here (setLink re-points ours).
		moved, err := followDPSKey(a, c, l, side.key)
		if err != nil {
			return nil, nil, err
		}
		if moved != nil {
			l = moved
		}
	}
	if l == nil {
		// Not mapped here: the NOMIS key the command carries, else the one
		// the DPS-side mapping holds for an alert that came from NOMIS
		// (DESIGN.md, "The mapping": read-only).
		var k *nomisKey
		if c.NOMISBookingID != nil && c.NOMISAlertSeq != nil {
			k = &nomisKey{book: *c.NOMISBookingID, seq: *c.NOMISAlertSeq}
		} else {
			k = side.key
		}
		if k == nil {
			return nil, nil, nil
		}
		other, err := a.keyMapped(*k)
		if err != nil {
			return nil, nil, err
		}
		if other {
			return nil, nil, nil // the key belongs to another alert: not this one
		}
		l = &link{key: *k}
	}
	if l.deleted {
		return l, nil, nil
	}
	r, err := a.row(l.key)
	if err != nil {
		return nil, nil, err
	}
	return l, r, nil
}

// followDPSKey returns the link to k, the NOMIS key the DPS-side mapping
// holds for the command's alert, when it differs from l's and its row
// exists (nil when k is nil, the same, or a key without a row), after
// releasing that key from any other alert's mapping here. The returned
// link keeps l's positions.
func followDPSKey(a alerts, c *rules.Command, l *link, k *nomisKey) (*link, error) {
	if k == nil || l != nil && l.key == *k {
		return nil, nil
	}
	// Only to a row that is there: a DPS-side key whose row NOMIS has
	// since deleted names nothing to follow (the alert is created again,
	// and this side's mapping then holds the newer key).
	if r, err := a.row(*k); err != nil || r == nil {
		return nil, err
	}
	if err := a.release(*k, *c.DPSAlertID); err != nil {
		return nil, err
	}
	moved := &link{key: *k}
	if l != nil {
		moved.pos, moved.mapped = l.pos, l.mapped
	}
	return moved, nil
}

// txAlerts is alerts on the statement path: each call a statement of tx.
type txAlerts struct {
	ctx context.Context //nolint:containedctx // one lookup's context, for the interface's calls
	tx  writeTx
}

func (a txAlerts) row(k nomisKey) (*row, error) {
	r, err := a.tx.readRow(a.ctx, k)
	if err != nil {
		return nil, fmt.Errorf("reading alert %d/%d: %w", k.book, k.seq, err)
	}
	return r, nil
}

func (a txAlerts) keyMapped(k nomisKey) (bool, error) {
	other, err := a.tx.keyMapped(a.ctx, k)
	if err != nil {
		return false, fmt.Errorf("reading the mapping of a NOMIS key: %w", err)
	}
	return other, nil
}

func (a txAlerts) release(k nomisKey, dpsID string) error {
	if err := a.tx.releaseKey(a.ctx, k, dpsID); err != nil {
		return fmt.Errorf("releasing NOMIS key %d/%d for alert %s: %w", k.book, k.seq, dpsID, err)
	}
	return nil
}

// stale reports whether p is at or before the link's newest position.
func stale(l *link, p rules.Position) bool {
	if l == nil {
		return false
	}
	return apply.AtOrBefore(p, l.pos)
}

// matches reports whether the row holds state st in every field the
// mapping carries into NOMIS. With lapsed, a state INACTIVE only because
// its end date has passed matches a row NOMIS still shows ACTIVE: DPS
// computes the status of a before-image as of the change's date, and NOMIS
// learns of a lapse only from the expiry sweep.
func matches(r *row, st *rules.AlertState, lapsed bool) bool {
	if r.code != st.Code || r.from != st.ActiveFrom || !apply.SameDate(r.to, st.ActiveTo) ||
		!apply.SameText(r.comment, st.Description) || !apply.SameText(r.authorised, st.AuthorisedBy) {
		return false
	}
	if r.status == st.Status.String() {
		return true
	}
	return lapsed && r.status == rules.StatusActive.String() && st.Status == rules.StatusInactive && st.ActiveTo != nil
}

// decide settles a conflict between the command (a DPS change) and NOMIS's
// own change of the row: the later commit wins, ties go to DPS. A row whose
// commit time is unknown (nil: gone from NOMIS, or too old to tell) loses.
// It records the decision.
func (s *store) decide(ctx context.Context, tx writeTx, c *rules.Command, k nomisKey, target *time.Time) (dpsWins bool, err error) {
	dpsWins = target == nil || apply.CompareCommits(c.SourceCommitTime, *target) >= 0
	winner := "NOMIS"
	if dpsWins {
		winner = "DPS"
	}
	if err := tx.recordConflict(ctx, conflict{commandID: fit(c.ID, 64), dpsAlertID: *c.DPSAlertID, key: k, winner: winner,
		sourceCommitTime: c.SourceCommitTime, targetCommitTime: target}); err != nil {
		return false, fmt.Errorf("recording a conflict: %w", err)
	}
	return dpsWins, nil
}

func done(res apply.Result, reason string, c *rules.Command, k *nomisKey) result {
	r := result{Outcome: apply.Outcome{Result: res, Reason: reason, DPSAlertID: *c.DPSAlertID}}
	if k != nil {
		kk := *k
		r.key = &kk
	}
	return r
}

// path is how a command's decisions are carried out: the statement path
// (stmtPath: statements of the transaction as the command goes) or the
// set path (*setPlan: in memory, written with the batch). upsert and
// remove, the rules, are written once over it.
type path interface {
	// lookup is store.lookup.
	lookup(c *rules.Command, side dpsView) (*link, *row, error)
	// decide settles and records a conflict (store.decide).
	decide(c *rules.Command, k nomisKey, target *time.Time) (dpsWins bool, err error)
	// create inserts c.After on the current booking and maps it.
	create(c *rules.Command, l *link, reason string) (result, error)
	// update writes c.After over row r.
	update(c *rules.Command, r *row) error
	// deleteRow deletes row r (a hard delete).
	deleteRow(c *rules.Command, r *row) error
	// setLink is store.setLink.
	setLink(c *rules.Command, k nomisKey, l *link, deleted bool) error
}

// upsert creates or updates the command's alert.
func upsert(p path, c *rules.Command, side dpsView) (result, error) {
	if c.After == nil {
		return result{}, &apply.Refusal{Reason: "missing_after", Msg: "an UPSERT without the alert's state"}
	}
	l, r, err := p.lookup(c, side)
	if err != nil {
		return result{}, err
	}
	if stale(l, c.SourcePosition) {
		return done(apply.Skipped, apply.ReasonStale, c, &l.key), nil
	}
	if r == nil && side.deleted {
		// DPS has deleted the alert since this change: creating it would
		// bring back what DPS no longer has. A user's delete follows as a
		// command of its own; a delete by the sync (a prisoner resync that
		// found the alert missing from the current booking) does not.
		return done(apply.Skipped, ReasonDeletedInDPS, c, nil), nil
	}
	if r == nil {
		reason := ""
		if l != nil && l.mapped && !l.deleted && c.Before != nil {
			// NOMIS deleted the alert while DPS changed it; when, the
			// row no longer says: DPS's change stands.
			if _, err := p.decide(c, l.key, nil); err != nil {
				return result{}, err
			}
			reason = apply.ReasonWon
		}
		return p.create(c, l, reason)
	}
	return settled(p, c, r, l, func(reason string) (result, error) {
		if matches(r, c.After, false) {
			return done(apply.Skipped, apply.ReasonUnchanged, c, &r.key), p.setLink(c, r.key, l, false)
		}
		if err := p.update(c, r); err != nil {
			return result{}, err
		}
		return done(apply.Applied, reason, c, &r.key), p.setLink(c, r.key, l, false)
	})
}

// remove deletes the command's alert from NOMIS (a hard delete) and marks
// its mapping deleted.
func remove(p path, c *rules.Command, side dpsView) (result, error) {
	l, r, err := p.lookup(c, side)
	if err != nil {
		return result{}, err
	}
	switch {
	case stale(l, c.SourcePosition):
		return done(apply.Skipped, apply.ReasonStale, c, &l.key), nil
	case l == nil || (!l.mapped && r == nil):
		return done(apply.Skipped, apply.ReasonUnknown, c, nil), nil
	case r == nil:
		return done(apply.Skipped, apply.ReasonDeleted, c, &l.key), p.setLink(c, l.key, l, true)
	}
	return settled(p, c, r, l, func(reason string) (result, error) {
		if err := p.deleteRow(c, r); err != nil {
			return result{}, err
		}
		return done(apply.Applied, reason, c, &r.key), p.setLink(c, r.key, l, true)
	})
}

// settled settles c against row r (settle) and, unless the command lost
// (its result then), goes on with write, given apply.ReasonWon when DPS won
// a conflict.
func settled(p path, c *rules.Command, r *row, l *link, write func(reason string) (result, error)) (result, error) {
	reason, lost, err := settle(p, c, r, l)
	switch {
	case err != nil:
		return result{}, err
	case lost != nil:
		return *lost, nil
	}
	return write(reason)
}

// settle compares c's before-image with row r: when NOMIS changed the
// alert since, it settles the conflict (path.decide); reason is
// apply.ReasonWon when DPS won, lost the command's result when it lost
// (its mapping written).
func settle(p path, c *rules.Command, r *row, l *link) (reason string, lost *result, err error) {
	if c.Before == nil || matches(r, c.Before, true) {
		return "", nil, nil
	}
	win, err := p.decide(c, r.key, r.commitTime)
	if err != nil {
		return "", nil, err
	}
	if !win {
		res := done(apply.Conflict, apply.ReasonLost, c, &r.key)
		return "", &res, p.setLink(c, r.key, l, false)
	}
	return apply.ReasonWon, nil, nil
}

// stmtPath is the statement path of one command: statements of tx as the
// command goes, with what startCommand read.
type stmtPath struct {
	s       *store
	ctx     context.Context //nolint:containedctx // one command's context, for the interface's calls
	tx      writeTx
	started commandStart
}

func (p stmtPath) lookup(c *rules.Command, side dpsView) (*link, *row, error) {
	return p.s.lookup(p.ctx, p.tx, c, p.started.link, side)
}

func (p stmtPath) decide(c *rules.Command, k nomisKey, target *time.Time) (bool, error) {
	return p.s.decide(p.ctx, p.tx, c, k, target)
}

func (p stmtPath) create(c *rules.Command, l *link, reason string) (result, error) {
	return p.s.create(p.ctx, p.tx, c, l, reason, p.started.booking)
}

func (p stmtPath) update(c *rules.Command, r *row) error { return p.s.update(p.ctx, p.tx, c, r) }

func (p stmtPath) deleteRow(_ *rules.Command, r *row) error {
	if err := p.tx.deleteAlert(p.ctx, r.key); err != nil {
		return fmt.Errorf("deleting alert %d/%d: %w", r.key.book, r.key.seq, err)
	}
	return nil
}

func (p stmtPath) setLink(c *rules.Command, k nomisKey, l *link, deleted bool) error {
	return p.s.setLink(p.ctx, p.tx, c, k, l, deleted)
}

// create inserts c.After on the prisoner's current booking and maps it
// there (moving the mapping of an alert whose row is gone).
func (s *store) create(ctx context.Context, tx writeTx, c *rules.Command, l *link, reason string, read *booking) (result, error) {
	st := c.After
	typ, err := s.alertType(ctx, tx, st.Code, st.TypeCode)
	if err != nil {
		return result{}, err
	}
	// The current booking, locked: NOMIS writers that lock it before
	// allocating ALERT_SEQ wait for this transaction (the dialects say how
	// they lock it). startCommand may have read it (read).
	if read == nil {
		var bk booking
		if bk.book, bk.root, bk.ok, err = tx.currentBooking(ctx, c.PrisonNumber); err != nil {
			return result{}, fmt.Errorf("reading the current booking of %s: %w", c.PrisonNumber, err)
		}
		read = &bk
	}
	book, root, ok := read.book, read.root, read.ok
	if !ok {
		return result{}, &apply.Refusal{Reason: ReasonNoCurrentBooking, Msg: "prisoner " + c.PrisonNumber + " has no current booking in NOMIS"}
	}
	k, err := s.insert(ctx, tx, book, root, typ, st)
	if err != nil {
		return result{}, err
	}
	if l != nil && !l.mapped {
		l = nil // the key the command named holds no row: a new alert
	}
	return done(apply.Applied, reason, c, &k), s.setLink(ctx, tx, c, k, l, false)
}

// insert adds st to booking book under ALERT_SEQ = 1 + the highest the
// booking has in OFFENDER_ALERTS or in the mapping (a sequence the sync
// ever used, even of a row since deleted, is never used again). A NOMIS
// user who allocated the same sequence without locking the booking makes
// the attempt write nothing (the dialect waits for that user's commit and
// reports the sequence taken); it then takes the next one.
func (s *store) insert(ctx context.Context, tx writeTx, book int64, root *int64, typ string, st *rules.AlertState) (nomisKey, error) {
	for range maxSeqAttempts {
		seq, taken, err := tx.insertAlert(ctx, insertion{book: book, root: root, typ: typ, state: st})
		if err != nil {
			return nomisKey{}, fmt.Errorf("inserting an alert on booking %d: %w", book, err)
		}
		if !taken {
			return nomisKey{book: book, seq: seq}, nil
		}
	}
	return nomisKey{}, fmt.Errorf("inserting an alert on booking %d: every ALERT_SEQ tried was taken meanwhile (%d attempts)", book, maxSeqAttempts)
}

// update writes c.After over row r.
func (s *store) update(ctx context.Context, tx writeTx, c *rules.Command, r *row) error {
	typ, err := s.alertType(ctx, tx, c.After.Code, c.After.TypeCode)
	if err != nil {
		return err
	}
	if err := tx.updateAlert(ctx, r.key, typ, c.After, commandUser(c)); err != nil {
		return fmt.Errorf("updating alert %d/%d: %w", r.key.book, r.key.seq, err)
	}
	return nil
}

// setLink maps the command's DPS alert to NOMIS key k with the command's
// position (the newest applied), deleted or live. A new mapping row is
// DPS_CREATED, or NOMIS_CREATED when the command named an existing row;
// an existing one keeps its type.
func (s *store) setLink(ctx context.Context, tx writeTx, c *rules.Command, k nomisKey, l *link, deleted bool) error {
	kind := mappingDPSCreated
	if l != nil && !l.mapped {
		kind = mappingNOMISCreated
	}
	err := tx.setMapping(ctx, mappingWrite{dpsID: *c.DPSAlertID, key: k, prisonNumber: c.PrisonNumber, kind: kind,
		pos: c.SourcePosition, deleted: deleted})
	if err != nil {
		return fmt.Errorf("writing the mapping of alert %s: %w", *c.DPSAlertID, err)
	}
	return nil
}
