package nomis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/transform/rules"
)

// SyncModule is the module name apply nomis writes under: every
// transaction sets nomis.audit_module_name to it, so NOMIS's audit columns
// and the journal mark the sync's own writes (guarantee 3).
const SyncModule = "DPS_SYNCHRONISATION"

// store writes commands into the NOMIS stand-in: OFFENDER_ALERTS as a NOMIS
// writer marked as the sync, the mapping and per-alert positions, the
// outcomes (outbox) and the fenced consumed offset, all in one transaction
// per batch.
// newStore returns the store over pool.
func newStore(pool *pgxpool.Pool, tz string, loc *time.Location) *store {
	return &store{pool: pool, tz: tz, loc: loc, PGBookkeeping: &apply.PGBookkeeping{Pool: pool,
		Offsets: "alertsync.alertsync_consumer_offsets", Outbox: "alertsync.alertsync_outcome_outbox",
		BookingColumn: "offender_book_id", SeqColumn: "alert_seq", Origin: rules.SideDPS}}
}

type store struct {
	*apply.PGBookkeeping // Claim, and the outbox
	pool                 *pgxpool.Pool
	tz                   string
	loc                  *time.Location
	// dpsKey returns the NOMIS key the DPS-side mapping holds for a DPS
	// alert id (nil when it holds none); nil when no DPS database is set.
	dpsKey func(ctx context.Context, dpsID string) (*nomisKey, error)

	mu    sync.Mutex
	codes map[string]string // REFERENCE_CODES alert code → its parent type
}

// Apply implements apply.Store.
func (s *store) Apply(ctx context.Context, f apply.Fence, cmds []apply.Cmd, next int64) ([]apply.Outcome, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, fmt.Errorf("beginning a transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// The sync marker, before any write: NOMIS's audit triggers and the
	// journal trigger read the module from the session.
	if _, err := tx.Exec(ctx, "SELECT set_config('nomis.audit_module_name', $1, true)", SyncModule); err != nil {
		return nil, fmt.Errorf("marking the transaction as the sync: %w", err)
	}
	outs := make([]apply.Outcome, 0, len(cmds))
	for i := range cmds {
		o, err := s.one(ctx, tx, &cmds[i])
		if err != nil {
			return nil, err
		}
		outs = append(outs, o)
	}
	if err := s.CommitFenced(ctx, tx, f, next); err != nil {
		return nil, err
	}
	return outs, nil
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
func (s *store) one(ctx context.Context, tx pgx.Tx, c *apply.Cmd) (apply.Outcome, error) {
	key := holdKey(c)
	if c.Err != nil {
		r := result{Outcome: apply.Outcome{CommandID: c.ID, Result: apply.Failed, Reason: apply.ReasonUndecodable}}
		return r.Outcome, s.record(ctx, tx, c, r, &dlqInfo{kind: "decode", err: c.Err.Error()}, key)
	}
	if ref := malformed(&c.Command); ref != nil {
		r := result{Outcome: apply.Outcome{CommandID: c.ID, Result: apply.Failed, Reason: ref.Reason}}
		return r.Outcome, s.record(ctx, tx, c, r, &dlqInfo{kind: "refused", err: ref.Error()}, "")
	}
	if key != "" {
		var first string
		err := tx.QueryRow(ctx, `UPDATE alertsync.alertsync_dlq_holds SET held_commands = held_commands + 1, updated_at = now()
			WHERE hold_key = $1 RETURNING first_command_id`, key).Scan(&first)
		switch {
		case err == nil:
			r := result{Outcome: apply.Outcome{CommandID: c.ID, Result: apply.Skipped, Reason: apply.ReasonHeld}}
			return r.Outcome, s.record(ctx, tx, c, r, &dlqInfo{kind: "held", err: "held behind command " + first, heldBehind: &first}, "")
		case !errors.Is(err, pgx.ErrNoRows):
			return apply.Outcome{}, fmt.Errorf("checking holds: %w", err)
		}
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return apply.Outcome{}, fmt.Errorf("opening a savepoint: %w", err)
	}
	// The NOMIS user of this command's writes, read by the audit and
	// journal triggers; local to the transaction, undone with the savepoint.
	if _, err := sp.Exec(ctx, "SELECT set_config('nomis.audit_user_id', $1, true)", commandUser(&c.Command)); err != nil {
		_ = sp.Rollback(ctx)
		return apply.Outcome{}, fmt.Errorf("setting the audit user: %w", err)
	}
	var r result
	switch c.Kind {
	case rules.KindUpsert:
		r, err = s.upsert(ctx, sp, &c.Command)
	case rules.KindDelete:
		r, err = s.delete(ctx, sp, &c.Command)
	default:
		err = &apply.Refusal{Reason: "unsupported_kind", Msg: "command kind " + c.Kind.String() + " is not applied to NOMIS"}
	}
	if err == nil {
		if err := sp.Commit(ctx); err != nil {
			return apply.Outcome{}, fmt.Errorf("releasing a savepoint: %w", err)
		}
		r.CommandID = c.ID
		return r.Outcome, s.record(ctx, tx, c, r, nil, "")
	}
	if rerr := sp.Rollback(ctx); rerr != nil {
		return apply.Outcome{}, fmt.Errorf("rolling back a savepoint after %w: %w", err, rerr)
	}
	ref, ok := apply.AsRefusal(err)
	if !ok {
		return apply.Outcome{}, err
	}
	r = result{Outcome: apply.Outcome{CommandID: c.ID, Result: apply.Failed, Reason: ref.Reason}}
	return r.Outcome, s.record(ctx, tx, c, r, &dlqInfo{kind: "refused", err: ref.Error()}, key)
}

// Reasons of refusals particular to NOMIS.
const (
	ReasonNoCurrentBooking = "no_current_booking" // the prisoner has no booking with BOOKING_SEQ 1
	ReasonUnknownCode      = "unknown_code"       // the code is not an ALERT_CODE in REFERENCE_CODES
	ReasonMalformed        = "malformed_command"  // a decoded command without a usable DPS id or prison number
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

type dlqInfo struct {
	kind, err  string
	heldBehind *string
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

// record writes the outcome (and DLQ entry) of c to the outbox; a FAILED
// command with a hold key starts a hold.
func (s *store) record(ctx context.Context, tx pgx.Tx, c *apply.Cmd, r result, d *dlqInfo, hold string) error {
	var reason *string
	if r.Reason != "" {
		reason = &r.Reason
	}
	origin := "DPS"
	if c.Origin == rules.SideNOMIS {
		origin = "NOMIS"
	}
	var (
		dTopic, dKind, dErr, ak *string
		dPart                   *int32
		dOff                    *int64
		dKey, dVal              []byte
		heldBehind              *string
	)
	if d != nil {
		dTopic, dPart, dOff = &c.Record.Topic, &c.Record.Partition, &c.Record.Offset
		dKey, dVal = c.Record.Key, c.Record.Value
		dKind, dErr, heldBehind = &d.kind, &d.err, d.heldBehind
		if k := holdKey(c); k != "" {
			ak = &k
		}
	}
	id := fit(c.ID, 64)
	if id == "" {
		id = "undecodable:" + c.Record.Topic + "/" + strconv.Itoa(int(c.Record.Partition)) + "/" + strconv.FormatInt(c.Record.Offset, 10)
		id = fit(id, 64)
	}
	var dpsID *string
	switch {
	case r.DPSAlertID != "":
		dpsID = &r.DPSAlertID
	case c.Err == nil && c.DPSAlertID != nil && uuid.Validate(*c.DPSAlertID) == nil:
		dpsID = c.DPSAlertID
	}
	book, seq := c.NOMISBookingID, c.NOMISAlertSeq
	if r.key != nil {
		book, seq = &r.key.book, &r.key.seq
	}
	number := fit(c.PrisonNumber, 10)
	_, err := tx.Exec(ctx, `INSERT INTO alertsync.alertsync_outcome_outbox
		(command_id, outcome, reason, dps_alert_id, prison_number, offender_book_id, alert_seq, origin_side,
		 source_commit_pos, source_change_pos, source_commit_time,
		 dlq_topic, dlq_partition, dlq_offset, dlq_key, dlq_value, dlq_error_kind, dlq_error, dlq_held_behind, alert_key)
		VALUES ($1, $2, $3, $4::uuid, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
		id, string(r.Result), reason, dpsID, number, book, seq, origin,
		c.SourcePosition.Commit, c.SourcePosition.Change, nullTime(c.SourceCommitTime),
		dTopic, dPart, dOff, dKey, dVal, dKind, dErr, heldBehind, ak)
	if err != nil {
		return fmt.Errorf("writing the outcome of command %s: %w", id, err)
	}
	if r.Result == apply.Failed && hold != "" {
		if _, err := tx.Exec(ctx, `INSERT INTO alertsync.alertsync_dlq_holds (hold_key, prison_number, first_command_id, reason)
			VALUES ($1, $2, $3, $4) ON CONFLICT (hold_key) DO NOTHING`, hold, number, id, r.Reason); err != nil {
			return fmt.Errorf("starting a hold on %s: %w", hold, err)
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

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// alertType returns the NOMIS type (REFERENCE_CODES parent) of alert code
// code, refusing a code NOMIS does not have. Known codes are cached.
func (s *store) alertType(ctx context.Context, q pgx.Tx, code, fallback string) (string, error) {
	s.mu.Lock()
	typ, ok := s.codes[code]
	s.mu.Unlock()
	if ok {
		return typ, nil
	}
	var parent *string
	err := q.QueryRow(ctx, "SELECT parent_code FROM oms_owner.reference_codes WHERE domain = 'ALERT_CODE' AND code = $1", code).Scan(&parent)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", &apply.Refusal{Reason: ReasonUnknownCode, Msg: "alert code " + code + " is not in NOMIS's REFERENCE_CODES"}
	}
	if err != nil {
		return "", fmt.Errorf("looking up alert code %s: %w", code, err)
	}
	typ = fallback
	if parent != nil && *parent != "" {
		typ = *parent
	}
	s.mu.Lock()
	if s.codes == nil {
		s.codes = map[string]string{}
	}
	s.codes[code] = typ
	s.mu.Unlock()
	return typ, nil
}
