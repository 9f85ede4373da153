package transform

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/hold"
)

// Record results of held alerts (records_total's result label).
const (
	resultWaiting   = "waiting"   // already held (a redrive of a later record, or a replay): nothing new
	resultStale     = "stale"     // a redriven record its hold no longer holds: nothing
	resultDiscarded = "discarded" // a redriven record released without being transformed
)

// holdBook is the transformer's holds: the committed ones, as in the holds
// topic, and those the transaction being built changes, which become
// committed only when it commits.
type holdBook struct {
	committed map[string]*hold.Hold
	changed   map[string]*hold.Hold // nil: released
}

func newHoldBook() *holdBook {
	return &holdBook{committed: map[string]*hold.Hold{}, changed: map[string]*hold.Hold{}}
}

// get returns the hold on key as the transaction sees it, nil when none;
// the caller does not change it (edit does).
func (b *holdBook) get(key string) *hold.Hold {
	if h, ok := b.changed[key]; ok {
		return h
	}
	return b.committed[key]
}

// edit returns the hold on key for the transaction to change, a copy of the
// committed one; nil when there is none.
func (b *holdBook) edit(key string) *hold.Hold {
	if h, ok := b.changed[key]; ok {
		return h
	}
	h := b.committed[key]
	if h == nil {
		return nil
	}
	h = h.Clone()
	b.changed[key] = h
	return h
}

// put sets the hold on key in the transaction; nil (or a hold with nothing
// pending) releases it.
func (b *holdBook) put(key string, h *hold.Hold) {
	if h != nil && len(h.Pending) == 0 {
		h = nil
	}
	b.changed[key] = h
}

// records returns the records of the transaction's changes, by key.
func (b *holdBook) records(tc *schemas.TopicCodec) ([]*kgo.Record, error) {
	keys := make([]string, 0, len(b.changed))
	for k := range b.changed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*kgo.Record, 0, len(keys))
	for _, k := range keys {
		r, err := hold.Record(tc, k, b.changed[k])
		if err != nil {
			return nil, fmt.Errorf("encoding the hold on %s: %w", k, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// commit makes the transaction's changes the committed holds.
func (b *holdBook) commit() {
	for k, h := range b.changed {
		if h == nil {
			delete(b.committed, k)
		} else {
			b.committed[k] = h
		}
	}
	clear(b.changed)
}

// discard forgets the transaction's changes.
func (b *holdBook) discard() { clear(b.changed) }

// freshPartitions are the source partitions assigned to this replica whose
// records it has not fetched yet. The group commits a partition's offsets
// in the transactions of whoever owned it, holds included, and a partition's
// first records come only after its committed offsets are stable (the
// previous owner's transaction ended): the holds are read again then.
type freshPartitions struct {
	mu    sync.Mutex
	parts map[string]map[int32]bool
}

func (f *freshPartitions) assigned(m map[string][]int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.parts == nil {
		f.parts = map[string]map[int32]bool{}
	}
	for topic, ps := range m {
		if f.parts[topic] == nil {
			f.parts[topic] = map[int32]bool{}
		}
		for _, p := range ps {
			f.parts[topic][p] = true
		}
	}
}

// fetched reports whether fs holds the first records of a fresh partition,
// and forgets those partitions.
func (f *freshPartitions) fetched(fs kgo.Fetches) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	first := false
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) > 0 && f.parts[p.Topic][p.Partition] {
			delete(f.parts[p.Topic], p.Partition)
			first = true
		}
	})
	return first
}

// loadHolds reads the committed holds from the holds topic.
func (t *Transformer) loadHolds(ctx context.Context, adm *kadm.Client) error {
	kc := t.cfg.Pipeline.Kafka
	hs, err := hold.Read(ctx, adm, func(o ...kgo.Opt) (*kgo.Client, error) {
		return kafka.NewClient(kc, t.log, nil, append([]kgo.Opt{kgo.ClientID(kc.ClientID + "-transform-holds")}, o...)...)
	}, t.codec, t.topic(kafka.TransformHolds))
	if err != nil {
		return fmt.Errorf("reading the holds: %w", err)
	}
	t.holds = &holdBook{committed: hs, changed: map[string]*hold.Hold{}}
	t.m.holds.Set(float64(len(hs)))
	t.log.Info("holds read", "open", len(hs))
	return nil
}

// gateDecision is what a record's hold says to do with it.
type gateDecision int8

const (
	gatePass    gateDecision = iota // transform it
	gateHold                        // hold it: a DLQ entry behind the failed record
	gateWaiting                     // held already: nothing
	gateStale                       // a redriven record no longer held: nothing
	gateDiscard                     // a redriven record to release untransformed
)

// errGated stops mapping a record its hold decides about (the decision is
// in mapped.gate).
var errGated = errors.New("decided by its hold")

// gate decides what the hold on key (if any) says about rec, whose redrive
// headers say rd. A record
// dlq redrive sent back (hold.HeaderRedriveOf) passes only while it is the
// record its hold waits on; it is discarded when it asks to be and that
// record is one that failed.
func (t *Transformer) gate(rec *kgo.Record, key string, rd redrive) gateDecision {
	of, redriven, discard := rd.of, rd.copy, rd.discard
	h := t.holds.get(key)
	switch {
	case !redriven && h == nil:
		return gatePass
	case !redriven && h.Holds(hold.PosOf(rec)):
		return gateWaiting // consumed again after a replay
	case !redriven && precedes(rec, h.Head()):
		return gatePass // older than the failure (a replay): its turn came before it
	case !redriven:
		return gateHold
	case h == nil || !h.Holds(of):
		return gateStale
	case h.Head() != of:
		return gateWaiting
	case discard && h.HeadFailed:
		return gateDiscard
	}
	return gatePass
}

// precedes reports whether rec was read before p, in p's partition.
func precedes(rec *kgo.Record, p hold.Pos) bool {
	return rec.Topic == p.Topic && rec.Partition == p.Partition && rec.Offset < p.Offset
}

// redrive is what the redrive headers of a record say: whether it is a
// copy dlq redrive sent back, of which record, and whether to discard it.
type redrive struct {
	of            hold.Pos
	copy, discard bool
}

// redriveHeaders reads the redrive headers of rec.
func redriveHeaders(rec *kgo.Record) redrive {
	var rd redrive
	for _, h := range rec.Headers {
		switch h.Key {
		case hold.HeaderRedriveOf:
			p, err := hold.ParsePos(string(h.Value))
			if err != nil {
				continue // not ours: transformed as any record
			}
			rd.of, rd.copy = p, true
		case hold.HeaderRedriveDiscard:
			rd.discard = true
		}
	}
	return rd
}

// released records that the copy of record of, the one its hold on key
// waited on, is done with (transformed, or discarded): the hold waits on
// the next one, or ends.
func (t *Transformer) released(key string, of hold.Pos, now time.Time) {
	if h := t.holds.get(key); h == nil || len(h.Pending) == 0 || h.Head() != of {
		return // not copied into the transaction: it would write the hold unchanged
	}
	h := t.holds.edit(key)
	h.Pending = h.Pending[1:]
	h.HeadFailed = false // the next one was held, not failed
	h.UpdatedAt = now
	t.holds.put(key, h)
}

// refailed records that the redriven record its hold on key waits on
// failed again: it stays first, with this failure's kind and reason.
func (t *Transformer) refailed(key, kind, reason string, now time.Time) {
	h := t.holds.edit(key)
	if h == nil {
		return
	}
	h.HeadFailed, h.ErrorKind, h.Reason, h.UpdatedAt = true, kind, reason, now
}

// holdBehind adds rec to the hold on key.
func (t *Transformer) holdBehind(key string, rec *kgo.Record, now time.Time) *hold.Hold {
	h := t.holds.edit(key)
	h.Pending = append(h.Pending, hold.PosOf(rec))
	h.UpdatedAt = now
	return h
}

// startHold starts a hold on key with the failed record rec. When the
// alert is held already, rec is older than the record its hold waits on
// (gate passes no other live record: a replay), and goes first.
func (t *Transformer) startHold(key, prisonNumber, kind, reason string, rec *kgo.Record, now time.Time) {
	if h := t.holds.edit(key); h != nil {
		h.Pending = append([]hold.Pos{hold.PosOf(rec)}, h.Pending...)
		h.HeadFailed, h.ErrorKind, h.Reason, h.UpdatedAt = true, kind, reason, now
		return
	}
	t.holds.put(key, &hold.Hold{Key: key, PrisonNumber: prisonNumber, ErrorKind: kind, Reason: reason,
		CreatedAt: now, UpdatedAt: now, Pending: []hold.Pos{hold.PosOf(rec)}, HeadFailed: true})
}

// gateOf asks the hold on m's alert, if any, about rec: true when the hold
// decided (m.gate says what), false to transform rec (m.redriven says
// whether as the record its hold waits on). m.copyOf is what rec's
// redrive headers say.
func (t *Transformer) gateOf(rec *kgo.Record, m *mapped) bool {
	if m.key.prefix == "" {
		return false
	}
	m.copyOf = redriveHeaders(rec)
	if !m.copyOf.copy && t.holds.empty() {
		return false
	}
	m.gate = t.gate(rec, m.key.String(), m.copyOf)
	m.redriven = m.copyOf.copy && m.gate == gatePass
	return m.gate != gatePass
}

// empty reports whether there are no holds and the transaction changed none.
func (b *holdBook) empty() bool { return len(b.committed) == 0 && len(b.changed) == 0 }
