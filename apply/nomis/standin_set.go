package nomis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/alertsync/alertsync/apply"
)

// The stand-in's set path (set.go): the statements of readSet and writeSet.

const (
	setHoldsSQL = `SELECT hold_key, first_command_id FROM alertsync.alertsync_dlq_holds WHERE hold_key = ANY($1::text[]) FOR UPDATE`
	setLinksSQL = `SELECT dps_alert_id::text, offender_book_id, alert_seq, dps_commit_pos, dps_change_pos, deleted_at
		  FROM alertsync.alertsync_alert_mapping WHERE dps_alert_id = ANY($1::uuid[]) ORDER BY dps_alert_id FOR UPDATE`
	setOwnersSQL = `SELECT m.offender_book_id, m.alert_seq, m.dps_alert_id::text
		  FROM unnest($1::bigint[], $2::int[]) AS k(b, s)
		  JOIN alertsync.alertsync_alert_mapping m ON m.offender_book_id = k.b::numeric AND m.alert_seq = k.s::numeric`
	// setRowsSQL reads and locks the rows at the keys asked and at the
	// mapped keys of the DPS alerts asked, in key order.
	setRowsSQL = `SELECT a.offender_book_id, a.alert_seq, ` + standinRowColumns + `
		  FROM oms_owner.offender_alerts a
		 WHERE (a.offender_book_id, a.alert_seq) IN (
		        SELECT k.b::numeric, k.s::numeric FROM unnest($1::bigint[], $2::int[]) AS k(b, s)
		        UNION ALL
		        SELECT m.offender_book_id, m.alert_seq FROM alertsync.alertsync_alert_mapping m WHERE m.dps_alert_id = ANY($3::uuid[]))
		 ORDER BY a.offender_book_id, a.alert_seq
		   FOR UPDATE OF a`
	// setBookingsSQL reads the prisoners' current bookings as
	// standinBookingSQL does, locked (FOR NO KEY UPDATE, see
	// currentBooking).
	setBookingsSQL = `SELECT p.num, b.offender_book_id, b.root_offender_id
		  FROM unnest($1::text[]) AS p(num)
		  CROSS JOIN LATERAL (SELECT b.offender_book_id, b.root_offender_id ` + setCurrentBooking + ` FOR NO KEY UPDATE OF b) b`
	// setNextSeqSQL is, per prisoner, the current booking (again: its
	// lock was taken by the statement before, and this one's snapshot sees
	// what the lock's previous holder committed) and 1 + the highest
	// ALERT_SEQ the booking has in OFFENDER_ALERTS or the mapping.
	setNextSeqSQL = `SELECT p.num, b.offender_book_id, greatest(
		        coalesce((SELECT max(a.alert_seq) FROM oms_owner.offender_alerts a WHERE a.offender_book_id = b.offender_book_id), 0),
		        coalesce((SELECT max(m.alert_seq) FROM alertsync.alertsync_alert_mapping m WHERE m.offender_book_id = b.offender_book_id), 0))::int + 1
		  FROM unnest($1::text[]) AS p(num)
		  CROSS JOIN LATERAL (SELECT b.offender_book_id ` + setCurrentBooking + `) b`
	// setCurrentBooking selects prisoner p.num's current booking b as
	// standinBookingSQL does.
	setCurrentBooking = `FROM oms_owner.offenders o JOIN oms_owner.offender_bookings b ON b.offender_id = o.offender_id
		         WHERE o.offender_id_display = p.num AND b.booking_seq = 1
		         ORDER BY b.booking_begin_date DESC, b.offender_book_id DESC
		         LIMIT 1`
	setCodesSQL = `SELECT code, coalesce(parent_code, '') FROM oms_owner.reference_codes WHERE domain = 'ALERT_CODE' AND code = ANY($1::text[])`
)

// readSet sends the batch's reads in one round trip.
func (t *standinTx) readSet(ctx context.Context, q setQuery) (*setRead, error) {
	books, seqs := keyArrays(q.keys)
	prisoners := slices.Sorted(slices.Values(q.prisoners)) // bookings locked in one order
	b := &pgx.Batch{}
	// Bookings before alert rows, the order of a NOMIS user who locks the
	// booking to add an alert: the two cannot deadlock.
	b.Queue(setHoldsSQL, q.holdKeys)
	b.Queue(setLinksSQL, q.dpsIDs)
	if len(prisoners) > 0 {
		b.Queue(setBookingsSQL, prisoners)
		b.Queue(setNextSeqSQL, prisoners)
	}
	b.Queue(setOwnersSQL, books, seqs)
	b.Queue(setRowsSQL, books, seqs, q.dpsIDs)
	if len(q.codes) > 0 {
		b.Queue(setCodesSQL, q.codes)
	}
	rd := &setRead{holds: map[string]string{}, links: map[string]*link{}, owners: map[nomisKey]string{},
		rows: map[nomisKey]*row{}, bookings: map[string]*setBooking{}, codes: map[string]string{}}
	br := t.tx.SendBatch(ctx, b)
	err := readSetResults(br, rd, q, prisoners)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return rd, nil
}

func readSetResults(br pgx.BatchResults, rd *setRead, q setQuery, prisoners []string) error {
	if err := eachRow(br, "holds", func(r pgx.Rows) error {
		var k, first string
		if err := r.Scan(&k, &first); err != nil {
			return err
		}
		rd.holds[k] = first
		return nil
	}); err != nil {
		return err
	}
	if err := eachRow(br, "mappings", func(r pgx.Rows) error {
		var id string
		l, err := scanMapping(rowScanner{r, &id})
		if err != nil {
			return err
		}
		rd.links[id] = l
		rd.owners[l.key] = id
		return nil
	}); err != nil {
		return err
	}
	if len(prisoners) > 0 {
		for _, n := range prisoners {
			rd.bookings[n] = nil
		}
		if err := eachRow(br, "current bookings", func(r pgx.Rows) error {
			var (
				n  string
				bk setBooking
			)
			if err := r.Scan(&n, &bk.book, &bk.root); err != nil {
				return err
			}
			rd.bookings[n] = &bk
			return nil
		}); err != nil {
			return err
		}
		if err := eachRow(br, "the next ALERT_SEQ of current bookings", func(r pgx.Rows) error {
			var (
				n    string
				book int64
				next int32
			)
			if err := r.Scan(&n, &book, &next); err != nil {
				return err
			}
			if bk := rd.bookings[n]; bk == nil || bk.book != book {
				return fmt.Errorf("%w: a new current booking of %s came between two reads", errStatementPath, n)
			}
			rd.bookings[n].next = next
			return nil
		}); err != nil {
			return err
		}
		for n, bk := range rd.bookings {
			if bk != nil && bk.next == 0 {
				return fmt.Errorf("no next ALERT_SEQ read for the current booking of %s: %w", n, errStatementPath)
			}
		}
	}
	if err := eachRow(br, "the mappings of NOMIS keys", func(r pgx.Rows) error {
		var (
			k  nomisKey
			id string
		)
		if err := r.Scan(&k.book, &k.seq, &id); err != nil {
			return err
		}
		rd.owners[k] = id
		return nil
	}); err != nil {
		return err
	}
	for _, k := range q.keys {
		rd.rows[k] = nil
	}
	for _, l := range rd.links {
		rd.rows[l.key] = nil
	}
	if err := eachRow(br, "alerts", func(r pgx.Rows) error {
		var a row
		if err := scanRow(r.Scan, &a, &a.key.book, &a.key.seq); err != nil {
			return err
		}
		rd.rows[a.key] = &a
		return nil
	}); err != nil {
		return err
	}
	if len(q.codes) > 0 {
		return eachRow(br, "alert codes", func(r pgx.Rows) error {
			var code, parent string
			if err := r.Scan(&code, &parent); err != nil {
				return err
			}
			rd.codes[code] = parent
			return nil
		})
	}
	return nil
}

// rowScanner scans a mapping row with its DPS id first into id, the rest
// as standinMappingSQL's row.
type rowScanner struct {
	rows pgx.Rows
	id   *string
}

func (s rowScanner) Scan(dest ...any) error { return s.rows.Scan(append([]any{s.id}, dest...)...) }

// eachRow reads the next result of br row by row.
func eachRow(br pgx.BatchResults, what string, f func(pgx.Rows) error) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			if errors.Is(err, errStatementPath) {
				return err
			}
			return fmt.Errorf("reading %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	return nil
}

func keyArrays(keys []nomisKey) ([]int64, []int32) {
	books, seqs := make([]int64, len(keys)), make([]int32, len(keys))
	for i, k := range keys {
		books[i], seqs[i] = k.book, k.seq
	}
	return books, seqs
}

const (
	setReleaseSQL = `DELETE FROM alertsync.alertsync_alert_mapping m
		 USING unnest($1::bigint[], $2::int[], $3::uuid[]) AS r(b, s, id)
		 WHERE m.offender_book_id = r.b::numeric AND m.alert_seq = r.s::numeric AND m.dps_alert_id <> r.id`
	setUserSQL = "SELECT set_config('nomis.audit_user_id', $1, true)"
	// setInsertSQL is insertAlert for many rows at set sequences; a row
	// another writer took the sequence of is not inserted (counted).
	setInsertSQL = `INSERT INTO oms_owner.offender_alerts
			(offender_book_id, root_offender_id, alert_seq, alert_type, alert_code, alert_status, alert_date, expiry_date,
			 comment_text, authorize_person_text, caseload_id, caseload_type, verified_flag,
			 create_date, create_user_id, create_datetime, modify_user_id, modify_datetime)
		SELECT u.b, u.root, u.s, u.typ, u.code, u.status, u.afrom::date, u.ato::date, u.comment, u.auth, u.caseload, 'INST', 'N',
			date_trunc('day', coalesce(u.created, now()) AT TIME ZONE $15::text), u.cuser, coalesce(u.created, now()) AT TIME ZONE $15::text,
			u.muser, CASE WHEN u.muser IS NOT NULL THEN clock_timestamp() AT TIME ZONE $15::text END
		  FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
		              $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::text[], $14::text[])
		    AS u(b, root, s, typ, code, status, afrom, ato, comment, auth, caseload, created, cuser, muser)
		ON CONFLICT (offender_book_id, alert_seq) DO NOTHING`
	setUpdateSQL = `UPDATE oms_owner.offender_alerts a
		   SET alert_type = u.typ, alert_code = u.code, alert_status = u.status, alert_date = u.afrom::date, expiry_date = u.ato::date,
		       comment_text = u.comment, authorize_person_text = u.auth,
		       modify_user_id = $10::text, modify_datetime = clock_timestamp() AT TIME ZONE $11::text
		  FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
		    AS u(b, s, typ, code, status, afrom, ato, comment, auth)
		 WHERE a.offender_book_id = u.b::numeric AND a.alert_seq = u.s::numeric`
	setDeleteSQL = `DELETE FROM oms_owner.offender_alerts a USING unnest($1::bigint[], $2::int[]) AS u(b, s)
		 WHERE a.offender_book_id = u.b::numeric AND a.alert_seq = u.s::numeric`
	setMappingSQL = `INSERT INTO alertsync.alertsync_alert_mapping AS m
			(dps_alert_id, offender_book_id, alert_seq, offender_no, mapping_type, dps_commit_pos, dps_change_pos, deleted_at)
		SELECT u.id, u.b, u.s, u.num, u.kind, u.cp, u.chp, CASE WHEN u.deleted THEN now() END
		  FROM unnest($1::uuid[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::boolean[])
		    AS u(id, b, s, num, kind, cp, chp, deleted)
		ON CONFLICT (dps_alert_id) DO UPDATE SET
			offender_book_id = EXCLUDED.offender_book_id, alert_seq = EXCLUDED.alert_seq, offender_no = EXCLUDED.offender_no,
			dps_commit_pos = EXCLUDED.dps_commit_pos, dps_change_pos = EXCLUDED.dps_change_pos,
			deleted_at = CASE WHEN EXCLUDED.deleted_at IS NOT NULL THEN coalesce(m.deleted_at, now()) END,
			updated_at = now()`
	setConflictsSQL = `INSERT INTO alertsync.alertsync_conflicts
			(command_id, dps_alert_id, offender_book_id, alert_seq, winner, source_commit_time, target_commit_time)
		SELECT * FROM unnest($1::text[], $2::uuid[], $3::bigint[], $4::int[], $5::text[], $6::timestamptz[], $7::timestamptz[])`
	setHoldSQL = `INSERT INTO alertsync.alertsync_dlq_holds (hold_key, prison_number, first_command_id, reason)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) ON CONFLICT (hold_key) DO NOTHING`
	setHeldSQL = `UPDATE alertsync.alertsync_dlq_holds h SET held_commands = h.held_commands + u.n, updated_at = now()
		  FROM unnest($1::text[], $2::int[]) AS u(k, n) WHERE h.hold_key = u.k`
)

// writeSet sends a decided batch's writes in one round trip: per NOMIS
// user (nomis.audit_user_id, which the audit and journal triggers read),
// that user's inserts, updates and deletes; then the mapping, conflicts,
// holds and the outbox row.
func (t *standinTx) writeSet(ctx context.Context, w *setWrites) error {
	b := &pgx.Batch{}
	if n := len(w.releases); n > 0 {
		books, seqs, ids := make([]int64, n), make([]int32, n), make([]string, n)
		for i, r := range w.releases {
			books[i], seqs[i], ids[i] = r.key.book, r.key.seq, r.dpsID
		}
		b.Queue(setReleaseSQL, books, seqs, ids)
	}
	users, keys := w.byUser()
	var inserts []int // the statement index of each user's insert and how many rows it writes
	var insertRows []int
	for _, u := range users {
		b.Queue(setUserSQL, u)
		var ins, upd, del []nomisKey
		for _, k := range keys[u] {
			r := w.rows[k]
			switch {
			case r.cur == nil:
				del = append(del, k)
			case r.inserted != nil:
				ins = append(ins, k)
			default:
				upd = append(upd, k)
			}
		}
		if len(ins) > 0 {
			inserts, insertRows = append(inserts, b.Len()), append(insertRows, len(ins))
			t.queueInserts(b, w, ins)
		}
		if len(upd) > 0 {
			t.queueUpdates(b, w, upd, u)
		}
		if len(del) > 0 {
			books, seqs := keyArrays(del)
			b.Queue(setDeleteSQL, books, seqs)
		}
	}
	queueMappings(b, w)
	if n := len(w.conflicts); n > 0 {
		cmds, ids, winners := make([]string, n), make([]string, n), make([]string, n)
		books, seqs := make([]int64, n), make([]int32, n)
		srcs, tgts := make([]time.Time, n), make([]*time.Time, n)
		for i, c := range w.conflicts {
			cmds[i], ids[i], winners[i], books[i], seqs[i] = c.commandID, c.dpsAlertID, c.winner, c.key.book, c.key.seq
			srcs[i], tgts[i] = c.sourceCommitTime, c.targetCommitTime
		}
		b.Queue(setConflictsSQL, cmds, ids, books, seqs, winners, srcs, tgts)
	}
	if n := len(w.holds); n > 0 {
		keys, numbers, firsts, reasons := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		for i, h := range w.holds {
			keys[i], numbers[i], firsts[i], reasons[i] = h.key, h.prisonNumber, h.firstCommand, h.reason
		}
		b.Queue(setHoldSQL, keys, numbers, firsts, reasons)
	}
	if len(w.heldCount) > 0 {
		keys, counts := make([]string, 0, len(w.heldCount)), make([]int32, 0, len(w.heldCount))
		for k, n := range w.heldCount {
			keys, counts = append(keys, k), append(counts, int32(n)) //nolint:gosec // at most a batch
		}
		b.Queue(setHeldSQL, keys, counts)
	}
	t.d.QueueOutbox(b, w.outbox)
	t.d.QueueFence(b, w.fence, w.next)
	n := b.Len()
	br := t.tx.SendBatch(ctx, b)
	var err error
	taken := false
	for i, next := 0, 0; i < n && err == nil; i++ {
		var tag pgconn.CommandTag
		tag, err = br.Exec()
		if err == nil && next < len(inserts) && inserts[next] == i {
			if tag.RowsAffected() != int64(insertRows[next]) {
				taken = true // a NOMIS user took a sequence meanwhile: the statement path takes the next
			}
			next++
		}
		if i == n-1 {
			t.fenced = tag
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && taken {
		err = fmt.Errorf("inserting alerts: an ALERT_SEQ was taken meanwhile: %w", errStatementPath)
	}
	return err
}

func (t *standinTx) commitSet(ctx context.Context) error {
	return apply.CommitChecked(ctx, t.tx, t.fenced)
}

func (t *standinTx) queueInserts(b *pgx.Batch, w *setWrites, keys []nomisKey) {
	n := len(keys)
	books, roots, seqs := make([]int64, n), make([]*int64, n), make([]int32, n)
	typs, codes, statuses, froms := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	tos, comments, auths, caseloads := make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
	created, cusers, musers := make([]*time.Time, n), make([]string, n), make([]*string, n)
	for i, k := range keys {
		r := w.rows[k]
		in, cur := r.inserted, r.cur
		books[i], roots[i], seqs[i] = k.book, in.root, k.seq
		typs[i], codes[i], statuses[i], froms[i] = r.typ, cur.code, cur.status, cur.from.String()
		tos[i], comments[i], auths[i], caseloads[i] = apply.DateArg(cur.to), cur.comment, cur.authorised, in.state.PrisonCode
		if !in.state.CreatedAt.IsZero() {
			at := in.state.CreatedAt
			created[i] = &at
		}
		cusers[i] = in.state.CreatedBy
		if r.modified {
			u := r.user
			musers[i] = &u
		}
	}
	b.Queue(setInsertSQL, books, roots, seqs, typs, codes, statuses, froms, tos, comments, auths, caseloads, created, cusers, musers, t.d.tz)
}

func (t *standinTx) queueUpdates(b *pgx.Batch, w *setWrites, keys []nomisKey, user string) {
	n := len(keys)
	books, seqs := keyArrays(keys)
	typs, codes, statuses, froms := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	tos, comments, auths := make([]*string, n), make([]*string, n), make([]*string, n)
	for i, k := range keys {
		r := w.rows[k]
		cur := r.cur
		typs[i], codes[i], statuses[i], froms[i] = r.typ, cur.code, cur.status, cur.from.String()
		tos[i], comments[i], auths[i] = apply.DateArg(cur.to), cur.comment, cur.authorised
	}
	b.Queue(setUpdateSQL, books, seqs, typs, codes, statuses, froms, tos, comments, auths, user, t.d.tz)
}

func queueMappings(b *pgx.Batch, w *setWrites) {
	n := len(w.mapOrder)
	if n == 0 {
		return
	}
	ids, books, seqs, numbers, kinds := make([]string, n), make([]int64, n), make([]int32, n), make([]string, n), make([]string, n)
	cps, chps, deleted := make([]int64, n), make([]int64, n), make([]bool, n)
	for i, id := range w.mapOrder {
		m := w.maps[id]
		ids[i], books[i], seqs[i], numbers[i], kinds[i] = id, m.key.book, m.key.seq, m.number, m.kind
		cps[i], chps[i], deleted[i] = m.pos.Commit, m.pos.Change, m.deleted
	}
	b.Queue(setMappingSQL, ids, books, seqs, numbers, kinds, cps, chps, deleted)
}

var _ setTx = (*standinTx)(nil)
