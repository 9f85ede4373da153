package dps

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/failpoint"
)

// snapshot creates the slot with an exported snapshot, publishes every row of
// the captured tables as of that snapshot (op "r"), waits until Kafka has
// acknowledged them all, records the snapshot as done, and returns the slot's
// consistent point, where streaming starts. Rows committed before the point
// are in the snapshot and changes after it in the stream: no gap, no overlap.
func (c *Capture) snapshot(ctx context.Context, ctl *pgx.Conn, repl *pgconn.PgConn, cc *pgx.ConnConfig) (pglogrepl.LSN, error) {
	slot := c.cfg.Capture.Slot
	c.setState(admin.Starting, "taking the initial snapshot")
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{SnapshotAction: "EXPORT_SNAPSHOT", Mode: pglogrepl.LogicalReplication})
	if err != nil {
		return 0, fmt.Errorf("creating replication slot %q: %w", slot, err)
	}
	point, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return 0, fmt.Errorf("parsing consistent point of slot %q: %w", slot, err)
	}
	if _, err := ctl.Exec(ctx, `
		INSERT INTO alertsync.capture_state (slot_name, publication_name, consistent_lsn, snapshot_done, snapshot_rows, snapshot_started_at, updated_at)
		VALUES ($1, $2, $3::pg_lsn, false, 0, now(), now())
		ON CONFLICT (slot_name) DO UPDATE SET publication_name = excluded.publication_name, consistent_lsn = excluded.consistent_lsn,
			snapshot_done = false, snapshot_rows = 0, snapshot_started_at = now(), snapshot_done_at = NULL, updated_at = now()`,
		slot, c.cfg.Capture.Publication, point.String()); err != nil {
		return 0, fmt.Errorf("recording snapshot start: %w", err)
	}
	if err := c.ensureTopics(ctx); err != nil {
		return 0, err
	}
	c.log.Info("initial snapshot started", "slot", slot, "consistent_lsn", point.String(), "snapshot", res.SnapshotName)

	snap, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return 0, fmt.Errorf("connecting for the snapshot: %w", err)
	}
	defer func() { _ = snap.Close(context.WithoutCancel(ctx)) }()
	if _, err := snap.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return 0, fmt.Errorf("starting the snapshot transaction: %w", err)
	}
	if _, err := snap.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+strings.ReplaceAll(res.SnapshotName, "'", "''")+"'"); err != nil {
		return 0, fmt.Errorf("importing snapshot %s: %w", res.SnapshotName, err)
	}
	tx := &Tx{CommitLSN: point, CommitTime: time.Now()}
	ack := c.acker.begin(tx.CommitTime)
	var total int64
	for _, table := range c.cfg.Capture.Tables {
		n, err := c.snapshotTable(ctx, snap.PgConn(), table, tx, ack)
		if err != nil {
			return 0, err
		}
		total += n
		c.log.Info("snapshot of table published", "table", table, "rows", n)
	}
	if _, err := snap.Exec(ctx, "COMMIT"); err != nil {
		return 0, fmt.Errorf("ending the snapshot transaction: %w", err)
	}
	c.acker.commit(ack, point)
	if err := c.drain(24 * time.Hour); err != nil {
		return 0, err
	}
	if _, err := ctl.Exec(ctx, `UPDATE alertsync.capture_state SET snapshot_done = true, snapshot_rows = $2, snapshot_done_at = now(), updated_at = now()
		WHERE slot_name = $1`, slot, total); err != nil {
		return 0, fmt.Errorf("recording snapshot end: %w", err)
	}
	c.log.Info("initial snapshot done", "slot", slot, "rows", total)
	return point, nil
}

// snapshotTable publishes every row of one table, reading it in text format
// so that values convert exactly as the replication stream's do.
func (c *Capture) snapshotTable(ctx context.Context, conn *pgconn.PgConn, table string, tx *Tx, ack *txAck) (int64, error) {
	ts := c.tables[table]
	cols := make([]string, len(ts.info.Columns))
	rel := &Relation{Schema: ts.info.Schema, Table: ts.info.Table}
	for i, col := range ts.info.Columns {
		cols[i] = pgx.Identifier{col.Name}.Sanitize()
		rel.Columns = append(rel.Columns, Column{Name: col.Name, TypeOID: col.TypeOID})
	}
	q := fmt.Sprintf("SELECT %s FROM %s", strings.Join(cols, ", "), pgx.Identifier{ts.info.Schema, ts.info.Table}.Sanitize())
	rr := conn.ExecParams(ctx, q, nil, nil, nil, nil)
	var n int64
	for rr.NextRow() {
		fds := rr.FieldDescriptions()
		vals := rr.Values()
		row := make(Row, len(vals))
		for i, v := range vals {
			if v == nil {
				continue
			}
			x, err := DecodeText(fds[i].DataTypeOID, fds[i].TypeModifier, v, c.loc)
			if err != nil {
				_, _ = rr.Close()
				return n, fmt.Errorf("snapshot of %s.%s column %s: %w", ts.info.Schema, table, fds[i].Name, err)
			}
			row[i] = x
		}
		if err := c.waitForRoom(ctx, time.Second, nil); err != nil {
			_, _ = rr.Close()
			return n, err
		}
		if err := c.emit(ctx, Change{Rel: rel, Op: OpRead, After: row, Tx: tx}, ack, true); err != nil {
			_, _ = rr.Close()
			return n, err
		}
		c.m.snapshotRows.WithLabelValues(table).Inc()
		n++
		failpoint.Hit("capture_dps.snapshot_row")
	}
	if _, err := rr.Close(); err != nil {
		return n, fmt.Errorf("reading %s.%s for the snapshot: %w", ts.info.Schema, table, err)
	}
	return n, nil
}
