package dps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/db"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/schemas"

	"github.com/alertsync/alertsync/internal/avrobin"
)

// MarkerPrefix is the prefix of the transactional logical decoding message
// that marks a transaction as written by alertsync (DESIGN.md guarantee 3).
const MarkerPrefix = "alertsync"

// heartbeatPrefix is the prefix of the capture's own non-transactional
// heartbeat messages; the decoder ignores it.
const heartbeatPrefix = "alertsync.heartbeat"

// Deps are the parts a Capture runs with, made by the caller (the command, or
// a test with kfake and srfake).
type Deps struct {
	Kafka    *kgo.Client
	Registry schemas.Registry
	Admin    *admin.Server // metrics registry and component state; may be nil in tests
	Logger   *slog.Logger
	Version  string // alertsync version, in source.version
}

// Capture is the DPS capture process.
type Capture struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	m     *metrics
	comp  *admin.Component
	codec *schemas.Codec
	loc   *time.Location

	// Resnapshot drops the slot and takes a new initial snapshot on the first
	// session (the way out of ErrSlotLost).
	Resnapshot bool

	migrated bool
	tables   map[string]*tableState // by table name
	acker    *acker
	dbName   string
}

type tableState struct {
	info   *TableInfo
	tc     *schemas.TopicCodec
	shapes map[uint32]*rowShape // by replication relation id
	source sourcePrefix
}

// New returns a capture for cfg (validated by the caller).
func New(cfg Config, deps Deps) (*Capture, error) {
	loc, err := time.LoadLocation(cfg.Capture.Timezone)
	if err != nil {
		return nil, fmt.Errorf("capture.timezone: %w", err)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Capture{cfg: cfg, deps: deps, log: deps.Logger, loc: loc,
		codec: schemas.New(deps.Registry, schemas.WithTopicPrefix(cfg.Pipeline.Topics.Prefix), schemas.WithLogger(deps.Logger))}
	if deps.Admin != nil {
		c.m = newMetrics(deps.Admin.Registry())
		c.comp = deps.Admin.Component("capture-dps")
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
// human must fix occurs. PostgreSQL outages are retried with backoff.
func (c *Capture) Run(ctx context.Context) error {
	backoff := time.Second
	for {
		err := c.session(ctx)
		if ctx.Err() != nil {
			c.setState(admin.Stopped, "")
			return nil
		}
		if err == nil {
			continue
		}
		if permanent(err) {
			c.m.errors.WithLabelValues("fatal").Inc()
			c.setState(admin.Failed, err.Error())
			return err
		}
		dep := "PostgreSQL"
		switch {
		case errors.Is(err, kafka.ErrUnreachable):
			dep = "Kafka"
		case errors.Is(err, errRegistry):
			dep = "the schema registry"
		}
		c.m.errors.WithLabelValues(strings.TrimPrefix(strings.ToLower(dep), "the schema ")).Inc()
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
func permanent(err error) bool {
	for _, e := range []error{ErrSlotLost, ErrReplicaIdentity, ErrNotPermitted, ErrLocked, ErrNoSuchTable,
		ErrNoPrimaryKey, ErrSchemaDrift, ErrNullInNotNull, ErrKafkaRefused, ErrUnchangedTOAST,
		schemas.ErrIncompatibleSchema, migrate.ErrChecksumMismatch, kafka.ErrPartitionMismatch} {
		if errors.Is(err, e) {
			return true
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:2] {
		case "42", "28", "3D": // syntax/privilege, authentication, unknown database
			return true
		}
	}
	var pre *ProtocolError
	return errors.As(err, &pre)
}

func (c *Capture) connConfig() (*pgx.ConnConfig, error) {
	cc, err := db.PostgresConfig(c.cfg.DPS.DSN, c.cfg.DPS.Password)
	if err != nil {
		return nil, err
	}
	cc.ConnectTimeout = c.cfg.Capture.ConnectTimeout
	// Text output the decoder reads: ISO dates, hex bytea, exact floats. The
	// replication connection's walsender formats pgoutput values with these too.
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	cc.RuntimeParams["datestyle"] = "ISO, YMD"
	cc.RuntimeParams["bytea_output"] = "hex"
	cc.RuntimeParams["extra_float_digits"] = "3"
	cc.RuntimeParams["application_name"] = "alertsync capture dps"
	return cc, nil
}

// session connects, takes the lock, prepares the publication, slot and
// schemas, snapshots when needed, and streams until an error or ctx ends.
func (c *Capture) session(ctx context.Context) error {
	c.setState(admin.Starting, "connecting to PostgreSQL")
	cc, err := c.connConfig()
	if err != nil {
		return err
	}
	ctl, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("connecting to DPS at %s:%d: %w", cc.Host, cc.Port, err)
	}
	defer func() {
		// Release the lock before closing: the server drops a closed
		// session's locks only once its backend has exited, which a capture
		// started right after this one stops would see as ErrLocked.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = ctl.Exec(uctx, "SELECT pg_advisory_unlock_all()")
		_ = ctl.Close(context.WithoutCancel(ctx))
	}()
	c.dbName = cc.Database

	if err := c.lock(ctx, ctl); err != nil {
		return err
	}
	if c.cfg.Capture.Migrate && !c.migrated {
		sqlDB := stdlib.OpenDB(*cc)
		set, err := migrate.Named("dps")
		if err == nil {
			_, err = migrate.Up(ctx, sqlDB, set, migrate.Latest, migrate.WithLogger(c.log))
		}
		_ = sqlDB.Close()
		if err != nil {
			return fmt.Errorf("applying sync-owned migrations: %w", err)
		}
		c.migrated = true
	}
	if err := c.checkReplicaIdentity(ctx, ctl); err != nil {
		return err
	}
	if err := c.ensurePublication(ctx, ctl); err != nil {
		return err
	}
	if err := c.loadTables(ctx, ctl); err != nil {
		return err
	}

	start, snapshotNeeded, err := c.prepareSlot(ctx, ctl)
	if err != nil {
		return err
	}
	rcfg := cc.Config.Copy()
	if rcfg.RuntimeParams == nil {
		rcfg.RuntimeParams = map[string]string{}
	}
	rcfg.RuntimeParams["replication"] = "database"
	repl, err := pgconn.ConnectConfig(ctx, rcfg)
	if err != nil {
		return fmt.Errorf("opening replication connection: %w", err)
	}
	defer func() {
		_ = repl.Close(context.WithoutCancel(ctx))
		// Hand the slot over cleanly: its walsender exits only after the
		// connection closed; wait (briefly) until the server lets go of it.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for {
			var active bool
			err := ctl.QueryRow(wctx, "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active)", c.cfg.Capture.Slot).Scan(&active)
			if err != nil || !active {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	if !snapshotNeeded && c.acker != nil {
		// A PostgreSQL before 17 restarting cleanly forgets a logical slot's
		// confirmed LSN back to its last persisted value and would resend
		// what Kafka already acknowledged: start from what this process
		// confirmed when that is later (the server skips the transactions
		// that committed before the start point).
		if confirmed, _, _, _, _ := c.acker.state(); confirmed > start {
			start = confirmed
		}
	}
	c.acker = newAcker(start)
	if snapshotNeeded {
		if start, err = c.snapshot(ctx, ctl, repl, cc); err != nil {
			return err
		}
		c.acker = newAcker(start)
	}
	return c.stream(ctx, ctl, repl, start)
}

func lockKey(slot string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("alertsync/capture/dps/" + slot))
	return int64(h.Sum64()) //nolint:gosec // a hash, any bit pattern is a valid key
}

// lock takes the session advisory lock of the slot for the connection's life.
func (c *Capture) lock(ctx context.Context, ctl *pgx.Conn) error {
	key := lockKey(c.cfg.Capture.Slot)
	for vanished := 0; ; {
		var ok bool
		if err := ctl.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil {
			return fmt.Errorf("taking the capture lock: %w", err)
		}
		if ok {
			return nil
		}
		var holder string
		_ = ctl.QueryRow(ctx, `SELECT coalesce(string_agg(l.pid::text || coalesce(' (' || a.application_name || ' from ' || coalesce(a.client_addr::text, 'local') || ')', ''), ', '), 'unknown')
			  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
			 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
			   AND ((l.classid::bigint << 32) | l.objid::bigint) = $1`, key).Scan(&holder)
		if holder == "unknown" && vanished < 5 {
			// Released since pg_try_advisory_lock (a holder that has just
			// exited): try again.
			vanished++
			continue
		}
		if !c.cfg.Capture.LockWait {
			return fmt.Errorf("%w of slot %q (backend pid %s): only one capture dps may run per slot; stop the other or set capture.lock_wait=true to wait for it", ErrLocked, c.cfg.Capture.Slot, holder)
		}
		c.log.Info("waiting for the capture lock held by another process", "slot", c.cfg.Capture.Slot, "holder_pid", holder)
		c.setState(admin.Starting, "waiting for the capture lock")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// checkReplicaIdentity refuses to run unless alert has REPLICA IDENTITY FULL,
// and warns about other captured tables without it that have columns long
// enough to be TOASTed: an update of such a row that leaves a long value
// unchanged cannot be published (ErrUnchangedTOAST) and stops the capture.
func (c *Capture) checkReplicaIdentity(ctx context.Context, ctl *pgx.Conn) error {
	for _, t := range c.cfg.Capture.Tables {
		var ident string
		var toastable bool
		err := ctl.QueryRow(ctx, `SELECT c.relreplident::text,
				EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attstorage <> 'p')
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname = $2`, c.cfg.Capture.Schema, t).Scan(&ident, &toastable)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("table %s.%s: %w", c.cfg.Capture.Schema, t, ErrNoSuchTable)
		}
		if err != nil {
			return fmt.Errorf("checking replica identity of %s.%s: %w", c.cfg.Capture.Schema, t, err)
		}
		alter := fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY FULL", pgx.Identifier{c.cfg.Capture.Schema, t}.Sanitize())
		switch {
		case ident == "f":
		case t == "alert":
			return fmt.Errorf("%s.%s: %w (updates would lose unchanged TOAST values and before-images); a DBA must run: %s",
				c.cfg.Capture.Schema, t, ErrReplicaIdentity, alter)
		case toastable:
			c.log.Warn("table without REPLICA IDENTITY FULL: an update that leaves a long text value unchanged cannot be captured and stops the capture",
				"table", t, "fix", alter)
		}
	}
	return nil
}

func (c *Capture) qualified() []string {
	out := make([]string, len(c.cfg.Capture.Tables))
	for i, t := range c.cfg.Capture.Tables {
		out[i] = pgx.Identifier{c.cfg.Capture.Schema, t}.Sanitize()
	}
	return out
}

// ensurePublication creates the publication, or adds missing tables to it.
func (c *Capture) ensurePublication(ctx context.Context, ctl *pgx.Conn) error {
	pub := c.cfg.Capture.Publication
	rows, err := ctl.Query(ctx, `SELECT tablename FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2`, pub, c.cfg.Capture.Schema)
	if err != nil {
		return fmt.Errorf("reading publication %q: %w", pub, err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("reading publication %q: %w", pub, err)
	}
	var exists bool
	if err := ctl.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", pub).Scan(&exists); err != nil {
		return fmt.Errorf("reading publication %q: %w", pub, err)
	}
	var missing []string
	for i, t := range c.cfg.Capture.Tables {
		found := false
		for _, h := range have {
			found = found || h == t
		}
		if !found {
			missing = append(missing, c.qualified()[i])
		}
	}
	if exists && len(missing) == 0 {
		return nil
	}
	stmt := fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s", pgx.Identifier{pub}.Sanitize(), strings.Join(c.qualified(), ", "))
	if exists {
		stmt = fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s", pgx.Identifier{pub}.Sanitize(), strings.Join(missing, ", "))
	}
	if !c.cfg.Capture.Create {
		return fmt.Errorf("publication %q: %w (capture.create is false); a DBA must run: %s", pub, ErrNotPermitted, stmt)
	}
	if _, err := ctl.Exec(ctx, stmt); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" {
			return fmt.Errorf("publication %q: %w: %s; a DBA must run: %s", pub, ErrNotPermitted, pe.Message, stmt)
		}
		return fmt.Errorf("creating publication %q: %w", pub, err)
	}
	c.log.Info("publication ready", "publication", pub, "statement", stmt)
	return nil
}

// loadTables reads each table's catalog entry and binds its topic's schemas.
func (c *Capture) loadTables(ctx context.Context, ctl *pgx.Conn) error {
	c.tables = map[string]*tableState{}
	for _, t := range c.cfg.Capture.Tables {
		if err := c.bindTable(ctx, ctl, t); err != nil {
			return err
		}
	}
	return nil
}

func (c *Capture) bindTable(ctx context.Context, ctl *pgx.Conn, table string) error {
	info, err := loadTable(ctx, ctl, c.cfg.Capture.Schema, table)
	if err != nil {
		return err
	}
	st, err := tableSchemas(info)
	if err != nil {
		return err
	}
	tc, err := c.codec.BindTopic(ctx, st)
	if err != nil {
		if errors.Is(err, schemas.ErrIncompatibleSchema) {
			return fmt.Errorf("registering schemas of %s: %w", info.Topic(), err)
		}
		return fmt.Errorf("registering schemas of %s (registry.url): %w: %w", info.Topic(), errRegistry, err)
	}
	c.tables[table] = &tableState{info: info, tc: tc, shapes: map[uint32]*rowShape{},
		source: newSourcePrefix(c.deps.Version, c.dbName, info)}
	return nil
}

// prepareSlot decides where streaming starts: the slot's confirmed LSN, or a
// new slot and snapshot.
func (c *Capture) prepareSlot(ctx context.Context, ctl *pgx.Conn) (start pglogrepl.LSN, snapshot bool, err error) {
	slot := c.cfg.Capture.Slot
	if c.Resnapshot {
		c.log.Warn("resnapshot requested: dropping the slot and publishing every row again", "slot", slot)
		if _, err := ctl.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot); err != nil {
			return 0, false, fmt.Errorf("dropping slot %q: %w", slot, err)
		}
		if _, err := ctl.Exec(ctx, "DELETE FROM alertsync.capture_state WHERE slot_name = $1", slot); err != nil {
			return 0, false, fmt.Errorf("clearing capture state: %w", err)
		}
		c.Resnapshot = false
	}
	var (
		slotExists, done bool
		walStatus        *string
		confirmed        *pglogrepl.LSN
		stateExists      bool
	)
	err = ctl.QueryRow(ctx, `SELECT wal_status, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&walStatus, lsnScanner{&confirmed})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return 0, false, fmt.Errorf("reading slot %q: %w", slot, err)
	default:
		slotExists = true
	}
	err = ctl.QueryRow(ctx, "SELECT snapshot_done FROM alertsync.capture_state WHERE slot_name = $1", slot).Scan(&done)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return 0, false, fmt.Errorf("reading capture state: %w", err)
	default:
		stateExists = true
	}
	switch {
	case slotExists && walStatus != nil && *walStatus == "lost":
		return 0, false, fmt.Errorf("slot %q: %w: the server invalidated it (max_slot_wal_keep_size); changes may be lost. Restart with --resnapshot to publish every row again", slot, ErrSlotLost)
	case !slotExists && stateExists && done:
		return 0, false, fmt.Errorf("slot %q: %w: it was dropped after its snapshot; changes since may be lost. Restart with --resnapshot to publish every row again", slot, ErrSlotLost)
	case slotExists && stateExists && done:
		if confirmed == nil {
			return 0, false, fmt.Errorf("slot %q has no confirmed LSN: %w", slot, ErrSlotLost)
		}
		return *confirmed, false, nil
	case slotExists:
		c.log.Warn("an earlier snapshot did not finish: dropping its slot and taking the snapshot again", "slot", slot)
		if _, err := ctl.Exec(ctx, "SELECT pg_drop_replication_slot($1)", slot); err != nil {
			return 0, false, fmt.Errorf("dropping unfinished slot %q: %w", slot, err)
		}
	}
	// The capture creates its slot itself whatever capture.create says: the
	// initial snapshot must be the one exported when the slot is created (a
	// slot made by a DBA would be dropped above and asked for again), and
	// creating it needs no more than streaming does (REPLICATION).
	return 0, true, nil
}

// lsnScanner scans a nullable LSN text column.
type lsnScanner struct{ dst **pglogrepl.LSN }

func (s lsnScanner) Scan(src any) error {
	if src == nil {
		*s.dst = nil
		return nil
	}
	str, ok := src.(string)
	if !ok {
		return fmt.Errorf("scanning LSN: unexpected %T", src)
	}
	l, err := pglogrepl.ParseLSN(str)
	if err != nil {
		return err
	}
	*s.dst = &l
	return nil
}

// produce sends rec for tx, counting it in the acker until Kafka answers.
func (c *Capture) produce(ctx context.Context, rec *kgo.Record, tx *txAck) {
	// The acker of this session: a later session replaces c.acker while
	// this record may still be in flight.
	a := c.acker
	a.add(tx)
	begin := time.Now()
	c.deps.Kafka.Produce(context.WithoutCancel(ctx), rec, func(_ *kgo.Record, err error) {
		c.m.produceLatency.Observe(time.Since(begin).Seconds())
		if err != nil {
			c.m.errors.WithLabelValues("kafka").Inc()
			err = fmt.Errorf("%w: topic %s: %w", ErrKafkaRefused, rec.Topic, err)
		}
		a.done(tx, err)
	})
}

// emit turns one change into its record (and a tombstone after a delete).
func (c *Capture) emit(ctx context.Context, ch Change, tx *txAck, snapshot bool) error {
	return c.emitUser(ctx, ch, tx, snapshot, "")
}

// emitUser is emit with the user who made the change, when known, in the
// record's schemas.HeaderActionedBy header.
func (c *Capture) emitUser(ctx context.Context, ch Change, tx *txAck, snapshot bool, user string) error {
	ts, ok := c.tables[ch.Rel.Table]
	if !ok || ch.Rel.Schema != c.cfg.Capture.Schema {
		return nil // a table of the publication the capture was not asked for
	}
	shape := ts.shapes[ch.Rel.ID]
	if shape == nil {
		var err error
		if shape, err = newRowShape(ts.info, ch.Rel); err != nil {
			return err
		}
		ts.shapes[ch.Rel.ID] = shape
	}
	if ch.Op == OpUpdate && ch.Before != nil {
		oldKey, err := shape.appendKey(nil, ch.Before)
		if err != nil {
			return err
		}
		newKey, err := shape.appendKey(nil, ch.After)
		if err != nil {
			return err
		}
		if !bytes.Equal(oldKey, newKey) {
			// A primary-key change is published as Debezium does: a delete
			// (and tombstone) of the old key, then a create of the new one.
			del := ch
			del.Op, del.After = OpDelete, nil
			if err := c.emitUser(ctx, del, tx, snapshot, user); err != nil {
				return err
			}
			ch.Op, ch.Before, ch.BeforeKeyOnly = OpCreate, nil, false
		}
	}
	// A key-only old row (a delete, or a key change, of a table without
	// REPLICA IDENTITY FULL) has no values for the other columns: publish no
	// before image rather than a wrong one; the key still comes from it.
	before := ch.Before
	if ch.BeforeKeyOnly {
		before = nil
	}
	vh := avrobin.WireHeader(ts.tc.Value.ID())
	value, err := shape.appendEnvelope(append(make([]byte, 0, 512), vh[:]...), &ts.source,
		before, ch.After, ch.Tx, uint64(ch.LSN), ch.Op, snapshot, time.Now())
	if err != nil {
		return err
	}
	rec := &kgo.Record{Topic: ts.tc.Topic, Value: value}
	if user != "" {
		rec.Headers = []kgo.RecordHeader{{Key: schemas.HeaderActionedBy, Value: []byte(user)}}
	}
	if ch.Op != OpTruncate { // a truncate has no key, as in Debezium
		keyRow := ch.After
		if ch.Op == OpDelete {
			keyRow = ch.Before
		}
		kh := avrobin.WireHeader(ts.tc.Key.ID())
		if rec.Key, err = shape.appendKey(append(make([]byte, 0, 32), kh[:]...), keyRow); err != nil {
			return err
		}
		if ch.Op == OpDelete {
			c.produce(ctx, rec, tx)
			rec = &kgo.Record{Topic: ts.tc.Topic, Key: rec.Key} // tombstone
		}
	}
	c.produce(ctx, rec, tx)
	c.m.records.WithLabelValues(ts.info.Table, string(ch.Op)).Inc()
	return nil
}

// ensureTopics creates the change topics when missing.
func (c *Capture) ensureTopics(ctx context.Context) error {
	var specs []kafka.TopicSpec
	for _, ts := range c.tables {
		specs = append(specs, c.cfg.Pipeline.Topics.Spec(kafka.Topic{Base: ts.info.Topic(), Kind: kafka.KindChange}))
	}
	return kafka.EnsureTopics(ctx, kadm.NewClient(c.deps.Kafka), specs...)
}

// waitForRoom blocks while too many records are in flight, calling tick (to
// keep the replication connection alive) at least every interval.
func (c *Capture) waitForRoom(ctx context.Context, interval time.Duration, tick func() error) error {
	since := time.Now()
	warned := false
	for {
		_, inFlight, _, _, err := c.acker.state()
		if err != nil {
			return err
		}
		if inFlight < c.cfg.Capture.MaxInFlight {
			if warned {
				c.setState(admin.Running, "streaming")
			}
			return nil
		}
		if !warned && time.Since(since) > 10*time.Second {
			warned = true
			c.log.Warn("waiting for Kafka to acknowledge records", "in_flight", inFlight)
			c.setState(admin.Degraded, "waiting for Kafka")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.acker.signal:
		case <-time.After(interval):
		}
		if tick != nil {
			if err := tick(); err != nil {
				return err
			}
		}
	}
}

// drain waits until every produced record is acknowledged or timeout passes.
func (c *Capture) drain(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, inFlight, _, _, err := c.acker.state()
		if err != nil {
			return err
		}
		if inFlight == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d records still unacknowledged by Kafka after %s", inFlight, timeout)
		}
		select {
		case <-c.acker.signal:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// keepalive is the XLogData-free part of the stream protocol.
func isKeepalive(msg *pgproto3.CopyData) bool {
	return msg.Data[0] == pglogrepl.PrimaryKeepaliveMessageByteID
}
