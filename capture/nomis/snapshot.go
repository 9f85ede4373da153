package nomis

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/avrobin"
)

// This file reads snapshots: prisoner resyncs, due capture.resync_delay after
// the last change that called for them, and the initial load.

// maxResyncsPerRead bounds the prisoners of one resync snapshot read.
const maxResyncsPerRead = 1000

// loadPending reads the pending resyncs recorded in the database; they are
// kept in memory from then on (addPending, resyncDue).
func (c *Capture) loadPending(ctx context.Context, conn *sql.Conn) error {
	rs, err := c.dialect.PendingResyncs(ctx, conn)
	if err != nil {
		return err
	}
	c.pending = make(map[string]Resync, len(rs))
	c.addPending(rs)
	return nil
}

// addPending merges resyncs recorded in the database into the pending set:
// the later Due, the first reason.
func (c *Capture) addPending(rs []Resync) {
	for _, r := range rs {
		if p, ok := c.pending[r.OffenderNo]; ok {
			if r.Due.After(p.Due) {
				p.Due = r.Due
			}
			c.pending[r.OffenderNo] = p
			continue
		}
		c.pending[r.OffenderNo] = r
	}
	c.m.resyncPending.Set(float64(len(c.pending)))
}

// nextDue returns the earliest Due of the pending resyncs.
func (c *Capture) nextDue() (time.Time, bool) {
	var next time.Time
	for _, r := range c.pending {
		if next.IsZero() || r.Due.Before(next) {
			next = r.Due
		}
	}
	return next, !next.IsZero()
}

// resyncsOf returns the prisoner resyncs a batch's changes call for, due
// capture.resync_delay from now, and the batch's resync requests by result
// (logRequests); offender ids are resolved to prison numbers in one round
// trip.
func (c *Capture) resyncsOf(ctx context.Context, conn *sql.Conn, changes []*change, contexts map[AlertKey]AlertContext) ([]Resync, map[string]int, error) {
	var triggers []resyncTrigger
	for _, ch := range changes {
		if ch != nil {
			triggers = append(triggers, ch.resyncTriggers(contexts)...)
		}
	}
	if len(triggers) == 0 {
		return nil, c.logRequests(changes, contexts, nil), nil
	}
	var numbers map[int64]string
	if ids := needsOffenderIDs(triggers); len(ids) > 0 {
		var err error
		if numbers, err = c.dialect.PrisonNumbers(ctx, conn, ids); err != nil {
			return nil, nil, err
		}
	}
	// Microseconds: the database keeps them, and DoneResyncs compares Due.
	due := time.Now().Add(c.cfg.Capture.ResyncDelay).Truncate(time.Microsecond)
	requests := c.logRequests(changes, contexts, numbers)
	return resolveResyncs(triggers, numbers, due), requests, nil
}

// logRequests logs each resync request of a batch as it is read (before it
// is acknowledged: after a crash it is read, and logged, again) and whether
// it names a prisoner NOMIS has now (one that does not is dropped: nothing
// to resync), and counts them by result: "resync" or "no_prisoner" (nil
// when the batch has none).
func (c *Capture) logRequests(changes []*change, contexts map[AlertKey]AlertContext, numbers map[int64]string) map[string]int {
	var out map[string]int
	for _, ch := range changes {
		if ch == nil || ch.request == nil {
			continue
		}
		tr, ok := ch.request.requestTrigger(contexts)
		no := tr.offenderNo
		if ok && no == "" {
			no = numbers[tr.offenderID]
		}
		if out == nil {
			out = map[string]int{}
		}
		attrs := []any{"journal_id", ch.row.ID, "request", ch.request.String(), "reason", ch.request.Reason}
		if no == "" {
			out["no_prisoner"]++
			c.log.Warn("resync request names no prisoner NOMIS has: nothing to resync", attrs...)
			continue
		}
		out["resync"]++
		c.log.Info("resync request read", append(attrs, "offender_no", no)...)
	}
	return out
}

// resyncDue reads, publishes and clears the resyncs that are due.
func (c *Capture) resyncDue(ctx context.Context, conn *sql.Conn) error {
	now := time.Now()
	var due []Resync
	for _, r := range c.pending {
		if !r.Due.After(now) {
			due = append(due, r)
		}
	}
	if len(due) == 0 {
		return nil
	}
	slices.SortFunc(due, func(a, b Resync) int { return a.Due.Compare(b.Due) })
	due = due[:min(len(due), maxResyncsPerRead)]
	nos := make([]string, len(due))
	reasons := make(map[string]string, len(due))
	for i, r := range due {
		nos[i] = r.OffenderNo
		reasons[r.OffenderNo] = r.Reason
	}
	slices.Sort(nos)
	st, err := c.readSnapshots(ctx, conn, nos, func(no string) string { return reasons[no] })
	if err != nil {
		return err
	}
	if err := c.await(ctx, st.ack, now); err != nil {
		return err
	}
	if err := c.dialect.DoneResyncs(ctx, conn, due); err != nil {
		return err
	}
	for _, r := range due {
		if p, ok := c.pending[r.OffenderNo]; ok && p.Due.Equal(r.Due) {
			delete(c.pending, r.OffenderNo)
		}
	}
	c.m.resyncPending.Set(float64(len(c.pending)))
	for reason, n := range st.byReason {
		c.m.snapshots.WithLabelValues(reason).Add(float64(n))
	}
	c.log.Info("prisoner resync snapshots published", "prisoners", len(nos), "alerts", st.alerts,
		"position_commit", st.pos.Commit)
	return nil
}

// snapshotRun is one snapshot read being published.
type snapshotRun struct {
	ack       *batchAck
	pos       JournalKey
	journal   []int64 // journal rows the snapshot reflects (initial load only)
	alerts    int64   // alert rows read
	prisoners int64   // prisoner snapshots produced
	withheld  int64   // prisoner snapshots not published: an alert went to the DLQ
	byReason  map[string]int
}

// readSnapshots reads, in one snapshot transaction, the alerts on the
// current bookings of nos (of every prisoner when nos is nil: the initial
// load, which also publishes each alert as an op r record and returns the
// journal rows the snapshot reflects) and produces one prisoner snapshot per
// prisoner, an empty one for a number of nos with no current booking. It
// returns once everything is produced; the caller awaits run.ack. A row that
// cannot be read goes to the DLQ and its prisoner's snapshot is withheld (a
// snapshot without it would delete it downstream).
func (c *Capture) readSnapshots(ctx context.Context, conn *sql.Conn, nos []string, reason func(no string) string) (*snapshotRun, error) {
	tx, pos, err := c.dialect.BeginSnapshot(ctx, conn)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	run := &snapshotRun{ack: newBatchAck(), pos: pos, byReason: map[string]int{}}
	initial := nos == nil
	if initial {
		if run.journal, err = c.dialect.SnapshotJournal(ctx, tx); err != nil {
			return nil, err
		}
	}
	src := &origin{pos: pos, snapshot: true}
	alerts := c.b.tables[TableOffenderAlerts]
	now := time.Now()
	var (
		cur     *prisonerSnapshot
		bad     bool
		seen    = make(map[string]bool, len(nos)) // prisoners whose rows have come
		lastLog = now
	)
	seq := int32(1)
	flush := func() error {
		if cur == nil {
			return nil
		}
		s := cur
		cur = nil
		if bad {
			run.withheld++
			c.m.errors.WithLabelValues("snapshot").Inc()
			c.log.Warn("prisoner snapshot withheld: an alert on the current booking went to the DLQ", "offender_no", s.offenderNo)
			return nil
		}
		return c.produceSnapshot(run, s, src, now)
	}
	err = c.dialect.CurrentAlerts(ctx, tx, nos, func(pr *PrisonerRow) error {
		if cur == nil || cur.offenderNo != pr.OffenderNo {
			if err := flush(); err != nil {
				return err
			}
			if seen[pr.OffenderNo] {
				// A snapshot must hold all of a prisoner's alerts.
				return fmt.Errorf("reading alerts on current bookings: the rows of prisoner %s do not come together (%s dialect)",
					pr.OffenderNo, c.dialect.Name())
			}
			seen[pr.OffenderNo] = true
			cur, bad = &prisonerSnapshot{offenderNo: pr.OffenderNo, reason: ReasonInitialLoad}, false
			if !initial {
				cur.reason = reason(pr.OffenderNo)
			}
		}
		if !slices.Contains(cur.bookings, pr.BookID) {
			cur.bookings = append(cur.bookings, pr.BookID)
		}
		if pr.Alert == nil {
			return nil
		}
		run.alerts++
		r, err := alerts.image("row", pr.Alert, c.b.loc)
		if err != nil {
			var rerr *RowError
			if !errors.As(err, &rerr) {
				return err
			}
			bad = true
			jr := &JournalRow{Table: TableOffenderAlerts, Operation: "R", New: slices.Clone(pr.Alert),
				Commit: pos.Commit, CommitTime: pos.CommitTime}
			rec, err := c.dlqRecord(jr, rerr, now)
			if err != nil {
				return err
			}
			c.produce(rec, run.ack)
			c.m.dlq.WithLabelValues(rerr.Kind).Inc()
			return nil
		}
		cur.alerts = append(cur.alerts, snapshotAlert{row: r, dpsID: pr.DPSAlertID})
		if initial {
			o := outRecord{table: alerts, op: opRead, key: alerts.keyOf(r), after: r, src: src,
				context: AlertContext{OffenderNo: &cur.offenderNo, BookingSeq: &seq, DPSAlertID: pr.DPSAlertID}}
			recs, err := c.encode([]outRecord{o}, now)
			if err != nil {
				return err
			}
			c.produce(recs[0], run.ack)
			c.m.initialLoadAlerts.Inc()
			if err := run.ack.result(); err != nil {
				return fmt.Errorf("%w: %w", ErrKafkaRefused, err)
			}
			if t := time.Now(); t.Sub(lastLog) >= 5*time.Second {
				lastLog = t
				c.log.Info("initial load progress", "alerts", run.alerts, "prisoners", run.prisoners,
					"alerts_per_second", int(float64(run.alerts)/t.Sub(now).Seconds()))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	for _, no := range nos { // no current booking: an empty snapshot
		if !seen[no] {
			if err := c.produceSnapshot(run, &prisonerSnapshot{offenderNo: no, reason: reason(no)}, src, now); err != nil {
				return nil, err
			}
		}
	}
	run.ack.seal()
	return run, nil
}

// produceSnapshot encodes and produces one prisoner snapshot.
func (c *Capture) produceSnapshot(run *snapshotRun, s *prisonerSnapshot, src *origin, now time.Time) error {
	kh := avrobin.WireHeader(c.prisoners.Key.ID())
	vh := avrobin.WireHeader(c.prisoners.Value.ID())
	value, err := c.b.appendSnapshot(append(make([]byte, 0, 256+512*len(s.alerts)), vh[:]...), s, src, now)
	if err != nil {
		return fmt.Errorf("encoding the snapshot of prisoner %s: %w", s.offenderNo, err)
	}
	c.produce(&kgo.Record{Topic: c.prisoners.Topic, Key: avrobin.AppendString(kh[:], s.offenderNo), Value: value}, run.ack)
	run.prisoners++
	run.byReason[s.reason]++
	return nil
}

// maybeInitialLoad runs the initial load when asked (Snapshot) or when none
// is recorded and capture.initial_load is auto.
func (c *Capture) maybeInitialLoad(ctx context.Context, conn *sql.Conn) error {
	if !c.Snapshot {
		if c.cfg.Capture.InitialLoad == "never" {
			return nil
		}
		if _, ok, err := c.dialect.InitialLoad(ctx, conn); err != nil || ok {
			return err
		}
	}
	return c.initialLoad(ctx, conn)
}

// initialLoad publishes every alert on a current booking as an op r record
// and one prisoner snapshot per prisoner with a current booking, all read
// in one snapshot; then it deletes the journal rows that snapshot reflects
// (their changes are in it) and records the load. Every change the snapshot
// does not reflect stays in the journal and is published after it, so per
// alert nothing is missed and order is kept. A load cut short (crash, stop,
// outage) is repeated whole at the next start.
func (c *Capture) initialLoad(ctx context.Context, conn *sql.Conn) error {
	began := time.Now()
	c.setState(admin.Starting, "initial load")
	c.log.Info("initial load started")
	c.m.initialLoadRunning.Set(1)
	defer c.m.initialLoadRunning.Set(0)
	run, err := c.readSnapshots(ctx, conn, nil, nil)
	if err != nil {
		return err
	}
	if err := c.await(ctx, run.ack, began); err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Pipeline.Shutdown.Timeout)
	defer cancel()
	for ids := range slices.Chunk(run.journal, c.cfg.Capture.BatchSize) {
		if err := c.dialect.Delete(dctx, conn, ids, nil); err != nil {
			return err
		}
	}
	state := InitialLoadState{Position: run.pos, Alerts: run.alerts, Prisoners: run.prisoners, CompletedAt: time.Now()}
	if err := c.dialect.RecordInitialLoad(dctx, conn, state); err != nil {
		return err
	}
	c.Snapshot = false
	c.m.snapshots.WithLabelValues(ReasonInitialLoad).Add(float64(run.prisoners))
	took := time.Since(began)
	c.log.Info("initial load done", "alerts", run.alerts, "prisoners", run.prisoners, "withheld", run.withheld,
		"journal_rows_folded", len(run.journal), "took", took.Round(time.Millisecond).String(),
		"alerts_per_second", int(float64(run.alerts)/max(took.Seconds(), 0.001)),
		"position_commit", run.pos.Commit)
	return nil
}
