//go:build broker

package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// errNotApplicable marks a chosen change that does not apply any more (the
// alert is gone); the transaction is rolled back and nothing is counted.
var errNotApplicable = errors.New("change not applicable")

// actorStats counts what an actor did; safe for concurrent use.
type actorStats struct {
	committed [3]atomic.Int64 // by op: create, update, delete
	failed    atomic.Int64    // transactions that failed (rolled back or unknown)
	lastErr   atomic.Value    // string: the last failure, for the summary
}

const (
	opCreate = iota
	opUpdate
	opDelete
)

var opNames = [3]string{"create", "update", "delete"}

func (s *actorStats) total() int64 {
	return s.committed[0].Load() + s.committed[1].Load() + s.committed[2].Load()
}

// actor is one side's users: workers goroutines, each changing alerts of its
// own prisoners at rate/workers changes per second, every change in its own
// transaction together with its e2e_ledger.change row. It creates, updates
// and deletes only alerts its side created, so that the two sides never
// conflict; on shared prisoners both sides' alerts live side by side.
type actor struct {
	side        string // NOMIS or DPS
	pool        *pgxpool.Pool
	user        string
	prisoners   []prisoner
	workers     int
	createsOnly bool   // the benchmark: every change creates an alert
	tagPrefix   string // prefix of the unique text each change writes
	stats       actorStats
	seq         atomic.Int64 // for unique tags
}

// run changes alerts at rate changes per second until ctx ends.
func (a *actor) run(ctx context.Context, rate float64) {
	var wg sync.WaitGroup
	for w := range a.workers {
		var mine []prisoner
		for i := w; i < len(a.prisoners); i += a.workers {
			mine = append(mine, a.prisoners[i])
		}
		wg.Go(func() { a.work(ctx, mine, rate/float64(a.workers), uint64(w)) })
	}
	wg.Wait()
}

// work is one worker: a paced loop of random changes on its prisoners. When
// it falls more than a second behind its schedule (a store being
// restarted), it drops the backlog instead of bursting.
func (a *actor) work(ctx context.Context, mine []prisoner, rate float64, seed uint64) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), seed)) //nolint:gosec // the workload's choices, not a secret
	interval := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	stale := !a.createsOnly
	var live []liveAlert
	for {
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		} else if -d > time.Second {
			next = time.Now()
		}
		if ctx.Err() != nil {
			return
		}
		next = next.Add(interval)
		if stale {
			var err error
			if live, err = a.loadLive(ctx, mine); err != nil {
				a.fail(err)
				continue
			}
			stale = false
		}
		op := opCreate
		if !a.createsOnly && len(live) >= 3 {
			switch r := rng.Float64(); {
			case r < 0.3:
				op = opCreate
			case r < 0.85:
				op = opUpdate
			default:
				op = opDelete
			}
		}
		var target liveAlert
		pick := -1
		if op != opCreate {
			pick = rng.IntN(len(live))
			target = live[pick]
		} else {
			target.p = mine[rng.IntN(len(mine))]
		}
		created, err := a.change(ctx, rng, op, target)
		switch {
		case errors.Is(err, errNotApplicable):
			stale = true
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			a.fail(err)
			stale = true // the commit's fate may be unknown: reread
		default:
			a.stats.committed[op].Add(1)
			switch op {
			case opCreate:
				live = append(live, created)
			case opDelete:
				live = append(live[:pick], live[pick+1:]...)
			}
		}
	}
}

func (a *actor) fail(err error) {
	a.stats.failed.Add(1)
	a.stats.lastErr.Store(err.Error())
}

// liveAlert is an alert an actor created and has not deleted.
type liveAlert struct {
	p     prisoner
	seq   int64  // NOMIS
	dpsID string // DPS
}

// loadLive reads the live alerts this side's users created on prisoners
// mine, from the ledger and the store.
func (a *actor) loadLive(ctx context.Context, mine []prisoner) ([]liveAlert, error) {
	byNumber := map[string]prisoner{}
	numbers := make([]string, 0, len(mine))
	for _, p := range mine {
		byNumber[p.number] = p
		numbers = append(numbers, p.number)
	}
	q := `SELECT l.prison_number, a.alert_seq::bigint, '' FROM e2e_ledger.change l
  JOIN oms_owner.offender_alerts a ON a.offender_book_id = l.booking AND a.alert_seq = l.alert_seq
 WHERE l.side = 'NOMIS' AND l.op = 'create' AND l.prison_number = ANY($1)`
	if a.side == "DPS" {
		q = `SELECT l.prison_number, 0::bigint, a.id::text FROM e2e_ledger.change l
  JOIN public.alert a ON a.id = l.dps_alert_id
 WHERE l.side = 'DPS' AND l.op = 'create' AND a.deleted_at IS NULL AND l.prison_number = ANY($1)`
	}
	rows, err := a.pool.Query(ctx, q, numbers)
	if err != nil {
		return nil, fmt.Errorf("reading live alerts: %w", err)
	}
	defer rows.Close()
	var out []liveAlert
	for rows.Next() {
		var pn string
		var l liveAlert
		if err := rows.Scan(&pn, &l.seq, &l.dpsID); err != nil {
			return nil, fmt.Errorf("reading live alerts: %w", err)
		}
		l.p = byNumber[pn]
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading live alerts: %w", err)
	}
	return out, nil
}

// tag returns a new unique text for a change.
func (a *actor) tag() string {
	return a.tagPrefix + strconv.FormatInt(a.seq.Add(1), 10)
}

// change makes one change in its own transaction with its ledger row.
func (a *actor) change(ctx context.Context, rng *rand.Rand, op int, target liveAlert) (liveAlert, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tx, err := a.pool.Begin(ctx)
	if err != nil {
		return liveAlert{}, fmt.Errorf("beginning: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	var out liveAlert
	if a.side == "NOMIS" {
		out, err = a.changeNOMIS(ctx, tx, rng, op, target)
	} else {
		out, err = a.changeDPS(ctx, tx, rng, op, target)
	}
	if err != nil {
		return liveAlert{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return liveAlert{}, fmt.Errorf("committing: %w", err)
	}
	return out, nil
}

// nomisCodes are the (type, code) pairs NOMIS users create.
var nomisCodes = [][2]string{{"X", "XA"}, {"H", "HA"}, {"X", "XSA"}}

// dpsCodes are the codes DPS users create.
var dpsCodes = []string{"XEL", "VI", "RSS", "XA"}

// changeNOMIS changes OFFENDER_ALERTS as a NOMIS screen does. A new alert's
// ALERT_SEQ is above every sequence the booking ever used (live rows, the
// sync's mapping, the ledger), so that a NOMIS key always names one alert
// in the ledger; reusing a deleted alert's sequence is a scenario of its own.
// A user never deletes a booking's highest ALERT_SEQ, for the same reason.
func (a *actor) changeNOMIS(ctx context.Context, tx pgx.Tx, rng *rand.Rand, op int, target liveAlert) (liveAlert, error) {
	if _, err := tx.Exec(ctx, `SELECT set_config('nomis.audit_module_name', 'OIDALERT', true),
		set_config('nomis.audit_user_id', $1, true)`, a.user); err != nil {
		return liveAlert{}, fmt.Errorf("marking the session: %w", err)
	}
	p := target.p
	tag := a.tag()
	switch op {
	case opCreate:
		c := nomisCodes[rng.IntN(len(nomisCodes))]
		err := tx.QueryRow(ctx, `
INSERT INTO oms_owner.offender_alerts (offender_book_id, root_offender_id, alert_seq, alert_type, alert_code, alert_status,
    alert_date, comment_text, authorize_person_text, caseload_id, caseload_type, create_user_id)
SELECT $1, $2, greatest(
         (SELECT coalesce(max(alert_seq), 0) FROM oms_owner.offender_alerts WHERE offender_book_id = $1),
         (SELECT coalesce(max(alert_seq), 0) FROM alertsync.alertsync_alert_mapping WHERE offender_book_id = $1),
         (SELECT coalesce(max(alert_seq), 0) FROM e2e_ledger.change WHERE booking = $1::bigint)) + 1,
       $3, $4, 'ACTIVE', $5::date, $6, $7, 'MDI', 'INST', $8
RETURNING alert_seq`, p.booking, p.offender, c[0], c[1], today(), tag, "Officer "+strconv.Itoa(rng.IntN(50)), a.user).Scan(&target.seq)
		if err != nil {
			return liveAlert{}, fmt.Errorf("creating a NOMIS alert: %w", err)
		}
	case opUpdate:
		set, arg := "comment_text = $3", any(tag)
		switch rng.IntN(3) {
		case 1:
			set, arg = "authorize_person_text = $3", "SO "+tag
		case 2:
			// Never the date it already has: an update that changes no
			// mapped field sends no command.
			set, arg = "expiry_date = CASE WHEN expiry_date = $3::date THEN $3::date + 1 ELSE $3::date END", daysFromToday(10+rng.IntN(300))
		}
		ct, err := tx.Exec(ctx, `UPDATE oms_owner.offender_alerts SET `+set+`,
		modify_user_id = $4, modify_datetime = date_trunc('second', now() AT TIME ZONE 'Europe/London')
		WHERE offender_book_id = $1 AND alert_seq = $2`, p.booking, target.seq, arg, a.user)
		if err != nil {
			return liveAlert{}, fmt.Errorf("updating a NOMIS alert: %w", err)
		}
		if ct.RowsAffected() != 1 {
			return liveAlert{}, errNotApplicable
		}
	case opDelete:
		ct, err := tx.Exec(ctx, `DELETE FROM oms_owner.offender_alerts WHERE offender_book_id = $1 AND alert_seq = $2
		AND alert_seq < (SELECT max(alert_seq) FROM oms_owner.offender_alerts WHERE offender_book_id = $1)`, p.booking, target.seq)
		if err != nil {
			return liveAlert{}, fmt.Errorf("deleting a NOMIS alert: %w", err)
		}
		if ct.RowsAffected() != 1 {
			return liveAlert{}, errNotApplicable
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO e2e_ledger.change (side, op, prison_number, booking, alert_seq, tag)
		VALUES ('NOMIS', $1, $2, $3, $4, $5)`, opNames[op], p.number, p.booking, target.seq, tag); err != nil {
		return liveAlert{}, fmt.Errorf("writing the ledger: %w", err)
	}
	return target, nil
}

// changeDPS changes public.alert as the DPS service does: UUIDv7 ids,
// version bumps, soft deletes and one audit event per change.
func (a *actor) changeDPS(ctx context.Context, tx pgx.Tx, rng *rand.Rand, op int, target liveAlert) (liveAlert, error) {
	p := target.p
	tag := a.tag()
	var action string
	var flags [4]*bool
	yes, no := true, false
	switch op {
	case opCreate:
		id, err := uuid.NewV7()
		if err != nil {
			return liveAlert{}, fmt.Errorf("making an alert id: %w", err)
		}
		target.dpsID = id.String()
		ct, err := tx.Exec(ctx, `INSERT INTO public.alert (id, alert_code_id, prison_number, description, authorised_by,
		active_from, created_at, prison_code_when_created, version)
		SELECT $1, c.id, $2, $3, $4, $5::date, now() AT TIME ZONE 'Europe/London', 'MDI', 0 FROM public.alert_code c WHERE c.code = $6`,
			id, p.number, tag, "Governor "+strconv.Itoa(rng.IntN(50)), today(), dpsCodes[rng.IntN(len(dpsCodes))])
		if err != nil {
			return liveAlert{}, fmt.Errorf("creating a DPS alert: %w", err)
		}
		if ct.RowsAffected() != 1 {
			return liveAlert{}, errors.New("creating a DPS alert: alert code missing")
		}
		action = "CREATED"
	case opUpdate, opDelete:
		set, args := "description = $2", []any{target.dpsID, tag}
		flags = [4]*bool{&yes, &no, &no, &no}
		action = "UPDATED"
		switch {
		case op == opDelete:
			set, args, action = "deleted_at = now() AT TIME ZONE 'Europe/London'", args[:1], "DELETED"
			flags = [4]*bool{}
		case rng.IntN(3) == 1:
			set, args[1] = "authorised_by = $2", "Governor "+tag
			flags = [4]*bool{&no, &yes, &no, &no}
		case rng.IntN(2) == 1:
			set, args[1] = "active_to = CASE WHEN active_to = $2::date THEN $2::date + 1 ELSE $2::date END", daysFromToday(10+rng.IntN(300))
			flags = [4]*bool{&no, &no, &no, &yes}
		}
		ct, err := tx.Exec(ctx, `UPDATE public.alert SET `+set+`,
		last_modified_at = now() AT TIME ZONE 'Europe/London', version = version + 1 WHERE id = $1 AND deleted_at IS NULL`,
			args...)
		if err != nil {
			return liveAlert{}, fmt.Errorf("changing a DPS alert: %w", err)
		}
		if ct.RowsAffected() != 1 {
			return liveAlert{}, errNotApplicable
		}
	}
	ev, err := uuid.NewV7()
	if err != nil {
		return liveAlert{}, fmt.Errorf("making an audit event id: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO public.audit_event (id, alert_id, action, description, actioned_at,
		actioned_by, actioned_by_display_name, source, description_updated, authorised_by_updated, active_from_updated, active_to_updated)
		VALUES ($1, $2, $3, $4, now() AT TIME ZONE 'Europe/London', $5, $6, 'DPS', $7, $8, $9, $10)`,
		ev, target.dpsID, action, "Alert "+action, a.user, "Display "+a.user, flags[0], flags[1], flags[2], flags[3]); err != nil {
		return liveAlert{}, fmt.Errorf("writing the audit event: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO e2e_ledger.change (side, op, prison_number, dps_alert_id, tag)
		VALUES ('DPS', $1, $2, $3, $4)`, opNames[op], p.number, target.dpsID, tag); err != nil {
		return liveAlert{}, fmt.Errorf("writing the ledger: %w", err)
	}
	return target, nil
}
