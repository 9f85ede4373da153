package nomis

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/avrobin"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/schemas"
)

// Deps are the parts a Capture runs with, made by the caller (the command, or
// a test with kfake and srfake).
type Deps struct {
	// Kafka produces the records. Its buffer (kgo.MaxBufferedRecords) must
	// hold a whole batch: at least Options.BufferedRecords().
	Kafka *kgo.Client
	// Registry registers the schemas.
	Registry schemas.Registry
	// Admin holds the metrics registry and the component state; may be nil.
	Admin *admin.Server
	// Logger logs; nil discards.
	Logger *slog.Logger
	// Version is the alertsync version, in source.version.
	Version string
	// Dialect replaces the dialect of nomis.dialect (tests wrap the real
	// one to inject faults); nil for the configured one.
	Dialect Dialect
}

// Capture is the NOMIS capture process.
type Capture struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	m       *metrics
	comp    *admin.Component
	codec   *schemas.Codec
	dialect Dialect
	b       builder

	// Snapshot makes the next session start with an initial load, whether
	// one is recorded or not (alertsync capture nomis --snapshot); it is
	// cleared once the load is acknowledged.
	Snapshot bool

	migrated  bool
	bound     map[string]*schemas.TopicCodec // by table name; nil until bound
	prisoners *schemas.TopicCodec            // nomis.alertsync.prisoner_alerts
	dlq       *schemas.TopicCodec
	pending   map[string]Resync // prisoner resyncs recorded and not yet published, by prison number
	nextStats time.Time
	streaming bool          // the current session reached the capture loop
	patience  time.Duration // wait for a batch's acknowledgements before reporting degraded
}

// lockRetry is the interval of lock attempts with capture.lock_wait.
const lockRetry = time.Second

// lockGrace is how long a capture without capture.lock_wait still tries for
// the lock before it gives up: a predecessor that has just stopped (a
// restart) may hold it until its database session has ended.
const lockGrace = 5 * time.Second

// kafkaPatience is how long the capture waits for a batch's
// acknowledgements before it reports itself degraded.
const kafkaPatience = 10 * time.Second

// New returns a capture for cfg (validated by the caller).
func New(cfg Config, deps Deps) (*Capture, error) {
	loc, err := time.LoadLocation(cfg.Capture.Timezone)
	if err != nil {
		return nil, fmt.Errorf("capture.timezone: %w", err)
	}
	tables, err := loadTables()
	if err != nil {
		return nil, err
	}
	d := deps.Dialect
	if d == nil {
		if d, err = NewDialect(cfg.NOMIS.Dialect, cfg.Capture); err != nil {
			return nil, fmt.Errorf("nomis.dialect: %w", err)
		}
	}
	if deps.Kafka == nil {
		return nil, errors.New("capture nomis: no Kafka client")
	}
	if n, _ := deps.Kafka.OptValue(kgo.MaxBufferedRecords).(int64); n < int64(cfg.Capture.BufferedRecords()) {
		return nil, fmt.Errorf("capture nomis: the Kafka client buffers %d records, a batch of %d rows needs %d (kgo.MaxBufferedRecords)",
			n, cfg.Capture.BatchSize, cfg.Capture.BufferedRecords())
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Capture{cfg: cfg, deps: deps, log: deps.Logger, dialect: d,
		codec: schemas.New(deps.Registry, schemas.WithTopicPrefix(cfg.Pipeline.Topics.Prefix), schemas.WithLogger(deps.Logger)),
		b:     builder{tables: tables, loc: loc, version: deps.Version}, patience: kafkaPatience}
	if deps.Admin != nil {
		c.m = newMetrics(deps.Admin.Registry())
		c.comp = deps.Admin.Component("capture-nomis")
	} else {
		c.m = newMetrics(nil)
	}
	return c, nil
}

func (c *Capture) setState(s admin.State, detail string) {
	if c.comp != nil {
		c.comp.Set(s, detail)
	}
}

// Run captures until ctx is cancelled (a clean stop returns nil) or an error a
// human must fix occurs. NOMIS, Kafka and registry outages are retried with
// backoff.
func (c *Capture) Run(ctx context.Context) error {
	h, err := c.dialect.Open(c.cfg.NOMIS.NOMIS)
	if err != nil {
		c.m.errors.WithLabelValues("fatal").Inc()
		c.setState(admin.Failed, err.Error())
		return err
	}
	defer func() { _ = h.Close() }()
	backoff := min(time.Second, c.cfg.Capture.MaxBackoff)
	for {
		c.streaming = false
		err := c.session(ctx, h)
		if ctx.Err() != nil {
			c.setState(admin.Stopped, "")
			return nil
		}
		if err == nil {
			continue
		}
		if c.permanent(err) {
			c.m.errors.WithLabelValues("fatal").Inc()
			c.setState(admin.Failed, err.Error())
			return err
		}
		if c.streaming {
			backoff = min(time.Second, c.cfg.Capture.MaxBackoff)
		}
		dep, kind := "NOMIS", "nomis"
		switch {
		case errors.Is(err, kafka.ErrUnreachable):
			dep, kind = "Kafka", "kafka"
		case errors.Is(err, errRegistry):
			dep, kind = "the schema registry", "registry"
		}
		c.m.errors.WithLabelValues(kind).Inc()
		if c.comp != nil {
			c.comp.Error(err)
		}
		wait := backoff/2 + rand.N(backoff/2+1) //nolint:gosec // jitter, not security
		c.log.Warn("waiting for "+dep, "err", err, "retry_in", wait.String())
		c.setState(admin.Degraded, "waiting for "+dep)
		select {
		case <-ctx.Done():
			c.setState(admin.Stopped, "")
			return nil
		case <-time.After(wait):
		}
		backoff = min(backoff*2, c.cfg.Capture.MaxBackoff)
	}
}

// permanent reports whether err needs a human rather than a retry.
func (c *Capture) permanent(err error) bool {
	for _, e := range []error{ErrLocked, ErrNoJournal, ErrNoNOMISTables, ErrCommitOrder, ErrKafkaRefused, ErrDialect,
		schemas.ErrIncompatibleSchema, migrate.ErrChecksumMismatch, migrate.ErrUnknownVersion, kafka.ErrPartitionMismatch} {
		if errors.Is(err, e) {
			return true
		}
	}
	return c.dialect.Permanent(err)
}

// session connects, takes the lock, prepares the journal, schemas and
// topics, and captures until an error or ctx ends.
func (c *Capture) session(ctx context.Context, h *sql.DB) error {
	c.setState(admin.Starting, "connecting to NOMIS")
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Capture.ConnectTimeout)
	conn, err := h.Conn(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("connecting to NOMIS (%s dialect): %w", c.dialect.Name(), err)
	}
	locked := false
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if locked {
			// Release the lock before closing: the server drops a closed
			// session's locks only once its backend has exited, which a
			// capture started right after this one stops would see as
			// ErrLocked.
			_ = c.dialect.Unlock(rctx, conn)
		}
		// Close the connection rather than pool it: it listens for
		// wake-ups and was the lock's session.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		_ = conn.Close()
	}()

	if err := c.lock(ctx, conn); err != nil {
		return err
	}
	locked = true
	if c.cfg.Capture.Migrate && !c.migrated {
		if err := c.dialect.Migrate(ctx, h, c.log); err != nil {
			return err
		}
		c.migrated = true
	}
	if c.b.db, err = c.dialect.Check(ctx, conn); err != nil {
		return err
	}
	if err := c.bind(ctx); err != nil {
		return err
	}
	if err := c.ensureTopics(ctx); err != nil {
		return err
	}
	w, err := c.dialect.Listen(ctx, conn)
	if err != nil {
		return err
	}
	if err := c.loadPending(ctx, conn); err != nil {
		return err
	}
	if err := c.maybeInitialLoad(ctx, conn); err != nil {
		return err
	}
	// The second connection reads batches while the first deletes them.
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Capture.ConnectTimeout)
	rconn, err := h.Conn(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("connecting to NOMIS (%s dialect): %w", c.dialect.Name(), err)
	}
	defer func() { _ = rconn.Close() }()
	c.streaming = true
	c.log.Info("capturing", "journal", c.dialect.JournalTable(), "dialect", c.dialect.Name(), "db", c.b.db)
	c.setState(admin.Running, "capturing")
	return c.loop(ctx, conn, rconn, w)
}

// lock takes the capture lock for the session, or waits for it with
// capture.lock_wait.
func (c *Capture) lock(ctx context.Context, conn *sql.Conn) error {
	grace := time.Now().Add(lockGrace)
	for {
		ok, holder, err := c.dialect.TryLock(ctx, conn)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if holder == "" {
			holder = "a session that has just ended"
		}
		if !c.cfg.Capture.LockWait && time.Now().Before(grace) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(lockRetry / 4):
			}
			continue
		}
		if !c.cfg.Capture.LockWait {
			return fmt.Errorf("%w %s (held by %s): only one capture nomis may run per NOMIS database; stop the other or set capture.lock_wait=true to wait for it",
				ErrLocked, c.dialect.JournalTable(), holder)
		}
		c.log.Info("waiting for the capture lock held by another process", "journal", c.dialect.JournalTable(), "holder", holder)
		c.setState(admin.Starting, "waiting for the capture lock")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(lockRetry):
		}
	}
}

// bind registers the schemas of the captured topics and the DLQ, once per
// process.
func (c *Capture) bind(ctx context.Context) error {
	if c.bound != nil {
		return nil
	}
	wrap := func(topic string, err error) error {
		if errors.Is(err, schemas.ErrIncompatibleSchema) {
			return fmt.Errorf("registering schemas of %s: %w", topic, err)
		}
		return fmt.Errorf("registering schemas of %s (registry.url): %w: %w", topic, errRegistry, err)
	}
	bound := make(map[string]*schemas.TopicCodec, len(c.b.tables))
	for name, t := range c.b.tables {
		tc, err := c.codec.Bind(ctx, t.topic)
		if err != nil {
			return wrap(t.topic, err)
		}
		bound[name] = tc
	}
	prisoners, err := c.codec.Bind(ctx, schemas.TopicNOMISPrisonerAlerts)
	if err != nil {
		return wrap(schemas.TopicNOMISPrisonerAlerts, err)
	}
	dlq, err := c.codec.Bind(ctx, schemas.TopicDLQ)
	if err != nil {
		return wrap(schemas.TopicDLQ, err)
	}
	c.bound, c.prisoners, c.dlq = bound, prisoners, dlq
	return nil
}

// ensureTopics creates the change topics and the DLQ when missing.
func (c *Capture) ensureTopics(ctx context.Context) error {
	topics := c.cfg.Pipeline.Topics
	return kafka.EnsureTopics(ctx, kadm.NewClient(c.deps.Kafka), topics.Specs(
		kafka.NOMISOffenderAlerts, kafka.NOMISOffenderBookings, kafka.NOMISOffenders, kafka.NOMISPrisonerAlerts, kafka.DLQ)...)
}

// loop reads, publishes and deletes batches of journal rows in commit order:
// the next batch at once after a full one, else after a wake-up or the
// adaptive poll interval. Reading a batch (the journal's order, its rows,
// their alert contexts: database round trips) runs on rconn, a second
// connection; while a full batch is encoded and produced and the previous
// one awaits Kafka's acknowledgements and is deleted on conn, the next one
// is already being read. Batches are deleted one after the other, each once
// its records are acknowledged.
func (c *Capture) loop(ctx context.Context, conn, rconn *sql.Conn, w Waiter) error {
	opts := c.cfg.Capture
	delay := opts.PollMin
	var prev *inflight // the batch produced and not yet deleted, if any
	var order keyList  // this session's commit order, paged through batch by batch
	var ahead chan fetched
	defer func() {
		if ahead != nil {
			<-ahead // rconn is closed after loop returns
		}
	}()
	for {
		if ctx.Err() != nil {
			return c.finish(ctx, conn, prev)
		}
		c.stats(ctx, conn)
		var f fetched
		if ahead != nil {
			f, ahead = <-ahead, nil
		} else {
			f = c.fetch(ctx, rconn, &order, prev.idSet())
		}
		if f.err != nil {
			return f.err
		}
		rows := f.batch.rows
		var cur *inflight
		if len(rows) == 0 {
			if prev == nil {
				c.m.lag.Set(0)
			}
		} else {
			c.m.lag.Set(time.Since(rows[0].CommitTime).Seconds())
			var err error
			if cur, err = c.send(f.batch); err != nil {
				return err
			}
		}
		full := len(rows) >= opts.BatchSize
		if full {
			// Read the next batch while this one is produced and the
			// previous one acknowledged and deleted.
			skip := make(map[int64]struct{}, 2*opts.BatchSize)
			for _, f := range []*inflight{prev, cur} {
				for id := range f.idSet() {
					skip[id] = struct{}{}
				}
			}
			ahead = make(chan fetched, 1)
			go func(ch chan<- fetched) { ch <- c.fetch(ctx, rconn, &order, skip) }(ahead)
		}
		if err := c.finish(ctx, conn, prev); err != nil {
			return err
		}
		prev = cur
		if err := c.resyncDue(ctx, conn); err != nil {
			return err
		}
		if len(rows) > 0 {
			delay = opts.PollMin
			if full {
				continue
			}
		}
		if err := c.finish(ctx, conn, prev); err != nil {
			return err
		}
		prev = nil
		if err := c.resyncDue(ctx, conn); err != nil {
			return err
		}
		wait := delay
		if due, ok := c.nextDue(); ok {
			wait = max(0, min(wait, time.Until(due)))
		}
		woken, err := c.wait(ctx, w, wait)
		if err != nil {
			return err
		}
		switch {
		case woken:
			delay = opts.PollMin
		case len(rows) == 0:
			delay = min(delay*2, opts.PollMax)
		}
	}
}

// fetched is a batch read and decoded, or the error of reading it.
type fetched struct {
	batch *batch
	err   error
}

// batch is a batch of journal rows read, decoded, with the alert contexts
// and prisoner resyncs of its changes.
type batch struct {
	rows     []JournalRow
	changes  []*change // nil where failures holds the row's error
	failures []error
	contexts map[AlertKey]AlertContext
	resyncs  []Resync
	requests map[string]int // resync requests by result
}

// fetch reads the next batch on rconn (read), decodes it and looks up its
// alert contexts and resyncs; skip holds the journal ids of batches read
// but not yet deleted. It touches order and rconn only, so that it can run
// while the loop finishes the previous batch on its own connection.
func (c *Capture) fetch(ctx context.Context, rconn *sql.Conn, order *keyList, skip map[int64]struct{}) fetched {
	begin := time.Now()
	rows, err := c.read(ctx, rconn, order, skip)
	c.m.pollDuration.Observe(time.Since(begin).Seconds())
	if err != nil || len(rows) == 0 {
		return fetched{batch: &batch{}, err: err}
	}
	b := &batch{rows: rows, changes: make([]*change, len(rows)), failures: make([]error, len(rows))}
	parallel(len(rows), func(i int) {
		b.changes[i], b.failures[i] = c.b.decode(&rows[i])
	})
	var keys []AlertKey
	seen := map[AlertKey]bool{}
	for _, ch := range b.changes {
		if ch == nil {
			continue
		}
		for _, k := range ch.alertKeys() {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	if b.contexts, err = c.dialect.AlertContexts(ctx, rconn, keys); err != nil {
		return fetched{err: err}
	}
	if b.resyncs, b.requests, err = c.resyncsOf(ctx, rconn, b.changes, b.contexts); err != nil {
		return fetched{err: err}
	}
	return fetched{batch: b}
}

// maxKeys bounds the keys of one commit-order list: 100 batches of the
// default capture.batch_size, about 20 MB of keys.
const maxKeys = 500_000

// keyList is a list of journal positions in commit order from one
// Dialect.Keys call and how far the capture has read it.
type keyList struct {
	keys []JournalKey
	next int
}

// take returns up to n keys from the list and moves past them.
func (l *keyList) take(n int) []JournalKey {
	n = min(n, len(l.keys)-l.next)
	out := l.keys[l.next : l.next+n]
	l.next += n
	return out
}

// read reads the next batch: the next capture.batch_size keys of the
// session's commit-order list, then their rows. Ordering the journal costs
// a sort of the whole backlog, so it is done once per list, not per batch.
// When the list runs out a new one is read; it starts with the rows still
// in the journal from the old list (the batch in flight and the keys just
// taken, since rows leave the journal only once acknowledged), which are
// skipped, and every other row in it comes after all rows of the old list
// (see Dialect.Keys).
func (c *Capture) read(ctx context.Context, conn *sql.Conn, order *keyList, inflight map[int64]struct{}) ([]JournalRow, error) {
	limit := c.cfg.Capture.BatchSize
	keys := order.take(limit)
	if len(keys) < limit {
		fresh, err := c.dialect.Keys(ctx, conn, maxKeys)
		if err != nil {
			return nil, err
		}
		skip := make(map[int64]struct{}, len(keys))
		for _, k := range keys {
			skip[k.ID] = struct{}{}
		}
		for id := range inflight {
			skip[id] = struct{}{}
		}
		kept := fresh[:0]
		for _, k := range fresh {
			if _, ok := skip[k.ID]; !ok {
				kept = append(kept, k)
			}
		}
		*order = keyList{keys: kept}
		// Clipped: appending must not write into the old list.
		keys = append(slices.Clip(keys), order.take(limit-len(keys))...)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	got, err := c.dialect.Rows(ctx, conn, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]int, len(got))
	for i := range got {
		byID[got[i].ID] = i
	}
	rows := make([]JournalRow, 0, len(keys))
	for _, k := range keys {
		i, ok := byID[k.ID]
		if !ok {
			// Gone from the journal: nothing to publish.
			continue
		}
		r := got[i]
		r.Commit, r.CommitTime = k.Commit, k.CommitTime
		rows = append(rows, r)
	}
	return rows, nil
}

// wait waits for a wake-up or timeout; without a Waiter it sleeps.
func (c *Capture) wait(ctx context.Context, w Waiter, timeout time.Duration) (bool, error) {
	if w != nil {
		return w.Wait(ctx, timeout)
	}
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-time.After(timeout):
		return false, nil
	}
}

// stats updates the backlog and lag gauges, at most once a second and at
// most 5% of the time (counting a large journal takes a while).
func (c *Capture) stats(ctx context.Context, conn *sql.Conn) {
	now := time.Now()
	if now.Before(c.nextStats) {
		return
	}
	n, oldest, err := c.dialect.Backlog(ctx, conn)
	took := time.Since(now)
	c.nextStats = now.Add(max(time.Second, 20*took))
	if err != nil {
		c.log.Debug("measuring the journal backlog", "err", err)
		return
	}
	c.m.backlog.Set(float64(n))
	if n == 0 || oldest.IsZero() {
		c.m.lag.Set(0)
	} else {
		c.m.lag.Set(max(0, now.Sub(oldest).Seconds()))
	}
}

// inflight is a batch whose records were produced and whose journal rows
// are not deleted yet.
type inflight struct {
	ack      *batchAck
	ids      []int64 // journal ids, in commit order
	set      map[int64]struct{}
	oldest   time.Time
	last     JournalRow
	counts   map[tableOp]int
	dlqKinds map[string]int
	resyncs  []Resync       // prisoner resyncs the batch's rows call for
	requests map[string]int // resync requests by result (logRequests)
}

type tableOp struct{ table, op string }

// idSet returns the batch's journal ids as a set (empty for nil); it builds
// it once.
func (f *inflight) idSet() map[int64]struct{} {
	if f == nil {
		return map[int64]struct{}{}
	}
	if f.set == nil {
		f.set = make(map[int64]struct{}, len(f.ids))
		for _, id := range f.ids {
			f.set[id] = struct{}{}
		}
	}
	return f.set
}

// send turns a batch of journal rows into records (or DLQ entries) and
// produces them in commit order. Decoding and encoding, pure, run on every
// CPU; producing keeps the rows' order.
func (c *Capture) send(b *batch) (*inflight, error) {
	now := time.Now()
	rows, changes, failures, contexts, resyncs := b.rows, b.changes, b.failures, b.contexts, b.resyncs
	outs := make([][]outRecord, len(rows))
	recs := make([][]*kgo.Record, len(rows))
	parallel(len(rows), func(i int) {
		if changes[i] == nil {
			return
		}
		outs[i] = c.b.records(changes[i], contexts)
		recs[i], failures[i] = c.encode(outs[i], now)
	})

	ack := newBatchAck()
	counts := map[tableOp]int{}
	dlqKinds := map[string]int{}
	for i := range rows {
		if failures[i] == nil {
			for _, rec := range recs[i] {
				c.produce(rec, ack)
			}
			for _, o := range outs[i] {
				if o.op != "" {
					counts[tableOp{o.table.name, o.op}]++
				}
			}
			continue
		}
		var rerr *RowError
		if !errors.As(failures[i], &rerr) {
			return nil, failures[i]
		}
		rec, err := c.dlqRecord(&rows[i], rerr, now)
		if err != nil {
			return nil, err
		}
		c.produce(rec, ack)
		dlqKinds[rerr.Kind]++
	}
	ack.seal()
	ids := make([]int64, len(rows))
	for i := range rows {
		ids[i] = rows[i].ID
	}
	return &inflight{ack: ack, ids: ids, oldest: rows[0].CommitTime, last: rows[len(rows)-1],
		counts: counts, dlqKinds: dlqKinds, resyncs: resyncs, requests: b.requests}, nil
}

// finish waits until Kafka has acknowledged every record of a sent batch
// and only then deletes its rows from the journal; nil does nothing.
func (c *Capture) finish(ctx context.Context, conn *sql.Conn, f *inflight) error {
	if f == nil {
		return nil
	}
	if err := c.await(ctx, f.ack, f.oldest); err != nil {
		return err
	}
	// Kafka has acknowledged every record of the batch: count them (before
	// the rows leave the journal, so that an empty journal means final
	// counts; a batch sent again after a failed delete is counted again, as
	// it is published again).
	for k, n := range f.counts {
		c.m.records.WithLabelValues(k.table, k.op).Add(float64(n))
	}
	for k, n := range f.dlqKinds {
		c.m.dlq.WithLabelValues(k).Add(float64(n))
	}
	for k, n := range f.requests {
		c.m.requests.WithLabelValues(k).Add(float64(n))
	}
	// Its rows may go. On a stop, finish the delete so that a clean stop
	// repeats nothing.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Pipeline.Shutdown.Timeout)
	defer cancel()
	if err := c.dialect.Delete(dctx, conn, f.ids, f.resyncs); err != nil {
		return err
	}
	c.addPending(f.resyncs)
	if c.comp != nil {
		c.comp.Position(fmt.Sprintf("commit %d change %d", f.last.Commit, f.last.ID))
	}
	return nil
}

// parallel calls fn(i) for i in [0, n) on up to GOMAXPROCS goroutines, in
// contiguous chunks, and returns when all calls have returned.
func parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), (n+255)/256)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for from := 0; from < n; from += chunk {
		to := min(from+chunk, n)
		wg.Go(func() {
			for i := from; i < to; i++ {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// encode encodes records in the Confluent wire format under their topics'
// registered schemas, directly (appendEnvelope; TestFastEncodingMatchesGoavro
// holds it to goavro's encoding). An error is a *RowError of kind KindEncode.
func (c *Capture) encode(outs []outRecord, now time.Time) ([]*kgo.Record, error) {
	recs := make([]*kgo.Record, 0, len(outs))
	for i := range outs {
		o := &outs[i]
		tc := c.bound[o.table.name]
		kh := avrobin.WireHeader(tc.Key.ID())
		key, err := o.table.appendKey(append(make([]byte, 0, 32), kh[:]...), o.key)
		if err != nil {
			return nil, err
		}
		rec := &kgo.Record{Topic: tc.Topic, Key: key}
		if o.op != "" {
			vh := avrobin.WireHeader(tc.Value.ID())
			if rec.Value, err = c.b.appendEnvelope(append(make([]byte, 0, 1024), vh[:]...), o, now); err != nil {
				return nil, err
			}
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// dlqRecord makes the DLQ record of a journal row and logs it, keys only.
func (c *Capture) dlqRecord(r *JournalRow, rerr *RowError, now time.Time) (*kgo.Record, error) {
	alertKey := alertKeyHint(r)
	key, value, err := dlqEntry(c.dialect.JournalTable(), r, rerr, alertKey, now)
	if err != nil {
		return nil, err
	}
	rec, err := c.dlq.Record(key, value)
	if err != nil {
		return nil, fmt.Errorf("encoding the DLQ entry of journal row %d: %w", r.ID, err)
	}
	table := r.Table
	if !identifier.MatchString(table) {
		table = "(not an identifier)"
	}
	c.log.Warn("journal row sent to the DLQ", "journal_id", r.ID, "table", table, "alert", alertKey,
		"error_kind", rerr.Kind, "error", rerr.Error())
	return rec, nil
}

// produce sends rec, counting it in ack until Kafka answers. Records are
// produced without the session's context so that a stop drains them.
func (c *Capture) produce(rec *kgo.Record, ack *batchAck) {
	ack.add()
	c.deps.Kafka.Produce(context.Background(), rec, func(_ *kgo.Record, err error) {
		if err != nil {
			err = fmt.Errorf("topic %s: %w", rec.Topic, err)
		}
		ack.done(err)
	})
}

// await waits until Kafka has acknowledged every record of a batch. It
// reports the capture degraded while Kafka keeps it waiting, and on a stop
// waits at most shutdown.timeout more.
func (c *Capture) await(ctx context.Context, ack *batchAck, oldest time.Time) error {
	tick := time.NewTicker(min(time.Second, c.patience))
	defer tick.Stop()
	began := time.Now()
	degraded := false
	done := ctx.Done()
	var deadline <-chan time.Time
	for {
		select {
		case <-ack.finished:
			if degraded {
				c.log.Info("Kafka acknowledged the batch", "waited", time.Since(began).Round(time.Millisecond).String())
				c.setState(admin.Running, "capturing")
			}
			if err := ack.result(); err != nil {
				return fmt.Errorf("%w: %w", ErrKafkaRefused, err)
			}
			return nil
		case <-tick.C:
			c.m.lag.Set(time.Since(oldest).Seconds())
			if err := ack.result(); err != nil {
				return fmt.Errorf("%w: %w", ErrKafkaRefused, err)
			}
			if !degraded && time.Since(began) > c.patience {
				degraded = true
				c.m.errors.WithLabelValues("kafka").Inc()
				c.log.Warn("waiting for Kafka to acknowledge a batch", "waited", time.Since(began).Round(time.Second).String())
				c.setState(admin.Degraded, "waiting for Kafka")
			}
		case <-done:
			done = nil
			deadline = time.After(c.cfg.Pipeline.Shutdown.Timeout)
		case <-deadline:
			return fmt.Errorf("stopping with a batch still unacknowledged by Kafka after %s; its rows stay in the journal and are published again", c.cfg.Pipeline.Shutdown.Timeout)
		}
	}
}
