package dps

import (
	"context"
	"fmt"
	"time"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/transform/rules"
)

// replace makes the prisoner's DPS alerts equal to the command's set
// (ADR004): each incoming alert keeps the DPS alert it is mapped to, or
// else one with the same code, active_from and active_to (so its audit
// history carries over); the rest are created; DPS alerts not kept are
// soft-deleted. Mappings follow. A replace that changes nothing is SKIPPED
// unchanged, so a repeated one is a no-op.
func (s *store) replace(ctx context.Context, q *pipe, c *rules.Command) (apply.Outcome, error) {
	for i := range c.Alerts { // every refusal before the first write
		if _, err := s.codeID(ctx, q, c.Alerts[i].State.Code); err != nil {
			return apply.Outcome{}, err
		}
	}
	current, err := s.prisonerRows(ctx, q, c.PrisonNumber)
	if err != nil {
		return apply.Outcome{}, err
	}
	byID := map[string]*row{}
	for _, r := range current {
		byID[r.id] = r
	}
	mapped, err := s.prisonerLinks(ctx, q, c.PrisonNumber)
	if err != nil {
		return apply.Outcome{}, err
	}
	used := map[string]bool{}
	keep := make([]*row, len(c.Alerts))
	// Mapped first, then by DPS id, then by (code, from, to): the strongest
	// evidence claims a row before weaker evidence can.
	for i, a := range c.Alerts {
		if a.NOMISBookingID == nil || a.NOMISAlertSeq == nil {
			continue
		}
		if id, ok := mapped[nomisKey{*a.NOMISBookingID, *a.NOMISAlertSeq}]; ok && byID[id] != nil && !used[id] {
			keep[i], used[id] = byID[id], true
		}
	}
	for i, a := range c.Alerts {
		if keep[i] == nil && a.DPSAlertID != nil && byID[*a.DPSAlertID] != nil && !used[*a.DPSAlertID] {
			keep[i], used[*a.DPSAlertID] = byID[*a.DPSAlertID], true
		}
	}
	commit := s.commitDate(c)
	for i := range c.Alerts {
		if keep[i] != nil {
			continue
		}
		st := &c.Alerts[i].State
		for _, r := range current {
			if !used[r.id] && r.code == st.Code && r.activeFrom == st.ActiveFrom && apply.SameDate(r.activeTo, endOf(r, st, commit)) {
				keep[i], used[r.id] = r, true
				break
			}
		}
	}
	changed := 0
	for i := range c.Alerts {
		a := &c.Alerts[i]
		sub := *c
		sub.After, sub.Before = &a.State, nil
		sub.NOMISBookingID, sub.NOMISAlertSeq, sub.DPSAlertID, sub.SourcePosition = a.NOMISBookingID, a.NOMISAlertSeq, nil, a.Position
		if r := keep[i]; r != nil {
			if !matches(r, &a.State, commit) {
				if err := s.update(ctx, q, &sub, r); err != nil {
					return apply.Outcome{}, err
				}
				changed++
			}
			if err := s.setLink(ctx, q, &sub, r.id, &link{dpsID: r.id}, false); err != nil {
				return apply.Outcome{}, err
			}
			continue
		}
		if _, err := s.create(ctx, q, &sub, &a.State, nil, false); err != nil {
			return apply.Outcome{}, err
		}
		changed++
	}
	for _, r := range current {
		if used[r.id] {
			continue
		}
		del := *c
		del.Before = nil
		if err := s.softDelete(ctx, q, r.id, &del); err != nil {
			return apply.Outcome{}, err
		}
		if _, err := q.Exec(ctx, `UPDATE alertsync.alert_mapping SET deleted = true, deleted_at = coalesce(deleted_at, now()),
			nomis_booking_id = NULL, nomis_alert_seq = NULL, updated_at = now() WHERE dps_alert_id = $1::uuid`, r.id); err != nil {
			return apply.Outcome{}, fmt.Errorf("marking the mapping of alert %s deleted: %w", r.id, err)
		}
		changed++
	}
	if changed == 0 {
		return apply.Outcome{Result: apply.Skipped, Reason: apply.ReasonUnchanged}, nil
	}
	return apply.Outcome{Result: apply.Applied}, nil
}

type nomisKey struct {
	book int64
	seq  int32
}

// prisonerRows returns the prisoner's alerts that are not deleted, locked.
func (s *store) prisonerRows(ctx context.Context, q *pipe, number string) ([]*row, error) {
	rows, err := q.Query(ctx, `SELECT a.id::text, c.code, a.active_from, a.active_to, a.description, a.authorised_by
		  FROM public.alert a JOIN public.alert_code c ON c.id = a.alert_code_id
		 WHERE a.prison_number = $1 AND a.deleted_at IS NULL
		 ORDER BY a.created_at, a.id FOR UPDATE OF a`, number)
	if err != nil {
		return nil, fmt.Errorf("reading the alerts of %s: %w", number, err)
	}
	defer rows.Close()
	var out []*row
	for rows.Next() {
		var (
			r    row
			from time.Time
			to   *time.Time
		)
		if err := rows.Scan(&r.id, &r.code, &from, &to, &r.description, &r.authorisedBy); err != nil {
			return nil, err
		}
		r.activeFrom = rules.DateIn(from, time.UTC)
		if to != nil {
			d := rules.DateIn(*to, time.UTC)
			r.activeTo = &d
		}
		out = append(out, &r)
	}
	return out, rows.Err()
}

// prisonerLinks returns the NOMIS keys mapped to the prisoner's alerts.
func (s *store) prisonerLinks(ctx context.Context, q *pipe, number string) (map[nomisKey]string, error) {
	rows, err := q.Query(ctx, `SELECT nomis_booking_id, nomis_alert_seq, dps_alert_id::text FROM alertsync.alert_mapping
		WHERE offender_no = $1 AND nomis_booking_id IS NOT NULL AND NOT deleted`, number)
	if err != nil {
		return nil, fmt.Errorf("reading the mappings of %s: %w", number, err)
	}
	defer rows.Close()
	out := map[nomisKey]string{}
	for rows.Next() {
		var (
			k  nomisKey
			id string
		)
		if err := rows.Scan(&k.book, &k.seq, &id); err != nil {
			return nil, err
		}
		out[k] = id
	}
	return out, rows.Err()
}
