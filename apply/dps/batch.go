package dps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/transform/rules"
)

// The set path: a batch of NOMIS-keyed UPSERTs and DELETEs (what NOMIS
// changes are) is read with three queries, decided in memory command by
// command with the same rules as the statement path (upsert, delete,
// decide), and written with one multi-row statement per table, all sent in
// one round trip. Anything else (a replace, an undecodable command, a
// command without a NOMIS key) takes the statement path. A write the
// database refuses makes Apply redo the batch on the careful path.

// errStatementPath makes Apply redo a batch on the statement path: the set
// path met a case it leaves to it.
var errStatementPath = errors.New("a case for the statement path")

// settable reports whether every command of cmds can take the set path.
func settable(cmds []apply.Cmd) bool {
	for i := range cmds {
		c := &cmds[i]
		if c.Err != nil || (c.Kind != rules.KindUpsert && c.Kind != rules.KindDelete) || c.NOMISBookingID == nil || c.NOMISAlertSeq == nil {
			return false
		}
	}
	return true
}

// alertPlan is one alert's state while its batch is decided.
type alertPlan struct {
	row      *row  // nil: no DPS row
	link     *link // nil: no mapping
	created  bool  // inserted by this batch
	updated  bool  // changed by this batch (an existing row)
	version  int32 // increments by this batch
	byBatch  bool  // the row's last change is this batch's: no commit time to compare
	key      nomisKey
	number   string
	st       *rules.AlertState // the state written (for inserts and updates)
	created0 time.Time         // created_at of an insert
}

// planWrites are the rows a batch writes, by table.
type planWrites struct {
	audits    []auditRow
	conflicts []conflictRow
	outbox    []apply.OutboxRow
	holds     []holdRow
	heldCount map[string]int
}

type auditRow struct {
	id, alertID, action, description, by string
	at                                   time.Time
	flags                                [4]*bool
}

type conflictRow struct {
	commandID, alertID, winner string
	source                     time.Time
	target                     *time.Time
}

type holdRow struct{ key, number, first, reason string }

// applySet decides and writes cmds on the set path.
func (s *store) applySet(ctx context.Context, tx pgx.Tx, cmds []apply.Cmd, holds map[string]string, f apply.Fence, next int64) ([]apply.Outcome, pgconn.CommandTag, error) {
	plans, err := s.readSet(ctx, tx, cmds)
	if err != nil {
		return nil, pgconn.CommandTag{}, err
	}
	w := &planWrites{heldCount: map[string]int{}}
	outs := make([]apply.Outcome, 0, len(cmds))
	for i := range cmds {
		c := &cmds[i]
		key := holdKey(c)
		if first, held := holds[key]; held {
			w.heldCount[key]++
			o := apply.Outcome{CommandID: c.ID, Result: apply.Skipped, Reason: apply.ReasonHeld}
			w.outbox = append(w.outbox, apply.OutboxRowOf(c, o, &apply.DLQReason{Kind: "held", Error: "held behind command " + first, HeldBehind: &first}, key))
			outs = append(outs, o)
			continue
		}
		p := plans[nomisKey{*c.NOMISBookingID, *c.NOMISAlertSeq}]
		var o apply.Outcome
		if c.Kind == rules.KindUpsert {
			o, err = s.planUpsert(&c.Command, p, w)
		} else {
			o, err = s.planDelete(&c.Command, p, w)
		}
		var ref *apply.Refusal
		switch {
		case errors.As(err, &ref):
			o = apply.Outcome{Result: apply.Failed, Reason: ref.Reason}
			holds[key] = c.ID
			w.holds = append(w.holds, holdRow{key: key, number: c.PrisonNumber, first: c.ID, reason: ref.Reason})
			w.outbox = append(w.outbox, apply.OutboxRowOf(c, withID(o, c.ID), &apply.DLQReason{Kind: "refused", Error: ref.Error()}, key))
		case err != nil:
			return nil, pgconn.CommandTag{}, err
		default:
			w.outbox = append(w.outbox, apply.OutboxRowOf(c, withID(o, c.ID), nil, ""))
		}
		outs = append(outs, withID(o, c.ID))
	}
	fence, err := s.writeSet(ctx, tx, plans, w, f, next)
	if err != nil {
		return nil, pgconn.CommandTag{}, err
	}
	return outs, fence, nil
}

func withID(o apply.Outcome, id string) apply.Outcome { o.CommandID = id; return o }

// readSet reads the mappings and rows of the batch's alerts and makes sure
// their codes are known.
func (s *store) readSet(ctx context.Context, tx pgx.Tx, cmds []apply.Cmd) (map[nomisKey]*alertPlan, error) {
	plans := map[nomisKey]*alertPlan{}
	var books []int64
	var seqs []int32
	var ids []string
	var codes []string
	for i := range cmds {
		c := &cmds[i]
		k := nomisKey{*c.NOMISBookingID, *c.NOMISAlertSeq}
		if plans[k] == nil {
			plans[k] = &alertPlan{key: k, number: c.PrisonNumber}
			books, seqs = append(books, k.book), append(seqs, k.seq)
		}
		if c.DPSAlertID != nil {
			ids = append(ids, *c.DPSAlertID)
		}
		if c.After != nil {
			codes = append(codes, c.After.Code)
		}
	}
	if err := s.loadCodes(ctx, tx, codes); err != nil {
		return nil, err
	}
	byID := map[string]*link{}
	rows, err := tx.Query(ctx, `SELECT dps_alert_id::text, nomis_booking_id, nomis_alert_seq, nomis_commit_pos, nomis_change_pos, deleted
		  FROM alertsync.alert_mapping
		 WHERE (nomis_booking_id, nomis_alert_seq) IN (SELECT * FROM unnest($1::bigint[], $2::int[]))
		    OR dps_alert_id = ANY($3::uuid[])`, books, seqs, ids)
	if err != nil {
		return nil, fmt.Errorf("reading the mappings: %w", err)
	}
	type keyed struct {
		l   *link
		key *nomisKey
	}
	var found []keyed
	for rows.Next() {
		var (
			l       link
			b       *int64
			sq      *int32
			cp, chp *int64
		)
		if err := rows.Scan(&l.dpsID, &b, &sq, &cp, &chp, &l.deleted); err != nil {
			rows.Close()
			return nil, err
		}
		if cp != nil && chp != nil {
			l.pos = &rules.Position{Commit: *cp, Change: *chp}
		}
		x := keyed{l: &l}
		if b != nil && sq != nil {
			x.key = &nomisKey{*b, *sq}
		}
		found = append(found, x)
		byID[l.dpsID] = &l
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, x := range found {
		if x.key != nil && plans[*x.key] != nil {
			plans[*x.key].link = x.l
		}
	}
	// As lookup: by NOMIS key, else by the DPS id the command carries.
	want := map[string]bool{}
	for i := range cmds {
		c := &cmds[i]
		p := plans[nomisKey{*c.NOMISBookingID, *c.NOMISAlertSeq}]
		if p.link == nil && c.DPSAlertID != nil {
			if l := byID[*c.DPSAlertID]; l != nil {
				p.link = l
			}
		}
		switch {
		case p.link != nil:
			want[p.link.dpsID] = true
		case c.DPSAlertID != nil:
			want[*c.DPSAlertID] = true
		}
	}
	if len(want) == 0 {
		return plans, nil
	}
	list := make([]string, 0, len(want))
	for id := range want {
		list = append(list, id)
	}
	got, err := s.readRows(ctx, tx, list)
	if err != nil {
		return nil, err
	}
	for i := range cmds {
		c := &cmds[i]
		p := plans[nomisKey{*c.NOMISBookingID, *c.NOMISAlertSeq}]
		if p.row != nil {
			continue
		}
		switch {
		case p.link != nil:
			p.row = got[p.link.dpsID]
		case c.DPSAlertID != nil:
			p.row = got[*c.DPSAlertID]
		}
	}
	return plans, nil
}

// readRows reads and locks the alerts ids.
func (s *store) readRows(ctx context.Context, tx pgx.Tx, ids []string) (map[string]*row, error) {
	rows, err := tx.Query(ctx, `SELECT a.id::text, c.code, a.active_from, a.active_to, a.description, a.authorised_by, a.deleted_at,
			pg_xact_commit_timestamp(a.xmin)
		  FROM public.alert a JOIN public.alert_code c ON c.id = a.alert_code_id
		 WHERE a.id = ANY($1::uuid[]) FOR UPDATE OF a`, ids)
	if err != nil {
		return nil, fmt.Errorf("reading alerts: %w", err)
	}
	defer rows.Close()
	out := map[string]*row{}
	for rows.Next() {
		var (
			r       row
			from    time.Time
			to      *time.Time
			deleted *time.Time
		)
		if err := rows.Scan(&r.id, &r.code, &from, &to, &r.description, &r.authorisedBy, &deleted, &r.commitTime); err != nil {
			return nil, err
		}
		r.activeFrom = rules.DateIn(from, time.UTC)
		if to != nil {
			d := rules.DateIn(*to, time.UTC)
			r.activeTo = &d
		}
		r.deleted = deleted != nil
		out[r.id] = &r
	}
	return out, rows.Err()
}

// loadCodes caches the ids of codes; unknown codes stay unknown (refused
// when a command needs them).
func (s *store) loadCodes(ctx context.Context, tx pgx.Tx, codes []string) error {
	var missing []string
	s.mu.Lock()
	for _, c := range codes {
		if _, ok := s.codes[c]; !ok {
			missing = append(missing, c)
		}
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, "SELECT code, id FROM public.alert_code WHERE code = ANY($1)", missing)
	if err != nil {
		return fmt.Errorf("reading alert codes: %w", err)
	}
	defer rows.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.codes == nil {
		s.codes = map[string]int64{}
	}
	for rows.Next() {
		var (
			code string
			id   int64
		)
		if err := rows.Scan(&code, &id); err != nil {
			return err
		}
		s.codes[code] = id
	}
	return rows.Err()
}

func (s *store) codeOf(code string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.codes[code]
}

func (s *store) knownCode(code string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.codes[code]
	return ok
}

// setLink is setLink of the statement path, in memory.
func (p *alertPlan) setLink(c *rules.Command, id string, deleted bool) {
	if p.link == nil {
		p.link = &link{dpsID: id}
	}
	p.link.dpsID, p.link.deleted = id, deleted
	p.link.pos = &c.SourcePosition
	p.key, p.number = nomisKey{*c.NOMISBookingID, *c.NOMISAlertSeq}, c.PrisonNumber
}

// decideSet is decide for the set path.
func (s *store) decideSet(c *rules.Command, p *alertPlan, w *planWrites) bool {
	var target *time.Time
	if !p.byBatch {
		target = p.row.commitTime
	}
	wins := target == nil || apply.CompareCommits(c.SourceCommitTime, *target) > 0
	winner := "DPS"
	if wins {
		winner = "NOMIS"
	}
	w.conflicts = append(w.conflicts, conflictRow{commandID: c.ID, alertID: p.row.id, winner: winner, source: c.SourceCommitTime, target: target})
	return wins
}

func (s *store) planUpsert(c *rules.Command, p *alertPlan, w *planWrites) (apply.Outcome, error) {
	if c.After == nil {
		return apply.Outcome{}, &apply.Refusal{Reason: "missing_after", Msg: "an UPSERT without the alert's state"}
	}
	if !s.knownCode(c.After.Code) {
		return apply.Outcome{}, &apply.Refusal{Reason: "unknown_code", Msg: "alert code " + c.After.Code + " is not in DPS"}
	}
	if stale(p.link, c.SourcePosition) {
		return outcome(apply.Skipped, apply.ReasonStale, p.link, p.row), nil
	}
	if p.link != nil && p.link.deleted {
		// A key NOMIS reused after its alert was deleted (writes.go,
		// upsert): rare, and left to the statement path.
		return apply.Outcome{}, errStatementPath
	}
	commit := s.commitDate(c)
	if p.row == nil {
		id := ""
		if c.DPSAlertID != nil && (p.link == nil || p.link.dpsID == *c.DPSAlertID) {
			id = *c.DPSAlertID
		} else {
			var err error
			if id, err = newID(); err != nil {
				return apply.Outcome{}, err
			}
		}
		to := endOf(nil, c.After, commit)
		p.row = &row{id: id, code: c.After.Code, activeFrom: c.After.ActiveFrom, activeTo: to,
			description: c.After.Description, authorisedBy: c.After.AuthorisedBy}
		p.created, p.byBatch, p.st, p.created0 = true, true, c.After, c.After.CreatedAt
		if err := s.planAudit(w, id, "CREATED", "Alert created in NOMIS", user(c.After), c.SourceCommitTime, [4]*bool{}); err != nil {
			return apply.Outcome{}, err
		}
		p.setLink(c, id, false)
		return apply.Outcome{Result: apply.Applied, DPSAlertID: id}, nil
	}
	r := p.row
	reason := ""
	if c.Before != nil && !matches(r, c.Before, commit) || c.Before == nil && r.deleted {
		if !s.decideSet(c, p, w) {
			p.setLink(c, r.id, false)
			return outcome(apply.Conflict, apply.ReasonLost, p.link, r), nil
		}
		reason = apply.ReasonWon
	}
	if !r.deleted && matches(r, c.After, commit) {
		p.setLink(c, r.id, false)
		return outcome(apply.Skipped, apply.ReasonUnchanged, p.link, r), nil
	}
	st := c.After
	to := endOf(r, st, commit)
	flags := [4]*bool{ptr(!apply.SameText(r.description, st.Description)), ptr(!apply.SameText(r.authorisedBy, st.AuthorisedBy)),
		ptr(r.activeFrom != st.ActiveFrom), ptr(!apply.SameDate(r.activeTo, to))}
	undeleted := r.deleted
	r.code, r.activeFrom, r.activeTo, r.description, r.authorisedBy, r.deleted = st.Code, st.ActiveFrom, to, st.Description, st.AuthorisedBy, false
	p.version++
	p.byBatch, p.st = true, st
	if !p.created {
		p.updated = true
	}
	if err := s.planAudit(w, r.id, "UPDATED", describeUpdate(flags, undeleted), user(st), c.SourceCommitTime, flags); err != nil {
		return apply.Outcome{}, err
	}
	p.setLink(c, r.id, false)
	return apply.Outcome{Result: apply.Applied, Reason: reason, DPSAlertID: r.id}, nil
}

func (s *store) planDelete(c *rules.Command, p *alertPlan, w *planWrites) (apply.Outcome, error) {
	if stale(p.link, c.SourcePosition) {
		return outcome(apply.Skipped, apply.ReasonStale, p.link, p.row), nil
	}
	r := p.row
	if r == nil {
		return outcome(apply.Skipped, apply.ReasonUnknown, p.link, r), nil
	}
	if r.deleted {
		p.setLink(c, r.id, true)
		return outcome(apply.Skipped, apply.ReasonDeleted, p.link, r), nil
	}
	reason := ""
	if c.Before != nil && !matches(r, c.Before, s.commitDate(c)) {
		if !s.decideSet(c, p, w) {
			p.setLink(c, r.id, false)
			return outcome(apply.Conflict, apply.ReasonLost, p.link, r), nil
		}
		reason = apply.ReasonWon
	}
	r.deleted = true
	p.version++
	p.byBatch = true
	if !p.created {
		p.updated = true
	}
	by := rules.UnknownDPSUser
	if c.Before != nil {
		by = user(c.Before)
	}
	if err := s.planAudit(w, r.id, "DELETED", "Alert deleted in NOMIS", by, c.SourceCommitTime, [4]*bool{}); err != nil {
		return apply.Outcome{}, err
	}
	p.setLink(c, r.id, true)
	return apply.Outcome{Result: apply.Applied, Reason: reason, DPSAlertID: r.id}, nil
}

func (s *store) planAudit(w *planWrites, alertID, action, description, by string, at time.Time, f [4]*bool) error {
	id, err := newID()
	if err != nil {
		return err
	}
	if at.IsZero() {
		at = time.Now()
	}
	w.audits = append(w.audits, auditRow{id: id, alertID: alertID, action: action, description: description, by: by, at: at, flags: f})
	return nil
}

// writeSet writes a decided batch: one multi-row statement per table, sent
// together.
func (s *store) writeSet(ctx context.Context, tx pgx.Tx, plans map[nomisKey]*alertPlan, w *planWrites, f apply.Fence, next int64) (pgconn.CommandTag, error) {
	b := &pgx.Batch{}
	var (
		insID, insNumber, insFrom          []string
		insCode                            []int64
		insDesc, insAuth, insTo, insPrison []*string
		insCreated                         []time.Time
		insVersion                         []int32
		insDeleted, insModified            []bool
		updID, updFrom                     []string
		updCode                            []int64
		updDesc, updAuth, updTo            []*string
		updVersion                         []int32
		updDeleted                         []bool
		mapID, mapNumber                   []string
		mapBook, mapCommit, mapChange      []int64
		mapSeq                             []int32
		mapDeleted                         []bool
	)
	for _, p := range plans {
		if p.row != nil && (p.created || p.updated) {
			code := s.codeOf(p.row.code)
			if p.created {
				insID, insNumber, insCode = append(insID, p.row.id), append(insNumber, p.number), append(insCode, code)
				insDesc, insAuth = append(insDesc, p.row.description), append(insAuth, p.row.authorisedBy)
				insFrom, insTo = append(insFrom, p.row.activeFrom.String()), append(insTo, apply.DateArg(p.row.activeTo))
				insCreated, insPrison = append(insCreated, p.created0), append(insPrison, p.st.PrisonCode)
				insVersion, insDeleted, insModified = append(insVersion, p.version), append(insDeleted, p.row.deleted), append(insModified, p.version > 0)
			} else {
				updID, updCode = append(updID, p.row.id), append(updCode, code)
				updDesc, updAuth = append(updDesc, p.row.description), append(updAuth, p.row.authorisedBy)
				updFrom, updTo = append(updFrom, p.row.activeFrom.String()), append(updTo, apply.DateArg(p.row.activeTo))
				updVersion, updDeleted = append(updVersion, p.version), append(updDeleted, p.row.deleted)
			}
		}
		if l := p.link; l != nil && l.pos != nil {
			mapID, mapNumber = append(mapID, l.dpsID), append(mapNumber, p.number)
			mapBook, mapSeq = append(mapBook, p.key.book), append(mapSeq, p.key.seq)
			mapCommit, mapChange, mapDeleted = append(mapCommit, l.pos.Commit), append(mapChange, l.pos.Change), append(mapDeleted, l.deleted)
		}
	}
	if len(insID) > 0 {
		b.Queue(`INSERT INTO public.alert (id, alert_code_id, prison_number, description, authorised_by, active_from, active_to,
				created_at, prison_code_when_created, version, deleted_at, last_modified_at)
			SELECT u.id::uuid, u.code, u.num, u.descr, u.auth, u.afrom::date, u.ato::date, (u.created AT TIME ZONE $13), u.prison, u.version,
				CASE WHEN u.deleted THEN now() AT TIME ZONE $13 END, CASE WHEN u.modified THEN now() AT TIME ZONE $13 END
			  FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[],
			              $9::text[], $10::int[], $11::bool[], $12::bool[])
			    AS u(id, code, num, descr, auth, afrom, ato, created, prison, version, deleted, modified)`,
			insID, insCode, insNumber, insDesc, insAuth, insFrom, insTo, insCreated, insPrison, insVersion, insDeleted, insModified, s.tz)
	}
	if len(updID) > 0 {
		b.Queue(`UPDATE public.alert a SET alert_code_id = u.code, description = u.descr, authorised_by = u.auth,
				active_from = u.afrom::date, active_to = u.ato::date,
				deleted_at = CASE WHEN u.deleted THEN coalesce(a.deleted_at, now() AT TIME ZONE $9) END,
				last_modified_at = now() AT TIME ZONE $9, version = a.version + u.version
			  FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::bool[])
			    AS u(id, code, descr, auth, afrom, ato, version, deleted)
			 WHERE a.id = u.id::uuid`,
			updID, updCode, updDesc, updAuth, updFrom, updTo, updVersion, updDeleted, s.tz)
	}
	if n := len(w.audits); n > 0 {
		ids, alerts, actions, descs, bys := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		ats := make([]time.Time, n)
		var flags [4][]*bool
		for i, a := range w.audits {
			ids[i], alerts[i], actions[i], descs[i], bys[i], ats[i] = a.id, a.alertID, a.action, a.description, a.by, a.at
			for j := range flags {
				flags[j] = append(flags[j], a.flags[j])
			}
		}
		b.Queue(`INSERT INTO public.audit_event (id, alert_id, action, description, actioned_at, actioned_by, actioned_by_display_name, source,
				description_updated, authorised_by_updated, active_from_updated, active_to_updated)
			SELECT u.id::uuid, u.alert::uuid, u.action, u.descr, (u.at AT TIME ZONE $11), u.by, u.by, 'NOMIS', u.f0, u.f1, u.f2, u.f3
			  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::bool[], $8::bool[], $9::bool[], $10::bool[])
			    AS u(id, alert, action, descr, at, by, f0, f1, f2, f3)`,
			ids, alerts, actions, descs, ats, bys, flags[0], flags[1], flags[2], flags[3], s.tz)
	}
	if len(mapID) > 0 {
		b.Queue(`INSERT INTO alertsync.alert_mapping AS m (dps_alert_id, nomis_booking_id, nomis_alert_seq, offender_no, mapping_type,
				nomis_commit_pos, nomis_change_pos, deleted, deleted_at)
			SELECT u.id::uuid, u.book, u.seq, u.num, 'NOMIS_CREATED', u.cp, u.chp, u.deleted, CASE WHEN u.deleted THEN now() END
			  FROM unnest($1::text[], $2::bigint[], $3::int[], $4::text[], $5::bigint[], $6::bigint[], $7::bool[]) AS u(id, book, seq, num, cp, chp, deleted)
			ON CONFLICT (dps_alert_id) DO UPDATE SET
				nomis_booking_id = EXCLUDED.nomis_booking_id, nomis_alert_seq = EXCLUDED.nomis_alert_seq,
				offender_no = EXCLUDED.offender_no,
				nomis_commit_pos = EXCLUDED.nomis_commit_pos, nomis_change_pos = EXCLUDED.nomis_change_pos,
				deleted = EXCLUDED.deleted, deleted_at = CASE WHEN EXCLUDED.deleted THEN coalesce(m.deleted_at, now()) END,
				updated_at = now()`,
			mapID, mapBook, mapSeq, mapNumber, mapCommit, mapChange, mapDeleted)
	}
	if n := len(w.conflicts); n > 0 {
		cmds, alerts, winners := make([]string, n), make([]string, n), make([]string, n)
		srcs, tgts := make([]time.Time, n), make([]*time.Time, n)
		for i, c := range w.conflicts {
			cmds[i], alerts[i], winners[i], srcs[i], tgts[i] = c.commandID, c.alertID, c.winner, c.source, c.target
		}
		b.Queue(`INSERT INTO alertsync.conflicts (command_id, dps_alert_id, winner, source_commit_time, target_commit_time)
			SELECT c, a::uuid, w, s, t FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[]) AS u(c, a, w, s, t)`,
			cmds, alerts, winners, srcs, tgts)
	}
	s.QueueOutbox(b, w.outbox)
	for _, h := range w.holds {
		b.Queue(`INSERT INTO alertsync.dlq_holds (hold_key, prison_number, first_command_id, reason) VALUES ($1, $2, $3, $4)
			ON CONFLICT (hold_key) DO NOTHING`, h.key, h.number, h.first, h.reason)
	}
	for key, n := range w.heldCount {
		b.Queue(`UPDATE alertsync.dlq_holds SET held_commands = held_commands + $2, updated_at = now() WHERE hold_key = $1`, key, n)
	}
	s.QueueFence(b, f, next)
	return sendQueued(ctx, tx, b)
}
