package dps

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/transform/rules"
)

// Marker is the origin text of apply dps's sync marker: every transaction
// starts with pg_logical_emit_message(true, 'alertsync', Marker), so the DPS
// capture publishes its changes with source.sync = true (guarantee 3).
const Marker = "apply-dps"

// store writes commands into DPS: alert and audit_event as the DPS service
// would for a change whose source is NOMIS, the mapping and per-alert
// positions in schema alertsync, the outcomes (outbox) and the fenced
// consumed offset, all in one transaction per batch.
type store struct {
	*apply.PGBookkeeping // Claim, and the outbox
	pool                 *pgxpool.Pool
	tz                   string
	loc                  *time.Location

	mu    sync.Mutex
	codes map[string]int64 // alert_code.code → id
}

// Apply implements apply.Store. It first runs the batch on the fast path
// (writes pipelined, no savepoints); when the database refuses a write
// there, the batch is rolled back and redone on the careful path, a
// savepoint per command, so that the refused command alone fails; so is a
// batch the set path leaves to the statement path (errStatementPath).
func (s *store) Apply(ctx context.Context, f apply.Fence, cmds []apply.Cmd, next int64) ([]apply.Outcome, error) {
	outs, err := s.applyTx(ctx, f, cmds, next, true)
	var qe *queuedError
	if err != nil && !errors.Is(err, apply.ErrFenced) && (errors.As(err, &qe) && !apply.Transient(err) || apply.RefusedByDB(err) || errors.Is(err, errStatementPath)) {
		return s.applyTx(ctx, f, cmds, next, false)
	}
	return outs, err
}

func (s *store) applyTx(ctx context.Context, f apply.Fence, cmds []apply.Cmd, next int64, fast bool) ([]apply.Outcome, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("beginning a transaction: %w", err)
	}
	defer conn.Release()
	// BEGIN, the sync marker and the holds of the batch's alerts in one
	// round trip.
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	b.Queue("SELECT pg_logical_emit_message(true, 'alertsync', $1)", Marker)
	// Locked: a redrive deleting one of these holds waits for this batch
	// (and then sees its held_commands changed, and leaves the hold).
	b.Queue("SELECT hold_key, first_command_id FROM alertsync.dlq_holds WHERE hold_key = ANY($1) FOR UPDATE", holdKeys(cmds))
	br := conn.SendBatch(ctx, b)
	tx := br.Tx()
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	holds, err := readHolds(br)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	q := newPipe(tx, fast)
	var outs []apply.Outcome
	var fence pgconn.CommandTag
	if fast && settable(cmds) {
		if outs, fence, err = s.applySet(ctx, tx, cmds, holds, f, next); err != nil {
			return nil, err
		}
	} else {
		outs = make([]apply.Outcome, 0, len(cmds))
		for i := range cmds {
			o, err := s.one(ctx, q, &cmds[i], holds, fast)
			if err != nil {
				return nil, err
			}
			outs = append(outs, o)
		}
		if !fast {
			s.QueueOutbox(q.batch(), q.outbox)
			if err := q.flush(ctx); err != nil {
				return nil, err
			}
			if err := s.CommitFenced(ctx, tx, f, next); err != nil {
				return nil, err
			}
			return outs, nil
		}
		s.QueueOutbox(q.batch(), q.outbox)
		s.QueueFence(q.batch(), f, next)
		if fence, err = q.flushLast(ctx); err != nil {
			return nil, err
		}
	}
	if err := apply.CommitChecked(ctx, tx, fence); err != nil {
		return nil, err
	}
	return outs, nil
}

// holdKeys returns the hold keys of cmds.
func holdKeys(cmds []apply.Cmd) []string {
	keys := make([]string, 0, len(cmds))
	for i := range cmds {
		if k := holdKey(&cmds[i]); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// readHolds reads the results of applyTx's first batch: BEGIN, the marker
// and the holds on the batch's alerts (hold key → first command).
func readHolds(br pgx.BatchResults) (map[string]string, error) {
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("beginning a transaction: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("writing the sync marker: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("reading holds: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, first string
		if err := rows.Scan(&k, &first); err != nil {
			return nil, fmt.Errorf("reading holds: %w", err)
		}
		out[k] = first
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading holds: %w", err)
	}
	return out, nil
}

// one applies one command inside a savepoint: a command the database
// refuses (constraint violation, unknown code) is rolled back alone and
// recorded FAILED, with its DLQ entry, and holds later commands of the
// same alert; a transient error aborts the batch.
func (s *store) one(ctx context.Context, tx *pipe, c *apply.Cmd, holds map[string]string, fast bool) (apply.Outcome, error) {
	key := holdKey(c)
	if c.Err != nil {
		o := apply.Outcome{CommandID: c.ID, Result: apply.Failed, Reason: apply.ReasonUndecodable}
		return o, s.record(ctx, tx, c, o, &apply.DLQReason{Kind: "decode", Error: c.Err.Error()}, key)
	}
	if first, held := holds[key]; key != "" && held {
		if _, err := tx.Exec(ctx, `UPDATE alertsync.dlq_holds SET held_commands = held_commands + 1, updated_at = now()
			WHERE hold_key = $1`, key); err != nil {
			return apply.Outcome{}, fmt.Errorf("counting a held command: %w", err)
		}
		o := apply.Outcome{CommandID: c.ID, Result: apply.Skipped, Reason: apply.ReasonHeld}
		return o, s.record(ctx, tx, c, o, &apply.DLQReason{Kind: "held", Error: "held behind command " + first, HeldBehind: &first}, "")
	}
	if fast {
		o, err := s.kind(ctx, tx, c)
		var ref *apply.Refusal
		switch {
		case err == nil:
			o.CommandID = c.ID
			return o, s.record(ctx, tx, c, o, nil, "")
		case errors.As(err, &ref):
			// Refused before any write of this command: no savepoint needed.
			o = apply.Outcome{CommandID: c.ID, Result: apply.Failed, Reason: ref.Reason}
			holds[key] = c.ID
			return o, s.record(ctx, tx, c, o, &apply.DLQReason{Kind: "refused", Error: ref.Error()}, key)
		}
		return apply.Outcome{}, err
	}
	sp, err := tx.tx.Begin(ctx)
	if err != nil {
		return apply.Outcome{}, fmt.Errorf("opening a savepoint: %w", err)
	}
	o, err := s.kind(ctx, newPipe(sp, false), c)
	if err == nil {
		if err := sp.Commit(ctx); err != nil {
			return apply.Outcome{}, fmt.Errorf("releasing a savepoint: %w", err)
		}
		o.CommandID = c.ID
		return o, s.record(ctx, tx, c, o, nil, "")
	}
	if rerr := sp.Rollback(ctx); rerr != nil {
		return apply.Outcome{}, fmt.Errorf("rolling back a savepoint after %w: %w", err, rerr)
	}
	ref, ok := apply.AsRefusal(err)
	if !ok {
		return apply.Outcome{}, err
	}
	o = apply.Outcome{CommandID: c.ID, Result: apply.Failed, Reason: ref.Reason}
	holds[key] = c.ID
	return o, s.record(ctx, tx, c, o, &apply.DLQReason{Kind: "refused", Error: ref.Error()}, key)
}

// kind applies c by its kind.
func (s *store) kind(ctx context.Context, q *pipe, c *apply.Cmd) (apply.Outcome, error) {
	switch c.Kind {
	case rules.KindUpsert:
		return s.upsert(ctx, q, &c.Command)
	case rules.KindDelete:
		return s.delete(ctx, q, &c.Command)
	case rules.KindReplacePrisoner:
		return s.replace(ctx, q, &c.Command)
	}
	return apply.Outcome{}, &apply.Refusal{Reason: "unsupported_kind", Msg: "command kind " + c.Kind.String()}
}

// holdKey names the alert of a command for holds: "nomis:<book>:<seq>",
// "dps:<id>", or "prisoner:<number>" for a replace.
func holdKey(c *apply.Cmd) string {
	switch {
	case c.Err != nil:
		return ""
	case c.Kind == rules.KindReplacePrisoner:
		return "prisoner:" + c.PrisonNumber
	case c.NOMISBookingID != nil && c.NOMISAlertSeq != nil:
		return "nomis:" + strconv.FormatInt(*c.NOMISBookingID, 10) + ":" + strconv.Itoa(int(*c.NOMISAlertSeq))
	case c.DPSAlertID != nil:
		return "dps:" + *c.DPSAlertID
	}
	return ""
}

// record adds the outcome (and DLQ entry) of c to the transaction's
// outbox batch; a FAILED command with a hold key starts a hold.
func (s *store) record(ctx context.Context, tx *pipe, c *apply.Cmd, o apply.Outcome, d *apply.DLQReason, hold string) error {
	alertKey := ""
	if d != nil {
		alertKey = holdKey(c)
	}
	tx.outbox = append(tx.outbox, apply.OutboxRowOf(c, o, d, alertKey))
	if o.Result == apply.Failed && hold != "" {
		id := c.ID
		if id == "" {
			id = apply.UndecodableID(c)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO alertsync.dlq_holds (hold_key, prison_number, first_command_id, reason)
			VALUES ($1, $2, $3, $4) ON CONFLICT (hold_key) DO NOTHING`, hold, c.PrisonNumber, id, o.Reason); err != nil {
			return fmt.Errorf("starting a hold on %s: %w", hold, err)
		}
	}
	return nil
}

// codeID returns the DPS id of alert code code.
func (s *store) codeID(ctx context.Context, q *pipe, code string) (int64, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if ok {
		return id, nil
	}
	err := q.QueryRow(ctx, "SELECT id FROM public.alert_code WHERE code = $1", code).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, &apply.Refusal{Reason: "unknown_code", Msg: "alert code " + code + " is not in DPS"}
	}
	if err != nil {
		return 0, fmt.Errorf("looking up alert code %s: %w", code, err)
	}
	s.mu.Lock()
	if s.codes == nil {
		s.codes = map[string]int64{}
	}
	s.codes[code] = id
	s.mu.Unlock()
	return id, nil
}

// newID returns a new alert or audit id: a UUIDv7, as the DPS service uses.
func newID() (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("making a UUIDv7: %w", err)
	}
	return u.String(), nil
}
