package apply

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/failpoint"
	"github.com/alertsync/alertsync/schemas"
)

// partitionQueue is how many batches a partition's worker may have waiting:
// the poll loop stops fetching for it beyond that.
const partitionQueue = 4

// workers applies each assigned partition in a goroutine of its own, so
// that the poll loop keeps fetching while the database works and several
// partitions are applied at once (up to apply.parallelism transactions; a
// partition's batches, and so a prisoner's commands, stay in order). The
// poll loop dispatches a poll's records before it allows a rebalance
// (kgo.BlockRebalanceOnPoll), so records of an old assignment never reach a
// worker of a new one; a revoked or lost partition's worker is stopped,
// and waited for, before the rebalance goes on: it finishes or abandons
// the batch in hand and drops what is queued (the next owner starts from
// the offset stored with the last batch committed). Correctness does not
// rest on that wait: a batch committed after another apply claimed the
// partition is refused by the fence (ErrFenced).
type workers struct {
	r      *Runner
	codec  *schemas.Codec
	cmdIDs commandSchemas // the current command schemas: read without goavro
	claims *claims
	ctx    context.Context
	fail   context.CancelCauseFunc // ends the session with the first error
	slots  chan struct{}           // one per transaction in flight
	poke   func()                  // wakes the outbox relay

	mu      sync.Mutex
	byTP    map[topicPartition]*worker
	done    []*kgo.Record // last record of each batch applied since the last Kafka commit
	applied chan struct{} // a batch was applied: wakes the Kafka commit
	wg      sync.WaitGroup
}

type topicPartition struct {
	topic string
	part  int32
}

type worker struct {
	queue chan []*kgo.Record
	stop  chan struct{}
	done  chan struct{}
	carry []*kgo.Record // a queued batch taken but left for the next transaction (run's goroutine only)
	lag   partitionLag  // under workers.mu
	gauge prometheus.Gauge
}

// partitionLag is what a partition's lag gauge is computed from. The
// consumer keeps transaction markers (kgo.KeepControlRecords) so that the
// lag can pass them: the last command of a transaction is followed by its
// commit marker, and an apply that has applied it is caught up.
type partitionLag struct {
	stable  int64 // last stable offset at the partition's last fetch
	fetched int64 // offset after the last record fetched, markers included
	last    int64 // offset of the last command fetched; -1 before the first
	applied int64 // offset after the last command applied; before that, of the first record fetched
}

// behind returns the last stable offset minus the next offset to apply,
// which is past the markers fetched behind the last command fetched once
// that command is applied.
func (l partitionLag) behind() int64 {
	next := l.applied
	if next > l.last {
		next = max(next, l.fetched)
	}
	return max(0, l.stable-next)
}

// next returns the partition's next batch: the one carried over, else the
// next queued (blocking); nil when stopped.
func (ws *workers) next(w *worker) []*kgo.Record {
	if recs := w.carry; recs != nil {
		w.carry = nil
		return recs
	}
	select {
	case recs := <-w.queue:
		return recs
	case <-w.stop:
	case <-ws.ctx.Done():
	}
	return nil
}

// coalesce appends to recs the batches already queued behind it, in
// order, up to apply.batch_commands in all; a batch that would go over is
// carried to the next transaction. Each poll's records make batches of
// their own, so under load a partition's queue fills with small batches
// (a record or two: whatever arrived since the last poll) while its
// transaction runs; applied one by one, each would pay a transaction's
// round trips.
func (ws *workers) coalesce(w *worker, recs []*kgo.Record) []*kgo.Record {
	merged := false
	for len(recs) < ws.r.Opts.BatchCommands {
		var more []*kgo.Record
		select {
		case more = <-w.queue:
		default:
			return recs
		}
		if len(recs)+len(more) > ws.r.Opts.BatchCommands {
			w.carry = more
			return recs
		}
		if !merged {
			// A batch shares its poll's backing array: never append into it.
			recs = append(make([]*kgo.Record, 0, ws.r.Opts.BatchCommands), recs...)
			merged = true
		}
		recs = append(recs, more...)
	}
	return recs
}

func newWorkers(ctx context.Context, r *Runner, codec *schemas.Codec, cmdIDs commandSchemas, cl *claims, poke func()) *workers {
	wctx, fail := context.WithCancelCause(ctx)
	return &workers{r: r, codec: codec, cmdIDs: cmdIDs, claims: cl, ctx: wctx, fail: fail, poke: poke,
		slots: make(chan struct{}, max(1, r.Opts.Parallelism)), applied: make(chan struct{}, 1), byTP: map[topicPartition]*worker{}}
}

// lagRefresh is how often an apply lists its topic's last stable offsets
// for the lag of the partitions it owns (lagLoop).
const lagRefresh = 5 * time.Second

// lagLoop refreshes, every lagRefresh until ctx ends, the last stable
// offsets of the partitions this apply owns and their lag. Fetches set them
// too, but an apply that cannot keep up stops fetching: a stalled worker
// fills its queue, dispatch waits for it, and no fetch brings the offsets
// of what has been written since.
func (ws *workers) lagLoop(ctx context.Context, adm *kadm.Client, topic string) {
	t := time.NewTicker(lagRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		offsets, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			ws.r.Logger.Debug("listing last stable offsets (for the lag)", "topic", topic, "err", err)
			continue
		}
		ws.mu.Lock()
		offsets.Each(func(o kadm.ListedOffset) {
			w := ws.byTP[topicPartition{o.Topic, o.Partition}]
			if o.Err != nil || w == nil || w.lag.applied < 0 || o.Offset <= w.lag.stable {
				return
			}
			w.lag.stable = o.Offset
			w.gauge.Set(float64(w.lag.behind()))
		})
		ws.mu.Unlock()
	}
}

// dispatch queues a poll's commands on their partitions' workers, in
// batches of apply.batch_commands, waiting while a queue is full, and sets
// the partitions' lag. It returns early when the session ends.
func (ws *workers) dispatch(fs kgo.Fetches) {
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		w := ws.worker(p.Topic, p.Partition)
		if w == nil {
			return // not ours (any more)
		}
		cmds := ws.fetched(w, p)
		for start := 0; start < len(cmds); start += ws.r.Opts.BatchCommands {
			batch := cmds[start:min(len(cmds), start+ws.r.Opts.BatchCommands)]
			select {
			case w.queue <- batch:
			case <-w.done:
				return // stopped: revoked, or fenced out
			case <-ws.ctx.Done():
				return
			}
		}
	})
}

// fetched returns the commands of a partition's fetched records (without
// its transaction markers) and updates the partition's lag.
func (ws *workers) fetched(w *worker, p kgo.FetchTopicPartition) []*kgo.Record {
	isMarker := func(r *kgo.Record) bool { return r.Attrs.IsControl() }
	cmds := p.Records
	if slices.ContainsFunc(cmds, isMarker) {
		cmds = slices.DeleteFunc(slices.Clone(cmds), isMarker)
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	l := &w.lag
	if l.applied < 0 {
		l.applied = p.Records[0].Offset // everything before it was applied
	}
	// A poll may hand out records fetched a while ago (kgo buffers
	// fetches), with the last stable offset of then: never lower it.
	l.stable = max(l.stable, p.LastStableOffset)
	l.fetched = p.Records[len(p.Records)-1].Offset + 1
	if len(cmds) > 0 {
		l.last = cmds[len(cmds)-1].Offset
	}
	w.gauge.Set(float64(l.behind()))
	return cmds
}

// worker returns the partition's worker, starting it; nil when the
// partition has no claim (revoked meanwhile).
func (ws *workers) worker(topic string, part int32) *worker {
	f, ok := ws.claims.get(topic, part)
	if !ok {
		return nil
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	tp := topicPartition{topic, part}
	if w := ws.byTP[tp]; w != nil {
		return w
	}
	w := &worker{queue: make(chan []*kgo.Record, partitionQueue), stop: make(chan struct{}), done: make(chan struct{}),
		lag: partitionLag{last: -1, applied: -1}, gauge: ws.r.m.Lag.WithLabelValues(topic, strconv.Itoa(int(part)))}
	ws.byTP[tp] = w
	ws.wg.Add(1)
	go ws.run(tp, f, w)
	return w
}

// run applies a partition's batches in order until stopped.
func (ws *workers) run(tp topicPartition, f Fence, w *worker) {
	defer ws.wg.Done()
	defer close(w.done)
	for {
		recs := ws.next(w)
		if recs == nil {
			return
		}
		select {
		case ws.slots <- struct{}{}:
		case <-w.stop:
			return
		case <-ws.ctx.Done():
			return
		}
		// What queued while this waited goes in the same transaction.
		recs = ws.coalesce(w, recs)
		err := ws.r.applyBatch(ws.ctx, ws.codec, ws.cmdIDs, f, recs)
		<-ws.slots
		switch {
		case errors.Is(err, ErrFenced):
			ws.r.Logger.Warn("partition claimed by another apply; leaving it", "topic", tp.topic, "partition", tp.part)
			ws.claims.drop(tp.topic, []int32{tp.part})
			ws.forget(tp, w)
			return
		case err != nil:
			ws.fail(err)
			return
		}
		ws.mu.Lock()
		ws.done = append(ws.done, recs[len(recs)-1])
		w.lag.applied = recs[len(recs)-1].Offset + 1
		w.gauge.Set(float64(w.lag.behind()))
		ws.mu.Unlock()
		select {
		case ws.applied <- struct{}{}:
		default:
		}
		ws.poke()
	}
}

// forget drops a fenced-out partition's worker and its lag.
func (ws *workers) forget(tp topicPartition, w *worker) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.byTP[tp] == w {
		delete(ws.byTP, tp)
		ws.dropLag(tp)
	}
}

// dropLag removes a partition's lag series: the partition is no longer
// this apply's (a stale value would add to the lag of its next owner).
func (ws *workers) dropLag(tp topicPartition) {
	ws.r.m.Lag.DeleteLabelValues(tp.topic, strconv.Itoa(int(tp.part)))
}

// stopPartitions stops the workers of partitions and waits for them, then
// drops the partitions' lag: the OnPartitionsRevoked and OnPartitionsLost
// callback (also called when the session ends), with the claims dropped
// first so that nothing new is dispatched to them.
func (ws *workers) stopPartitions(m map[string][]int32) {
	var stopped []*worker
	ws.mu.Lock()
	for topic, parts := range m {
		ws.claims.drop(topic, parts)
		for _, p := range parts {
			tp := topicPartition{topic, p}
			if w := ws.byTP[tp]; w != nil {
				delete(ws.byTP, tp)
				close(w.stop)
				stopped = append(stopped, w)
			}
		}
	}
	ws.mu.Unlock()
	for _, w := range stopped {
		<-w.done
	}
	for topic, parts := range m {
		for _, p := range parts {
			ws.dropLag(topicPartition{topic, p})
		}
	}
}

// close stops every worker and waits for them.
func (ws *workers) close() {
	ws.fail(context.Canceled)
	ws.wg.Wait()
}

// err is the error that ended the session, if a worker's.
func (ws *workers) err() error {
	if cause := context.Cause(ws.ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// commitKafka copies the offsets applied since the last call to Kafka,
// for lag monitoring (the offsets that count are in the target database).
func (ws *workers) commitKafka(ctx context.Context, consumer *kgo.Client) {
	ws.mu.Lock()
	recs := ws.done
	ws.done = nil
	ws.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	if err := consumer.CommitRecords(ctx, recs...); err != nil {
		ws.r.Logger.Debug("committing offsets to Kafka (for lag monitoring)", "err", err)
	}
	failpoint.Hit("apply.after_kafka_commit")
}

// commitLoop runs commitKafka whenever batches were applied since it last
// did (one commit covers every batch applied during the one before), at
// most once per Opts.KafkaCommitInterval, until ctx ends, and once more
// then.
func (ws *workers) commitLoop(ctx context.Context, consumer *kgo.Client) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			ws.commitKafka(context.WithoutCancel(ctx), consumer)
			return
		case <-ws.applied:
		}
		if wait := ws.r.Opts.KafkaCommitInterval - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				ws.commitKafka(context.WithoutCancel(ctx), consumer)
				return
			case <-t.C:
			}
		}
		ws.commitKafka(ctx, consumer)
		last = time.Now()
	}
}
