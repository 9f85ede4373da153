package nomis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/db"
	"github.com/alertsync/alertsync/transform/rules"
)

// standin is the dialect of the PostgreSQL-hosted NOMIS stand-in
// (nomis.dialect=postgres), through pgx: NOMIS's tables in schema
// oms_owner, the sync's in alertsync (deploy/nomis). The session settings
// nomis.audit_module_name and nomis.audit_user_id, set
// transaction-locally, are what the stand-in's audit and journal triggers
// read. Conflicts use pg_xact_commit_timestamp of the row's last change
// (track_commit_timestamp must be on: checked by prepare).
type standin struct {
	*apply.PGBookkeeping // Claim, Pending, Published, WriteOutbox, CommitFenced
	pool                 *pgxpool.Pool
	tz                   string // apply.timezone: the zone of the wall-clock columns
	// cfg opens the migrations' database/sql handle (prepare); empty in
	// tests that migrate themselves.
	cfg config.NOMIS
}

// newStandin returns the stand-in dialect over pool, writing wall-clock
// times in zone tz.
func newStandin(pool *pgxpool.Pool, tz string) *standin {
	return &standin{pool: pool, tz: tz, PGBookkeeping: &apply.PGBookkeeping{Pool: pool,
		Offsets: "alertsync.alertsync_consumer_offsets", Outbox: "alertsync.alertsync_outcome_batches"}}
}

func (d *standin) close() { d.pool.Close() }

// prepare applies the stand-in's migration set "nomis" and checks
// track_commit_timestamp.
func (d *standin) prepare(ctx context.Context) error {
	sqlDB, err := db.OpenPostgres(ctx, d.cfg.DSN, d.cfg.Password, 30*time.Second)
	if err != nil {
		return fmt.Errorf("connecting to NOMIS: %w", err)
	}
	defer func() { _ = sqlDB.Close() }()
	return apply.PreparePostgres(ctx, sqlDB, d.pool, "nomis", "the NOMIS stand-in")
}

func (d *standin) refusal(err error) (*apply.Refusal, bool) { return apply.AsRefusal(err) }
func (d *standin) transient(err error) bool                 { return apply.Transient(err) }

// begin takes a connection; the transaction's BEGIN and its marking as the
// sync go with its first statements (pipedTx), costing no round trip of
// their own.
func (d *standin) begin(ctx context.Context) (writeTx, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("beginning a transaction: %w", err)
	}
	return &standinTx{d: d, tx: &pipedTx{conn: conn}}, nil
}

// standinTx is a stand-in transaction.
type standinTx struct {
	d         *standin
	tx        *pipedTx
	inCommand bool              // a command's savepoint is open
	fenced    pgconn.CommandTag // the offset write of writeSet
}

// pipedTx is a read-committed transaction on a pooled connection whose
// BEGIN, and the marking of the transaction as the sync (module
// DPS_SYNCHRONISATION), are sent in one pipeline with its first
// statements (pgx's Batch.BeginTx, as apply dps sends its BEGIN with its
// marker). Commit and Rollback release the connection.
type pipedTx struct {
	conn  *pgxpool.Conn
	tx    pgx.Tx // nil until the first statements are sent
	ended bool   // committed or rolled back: the connection is released
}

// pipedMark marks a pipedTx as the sync, right after its BEGIN.
const pipedMark = "SELECT set_config('nomis.audit_module_name', '" + SyncModule + "', true)"

// SendBatch sends b, preceded by BEGIN and the marking when they are not
// sent yet.
func (t *pipedTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if t.tx != nil {
		return t.tx.SendBatch(ctx, b)
	}
	first := &pgx.Batch{}
	first.BeginTx(pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	first.Queue(pipedMark)
	first.QueuedQueries = append(first.QueuedQueries, b.QueuedQueries...)
	br := t.conn.SendBatch(ctx, first)
	t.tx = br.Tx()
	for range 2 { // BEGIN, the marking
		if _, err := br.Exec(); err != nil {
			return &failedBatch{br: br, err: fmt.Errorf("beginning a transaction marked as the sync: %w", err)}
		}
	}
	return br
}

func (t *pipedTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.tx != nil {
		return t.tx.Exec(ctx, sql, args...)
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	br := t.SendBatch(ctx, b)
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (t *pipedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if t.tx == nil {
		if _, err := t.Exec(ctx, "SELECT 1"); err != nil {
			return errRow{err}
		}
	}
	return t.tx.QueryRow(ctx, sql, args...)
}

// Commit commits (nothing to do when nothing was sent) and releases the
// connection; a transaction the server had aborted reports
// pgx.ErrTxCommitRollback.
func (t *pipedTx) Commit(ctx context.Context) error {
	if t.ended {
		return pgx.ErrTxClosed
	}
	t.ended = true
	defer t.conn.Release()
	if t.tx == nil {
		return nil
	}
	return t.tx.Commit(ctx)
}

// Rollback rolls back and releases the connection; a no-op after Commit.
// A connection left in a transaction (the ROLLBACK failed) is closed by
// the pool on release.
func (t *pipedTx) Rollback(ctx context.Context) {
	if t.ended {
		return
	}
	t.ended = true
	if t.tx != nil {
		_ = t.tx.Rollback(ctx)
	}
	t.conn.Release()
}

// failedBatch is the results of a batch whose BEGIN failed: every result
// is that error.
type failedBatch struct {
	br  pgx.BatchResults
	err error
}

func (f *failedBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, f.err }
func (f *failedBatch) Query() (pgx.Rows, error)         { return nil, f.err }
func (f *failedBatch) QueryRow() pgx.Row                { return errRow{f.err} }
func (f *failedBatch) Close() error {
	_ = f.br.Close()
	return f.err
}
func (f *failedBatch) Tx() pgx.Tx { return nil }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (t *standinTx) rollback(ctx context.Context) { t.tx.Rollback(ctx) }

// startCommand sends the hold check, the end of the previous command's
// savepoint, this one's, the audit user and the mapping read in one round
// trip (a pipelined batch): they do not depend on each other, and a held
// command only wastes a savepoint and a row lock. The savepoint is
// released, not stacked: each one left open is a subtransaction, and more
// than 64 in a transaction slow every snapshot of the server.
func (t *standinTx) startCommand(ctx context.Context, holdKey, user, dpsID, bookingOf string) (commandStart, error) {
	b := &pgx.Batch{}
	if holdKey != "" {
		b.Queue(standinBumpHoldSQL, holdKey)
	}
	if t.inCommand {
		b.Queue("RELEASE SAVEPOINT alertsync_command")
	}
	b.Queue("SAVEPOINT alertsync_command")
	b.Queue("SELECT set_config('nomis.audit_user_id', $1, true)", user)
	b.Queue(standinMappingSQL, dpsID)
	if bookingOf != "" {
		b.Queue(standinBookingSQL, bookingOf)
	}
	br := t.tx.SendBatch(ctx, b)
	var st commandStart
	err := func() error {
		if holdKey != "" {
			err := br.QueryRow().Scan(&st.heldBehind)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return fmt.Errorf("checking holds: %w", err)
			default:
				st.held = true
			}
		}
		if t.inCommand {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("releasing the last command's savepoint: %w", err)
			}
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("opening a savepoint: %w", err)
		}
		t.inCommand = true
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("setting the audit user: %w", err)
		}
		l, err := scanMapping(br.QueryRow())
		if err != nil {
			return fmt.Errorf("reading the mapping of alert %s: %w", dpsID, err)
		}
		if !st.held {
			st.link = l
		}
		if bookingOf != "" {
			bk, err := scanBooking(br.QueryRow())
			if err != nil {
				return fmt.Errorf("reading the current booking of %s: %w", bookingOf, err)
			}
			st.booking = &bk
		}
		return nil
	}()
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return st, err
}

func (t *standinTx) rollbackToSavepoint(ctx context.Context) error {
	_, err := t.tx.Exec(ctx, "ROLLBACK TO SAVEPOINT alertsync_command")
	return err
}

// setUser sets nomis.audit_user_id, local to the transaction (and undone
// with the command's savepoint).
const standinBumpHoldSQL = `UPDATE alertsync.alertsync_dlq_holds SET held_commands = held_commands + 1, updated_at = now()
		WHERE hold_key = $1 RETURNING first_command_id`

func (t *standinTx) startHold(ctx context.Context, h hold) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO alertsync.alertsync_dlq_holds (hold_key, prison_number, first_command_id, reason)
		VALUES ($1, $2, $3, $4) ON CONFLICT (hold_key) DO NOTHING`, h.key, h.prisonNumber, h.firstCommand, h.reason)
	return err
}

const standinMappingSQL = `SELECT offender_book_id, alert_seq, dps_commit_pos, dps_change_pos, deleted_at
		  FROM alertsync.alertsync_alert_mapping WHERE dps_alert_id = $1::uuid FOR UPDATE`

// scanMapping reads a row of standinMappingSQL; nil when there is none.
func scanMapping(row pgx.Row) (*link, error) {
	var (
		l       = link{mapped: true}
		cp, chp *int64
		deleted *time.Time
	)
	err := row.Scan(&l.key.book, &l.key.seq, &cp, &chp, &deleted)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	l.deleted = deleted != nil
	if cp != nil && chp != nil {
		l.pos = &rules.Position{Commit: *cp, Change: *chp}
	}
	return &l, nil
}

func (t *standinTx) keyMapped(ctx context.Context, k nomisKey) (bool, error) {
	var other string
	err := t.tx.QueryRow(ctx, `SELECT dps_alert_id::text FROM alertsync.alertsync_alert_mapping
		WHERE offender_book_id = $1 AND alert_seq = $2`, k.book, k.seq).Scan(&other)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (t *standinTx) releaseKey(ctx context.Context, k nomisKey, dpsID string) error {
	_, err := t.tx.Exec(ctx, `DELETE FROM alertsync.alertsync_alert_mapping
		WHERE offender_book_id = $1 AND alert_seq = $2 AND dps_alert_id <> $3::uuid`, k.book, k.seq, dpsID)
	return err
}

// readRow reads the row with the commit time of its last change,
// pg_xact_commit_timestamp(xmin).
func (t *standinTx) readRow(ctx context.Context, k nomisKey) (*row, error) {
	r := row{key: k}
	err := scanRow(t.tx.QueryRow(ctx, `SELECT `+standinRowColumns+`
		  FROM oms_owner.offender_alerts a WHERE a.offender_book_id = $1 AND a.alert_seq = $2 FOR UPDATE`, k.book, k.seq).Scan, &r)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// standinRowColumns are the columns of an OFFENDER_ALERTS row (alias a)
// that scanRow reads, with the commit time of its last change,
// pg_xact_commit_timestamp(xmin).
const standinRowColumns = `a.alert_code, a.alert_status, a.alert_date, a.expiry_date, a.comment_text, a.authorize_person_text,
		       pg_xact_commit_timestamp(a.xmin)`

// scanRow scans lead (when given), then standinRowColumns into r.
func scanRow(scan func(dest ...any) error, r *row, lead ...any) error {
	var (
		from     time.Time
		to       *time.Time
		commitTS *time.Time
	)
	if err := scan(append(lead, &r.code, &r.status, &from, &to, &r.comment, &r.authorised, &commitTS)...); err != nil {
		return err
	}
	r.from = rules.DateIn(from, time.UTC) // a wall-clock timestamp: its date
	if to != nil {
		d := rules.DateIn(*to, time.UTC)
		r.to = &d
	}
	r.commitTime = commitTS
	return nil
}

func (t *standinTx) alertParent(ctx context.Context, code string) (string, bool, error) {
	var parent *string
	err := t.tx.QueryRow(ctx, "SELECT parent_code FROM oms_owner.reference_codes WHERE domain = 'ALERT_CODE' AND code = $1", code).Scan(&parent)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil || parent == nil {
		return "", err == nil, err
	}
	return *parent, true, nil
}

// currentBooking locks the booking FOR NO KEY UPDATE, the stand-in's
// equivalent of Oracle's FOR UPDATE here: it excludes other lockers but
// not the KEY SHARE lock a child row's foreign-key check takes (Oracle's
// parent check takes no row lock), so a NOMIS user inserting without
// locking the booking cannot deadlock with it.
func (t *standinTx) currentBooking(ctx context.Context, prisonNumber string) (int64, *int64, bool, error) {
	b, err := scanBooking(t.tx.QueryRow(ctx, standinBookingSQL, prisonNumber))
	return b.book, b.root, b.ok, err
}

const standinBookingSQL = `SELECT b.offender_book_id, b.root_offender_id
		  FROM oms_owner.offenders o JOIN oms_owner.offender_bookings b ON b.offender_id = o.offender_id
		 WHERE o.offender_id_display = $1 AND b.booking_seq = 1
		 ORDER BY b.booking_begin_date DESC, b.offender_book_id DESC
		 LIMIT 1 FOR NO KEY UPDATE OF b`

// scanBooking reads a row of standinBookingSQL (ok false when none).
func scanBooking(row pgx.Row) (booking, error) {
	var b booking
	err := row.Scan(&b.book, &b.root)
	if errors.Is(err, pgx.ErrNoRows) {
		return booking{}, nil
	}
	b.ok = err == nil
	return b, err
}

// insertAlert: a NOMIS user who allocated the same sequence without
// locking the booking makes the insert do nothing (ON CONFLICT waits for
// that user's commit): taken.
func (t *standinTx) insertAlert(ctx context.Context, in insertion) (int32, bool, error) {
	st := in.state
	var created *time.Time
	if !st.CreatedAt.IsZero() {
		created = &st.CreatedAt
	}
	var seq int32
	err := t.tx.QueryRow(ctx, `INSERT INTO oms_owner.offender_alerts
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
		in.book, in.root, in.typ, st.Code, st.Status.String(), st.ActiveFrom.String(), apply.DateArg(st.ActiveTo),
		st.Description, st.AuthorisedBy, st.PrisonCode, created, t.d.tz, st.CreatedBy).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, true, nil
	}
	return seq, false, err
}

func (t *standinTx) updateAlert(ctx context.Context, k nomisKey, typ string, st *rules.AlertState, user string) error {
	_, err := t.tx.Exec(ctx, `UPDATE oms_owner.offender_alerts
		   SET alert_type = $3, alert_code = $4, alert_status = $5, alert_date = $6::date, expiry_date = $7::date,
		       comment_text = $8, authorize_person_text = $9,
		       modify_user_id = $10, modify_datetime = clock_timestamp() AT TIME ZONE $11
		 WHERE offender_book_id = $1 AND alert_seq = $2`,
		k.book, k.seq, typ, st.Code, st.Status.String(), st.ActiveFrom.String(), apply.DateArg(st.ActiveTo),
		st.Description, st.AuthorisedBy, user, t.d.tz)
	return err
}

func (t *standinTx) deleteAlert(ctx context.Context, k nomisKey) error {
	_, err := t.tx.Exec(ctx, "DELETE FROM oms_owner.offender_alerts WHERE offender_book_id = $1 AND alert_seq = $2", k.book, k.seq)
	return err
}

func (t *standinTx) recordConflict(ctx context.Context, c conflict) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO alertsync.alertsync_conflicts
			(command_id, dps_alert_id, offender_book_id, alert_seq, winner, source_commit_time, target_commit_time)
		VALUES ($1, $2::uuid, $3, $4, $5, $6, $7)`, c.commandID, c.dpsAlertID, c.key.book, c.key.seq, c.winner,
		c.sourceCommitTime, c.targetCommitTime)
	return err
}

func (t *standinTx) setMapping(ctx context.Context, m mappingWrite) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO alertsync.alertsync_alert_mapping AS m
			(dps_alert_id, offender_book_id, alert_seq, offender_no, mapping_type, dps_commit_pos, dps_change_pos, deleted_at)
		VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, CASE WHEN $8::boolean THEN now() END)
		ON CONFLICT (dps_alert_id) DO UPDATE SET
			offender_book_id = EXCLUDED.offender_book_id, alert_seq = EXCLUDED.alert_seq, offender_no = EXCLUDED.offender_no,
			dps_commit_pos = EXCLUDED.dps_commit_pos, dps_change_pos = EXCLUDED.dps_change_pos,
			deleted_at = CASE WHEN $8::boolean THEN coalesce(m.deleted_at, now()) END,
			updated_at = now()`,
		m.dpsID, m.key.book, m.key.seq, m.prisonNumber, m.kind, m.pos.Commit, m.pos.Change, m.deleted)
	return err
}

func (t *standinTx) writeOutbox(ctx context.Context, rows []apply.OutboxRow) error {
	return t.d.WriteOutbox(ctx, t.tx, rows)
}

func (t *standinTx) commitFenced(ctx context.Context, f apply.Fence, next int64) error {
	return t.d.CommitFenced(ctx, t.tx, f, next)
}

// sweepSQL sets INACTIVE the NOMIS rows of a batch of lapsed DPS alerts
// ($1 ids, $2 active_to, $3/$4 the DPS-side mapping's key or NULL). Each
// alert's row is the one the NOMIS-side mapping (not deleted) names, else
// the one the DPS-side mapping names, unless the NOMIS-side mapping gives
// that key to another alert. A row is changed only while it is ACTIVE and
// NOMIS does not hold a later expiry date ($5 = the sweep's date): a NOMIS
// user who extended the alert wins until DPS hears of it. EXPIRY_DATE
// takes DPS's active_to where NOMIS has none. Rows are locked in key
// order, so two sweeps cannot deadlock each other.
const sweepSQL = `
WITH due AS (
	SELECT * FROM unnest($1::uuid[], $2::date[], $3::bigint[], $4::int[]) AS d(dps_alert_id, active_to, book, seq)
), keyed AS (
	SELECT d.dps_alert_id, d.active_to,
	       CASE WHEN m.dps_alert_id IS NOT NULL AND m.deleted_at IS NULL THEN m.offender_book_id ELSE d.book END AS book,
	       CASE WHEN m.dps_alert_id IS NOT NULL AND m.deleted_at IS NULL THEN m.alert_seq ELSE d.seq END AS seq
	  FROM due d LEFT JOIN alertsync.alertsync_alert_mapping m ON m.dps_alert_id = d.dps_alert_id
), locked AS (
	SELECT a.offender_book_id, a.alert_seq, k.active_to
	  FROM keyed k JOIN oms_owner.offender_alerts a ON a.offender_book_id = k.book AND a.alert_seq = k.seq
	 WHERE a.alert_status = 'ACTIVE'
	   AND (a.expiry_date IS NULL OR a.expiry_date < $5::date + 1)
	   AND NOT EXISTS (SELECT 1 FROM alertsync.alertsync_alert_mapping o
	                    WHERE o.offender_book_id = k.book AND o.alert_seq = k.seq AND o.dps_alert_id <> k.dps_alert_id)
	 ORDER BY a.offender_book_id, a.alert_seq
	   FOR UPDATE OF a
)
UPDATE oms_owner.offender_alerts a
   SET alert_status = 'INACTIVE', expiry_date = coalesce(a.expiry_date, l.active_to),
       modify_user_id = $6, modify_datetime = clock_timestamp() AT TIME ZONE $7
  FROM locked l
 WHERE a.offender_book_id = l.offender_book_id AND a.alert_seq = l.alert_seq
   AND a.alert_status = 'ACTIVE'`

// inactivate runs sweepSQL for page in one transaction marked as the sync.
func (d *standin) inactivate(ctx context.Context, date rules.Date, page []dueAlert) (int, error) {
	ids := make([]string, len(page))
	tos := make([]string, len(page))
	books := make([]*int64, len(page))
	seqs := make([]*int32, len(page))
	for i, a := range page {
		ids[i], tos[i], books[i], seqs[i] = a.id, a.activeTo, a.book, a.seq
	}
	tx, err := d.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return 0, fmt.Errorf("beginning a sweep transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SELECT set_config('nomis.audit_module_name', $1, true), set_config('nomis.audit_user_id', $2, true)",
		SyncModule, SweepUser); err != nil {
		return 0, fmt.Errorf("marking the sweep transaction as the sync: %w", err)
	}
	tag, err := tx.Exec(ctx, sweepSQL, ids, tos, books, seqs, date.String(), SweepUser, d.tz)
	if err != nil {
		return 0, fmt.Errorf("setting lapsed alerts INACTIVE: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("committing a sweep transaction: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

var _ dialect = (*standin)(nil)
