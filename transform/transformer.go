package transform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/rules"
)

// Deps are the parts a Transformer runs with, made by the caller (the
// command, or a test with kfake and srfake). The Kafka clients are built
// from the configuration.
type Deps struct {
	// Registry registers the command and DLQ schemas and resolves the
	// schemas of consumed records.
	Registry schemas.Registry
	// Admin holds the metrics registry and the component state; may be nil.
	Admin *admin.Server
	// Logger logs; nil discards.
	Logger *slog.Logger
}

// Direction is one of the two directions of ADR002.
type Direction int8

// Directions.
const (
	NOMISToDPS Direction = iota
	DPSToNOMIS
)

// String returns the direction's name, as in its sync.* key and metric label.
func (d Direction) String() string {
	if d == NOMISToDPS {
		return "nomis_to_dps"
	}
	return "dps_to_nomis"
}

// inputKind is what a consumed topic holds.
type inputKind int8

const (
	inNOMISAlert inputKind = iota + 1
	inNOMISSnapshot
	inDPSAlert
)

// input is a consumed topic.
type input struct {
	kind inputKind
	dir  Direction
	base string // name without topics.prefix
}

// Transformer is the stream loop of `alertsync transform`: it consumes the
// change topics in a consumer group and produces commands (and DLQ
// entries) in Kafka transactions that also commit the consumed offsets.
type Transformer struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	m     *metrics
	comp  *admin.Component
	codec *schemas.Codec
	rules *rules.Rules
	ref   *refData
	rr    *refReader // the session's reference reader

	switches atomic.Pointer[Switches]

	replica  string
	inputs   map[string]input // by topic name
	commands map[rules.Side]*schemas.TopicCodec
	dlq      *schemas.TopicCodec
	current  map[string]schemaIDs // by consumed topic name: ids of its current schemas (fast decoding)

	holds    *holdBook       // the session's holds, read from the holds topic
	fresh    freshPartitions // partitions assigned, not yet fetched from
	lag      *lagTracker
	holdsOut *schemas.TopicCodec

	committed atomic.Int64 // source records in committed transactions
	// Blocks commandRecord carves records and their bytes from.
	scratch []byte
	block   []byte
	recs    []outRecord

	// noopRule, set only by the benchmark's reference arm, replaces the
	// rules: every decoded record yields a copy of this command.
	noopRule *rules.Command

	fastN    atomic.Int64 // records decoded by the fast path, not yet counted in the metric
	genericN atomic.Int64 // records decoded by goavro, not yet counted in the metric
}

// fatalError is an error a restart cannot cure: the Transformer's Run
// returns it instead of retrying.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// New returns a transformer for cfg (validated by the caller).
func New(cfg Config, deps Deps) (*Transformer, error) {
	loc, err := time.LoadLocation(cfg.Transform.Timezone)
	if err != nil {
		return nil, fmt.Errorf("transform.timezone: %w", err)
	}
	replica, err := cfg.Transform.Replica()
	if err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	ref := newRefData()
	r, err := rules.New(ref, loc)
	if err != nil {
		return nil, err
	}
	t := &Transformer{cfg: cfg, deps: deps, log: deps.Logger.With("replica", replica), ref: ref, rules: r, replica: replica, holds: newHoldBook(),
		codec: schemas.New(deps.Registry, schemas.WithTopicPrefix(cfg.Pipeline.Topics.Prefix), schemas.WithLogger(deps.Logger))}
	if deps.Admin != nil {
		t.m = newMetrics(deps.Admin.Registry())
		t.comp = deps.Admin.Component("transform")
	} else {
		t.m = newMetrics(nil)
	}
	t.lag = newLagTracker(t.m.lag)
	t.inputs = map[string]input{}
	for _, in := range []input{
		{inNOMISAlert, NOMISToDPS, kafka.NOMISOffenderAlerts.Base},
		{inNOMISSnapshot, NOMISToDPS, kafka.NOMISPrisonerAlerts.Base},
		{inDPSAlert, DPSToNOMIS, kafka.DPSAlert.Base},
	} {
		t.inputs[cfg.Pipeline.Topics.Prefix+in.base] = in
	}
	t.SetSwitches(cfg.Sync)
	return t, nil
}

// SetSwitches turns the directions on or off from now on: records consumed
// while a direction is off produce no command and are not replayed when it
// is turned back on. Safe to call while Run runs (SIGHUP, a watched file).
func (t *Transformer) SetSwitches(s Switches) {
	old := t.switches.Swap(&s)
	for _, d := range []struct {
		dir     Direction
		on, was bool
	}{{NOMISToDPS, s.NOMISToDPS, old != nil && old.NOMISToDPS}, {DPSToNOMIS, s.DPSToNOMIS, old != nil && old.DPSToNOMIS}} {
		v := 0.0
		if d.on {
			v = 1
		}
		t.m.direction.WithLabelValues(d.dir.String()).Set(v)
		if old != nil && d.on != d.was {
			t.log.Info("direction switched", "direction", d.dir.String(), "enabled", d.on)
		}
	}
}

// Switches returns the directions in force.
func (t *Transformer) Switches() Switches { return *t.switches.Load() }

func (t *Transformer) setState(s admin.State, detail string) {
	if t.comp != nil {
		t.comp.Set(s, detail)
	}
}

// Run transforms until ctx is cancelled (a clean stop returns nil) or an
// error a human must fix occurs (another replica took this replica's
// transactional id, a schema the registry refuses). Kafka and registry
// outages are retried with backoff.
func (t *Transformer) Run(ctx context.Context) error {
	t.setState(admin.Starting, "")
	backoff := min(time.Second, t.cfg.Transform.MaxBackoff)
	for {
		err := t.session(ctx)
		if ctx.Err() != nil {
			t.setState(admin.Stopped, "")
			return nil //nolint:nilerr // a stop is not an error
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			t.m.errors.WithLabelValues("fatal").Inc()
			t.setState(admin.Failed, err.Error())
			return err
		}
		t.m.errors.WithLabelValues("kafka").Inc()
		t.log.Warn("transform session ended; retrying", "err", err, "backoff", backoff.String())
		t.setState(admin.Degraded, err.Error())
		if t.comp != nil {
			t.comp.Error(err)
		}
		select {
		case <-ctx.Done():
			t.setState(admin.Stopped, "")
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, t.cfg.Transform.MaxBackoff)
	}
}

// session binds the schemas, makes the topics, starts the reference reader
// and runs transactions until ctx ends or one fails.
func (t *Transformer) session(ctx context.Context) error {
	kc := t.cfg.Pipeline.Kafka
	admCl, err := kafka.NewClient(kc, t.log, nil, kgo.ClientID(kc.ClientID+"-transform-admin"))
	if err != nil {
		return &fatalError{err}
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if err := t.bind(ctx, adm); err != nil {
		return err
	}

	// Reference data first: every code known before the first alert.
	refCl, err := kafka.NewClient(kc, t.log, t.registerer(), kgo.ClientID(kc.ClientID+"-transform-reference"),
		kgo.ConsumeTopics(t.topic(kafka.DPSAlertCode), t.topic(kafka.DPSAlertType)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return &fatalError{err}
	}
	defer refCl.Close()
	rr := &refReader{data: t.ref, cl: refCl, adm: adm, codec: t.codec, log: t.log, m: t.m, topics: map[string]string{
		t.topic(kafka.DPSAlertCode): "alert_code", t.topic(kafka.DPSAlertType): "alert_type"}}
	t.rr = rr
	rctx, stopRef := context.WithCancel(ctx)
	refDone := make(chan struct{})
	go func() { defer close(refDone); rr.run(rctx) }()
	defer func() { stopRef(); <-refDone }()
	if err := rr.catchUp(ctx); err != nil {
		return err
	}
	codes, types := t.ref.counts()
	t.log.Info("reference data loaded", "codes", codes, "types", types)

	topics := make([]string, 0, len(t.inputs))
	for name := range t.inputs {
		topics = append(topics, name)
	}
	o := t.cfg.Transform
	sess, err := kafka.NewGroupTransactSession(kc, t.log, t.registerer(),
		kgo.ClientID(kc.ClientID+"-transform"),
		kgo.TransactionalID(o.TransactionalID+t.replica),
		kgo.TransactionTimeout(o.TransactionTimeout),
		kgo.ConsumerGroup(o.Group),
		kgo.InstanceID(t.replica),
		kgo.SessionTimeout(o.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, o.SessionTimeout/3)),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers, for the lag only (lagTracker): they are
		// dropped before anything else sees the records.
		kgo.KeepControlRecords(),
		kgo.DisableAutoCommit(),
		kgo.MaxBufferedRecords(2*o.BatchRecords+1000),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { t.fresh.assigned(m) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { t.lag.forget(m) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { t.lag.forget(m) }),
	)
	if err != nil {
		return &fatalError{err}
	}
	defer sess.Close()
	defer t.lag.forgetAll() // this session's partitions are no longer owned
	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() { defer close(lagDone); t.lag.refresh(lagCtx, adm, topics, t.log) }()
	defer func() { stopLag(); <-lagDone }()
	// Initialising the producer id now fences a predecessor with this
	// transactional id and aborts its open transaction at once: until then
	// the group's offset fetch reports UNSTABLE_OFFSET_COMMIT for the
	// partitions that transaction committed offsets of, and a restarted
	// replica would wait out transform.transaction_timeout.
	if _, _, err := sess.Client().ProducerID(ctx); err != nil {
		if isFenced(err) {
			return &fatalError{fmt.Errorf("initialising transactional id %s: %w", o.TransactionalID+t.replica, err)}
		}
		return fmt.Errorf("initialising transactional id %s: %w", o.TransactionalID+t.replica, err)
	}
	t.setState(admin.Running, "")
	t.log.Info("transforming", "group", o.Group, "transactional_id", o.TransactionalID+t.replica,
		"nomis_to_dps", t.Switches().NOMISToDPS, "dps_to_nomis", t.Switches().DPSToNOMIS)
	for {
		fs := sess.PollRecords(ctx, o.BatchRecords)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fetchErr error
		fs.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			t.log.Warn("fetching", "topic", topic, "partition", p, "err", err)
			if fetchErr == nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
				fetchErr = fmt.Errorf("fetching %s/%d: %w", topic, p, err)
			}
		})
		t.lag.fetched(fs) // with the transaction markers
		dropMarkers(fs)
		if fs.NumRecords() == 0 {
			if errors.Is(fetchErr, kerr.InvalidSessionTimeout) {
				return &fatalError{fmt.Errorf("transform.session_timeout %s: %w", o.SessionTimeout, fetchErr)}
			}
			if fetchErr != nil {
				return fetchErr
			}
			continue
		}
		if t.fresh.fetched(fs) {
			// Records of a partition this replica was just given: its
			// previous owner's transactions have ended, their holds with
			// them.
			if err := t.loadHolds(ctx, adm); err != nil {
				return err
			}
		}
		if err := t.transaction(ctx, sess, fs); err != nil {
			return err
		}
	}
}

// registerer returns the metrics registry of the admin server, or nil.
func (t *Transformer) registerer() prometheus.Registerer {
	if t.deps.Admin == nil {
		return nil
	}
	return t.deps.Admin.Registry()
}

func (t *Transformer) topic(tp kafka.Topic) string { return t.cfg.Pipeline.Topics.Name(tp) }

// bind registers the schemas and makes the topics the transformer reads
// and writes when missing.
func (t *Transformer) bind(ctx context.Context, adm *kadm.Client) error {
	if err := t.bindSchemas(ctx); err != nil {
		return err
	}
	tc := t.cfg.Pipeline.Topics
	if err := kafka.EnsureTopics(ctx, adm, tc.Specs(kafka.NOMISOffenderAlerts, kafka.NOMISPrisonerAlerts, kafka.DPSAlert,
		kafka.DPSAlertCode, kafka.DPSAlertType, kafka.CommandsDPS, kafka.CommandsNOMIS, kafka.DLQ, kafka.TransformHolds)...); err != nil {
		if errors.Is(err, kafka.ErrPartitionMismatch) {
			return &fatalError{err}
		}
		return err
	}
	return nil
}

// bindSchemas registers the command and DLQ schemas and learns the ids of
// the consumed topics' current schemas, once.
func (t *Transformer) bindSchemas(ctx context.Context) error {
	if t.commands != nil {
		return nil
	}
	cmds := map[rules.Side]*schemas.TopicCodec{}
	for side, name := range map[rules.Side]string{rules.SideDPS: schemas.TopicCommandsDPS, rules.SideNOMIS: schemas.TopicCommandsNOMIS} {
		tc, err := t.codec.Bind(ctx, name)
		if err != nil {
			return bindErr(name, err)
		}
		cmds[side] = tc
	}
	dlq, err := t.codec.Bind(ctx, schemas.TopicDLQ)
	if err != nil {
		return bindErr(schemas.TopicDLQ, err)
	}
	holds, err := t.codec.Bind(ctx, schemas.TopicTransformHolds)
	if err != nil {
		return bindErr(schemas.TopicTransformHolds, err)
	}
	// The consumed topics' current schemas, registered by their captures
	// (registering them again finds the same ids).
	current := map[string]schemaIDs{}
	for name, in := range t.inputs {
		tc, err := t.codec.Bind(ctx, in.base)
		if err != nil {
			return bindErr(name, err)
		}
		current[name] = schemaIDs{key: tc.Key.ID(), value: tc.Value.ID()}
	}
	t.commands, t.dlq, t.holdsOut, t.current = cmds, dlq, holds, current
	return nil
}

func bindErr(topic string, err error) error {
	err = fmt.Errorf("registering the schemas of %s: %w", topic, err)
	if errors.Is(err, schemas.ErrIncompatibleSchema) {
		return &fatalError{err}
	}
	return err
}

// dropMarkers removes the transaction markers from fs, in place: past
// the lag, only changes are records. The session has already noted
// their offsets, so the next offset commit passes them.
func dropMarkers(fs kgo.Fetches) {
	isMarker := func(r *kgo.Record) bool { return r.Attrs.IsControl() }
	for i := range fs {
		for j := range fs[i].Topics {
			for k := range fs[i].Topics[j].Partitions {
				p := &fs[i].Topics[j].Partitions[k]
				if slices.ContainsFunc(p.Records, isMarker) {
					p.Records = slices.DeleteFunc(slices.Clone(p.Records), isMarker)
				}
			}
		}
	}
}

// transaction turns one poll's records into commands and DLQ entries and
// produces them, with the consumed offsets, in one transaction. The
// records are mapped before the transaction begins (a wait for reference
// data cannot then run into the transaction timeout). A transaction that
// does not commit is consumed again (the session rewinds to the committed
// offsets).
func (t *Transformer) transaction(ctx context.Context, sess *kgo.GroupTransactSession, fs kgo.Fetches) error {
	began := time.Now()
	sw := t.Switches()
	var out []*kgo.Record
	var tally batchTally
	n := 0
	var handleErr error
	t.holds.discard()
	defer t.holds.discard() // after a commit, nothing is left to discard
	fs.EachRecord(func(rec *kgo.Record) {
		if handleErr != nil {
			return
		}
		n++
		recs, err := t.handle(ctx, rec, sw, &tally)
		if err != nil {
			handleErr = err
			return
		}
		out = append(out, recs...)
	})
	if handleErr != nil {
		// Nothing was produced: the session has not begun a transaction,
		// and the records are consumed again after the retry.
		return handleErr
	}
	hrecs, err := t.holds.records(t.holdsOut)
	if err != nil {
		return &fatalError{err}
	}
	out = append(out, hrecs...)
	if err := sess.Begin(); err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	var produceErr atomic.Pointer[error]
	for _, r := range out {
		sess.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				produceErr.CompareAndSwap(nil, &err)
			}
		})
	}
	try := kgo.TryCommit
	if p := produceErr.Load(); p != nil {
		try = kgo.TryAbort
	}
	committed, err := sess.End(ctx, try)
	if p := produceErr.Load(); p != nil && err == nil {
		err = fmt.Errorf("producing commands: %w", *p)
	}
	t.m.txnSeconds.Observe(time.Since(began).Seconds())
	t.m.decoded.WithLabelValues("fast").Add(float64(t.fastN.Swap(0)))
	t.m.decoded.WithLabelValues("generic").Add(float64(t.genericN.Swap(0)))
	if err != nil {
		t.m.txns.WithLabelValues("aborted").Inc()
		if isFenced(err) {
			return &fatalError{fmt.Errorf("another transformer with replica id %q (transactional id %s) has taken over: %w",
				t.replica, t.cfg.Transform.TransactionalID+t.replica, err)}
		}
		return fmt.Errorf("ending a transaction: %w", err)
	}
	if !committed {
		t.m.txns.WithLabelValues("aborted").Inc()
		t.log.Info("transaction aborted (partitions were reassigned); its records are consumed again", "records", n)
		return nil
	}
	t.holds.commit()
	t.m.holds.Set(float64(len(t.holds.committed)))
	t.m.txns.WithLabelValues("committed").Inc()
	t.m.batch.Observe(float64(n))
	tally.publish(t.m, time.Now())
	total := t.committed.Add(int64(n))
	if t.comp != nil {
		t.comp.Position(fmt.Sprintf("%d records transformed", total))
	}
	return nil
}

// isFenced reports whether err means another producer took this
// transactional id.
func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.FencedInstanceID)
}

// Reloaded counts a reload of the switches that applied.
func (t *Transformer) Reloaded() { t.m.reloads.WithLabelValues("ok").Inc() }

// ReloadFailed counts a reload of the switches that failed (the
// configuration no longer loads).
func (t *Transformer) ReloadFailed() { t.m.reloads.WithLabelValues("error").Inc() }
