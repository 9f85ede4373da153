package dps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/alertsync/alertsync/internal/admin"
)

// stream starts replication at start and publishes changes until ctx ends or
// an error occurs. On a clean stop it drains in-flight records (bounded by
// shutdown.timeout) and confirms what Kafka acknowledged.
func (c *Capture) stream(ctx context.Context, ctl *pgx.Conn, repl *pgconn.PgConn, start pglogrepl.LSN) error {
	err := pglogrepl.StartReplication(ctx, repl, c.cfg.Capture.Slot, start, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", fmt.Sprintf("publication_names '%s'", c.cfg.Capture.Publication), "messages 'true'"},
	})
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "55006" { // object_in_use: the slot is active elsewhere
			// This process holds the capture lock, so no other capture uses
			// the slot: the walsender of one that just stopped or was killed
			// is still exiting (or another consumer reads the slot). Retried.
			return fmt.Errorf("starting replication on slot %q, still in use by another process: %w", c.cfg.Capture.Slot, err)
		}
		return fmt.Errorf("starting replication on slot %q at %s: %w", c.cfg.Capture.Slot, start, err)
	}
	if err := c.ensureTopics(ctx); err != nil {
		return err
	}
	c.log.Info("streaming", "slot", c.cfg.Capture.Slot, "from", start.String())
	c.setState(admin.Running, "streaming")

	dec := NewDecoder(c.loc, MarkerPrefix)
	users := newTxUsers()
	var (
		cur           *txAck
		lastConfirmed pglogrepl.LSN
		nextStatus    = time.Now()
		nextHeartbeat = time.Now()
		heartbeatOK   = true
	)
	status := func(force bool) error {
		confirmed, _, _, oldest, err := c.acker.state()
		if err != nil {
			return err
		}
		if !oldest.IsZero() {
			c.m.lag.Set(time.Since(oldest).Seconds())
		} else {
			c.m.lag.Set(0)
		}
		if !force && time.Now().Before(nextStatus) {
			return nil
		}
		nextStatus = time.Now().Add(c.cfg.Capture.StatusInterval)
		if err := pglogrepl.SendStandbyStatusUpdate(ctx, repl, pglogrepl.StandbyStatusUpdate{
			WALWritePosition: confirmed, WALFlushPosition: confirmed, WALApplyPosition: confirmed,
		}); err != nil {
			return fmt.Errorf("sending standby status: %w", err)
		}
		if confirmed != lastConfirmed {
			lastConfirmed = confirmed
			c.m.confirmedLSN.Set(float64(confirmed))
			if c.comp != nil {
				c.comp.Position(confirmed.String())
			}
		}
		return nil
	}
	tick := func() error { return status(false) }
	waitingForKafka := false
	watchKafka := func() {
		switch stalled := c.acker.stalled(); {
		case stalled > kafkaStall && !waitingForKafka:
			waitingForKafka = true
			_, inFlight, _, _, _ := c.acker.state()
			c.log.Warn("waiting for Kafka to acknowledge records", "in_flight", inFlight, "waited", stalled.Round(time.Second).String())
			c.setState(admin.Degraded, "waiting for Kafka")
		case stalled <= kafkaStall && waitingForKafka:
			waitingForKafka = false
			c.log.Info("Kafka acknowledges records again")
			c.setState(admin.Running, "streaming")
		}
	}

	for {
		if ctx.Err() != nil {
			return c.stop(ctx, repl)
		}
		if err := status(false); err != nil {
			return err
		}
		watchKafka()
		if time.Now().After(nextHeartbeat) {
			nextHeartbeat = time.Now().Add(c.cfg.Capture.Heartbeat)
			c.heartbeat(ctx, ctl, &heartbeatOK)
		}
		if err := c.waitForRoom(ctx, c.cfg.Capture.StatusInterval, tick); err != nil {
			if ctx.Err() != nil {
				return c.stop(ctx, repl)
			}
			return err
		}
		// A read deadline on the socket, not a context: a context with a
		// deadline costs pgconn a watcher per message, and a timeout leaves
		// the connection usable either way.
		if err := repl.Conn().SetReadDeadline(nextStatus); err != nil {
			return fmt.Errorf("setting the replication read deadline: %w", err)
		}
		raw, err := repl.ReceiveMessage(context.Background())
		if err != nil {
			if pgconn.Timeout(err) || ctx.Err() != nil {
				continue
			}
			return fmt.Errorf("receiving from slot %q: %w", c.cfg.Capture.Slot, err)
		}
		switch msg := raw.(type) {
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("replication stream: %w", pgconn.ErrorResponseToPgError(msg))
		case *pgproto3.CopyData:
			if len(msg.Data) == 0 {
				continue
			}
			if isKeepalive(msg) {
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
				if err != nil {
					return fmt.Errorf("parsing keepalive: %w", err)
				}
				if cur == nil {
					c.acker.skipTo(ka.ServerWALEnd)
				}
				if ka.ReplyRequested {
					if err := status(true); err != nil {
						return err
					}
				}
				continue
			}
			if msg.Data[0] != pglogrepl.XLogDataByteID {
				continue
			}
			xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
			if err != nil {
				return fmt.Errorf("parsing XLogData: %w", err)
			}
			ev, err := dec.Decode(xld.WALStart, xld.WALData)
			if err != nil {
				c.m.errors.WithLabelValues("decode").Inc()
				return fmt.Errorf("decoding change at %s: %w", xld.WALStart, err)
			}
			switch {
			case ev.Begin != nil:
				cur = c.acker.begin(ev.Begin.CommitTime)
			case ev.Commit != nil:
				if cur != nil {
					// The transaction's alert changes, held back until its
					// audit events named their users.
					without := users.overflow
					for _, ch := range users.held {
						user := users.of(ch)
						if user == "" {
							without++
						}
						if err := c.emitUser(ctx, ch, cur, false, user); err != nil {
							return err
						}
					}
					c.m.withoutUser.Add(float64(without))
					c.acker.commit(cur, ev.Commit.EndLSN)
				}
				users.reset()
				cur = nil
			case ev.Relation != nil:
				if err := c.onRelation(ctx, ctl, ev.Relation); err != nil {
					return err
				}
			}
			for _, ch := range ev.Changes {
				if cur == nil {
					return &ProtocolError{WALStart: ch.LSN, Reason: "change outside a transaction"}
				}
				if users.hold(ch) {
					continue
				}
				if err := c.emit(ctx, ch, cur, false); err != nil {
					return err
				}
			}
		}
	}
}

// kafkaStall is how long records may wait for any acknowledgement before the
// capture reports that it is waiting for Kafka.
const kafkaStall = 10 * time.Second

// onRelation handles a new or changed relation: when its columns differ from
// the table's bound schema (ALTER TABLE … ADD COLUMN while running), it
// reloads the catalog and registers the new schema version.
func (c *Capture) onRelation(ctx context.Context, ctl *pgx.Conn, rel *Relation) error {
	ts, ok := c.tables[rel.Table]
	if !ok || rel.Schema != c.cfg.Capture.Schema {
		return nil
	}
	delete(ts.shapes, rel.ID)
	if _, err := newRowShape(ts.info, rel); err == nil && len(rel.Columns) == len(ts.info.Columns) {
		return nil // same columns as bound
	}
	old := ts.tc.Value.ID()
	if err := c.bindTable(ctx, ctl, rel.Table); err != nil {
		return err
	}
	c.log.Info("table schema changed; new schema registered", "table", rel.Table,
		"old_schema_id", old, "new_schema_id", c.tables[rel.Table].tc.Value.ID())
	return nil
}

// heartbeat emits a non-transactional logical message so that an idle
// database's slot advances, and updates the retained-WAL metric.
func (c *Capture) heartbeat(ctx context.Context, ctl *pgx.Conn, ok *bool) {
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if *ok {
		if _, err := ctl.Exec(hctx, "SELECT pg_logical_emit_message(false, $1, '')", heartbeatPrefix); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42501" {
				*ok = false
				c.log.Warn("heartbeat messages disabled: the capture user may not call pg_logical_emit_message; an idle slot advances only on keepalives", "err", err)
			} else {
				c.log.Debug("heartbeat failed", "err", err)
			}
		}
	}
	var retained *int64
	if err := ctl.QueryRow(hctx, `SELECT (pg_current_wal_lsn() - restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1`,
		c.cfg.Capture.Slot).Scan(&retained); err == nil && retained != nil {
		c.m.retainedWAL.Set(float64(*retained))
	}
}

// stop drains in-flight records and confirms the final position.
func (c *Capture) stop(ctx context.Context, repl *pgconn.PgConn) error {
	c.setState(admin.Stopping, "draining")
	err := c.drain(c.cfg.Pipeline.Shutdown.Timeout)
	confirmed, _, _, _, _ := c.acker.state()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := pglogrepl.SendStandbyStatusUpdate(sctx, repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: confirmed, WALFlushPosition: confirmed, WALApplyPosition: confirmed,
	}); serr != nil && err == nil {
		c.log.Warn("final standby status not sent", "err", serr)
	}
	c.log.Info("stopped", "confirmed_lsn", confirmed.String())
	return err
}
