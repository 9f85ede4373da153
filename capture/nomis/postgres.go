package nomis

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/db"
	"github.com/alertsync/alertsync/internal/migrate"
)

// postgres is the dialect of the PostgreSQL stand-in of NOMIS (schema
// oms_owner, deploy/nomis/schema.sql) with the sync-owned objects of the
// "nomis" migration set. Every statement the capture runs on the stand-in
// is in this file.
type postgres struct {
	opts Options
}

func newPostgres(o Options) *postgres { return &postgres{opts: o} }

const (
	pgJournal = "alertsync.alertsync_journal"
	// pgChannel is the NOTIFY channel of the journal's statement trigger.
	pgChannel = "alertsync_journal"
)

// pgLockKey is the session advisory lock of the capture. Advisory locks are
// per database, as the journal is.
var pgLockKey = func() int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("alertsync/capture/nomis/" + pgJournal))
	return int64(h.Sum64()) //nolint:gosec // a hash, any bit pattern is a valid key
}()

func (*postgres) Name() string         { return "postgres" }
func (*postgres) JournalTable() string { return pgJournal }

func (p *postgres) Open(cfg config.NOMIS) (*sql.DB, error) {
	cc, err := db.PostgresConfig(cfg.DSN, cfg.Password)
	if err != nil {
		return nil, fmt.Errorf("nomis.dsn: %w", err)
	}
	cc.ConnectTimeout = p.opts.ConnectTimeout
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	cc.RuntimeParams["application_name"] = "alertsync capture nomis"
	h := stdlib.OpenDB(*cc)
	// The session connection, the migrator's, and one spare.
	h.SetMaxOpenConns(3)
	h.SetMaxIdleConns(1)
	return h, nil
}

func (*postgres) TryLock(ctx context.Context, conn *sql.Conn) (bool, string, error) {
	for vanished := 0; ; vanished++ {
		var ok bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", pgLockKey).Scan(&ok); err != nil {
			return false, "", fmt.Errorf("taking the capture lock: %w", err)
		}
		if ok {
			return true, "", nil
		}
		var holder string
		err := conn.QueryRowContext(ctx, `SELECT coalesce(string_agg('backend pid ' || l.pid::text || coalesce(' (' || a.application_name || ' from ' || coalesce(a.client_addr::text, 'local') || ')', ''), ', '), '')
			  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
			 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
			   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
			   AND ((l.classid::bigint << 32) | l.objid::bigint) = $1`, pgLockKey).Scan(&holder)
		if err != nil {
			return false, "", fmt.Errorf("finding the holder of the capture lock: %w", err)
		}
		if holder != "" || vanished >= 5 {
			return false, holder, nil
		}
		// Released since pg_try_advisory_lock (a holder that has just
		// exited): try again.
	}
}

func (*postgres) Unlock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", pgLockKey); err != nil {
		return fmt.Errorf("releasing the capture lock: %w", err)
	}
	return nil
}

func (*postgres) Migrate(ctx context.Context, h *sql.DB, log *slog.Logger) error {
	var missing string
	err := h.QueryRowContext(ctx, `SELECT coalesce(string_agg(t, ', '), '')
		  FROM unnest(ARRAY['oms_owner.offenders', 'oms_owner.offender_bookings', 'oms_owner.offender_alerts']) AS t
		 WHERE to_regclass(t) IS NULL`).Scan(&missing)
	if err != nil {
		return fmt.Errorf("checking the NOMIS tables: %w", err)
	}
	if missing != "" {
		return fmt.Errorf("%w: %s; the journal triggers go on them (on the stand-in, apply deploy/nomis/schema.sql first)", ErrNoNOMISTables, missing)
	}
	set, err := migrate.Named("nomis")
	if err != nil {
		return err
	}
	if _, err := migrate.Up(ctx, h, set, migrate.Latest, migrate.WithLogger(log)); err != nil {
		return fmt.Errorf("applying the nomis migrations: %w", err)
	}
	return nil
}

func (*postgres) Check(ctx context.Context, conn *sql.Conn) (string, error) {
	var (
		name                  string
		journal, reader       bool
		commitTimestampsOnOff string
	)
	err := conn.QueryRowContext(ctx, `SELECT current_database(),
			to_regclass('alertsync.alertsync_journal') IS NOT NULL,
			to_regprocedure('alertsync.alertsync_journal_read(integer, interval)') IS NOT NULL,
			current_setting('track_commit_timestamp')`).Scan(&name, &journal, &reader, &commitTimestampsOnOff)
	if err != nil {
		return "", fmt.Errorf("checking the journal: %w", err)
	}
	if !journal || !reader {
		return "", fmt.Errorf("%w (%s and alertsync.alertsync_journal_read): run `alertsync migrate nomis`, or set capture.migrate=true", ErrNoJournal, pgJournal)
	}
	if commitTimestampsOnOff != "on" {
		return "", fmt.Errorf("%w: track_commit_timestamp is off; set track_commit_timestamp = on in postgresql.conf and restart PostgreSQL", ErrCommitOrder)
	}
	return name, nil
}

func (p *postgres) Listen(ctx context.Context, conn *sql.Conn) (Waiter, error) {
	if _, err := conn.ExecContext(ctx, "LISTEN "+pgChannel); err != nil {
		return nil, fmt.Errorf("listening on %s: %w", pgChannel, err)
	}
	return &pgWaiter{conn: conn, settle: p.opts.Settle}, nil
}

// pgWaitKey is the advisory lock a waiting capture holds exclusively; the
// journal's row function (migration 0010) tries it shared and notifies when
// refused. 'alrtwait' as a big-endian int8: it must equal the constant in
// deploy/nomis/migrations/0010_wait_lock.sql.
const pgWaitKey int64 = 7020111763708406132

const pgHasRows = "SELECT EXISTS (SELECT 1 FROM alertsync.alertsync_journal)"

// pgWaiter waits for the journal's NOTIFY. Writers notify only while the
// capture holds pgWaitKey exclusively, which it can take only when no
// writer holds it shared, that is once every writer that did not notify has
// ended; after taking it the capture checks the journal, so that their rows
// are read without waiting. While writers hold the lock (they are between
// their first journal row and their commit) it cannot wait for a
// notification and looks at the journal every capture.settle instead.
// PostgreSQL delivers a notification when the writing transaction commits,
// which may be just before its commit time falls below the read horizon:
// after a wake-up it waits capture.settle more, so that the next Keys
// returns the announced rows.
type pgWaiter struct {
	conn   *sql.Conn
	settle time.Duration
}

func (w *pgWaiter) Wait(ctx context.Context, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		var locked bool
		if err := w.conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", pgWaitKey).Scan(&locked); err != nil {
			return false, fmt.Errorf("taking the journal's wait lock: %w", err)
		}
		if locked {
			break
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(min(w.settle, left)):
		}
		var pending bool
		if err := w.conn.QueryRowContext(ctx, pgHasRows).Scan(&pending); err != nil {
			return false, fmt.Errorf("checking the journal while writers hold the wait lock: %w", err)
		}
		if pending {
			return true, nil
		}
	}
	woken, err := w.waitLocked(ctx, time.Until(deadline))
	// Released even on a stop, so that writers stop notifying (the session's
	// end would release it too).
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, uerr := w.conn.ExecContext(uctx, "SELECT pg_advisory_unlock($1)", pgWaitKey); uerr != nil && err == nil {
		err = fmt.Errorf("releasing the journal's wait lock: %w", uerr)
	}
	if err != nil || !woken {
		return false, err
	}
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-time.After(min(w.settle, timeout)):
	}
	return true, nil
}

// waitLocked waits, holding the wait lock, for a notification or timeout;
// it returns at once when the journal already holds rows.
func (w *pgWaiter) waitLocked(ctx context.Context, timeout time.Duration) (bool, error) {
	var pending bool
	if err := w.conn.QueryRowContext(ctx, pgHasRows).Scan(&pending); err != nil {
		return false, fmt.Errorf("checking the journal before waiting: %w", err)
	}
	if pending || timeout <= 0 {
		return pending, nil
	}
	woken := false
	err := w.conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("waiting for %s: unexpected driver connection %T", pgChannel, dc)
		}
		pc := sc.Conn()
		wctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		_, err := pc.WaitForNotification(wctx)
		switch {
		case err == nil:
			woken = true
		case ctx.Err() != nil:
			return ctx.Err()
		case pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded):
			return nil
		default:
			return fmt.Errorf("waiting for %s: %w", pgChannel, err)
		}
		// One read answers every notification received so far.
		done, cancelDone := context.WithCancel(ctx)
		cancelDone()
		for {
			if _, err := pc.WaitForNotification(done); err != nil {
				return nil
			}
		}
	})
	return woken, err
}

// pgKeys returns the positions of the journal rows below the commit horizon
// in commit order: the ordering part of alertsync_journal_read (see its
// comment in deploy/nomis/migrations/0001_journal.sql for why the horizon
// holds) without the rows, so that one sort serves many batches. $1 is the
// limit, $2 capture.settle in microseconds.
const pgKeys = `WITH horizon AS (
		SELECT least(transaction_timestamp() - $2 * interval '1 microsecond',
		             (SELECT min(pg_xact_commit_timestamp(x::xid))
		                FROM pg_snapshot_xip(pg_current_snapshot()) AS x)) AS ts
	)
	SELECT k.journal_id, k.commit_ts, (extract(epoch FROM k.commit_ts) * 1000000)::bigint
	  FROM (SELECT j.journal_id, coalesce(pg_xact_commit_timestamp(j.xmin), j.created_at) AS commit_ts
	          FROM alertsync.alertsync_journal j) k, horizon h
	 WHERE k.commit_ts < h.ts
	 ORDER BY k.commit_ts, k.journal_id
	 LIMIT $1`

func (p *postgres) Keys(ctx context.Context, conn *sql.Conn, limit int) ([]JournalKey, error) {
	// Autocommit: the horizon starts at the reading transaction's start.
	rows, err := conn.QueryContext(ctx, pgKeys, limit, p.opts.Settle.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("reading the journal's commit order: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []JournalKey
	for rows.Next() {
		var k JournalKey
		if err := rows.Scan(&k.ID, &k.CommitTime, &k.Commit); err != nil {
			return nil, fmt.Errorf("reading the journal's commit order: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the journal's commit order: %w", err)
	}
	return out, nil
}

func (*postgres) Rows(ctx context.Context, conn *sql.Conn, ids []int64) ([]JournalRow, error) {
	rows, err := conn.QueryContext(ctx, `SELECT journal_id, table_name, operation, old_row::text, new_row::text,
			module_name, additional_info, user_id, txid::text
		  FROM alertsync.alertsync_journal
		 WHERE journal_id = ANY($1::bigint[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("reading the journal: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := make([]JournalRow, 0, len(ids))
	for rows.Next() {
		var (
			r        JournalRow
			old, new sql.NullString
		)
		if err := rows.Scan(&r.ID, &r.Table, &r.Operation, &old, &new, &r.Module, &r.AdditionalInfo, &r.User,
			&r.TxID); err != nil {
			return nil, fmt.Errorf("reading the journal: %w", err)
		}
		if old.Valid {
			r.Old = []byte(old.String)
		}
		if new.Valid {
			r.New = []byte(new.String)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the journal: %w", err)
	}
	return out, nil
}

// pgAlertContexts looks up the booking, prison number and mapping of each
// (booking, seq) pair of $1 and $2. The mapping is joined on its unique
// NOMIS key alone and a deleted row's id dropped after: with "deleted_at IS
// NULL" in the join, a table not analyzed yet (a new install, growing fast)
// is estimated at 0.5% of its rows, and the planner chose a nested loop over
// a materialized scan of the whole mapping, one per journal row, that took
// 100-300 ms per batch at a few thousand mappings.
const pgAlertContexts = `SELECT k.book::bigint, k.seq::int, o.offender_id_display, b.booking_seq::int,
		       CASE WHEN m.deleted_at IS NULL THEN m.dps_alert_id::text END
		  FROM unnest($1::numeric[], $2::numeric[]) AS k(book, seq)
		  LEFT JOIN oms_owner.offender_bookings b ON b.offender_book_id = k.book
		  LEFT JOIN oms_owner.offenders o ON o.offender_id = b.offender_id
		  LEFT JOIN alertsync.alertsync_alert_mapping m ON m.offender_book_id = k.book AND m.alert_seq = k.seq`

func (*postgres) AlertContexts(ctx context.Context, conn *sql.Conn, keys []AlertKey) (map[AlertKey]AlertContext, error) {
	out := make(map[AlertKey]AlertContext, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	books := make([]int64, len(keys))
	seqs := make([]int32, len(keys))
	for i, k := range keys {
		books[i], seqs[i] = k.BookID, k.Seq
	}
	rows, err := conn.QueryContext(ctx, pgAlertContexts, books, seqs)
	if err != nil {
		return nil, fmt.Errorf("looking up alert bookings and mappings: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			k   AlertKey
			c   AlertContext
			no  sql.NullString
			seq sql.NullInt32
			id  sql.NullString
		)
		if err := rows.Scan(&k.BookID, &k.Seq, &no, &seq, &id); err != nil {
			return nil, fmt.Errorf("looking up alert bookings and mappings: %w", err)
		}
		if no.Valid {
			c.OffenderNo = &no.String
		}
		if seq.Valid {
			c.BookingSeq = &seq.Int32
		}
		if id.Valid {
			c.DPSAlertID = &id.String
		}
		out[k] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("looking up alert bookings and mappings: %w", err)
	}
	return out, nil
}

func (*postgres) Delete(ctx context.Context, conn *sql.Conn, ids []int64, resyncs []Resync) error {
	const del = "DELETE FROM alertsync.alertsync_journal WHERE journal_id = ANY($1::bigint[])"
	if len(resyncs) == 0 {
		if _, err := conn.ExecContext(ctx, del, ids); err != nil {
			return fmt.Errorf("deleting %d published journal rows: %w", len(ids), err)
		}
		return nil
	}
	nos, dues, reasons := resyncColumns(resyncs)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("deleting %d published journal rows: %w", len(ids), err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, del, ids); err != nil {
		return fmt.Errorf("deleting %d published journal rows: %w", len(ids), err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO alertsync.alertsync_resync AS r (offender_no, due_at, reason)
		SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[])
		ON CONFLICT (offender_no) DO UPDATE SET due_at = greatest(r.due_at, excluded.due_at)`, nos, dues, reasons); err != nil {
		return fmt.Errorf("recording %d prisoner resyncs: %w", len(nos), err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("deleting %d published journal rows and recording resyncs: %w", len(ids), err)
	}
	return nil
}

func (*postgres) PendingResyncs(ctx context.Context, conn *sql.Conn) ([]Resync, error) {
	return collect(ctx, conn, "pending prisoner resyncs", scanResync,
		"SELECT offender_no, due_at, reason FROM alertsync.alertsync_resync ORDER BY due_at, offender_no")
}

func (*postgres) DoneResyncs(ctx context.Context, conn *sql.Conn, done []Resync) error {
	if len(done) == 0 {
		return nil
	}
	nos, dues, _ := resyncColumns(done)
	if _, err := conn.ExecContext(ctx, `DELETE FROM alertsync.alertsync_resync r
		 USING unnest($1::text[], $2::timestamptz[]) AS d(no, due)
		 WHERE r.offender_no = d.no AND r.due_at = d.due`, nos, dues); err != nil {
		return fmt.Errorf("removing %d published prisoner resyncs: %w", len(done), err)
	}
	return nil
}

// pgRequestResyncs journals the resync requests of $1 (their NEW_ROW
// texts), in order, through the function of migration 0013 (the only way
// the redrive's user may write to the journal); it returns the rows written
// and wakes a waiting capture at commit.
const pgRequestResyncs = "SELECT alertsync.alertsync_request_resyncs($1::text[], $2)"

func (*postgres) RequestResyncs(ctx context.Context, conn *sql.Conn, reqs []ResyncRequest) error {
	if len(reqs) == 0 {
		return nil
	}
	imgs, err := requestImages(reqs)
	if err != nil {
		return err
	}
	var n int
	if err := conn.QueryRowContext(ctx, pgRequestResyncs, imgs, RequestModule).Scan(&n); err != nil {
		return fmt.Errorf("journaling %d resync requests: %w", len(reqs), err)
	}
	if n != len(reqs) {
		return fmt.Errorf("journaling %d resync requests: %d written", len(reqs), n)
	}
	return nil
}

func (*postgres) PrisonNumbers(ctx context.Context, conn *sql.Conn, offenderIDs []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(offenderIDs))
	if len(offenderIDs) == 0 {
		return out, nil
	}
	rows, err := conn.QueryContext(ctx, `SELECT offender_id::bigint, offender_id_display FROM oms_owner.offenders
		 WHERE offender_id = ANY($1::numeric[])`, offenderIDs)
	if err != nil {
		return nil, fmt.Errorf("looking up prison numbers: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			id int64
			no string
		)
		if err := rows.Scan(&id, &no); err != nil {
			return nil, fmt.Errorf("looking up prison numbers: %w", err)
		}
		out[id] = no
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("looking up prison numbers: %w", err)
	}
	return out, nil
}

// pgSnapshotPosition is the position of a repeatable-read transaction's
// snapshot, run as its first statement (which takes the snapshot): the
// horizon of alertsync_journal_read (0001). A transaction the snapshot does
// not see commits at or after the horizon, so each of its journal rows is
// positioned after (horizon, 0).
const pgSnapshotPosition = `SELECT h.ts, (extract(epoch FROM h.ts) * 1000000)::bigint
	  FROM (SELECT least(transaction_timestamp() - $1::interval,
	                     (SELECT min(pg_xact_commit_timestamp(x::xid))
	                        FROM pg_snapshot_xip(pg_current_snapshot()) AS x)) AS ts) h`

func (p *postgres) BeginSnapshot(ctx context.Context, conn *sql.Conn) (*sql.Tx, JournalKey, error) {
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, JournalKey{}, fmt.Errorf("starting a snapshot: %w", err)
	}
	var pos JournalKey
	if err := tx.QueryRowContext(ctx, pgSnapshotPosition, p.opts.Settle.String()).Scan(&pos.CommitTime, &pos.Commit); err != nil {
		_ = tx.Rollback()
		return nil, JournalKey{}, fmt.Errorf("starting a snapshot: %w", err)
	}
	return tx, pos, nil
}

func (*postgres) SnapshotJournal(ctx context.Context, tx *sql.Tx) ([]int64, error) {
	return collect(ctx, tx, "the journal ids of a snapshot", scanID, "SELECT journal_id FROM alertsync.alertsync_journal")
}

// pgCurrentAlerts lists the alerts on current bookings with their prison
// numbers and DPS ids; $1 NULL for every prisoner. Only the narrow list of
// current bookings is sorted (a sort of the alert rows with their JSON
// spilled hundreds of MB to disk on a million alerts); each booking's
// alerts then come by the primary key in ALERT_SEQ order, in a nested loop
// that keeps the bookings' order (OFFSET 0 keeps both subqueries from being
// flattened into a join the planner could reorder). The capture checks that
// each prisoner's rows come together.
const pgCurrentAlerts = `SELECT k.no, k.book::bigint, to_json(a),
	       (SELECT m.dps_alert_id::text FROM alertsync.alertsync_alert_mapping m
	         WHERE m.offender_book_id = a.offender_book_id AND m.alert_seq = a.alert_seq AND m.deleted_at IS NULL)
	  FROM (SELECT o.offender_id_display AS no, b.offender_book_id AS book
	          FROM oms_owner.offender_bookings b
	          JOIN oms_owner.offenders o ON o.offender_id = b.offender_id
	         WHERE b.booking_seq = 1 AND ($1::text[] IS NULL OR o.offender_id_display = ANY($1::text[]))
	         ORDER BY 1, 2 OFFSET 0) k
	  LEFT JOIN LATERAL (SELECT * FROM oms_owner.offender_alerts x
	                      WHERE x.offender_book_id = k.book ORDER BY x.alert_seq OFFSET 0) a ON true`

func (*postgres) CurrentAlerts(ctx context.Context, tx *sql.Tx, nos []string, fn func(*PrisonerRow) error) error {
	var arg any // NULL: every prisoner
	if nos != nil {
		arg = nos
	}
	rows, err := tx.QueryContext(ctx, pgCurrentAlerts, arg)
	if err != nil {
		return fmt.Errorf("reading alerts on current bookings: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var (
		r     PrisonerRow
		alert sql.RawBytes
		id    sql.NullString
	)
	for rows.Next() {
		if err := rows.Scan(&r.OffenderNo, &r.BookID, &alert, &id); err != nil {
			return fmt.Errorf("reading alerts on current bookings: %w", err)
		}
		r.Alert = nil
		if alert != nil {
			r.Alert = alert
		}
		r.DPSAlertID = nil
		if id.Valid {
			r.DPSAlertID = &id.String
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading alerts on current bookings: %w", err)
	}
	return nil
}

func (*postgres) InitialLoad(ctx context.Context, conn *sql.Conn) (InitialLoadState, bool, error) {
	var s InitialLoadState
	err := conn.QueryRowContext(ctx, `SELECT position_commit, position_change, alerts, prisoners, completed_at
		  FROM alertsync.alertsync_capture_state WHERE name = 'initial_load'`).
		Scan(&s.Position.Commit, &s.Position.ID, &s.Alerts, &s.Prisoners, &s.CompletedAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return InitialLoadState{}, false, nil
	case err != nil:
		return InitialLoadState{}, false, fmt.Errorf("reading the initial load's record: %w", err)
	}
	return s, true, nil
}

func (*postgres) RecordInitialLoad(ctx context.Context, conn *sql.Conn, s InitialLoadState) error {
	if _, err := conn.ExecContext(ctx, `INSERT INTO alertsync.alertsync_capture_state AS c
		  (name, position_commit, position_change, alerts, prisoners, completed_at)
		VALUES ('initial_load', $1, $2, $3, $4, $5)
		ON CONFLICT (name) DO UPDATE SET position_commit = excluded.position_commit, position_change = excluded.position_change,
		  alerts = excluded.alerts, prisoners = excluded.prisoners, completed_at = excluded.completed_at`,
		s.Position.Commit, s.Position.ID, s.Alerts, s.Prisoners, s.CompletedAt); err != nil {
		return fmt.Errorf("recording the initial load: %w", err)
	}
	return nil
}

func (*postgres) Backlog(ctx context.Context, conn *sql.Conn) (int64, time.Time, error) {
	var (
		n      int64
		oldest sql.NullTime
	)
	err := conn.QueryRowContext(ctx, `SELECT count(*), min(coalesce(pg_xact_commit_timestamp(xmin), created_at))
		  FROM alertsync.alertsync_journal`).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("measuring the journal backlog: %w", err)
	}
	return n, oldest.Time, nil
}

func (*postgres) Permanent(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code[:2] {
	case "28", "3D", "42": // authentication, unknown database, undefined object or privilege
		return true
	}
	return pe.Code == "55000" // object_not_in_prerequisite_state: e.g. commit timestamps not tracked
}
