package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/schemas"
)

// Runner is the consume-apply loop shared by both applies: it consumes one
// command topic in a consumer group, read committed, claims each assigned
// partition in the target database (Store.Claim) and starts it at the
// offset stored there, applies each partition's commands in batches of
// apply.batch_commands, one database transaction each (Store.Apply:
// writes, outcomes, fenced offset), partitions side by side (workers.go),
// copies the offsets to Kafka as well (for lag monitoring only) and wakes
// the outbox relay, which publishes outcomes and DLQ entries. The lag of
// each partition it owns (Metrics.Lag) is set at each fetch, each batch
// applied and every lagRefresh, and dropped when the partition is revoked
// or lost.
type Runner struct {
	Name     string // component name, e.g. apply-dps
	Topic    kafka.Topic
	Store    Store
	Outbox   Outbox
	Opts     Options
	Pipeline PipelineConfig
	Registry schemas.Registry
	Admin    *admin.Server
	Logger   *slog.Logger

	m    *Metrics
	comp *admin.Component
}

// PipelineConfig is what the runner needs of the pipeline sections.
type PipelineConfig struct {
	Kafka  kafka.Config
	Topics kafka.TopicsConfig
}

// Group returns the consumer group: Opts.Group or alertsync-<name>.
func (r *Runner) Group() string {
	if r.Opts.Group != "" {
		return r.Opts.Group
	}
	return "alertsync-" + r.Name
}

func (r *Runner) owner() string {
	if r.Opts.Owner != "" {
		return r.Opts.Owner
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "apply-" + strconv.Itoa(os.Getpid())
	}
	return h
}

// Metrics returns the runner's metrics (created by Run; nil before).
func (r *Runner) Metrics() *Metrics { return r.m }

// Run applies commands until ctx is cancelled (nil) or a fatal error.
func (r *Runner) Run(ctx context.Context) error {
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	var reg prometheus.Registerer
	if r.Admin != nil {
		reg = r.Admin.Registry()
		r.comp = r.Admin.Component(r.Name)
	}
	r.m = NewMetrics(reg, r.Name)
	r.set(admin.Starting, "")
	backoff := min(time.Second, r.Opts.MaxBackoff)
	for {
		err := r.session(ctx)
		if ctx.Err() != nil {
			r.set(admin.Stopped, "")
			return nil //nolint:nilerr // a stop
		}
		var fatal *FatalError
		if errors.As(err, &fatal) {
			r.set(admin.Failed, err.Error())
			return err
		}
		r.m.Errors.WithLabelValues("session").Inc()
		r.Logger.Warn("apply session ended; retrying", "err", err, "backoff", backoff.String())
		r.set(admin.Degraded, err.Error())
		if r.comp != nil {
			r.comp.Error(err)
		}
		select {
		case <-ctx.Done():
			r.set(admin.Stopped, "")
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, r.Opts.MaxBackoff)
	}
}

// FatalError is an error a retry cannot cure.
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return e.Err.Error() }
func (e *FatalError) Unwrap() error { return e.Err }

func (r *Runner) set(s admin.State, detail string) {
	if r.comp != nil {
		r.comp.Set(s, detail)
	}
}

func (r *Runner) session(ctx context.Context) error {
	kc := r.Pipeline.Kafka
	codec := schemas.New(r.Registry, schemas.WithTopicPrefix(r.Pipeline.Topics.Prefix), schemas.WithLogger(r.Logger))
	relayCl, err := kafka.NewClient(kc, r.Logger, nil, kgo.ClientID(kc.ClientID+"-"+r.Name+"-outbox"))
	if err != nil {
		return &FatalError{err}
	}
	defer relayCl.Close()
	if err := kafka.EnsureTopics(ctx, kadm.NewClient(relayCl), r.Pipeline.Topics.Specs(r.Topic, kafka.Outcomes, kafka.DLQ)...); err != nil {
		return err
	}
	rl := &relay{outbox: r.Outbox, cl: relayCl, codec: codec, log: r.Logger, m: r.m, target: r.Name,
		wake: make(chan struct{}, 1), interval: r.Opts.OutboxInterval}
	if err := rl.bind(ctx); err != nil {
		return err
	}
	rctx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan struct{})
	go func() { rl.run(rctx); close(relayDone) }()
	defer func() { stopRelay(); <-relayDone }()

	cl := &claims{}
	group, owner := r.Group(), r.owner()
	topic := r.Pipeline.Topics.Name(r.Topic)
	ws := newWorkers(ctx, r, codec, r.commandSchemas(ctx, codec), cl, rl.poke)
	consumer, err := kafka.NewClient(kc, r.Logger, r.registerer(), kgo.ClientID(kc.ClientID+"-"+r.Name),
		kgo.ConsumerGroup(group),
		kgo.InstanceID(owner),
		kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers too, for the lag only (workers.fetched):
		// they are never dispatched.
		kgo.KeepControlRecords(),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(r.Opts.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, r.Opts.SessionTimeout/3)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AdjustFetchOffsetsFn(adjust(r.Store, group, owner, cl, r.Logger)),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { ws.stopPartitions(m) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { ws.stopPartitions(m) }),
	)
	if err != nil {
		ws.close()
		return &FatalError{err}
	}
	defer consumer.Close()
	// Stopped before the consumer closes (defers run last first): the last
	// offsets applied reach Kafka.
	commitCtx, stopCommits := context.WithCancel(ctx)
	commitsDone := make(chan struct{})
	go func() { defer close(commitsDone); ws.commitLoop(commitCtx, consumer) }()
	defer func() { ws.close(); stopCommits(); <-commitsDone }()
	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() { defer close(lagDone); ws.lagLoop(lagCtx, kadm.NewClient(relayCl), topic) }()
	defer func() { stopLag(); <-lagDone }()
	r.set(admin.Running, "")
	r.Logger.Info("applying", "topic", topic, "group", group, "owner", owner, "parallelism", r.Opts.Parallelism)
	for {
		fs := consumer.PollRecords(ws.ctx, r.Opts.BatchCommands*partitionQueue)
		if err := ws.err(); err != nil {
			consumer.AllowRebalance()
			return err
		}
		if ctx.Err() != nil {
			consumer.AllowRebalance()
			return ctx.Err()
		}
		var fetchErr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && fetchErr == nil {
				fetchErr = fmt.Errorf("fetching %s/%d: %w", t, p, err)
			}
		})
		if fetchErr != nil && fs.NumRecords() == 0 {
			consumer.AllowRebalance()
			return fetchErr
		}
		ws.dispatch(fs)
		consumer.AllowRebalance()
	}
}

func (r *Runner) registerer() prometheus.Registerer {
	if r.Admin == nil {
		return nil
	}
	return r.Admin.Registry()
}

// applyBatch decodes recs and applies them, retrying transient failures.
func (r *Runner) applyBatch(ctx context.Context, codec *schemas.Codec, cur commandSchemas, f Fence, recs []*kgo.Record) error {
	cmds := make([]Cmd, 0, len(recs))
	for _, rec := range recs {
		c := Cmd{Record: rec}
		var err error
		c.Command, err = decodeRecord(ctx, codec, cur, rec)
		var derr *schemas.DecodeError
		if errors.As(err, &derr) && !derr.Permanent() {
			return err // the registry is away: retry the session
		}
		c.Err = err
		cmds = append(cmds, c)
	}
	next := recs[len(recs)-1].Offset + 1
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		began := time.Now()
		outs, err := r.Store.Apply(ctx, f, cmds, next)
		if err == nil {
			r.m.observe(cmds, outs, time.Since(began))
			return nil
		}
		if errors.Is(err, ErrFenced) || ctx.Err() != nil || attempt >= r.Opts.Retries || !Transient(err) {
			return err
		}
		r.m.Retries.Inc()
		r.Logger.Warn("retrying a batch after a transient error", "attempt", attempt+1, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, r.Opts.MaxBackoff)
	}
}
