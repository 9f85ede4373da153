package dps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/transform/rules"
)

// row is a DPS alert as apply dps compares and writes it.
type row struct {
	id           string
	code         string
	activeFrom   rules.Date
	activeTo     *rules.Date
	description  *string
	authorisedBy *string
	deleted      bool
	commitTime   *time.Time // commit time of the row's last change (track_commit_timestamp); nil when unknown
}

// link is a row of alertsync.alert_mapping.
type link struct {
	dpsID   string
	pos     *rules.Position // newest NOMIS position applied
	deleted bool
}

// lookup resolves the command's alert: by NOMIS key through the mapping,
// then by the DPS id the command carries. It locks the alert row.
func (s *store) lookup(ctx context.Context, q *pipe, c *rules.Command) (*link, *row, error) {
	var l *link
	scanLink := func(r pgx.Row) error {
		var (
			x       link
			cp, chp *int64
		)
		err := r.Scan(&x.dpsID, &cp, &chp, &x.deleted)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if cp != nil && chp != nil {
			x.pos = &rules.Position{Commit: *cp, Change: *chp}
		}
		l = &x
		return nil
	}
	const cols = "dps_alert_id::text, nomis_commit_pos, nomis_change_pos, deleted"
	if c.NOMISBookingID != nil && c.NOMISAlertSeq != nil {
		if err := scanLink(q.QueryRow(ctx, "SELECT "+cols+" FROM alertsync.alert_mapping WHERE nomis_booking_id = $1 AND nomis_alert_seq = $2 FOR UPDATE",
			*c.NOMISBookingID, *c.NOMISAlertSeq)); err != nil {
			return nil, nil, fmt.Errorf("reading the mapping: %w", err)
		}
	}
	if l == nil && c.DPSAlertID != nil {
		if err := scanLink(q.QueryRow(ctx, "SELECT "+cols+" FROM alertsync.alert_mapping WHERE dps_alert_id = $1::uuid FOR UPDATE", *c.DPSAlertID)); err != nil {
			return nil, nil, fmt.Errorf("reading the mapping: %w", err)
		}
	}
	id := ""
	switch {
	case l != nil:
		id = l.dpsID
	case c.DPSAlertID != nil:
		id = *c.DPSAlertID
	}
	if id == "" {
		return l, nil, nil
	}
	r, err := s.readRow(ctx, q, id)
	return l, r, err
}

func (s *store) readRow(ctx context.Context, q *pipe, id string) (*row, error) {
	var (
		r        row
		from     time.Time
		to       *time.Time
		deleted  *time.Time
		commitTS *time.Time
	)
	err := q.QueryRow(ctx, `SELECT a.id::text, c.code, a.active_from, a.active_to, a.description, a.authorised_by, a.deleted_at,
			pg_xact_commit_timestamp(a.xmin)
		  FROM public.alert a JOIN public.alert_code c ON c.id = a.alert_code_id
		 WHERE a.id = $1::uuid FOR UPDATE OF a`, id).
		Scan(&r.id, &r.code, &from, &to, &r.description, &r.authorisedBy, &deleted, &commitTS)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading alert %s: %w", id, err)
	}
	r.activeFrom = rules.DateIn(from, time.UTC)
	if to != nil {
		d := rules.DateIn(*to, time.UTC)
		r.activeTo = &d
	}
	r.deleted = deleted != nil
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

// matches reports whether the DPS row holds state st in every field the
// mapping carries into DPS. An INACTIVE state without an end date matches
// any end date on or before commitDate (DOMAIN.md: NOMIS INACTIVE without
// expiry).
func matches(r *row, st *rules.AlertState, commitDate rules.Date) bool {
	if r.code != st.Code || r.activeFrom != st.ActiveFrom || !apply.SameText(r.description, st.Description) || !apply.SameText(r.authorisedBy, st.AuthorisedBy) {
		return false
	}
	return apply.SameDate(r.activeTo, endOf(r, st, commitDate))
}

// endOf is the active_to DPS should hold for st: its own, or for an
// INACTIVE state without one the row's end date when it has one on or
// before commitDate, else commitDate.
func endOf(r *row, st *rules.AlertState, commitDate rules.Date) *rules.Date {
	if st.ActiveTo != nil || st.Status != rules.StatusInactive {
		return st.ActiveTo
	}
	if r != nil && r.activeTo != nil && *r.activeTo <= commitDate {
		return r.activeTo
	}
	return &commitDate
}

// decide settles a conflict between the command (a source change) and the
// target's own change of the row: the later commit wins, ties go to DPS
// (the system of record). It records the decision.
func (s *store) decide(ctx context.Context, q *pipe, c *rules.Command, r *row) (sourceWins bool, err error) {
	// The command comes from NOMIS; the row's change from DPS (or from this
	// apply, whose own writes are DPS commits too).
	sourceWins = r.commitTime == nil || apply.CompareCommits(c.SourceCommitTime, *r.commitTime) > 0
	winner := "DPS"
	if sourceWins {
		winner = "NOMIS"
	}
	if _, err := q.Exec(ctx, `INSERT INTO alertsync.conflicts (command_id, dps_alert_id, winner, source_commit_time, target_commit_time)
		VALUES ($1, $2::uuid, $3, $4, $5)`, c.ID, r.id, winner, c.SourceCommitTime, r.commitTime); err != nil {
		return false, fmt.Errorf("recording a conflict: %w", err)
	}
	return sourceWins, nil
}

// user is the NOMIS user of a change: who modified it, else who created it.
func user(st *rules.AlertState) string {
	if st.ModifiedBy != nil && *st.ModifiedBy != "" {
		return *st.ModifiedBy
	}
	return st.CreatedBy
}

func (s *store) commitDate(c *rules.Command) rules.Date {
	return rules.DateIn(c.SourceCommitTime, s.loc)
}

// upsert creates or updates the command's alert.
func (s *store) upsert(ctx context.Context, q *pipe, c *rules.Command) (apply.Outcome, error) {
	if c.After == nil {
		return apply.Outcome{}, &apply.Refusal{Reason: "missing_after", Msg: "an UPSERT without the alert's state"}
	}
	// Every refusal comes before the command's first write (the fast path
	// has no savepoint to roll back to).
	if _, err := s.codeID(ctx, q, c.After.Code); err != nil {
		return apply.Outcome{}, err
	}
	l, r, err := s.lookup(ctx, q, c)
	if err != nil {
		return apply.Outcome{}, err
	}
	if stale(l, c.SourcePosition) {
		return outcome(apply.Skipped, apply.ReasonStale, l, r), nil
	}
	if r == nil {
		return s.create(ctx, q, c, c.After, l, false)
	}
	if l != nil && l.deleted {
		// NOMIS deleted the alert of this key (its delete was applied
		// here, and this command is newer): a row under the key now is an
		// alert created since, which took the ALERT_SEQ again (NOMIS
		// allocates max + 1). A new DPS alert, not the old one restored;
		// the key's mapping moves to it.
		return s.create(ctx, q, c, c.After, nil, true)
	}
	reason := ""
	if c.Before != nil && !matches(r, c.Before, s.commitDate(c)) || c.Before == nil && r.deleted {
		// The target changed the alert since the source's before-image.
		win, err := s.decide(ctx, q, c, r)
		if err != nil {
			return apply.Outcome{}, err
		}
		if !win {
			return outcome(apply.Conflict, apply.ReasonLost, l, r), s.setLink(ctx, q, c, r.id, l, false)
		}
		reason = apply.ReasonWon
	}
	if !r.deleted && matches(r, c.After, s.commitDate(c)) {
		return outcome(apply.Skipped, apply.ReasonUnchanged, l, r), s.setLink(ctx, q, c, r.id, l, false)
	}
	if err := s.update(ctx, q, c, r); err != nil {
		return apply.Outcome{}, err
	}
	return apply.Outcome{Result: apply.Applied, Reason: reason, DPSAlertID: r.id}, s.setLink(ctx, q, c, r.id, l, false)
}

func outcome(res apply.Result, reason string, l *link, r *row) apply.Outcome {
	o := apply.Outcome{Result: res, Reason: reason}
	switch {
	case r != nil:
		o.DPSAlertID = r.id
	case l != nil:
		o.DPSAlertID = l.dpsID
	}
	return o
}

// create inserts a new alert from st with its CREATED audit event and
// mapping; fresh: under a new id whatever the command names.
func (s *store) create(ctx context.Context, q *pipe, c *rules.Command, st *rules.AlertState, l *link, fresh bool) (apply.Outcome, error) {
	codeID, err := s.codeID(ctx, q, st.Code)
	if err != nil {
		return apply.Outcome{}, err
	}
	id := ""
	if !fresh && c.DPSAlertID != nil && (l == nil || l.dpsID == *c.DPSAlertID) {
		id = *c.DPSAlertID // an id the mapping or the record already names (a migrated alert)
	} else if id, err = newID(); err != nil {
		return apply.Outcome{}, err
	}
	if err := s.insertAlert(ctx, q, id, c.PrisonNumber, codeID, st, endOf(nil, st, s.commitDate(c))); err != nil {
		return apply.Outcome{}, err
	}
	if err := s.audit(ctx, q, id, "CREATED", "Alert created in NOMIS", user(st), c.SourceCommitTime, [4]*bool{}); err != nil {
		return apply.Outcome{}, err
	}
	return apply.Outcome{Result: apply.Applied, DPSAlertID: id}, s.setLink(ctx, q, c, id, l, false)
}

func (s *store) insertAlert(ctx context.Context, q *pipe, id, prisonNumber string, codeID int64, st *rules.AlertState, to *rules.Date) error {
	_, err := q.Exec(ctx, `INSERT INTO public.alert (id, alert_code_id, prison_number, description, authorised_by, active_from, active_to,
			created_at, prison_code_when_created, version)
		VALUES ($1::uuid, $2, $3, $4, $5, $6::date, $7::date, ($8::timestamptz AT TIME ZONE $9), $10, 0)`,
		id, codeID, prisonNumber, st.Description, st.AuthorisedBy, st.ActiveFrom.String(), apply.DateArg(to),
		st.CreatedAt, s.tz, st.PrisonCode)
	if err != nil {
		return fmt.Errorf("inserting alert %s: %w", id, err)
	}
	return nil
}

// update writes c.After over row r (undeleting it when it was deleted), with
// an UPDATED audit event whose flags say which fields changed.
func (s *store) update(ctx context.Context, q *pipe, c *rules.Command, r *row) error {
	st := c.After
	codeID, err := s.codeID(ctx, q, st.Code)
	if err != nil {
		return err
	}
	to := endOf(r, st, s.commitDate(c))
	flags := [4]*bool{ptr(!apply.SameText(r.description, st.Description)), ptr(!apply.SameText(r.authorisedBy, st.AuthorisedBy)),
		ptr(r.activeFrom != st.ActiveFrom), ptr(!apply.SameDate(r.activeTo, to))}
	if _, err := q.Exec(ctx, `UPDATE public.alert SET alert_code_id = $2, description = $3, authorised_by = $4,
			active_from = $5::date, active_to = $6::date, deleted_at = NULL,
			last_modified_at = (now() AT TIME ZONE $7), version = version + 1
		WHERE id = $1::uuid`, r.id, codeID, st.Description, st.AuthorisedBy, st.ActiveFrom.String(), apply.DateArg(to), s.tz); err != nil {
		return fmt.Errorf("updating alert %s: %w", r.id, err)
	}
	return s.audit(ctx, q, r.id, "UPDATED", describeUpdate(flags, r.deleted), user(st), c.SourceCommitTime, flags)
}

func ptr[T any](v T) *T { return &v }

// describeUpdate says in words what an update changed.
func describeUpdate(f [4]*bool, undeleted bool) string {
	var parts []string
	for i, name := range []string{"description", "authorised by", "active from", "active to"} {
		if f[i] != nil && *f[i] {
			parts = append(parts, name)
		}
	}
	switch {
	case undeleted:
		return "Alert restored in NOMIS"
	case len(parts) == 0:
		return "Alert updated in NOMIS"
	}
	return "Updated alert " + strings.Join(parts, ", ") + " in NOMIS"
}

// audit writes one audit event of the sync (source NOMIS).
func (s *store) audit(ctx context.Context, q *pipe, alertID, action, description, by string, at time.Time, f [4]*bool) error {
	id, err := newID()
	if err != nil {
		return err
	}
	if at.IsZero() {
		at = time.Now()
	}
	_, err = q.Exec(ctx, `INSERT INTO public.audit_event (id, alert_id, action, description, actioned_at, actioned_by,
			actioned_by_display_name, source, description_updated, authorised_by_updated, active_from_updated, active_to_updated)
		VALUES ($1::uuid, $2::uuid, $3, $4, ($5::timestamptz AT TIME ZONE $6), $7, $7, 'NOMIS', $8, $9, $10, $11)`,
		id, alertID, action, description, at, s.tz, by, f[0], f[1], f[2], f[3])
	if err != nil {
		return fmt.Errorf("writing the %s audit event of alert %s: %w", action, alertID, err)
	}
	return nil
}

// setLink records the mapping of alert id to the command's NOMIS key with
// the command's position (the newest applied).
func (s *store) setLink(ctx context.Context, q *pipe, c *rules.Command, id string, l *link, deleted bool) error {
	if c.NOMISBookingID != nil && c.NOMISAlertSeq != nil {
		// A NOMIS key held by another alert's mapping is stale (that alert was
		// replaced): it moves here.
		if _, err := q.Exec(ctx, `UPDATE alertsync.alert_mapping SET nomis_booking_id = NULL, nomis_alert_seq = NULL, updated_at = now()
			WHERE nomis_booking_id = $1 AND nomis_alert_seq = $2 AND dps_alert_id <> $3::uuid`, *c.NOMISBookingID, *c.NOMISAlertSeq, id); err != nil {
			return fmt.Errorf("freeing a NOMIS key: %w", err)
		}
	}
	kind := "NOMIS_CREATED"
	if l != nil {
		kind = "" // keep the mapping's type
	}
	_, err := q.Exec(ctx, `INSERT INTO alertsync.alert_mapping AS m (dps_alert_id, nomis_booking_id, nomis_alert_seq, offender_no, mapping_type,
			nomis_commit_pos, nomis_change_pos, deleted, deleted_at)
		VALUES ($1::uuid, $2, $3, $4, coalesce(nullif($5, ''), 'NOMIS_CREATED'), $6, $7, $8, CASE WHEN $8 THEN now() END)
		ON CONFLICT (dps_alert_id) DO UPDATE SET
			nomis_booking_id = coalesce(EXCLUDED.nomis_booking_id, m.nomis_booking_id),
			nomis_alert_seq = coalesce(EXCLUDED.nomis_alert_seq, m.nomis_alert_seq),
			offender_no = EXCLUDED.offender_no,
			nomis_commit_pos = EXCLUDED.nomis_commit_pos, nomis_change_pos = EXCLUDED.nomis_change_pos,
			deleted = EXCLUDED.deleted, deleted_at = CASE WHEN EXCLUDED.deleted THEN coalesce(m.deleted_at, now()) END,
			updated_at = now()`,
		id, c.NOMISBookingID, c.NOMISAlertSeq, c.PrisonNumber, kind, c.SourcePosition.Commit, c.SourcePosition.Change, deleted)
	if err != nil {
		return fmt.Errorf("writing the mapping of alert %s: %w", id, err)
	}
	return nil
}

// delete soft-deletes the command's alert.
func (s *store) delete(ctx context.Context, q *pipe, c *rules.Command) (apply.Outcome, error) {
	l, r, err := s.lookup(ctx, q, c)
	if err != nil {
		return apply.Outcome{}, err
	}
	if stale(l, c.SourcePosition) {
		return outcome(apply.Skipped, apply.ReasonStale, l, r), nil
	}
	if r == nil {
		return outcome(apply.Skipped, apply.ReasonUnknown, l, r), nil
	}
	if r.deleted {
		return outcome(apply.Skipped, apply.ReasonDeleted, l, r), s.setLink(ctx, q, c, r.id, l, true)
	}
	reason := ""
	if c.Before != nil && !matches(r, c.Before, s.commitDate(c)) {
		win, err := s.decide(ctx, q, c, r)
		if err != nil {
			return apply.Outcome{}, err
		}
		if !win {
			return outcome(apply.Conflict, apply.ReasonLost, l, r), s.setLink(ctx, q, c, r.id, l, false)
		}
		reason = apply.ReasonWon
	}
	if err := s.softDelete(ctx, q, r.id, c); err != nil {
		return apply.Outcome{}, err
	}
	return apply.Outcome{Result: apply.Applied, Reason: reason, DPSAlertID: r.id}, s.setLink(ctx, q, c, r.id, l, true)
}

func (s *store) softDelete(ctx context.Context, q *pipe, id string, c *rules.Command) error {
	if _, err := q.Exec(ctx, `UPDATE public.alert SET deleted_at = (now() AT TIME ZONE $2), last_modified_at = (now() AT TIME ZONE $2),
			version = version + 1 WHERE id = $1::uuid`, id, s.tz); err != nil {
		return fmt.Errorf("deleting alert %s: %w", id, err)
	}
	by := rules.UnknownDPSUser
	if c.Before != nil {
		by = user(c.Before)
	}
	return s.audit(ctx, q, id, "DELETED", "Alert deleted in NOMIS", by, c.SourceCommitTime, [4]*bool{})
}
