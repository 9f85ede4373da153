package nomis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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

// lookup resolves the command's alert, locking its mapping row and its
// NOMIS row: by DPS id through the mapping, else by the NOMIS key the
// command carries when no mapping row holds that key.
func (s *store) lookup(ctx context.Context, q pgx.Tx, c *rules.Command) (*link, *row, error) {
	var (
		l       link
		cp, chp *int64
		deleted *time.Time
	)
	err := q.QueryRow(ctx, `SELECT offender_book_id, alert_seq, dps_commit_pos, dps_change_pos, deleted_at
		  FROM alertsync.alertsync_alert_mapping WHERE dps_alert_id = $1::uuid FOR UPDATE`, *c.DPSAlertID).
		Scan(&l.key.book, &l.key.seq, &cp, &chp, &deleted)
	switch {
	case err == nil:
		l.mapped, l.deleted = true, deleted != nil
		if cp != nil && chp != nil {
			l.pos = &rules.Position{Commit: *cp, Change: *chp}
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, nil, fmt.Errorf("reading the mapping of alert %s: %w", *c.DPSAlertID, err)
	default:
		// Not mapped here: the NOMIS key the command carries, else the one
		// the DPS-side mapping holds for an alert that came from NOMIS
		// (DESIGN.md, "The mapping": read-only).
		var k *nomisKey
		if c.NOMISBookingID != nil && c.NOMISAlertSeq != nil {
			k = &nomisKey{book: *c.NOMISBookingID, seq: *c.NOMISAlertSeq}
		} else if s.dpsKey != nil {
			if k, err = s.dpsKey(ctx, *c.DPSAlertID); err != nil {
				return nil, nil, err
			}
		}
		if k == nil {
			return nil, nil, nil
		}
		var other string
		err := q.QueryRow(ctx, `SELECT dps_alert_id::text FROM alertsync.alertsync_alert_mapping
			WHERE offender_book_id = $1 AND alert_seq = $2`, k.book, k.seq).Scan(&other)
		switch {
		case err == nil:
			return nil, nil, nil // the key belongs to another alert: not this one
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, nil, fmt.Errorf("reading the mapping of a NOMIS key: %w", err)
		}
		l.key = *k
	}
	if l.deleted {
		return &l, nil, nil
	}
	r, err := s.readRow(ctx, q, l.key)
	return &l, r, err
}

// readRow reads and locks the OFFENDER_ALERTS row at k; nil when there is
// none.
func (s *store) readRow(ctx context.Context, q pgx.Tx, k nomisKey) (*row, error) {
	var (
		r        = row{key: k}
		from     time.Time
		to       *time.Time
		commitTS *time.Time
	)
	err := q.QueryRow(ctx, `SELECT alert_code, alert_status, alert_date, expiry_date, comment_text, authorize_person_text,
			pg_xact_commit_timestamp(xmin)
		  FROM oms_owner.offender_alerts WHERE offender_book_id = $1 AND alert_seq = $2 FOR UPDATE`, k.book, k.seq).
		Scan(&r.code, &r.status, &from, &to, &r.comment, &r.authorised, &commitTS)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading alert %d/%d: %w", k.book, k.seq, err)
	}
	r.from = rules.DateIn(from, time.UTC) // a wall-clock timestamp: its date
	if to != nil {
		d := rules.DateIn(*to, time.UTC)
		r.to = &d
	}
	r.commitTime = commitTS
	return &r, nil
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
func (s *store) decide(ctx context.Context, q pgx.Tx, c *rules.Command, k nomisKey, target *time.Time) (dpsWins bool, err error) {
	dpsWins = target == nil || !c.SourceCommitTime.Before(*target)
	winner := "NOMIS"
	if dpsWins {
		winner = "DPS"
	}
	if _, err := q.Exec(ctx, `INSERT INTO alertsync.alertsync_conflicts
			(command_id, dps_alert_id, offender_book_id, alert_seq, winner, source_commit_time, target_commit_time)
		VALUES ($1, $2::uuid, $3, $4, $5, $6, $7)`, fit(c.ID, 64), *c.DPSAlertID, k.book, k.seq, winner, c.SourceCommitTime, target); err != nil {
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

// upsert creates or updates the command's alert.
func (s *store) upsert(ctx context.Context, q pgx.Tx, c *rules.Command) (result, error) {
	if c.After == nil {
		return result{}, &apply.Refusal{Reason: "missing_after", Msg: "an UPSERT without the alert's state"}
	}
	l, r, err := s.lookup(ctx, q, c)
	if err != nil {
		return result{}, err
	}
	if stale(l, c.SourcePosition) {
		return done(apply.Skipped, apply.ReasonStale, c, &l.key), nil
	}
	if r == nil {
		reason := ""
		if l != nil && l.mapped && !l.deleted && c.Before != nil {
			// NOMIS deleted the alert while DPS changed it; when, the
			// row no longer says: DPS's change stands.
			if _, err := s.decide(ctx, q, c, l.key, nil); err != nil {
				return result{}, err
			}
			reason = apply.ReasonWon
		}
		return s.create(ctx, q, c, l, reason)
	}
	reason := ""
	if c.Before != nil && !matches(r, c.Before, true) {
		// NOMIS changed the alert since DPS's before-image.
		win, err := s.decide(ctx, q, c, r.key, r.commitTime)
		if err != nil {
			return result{}, err
		}
		if !win {
			return done(apply.Conflict, apply.ReasonLost, c, &r.key), s.setLink(ctx, q, c, r.key, l, false)
		}
		reason = apply.ReasonWon
	}
	if matches(r, c.After, false) {
		return done(apply.Skipped, apply.ReasonUnchanged, c, &r.key), s.setLink(ctx, q, c, r.key, l, false)
	}
	if err := s.update(ctx, q, c, r); err != nil {
		return result{}, err
	}
	return done(apply.Applied, reason, c, &r.key), s.setLink(ctx, q, c, r.key, l, false)
}

// create inserts c.After on the prisoner's current booking and maps it
// there (moving the mapping of an alert whose row is gone).
func (s *store) create(ctx context.Context, q pgx.Tx, c *rules.Command, l *link, reason string) (result, error) {
	st := c.After
	typ, err := s.alertType(ctx, q, st.Code, st.TypeCode)
	if err != nil {
		return result{}, err
	}
	// The current booking, locked: NOMIS writers that lock it before
	// allocating ALERT_SEQ wait for this transaction. FOR NO KEY UPDATE is
	// the stand-in's equivalent of Oracle's FOR UPDATE here: it excludes
	// other lockers but not the KEY SHARE lock a child row's foreign-key
	// check takes (Oracle's parent check takes no row lock), so a NOMIS
	// user inserting without locking the booking cannot deadlock with it.
	var (
		book int64
		root *int64
	)
	err = q.QueryRow(ctx, `SELECT b.offender_book_id, b.root_offender_id
		  FROM oms_owner.offenders o JOIN oms_owner.offender_bookings b ON b.offender_id = o.offender_id
		 WHERE o.offender_id_display = $1 AND b.booking_seq = 1
		 ORDER BY b.booking_begin_date DESC, b.offender_book_id DESC
		 LIMIT 1 FOR NO KEY UPDATE OF b`, c.PrisonNumber).Scan(&book, &root)
	if errors.Is(err, pgx.ErrNoRows) {
		return result{}, &apply.Refusal{Reason: ReasonNoCurrentBooking, Msg: "prisoner " + c.PrisonNumber + " has no current booking in NOMIS"}
	}
	if err != nil {
		return result{}, fmt.Errorf("reading the current booking of %s: %w", c.PrisonNumber, err)
	}
	k, err := s.insert(ctx, q, book, root, typ, st)
	if err != nil {
		return result{}, err
	}
	if l != nil && !l.mapped {
		l = nil // the key the command named holds no row: a new alert
	}
	return done(apply.Applied, reason, c, &k), s.setLink(ctx, q, c, k, l, false)
}

// insert adds st to booking book under ALERT_SEQ = 1 + the highest the
// booking has in OFFENDER_ALERTS or in the mapping (a sequence the sync
// ever used, even of a row since deleted, is never used again). A NOMIS
// user who allocated the same sequence without locking the booking makes
// the insert do nothing (ON CONFLICT waits for that user's commit); it
// then takes the next one.
func (s *store) insert(ctx context.Context, q pgx.Tx, book int64, root *int64, typ string, st *rules.AlertState) (nomisKey, error) {
	var created *time.Time
	if !st.CreatedAt.IsZero() {
		created = &st.CreatedAt
	}
	for range maxSeqAttempts {
		var seq int32
		err := q.QueryRow(ctx, `INSERT INTO oms_owner.offender_alerts
				(offender_book_id, root_offender_id, alert_seq, alert_type, alert_code, alert_status, alert_date, expiry_date,
				 comment_text, authorize_person_text, caseload_id, caseload_type, verified_flag,
				 create_date, create_user_id, create_datetime)
			SELECT $1::numeric, $2::numeric, greatest(
					coalesce((SELECT max(a.alert_seq) FROM oms_owner.offender_alerts a WHERE a.offender_book_id = $1::numeric), 0),
					coalesce((SELECT max(m.alert_seq) FROM alertsync.alertsync_alert_mapping m WHERE m.offender_book_id = $1::numeric), 0)) + 1,
				$3::text, $4::text, $5::text, $6::date, $7::date, $8::text, $9::text, $10::text, 'INST', 'N',
				date_trunc('day', coalesce($11::timestamptz, now()) AT TIME ZONE $12::text), $13::text,
				coalesce($11::timestamptz, now()) AT TIME ZONE $12::text
			ON CONFLICT (offender_book_id, alert_seq) DO NOTHING
			RETURNING alert_seq`,
			book, root, typ, st.Code, st.Status.String(), st.ActiveFrom.String(), apply.DateArg(st.ActiveTo),
			st.Description, st.AuthorisedBy, st.PrisonCode, created, s.tz, st.CreatedBy).Scan(&seq)
		switch {
		case err == nil:
			return nomisKey{book: book, seq: seq}, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return nomisKey{}, fmt.Errorf("inserting an alert on booking %d: %w", book, err)
		}
	}
	return nomisKey{}, fmt.Errorf("inserting an alert on booking %d: every ALERT_SEQ tried was taken meanwhile (%d attempts)", book, maxSeqAttempts)
}

// update writes c.After over row r.
func (s *store) update(ctx context.Context, q pgx.Tx, c *rules.Command, r *row) error {
	st := c.After
	typ, err := s.alertType(ctx, q, st.Code, st.TypeCode)
	if err != nil {
		return err
	}
	if _, err := q.Exec(ctx, `UPDATE oms_owner.offender_alerts
		   SET alert_type = $3, alert_code = $4, alert_status = $5, alert_date = $6::date, expiry_date = $7::date,
		       comment_text = $8, authorize_person_text = $9,
		       modify_user_id = $10, modify_datetime = clock_timestamp() AT TIME ZONE $11
		 WHERE offender_book_id = $1 AND alert_seq = $2`,
		r.key.book, r.key.seq, typ, st.Code, st.Status.String(), st.ActiveFrom.String(), apply.DateArg(st.ActiveTo),
		st.Description, st.AuthorisedBy, commandUser(c), s.tz); err != nil {
		return fmt.Errorf("updating alert %d/%d: %w", r.key.book, r.key.seq, err)
	}
	return nil
}

// delete deletes the command's alert from NOMIS (a hard delete) and marks
// its mapping deleted.
func (s *store) delete(ctx context.Context, q pgx.Tx, c *rules.Command) (result, error) {
	l, r, err := s.lookup(ctx, q, c)
	if err != nil {
		return result{}, err
	}
	switch {
	case stale(l, c.SourcePosition):
		return done(apply.Skipped, apply.ReasonStale, c, &l.key), nil
	case l == nil || (!l.mapped && r == nil):
		return done(apply.Skipped, apply.ReasonUnknown, c, nil), nil
	case r == nil:
		return done(apply.Skipped, apply.ReasonDeleted, c, &l.key), s.setLink(ctx, q, c, l.key, l, true)
	}
	reason := ""
	if c.Before != nil && !matches(r, c.Before, true) {
		win, err := s.decide(ctx, q, c, r.key, r.commitTime)
		if err != nil {
			return result{}, err
		}
		if !win {
			return done(apply.Conflict, apply.ReasonLost, c, &r.key), s.setLink(ctx, q, c, r.key, l, false)
		}
		reason = apply.ReasonWon
	}
	if _, err := q.Exec(ctx, "DELETE FROM oms_owner.offender_alerts WHERE offender_book_id = $1 AND alert_seq = $2",
		r.key.book, r.key.seq); err != nil {
		return result{}, fmt.Errorf("deleting alert %d/%d: %w", r.key.book, r.key.seq, err)
	}
	return done(apply.Applied, reason, c, &r.key), s.setLink(ctx, q, c, r.key, l, true)
}

// setLink maps the command's DPS alert to NOMIS key k with the command's
// position (the newest applied), deleted or live. A new mapping row is
// DPS_CREATED, or NOMIS_CREATED when the command named an existing row;
// an existing one keeps its type.
func (s *store) setLink(ctx context.Context, q pgx.Tx, c *rules.Command, k nomisKey, l *link, deleted bool) error {
	kind := mappingDPSCreated
	if l != nil && !l.mapped {
		kind = mappingNOMISCreated
	}
	_, err := q.Exec(ctx, `INSERT INTO alertsync.alertsync_alert_mapping AS m
			(dps_alert_id, offender_book_id, alert_seq, offender_no, mapping_type, dps_commit_pos, dps_change_pos, deleted_at)
		VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, CASE WHEN $8::boolean THEN now() END)
		ON CONFLICT (dps_alert_id) DO UPDATE SET
			offender_book_id = EXCLUDED.offender_book_id, alert_seq = EXCLUDED.alert_seq, offender_no = EXCLUDED.offender_no,
			dps_commit_pos = EXCLUDED.dps_commit_pos, dps_change_pos = EXCLUDED.dps_change_pos,
			deleted_at = CASE WHEN $8::boolean THEN coalesce(m.deleted_at, now()) END,
			updated_at = now()`,
		*c.DPSAlertID, k.book, k.seq, c.PrisonNumber, kind, c.SourcePosition.Commit, c.SourcePosition.Change, deleted)
	if err != nil {
		return fmt.Errorf("writing the mapping of alert %s: %w", *c.DPSAlertID, err)
	}
	return nil
}
