package transform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/rules"
)

// refData is the reference data of every replica: the alert codes and
// types of DPS, read in full from dps.public.alert_code and
// dps.public.alert_type (outside the consumer group: each replica reads
// every partition from the start). It implements rules.Codes and is safe
// for concurrent use.
//
// A code must be known before the first alert that uses it is mapped. The
// replica reads the reference topics to their end before it consumes
// anything; later, a record whose code is unknown makes the loop call
// await, which reads the reference topics to their end again, repeatedly,
// for up to transform.reference_wait (the code's record may still be on its
// way: the DPS capture does not write its topics in one transaction). A code
// awaited in vain is not awaited again until the reference data changes, so
// a burst of alerts with a code that does not exist costs one wait.
type refData struct {
	mu       sync.RWMutex
	types    map[int64]string  // alert_type id → code
	codes    map[int64]refCode // alert_code id → code
	byName   map[string]int64  // code → alert_code id
	version  uint64            // changes of the tables
	missed   map[string]uint64 // awaited in vain at version
	consumed map[refPart]int64 // next offset to read, by partition
	progress chan struct{}     // closed and replaced on every fetch
}

type refCode struct {
	code   string
	typeID int64
	active bool
}

type refPart struct {
	topic     string
	partition int32
}

func newRefData() *refData {
	return &refData{types: map[int64]string{}, codes: map[int64]refCode{}, byName: map[string]int64{},
		missed: map[string]uint64{}, consumed: map[refPart]int64{}, progress: make(chan struct{})}
}

// CodeByID implements rules.Codes. A code whose type is not (yet) known is
// not known.
func (d *refData) CodeByID(id int64) (rules.Code, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	c, ok := d.codes[id]
	if !ok {
		return rules.Code{}, false
	}
	t, ok := d.types[c.typeID]
	if !ok {
		return rules.Code{}, false
	}
	return rules.Code{ID: id, Code: c.code, Type: t, Active: c.active}, true
}

// Lookup implements rules.Codes.
func (d *refData) Lookup(code string) (rules.Code, bool) {
	d.mu.RLock()
	id, ok := d.byName[code]
	d.mu.RUnlock()
	if !ok {
		return rules.Code{}, false
	}
	return d.CodeByID(id)
}

// counts returns the number of codes and types held.
func (d *refData) counts() (codes, types int) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.codes), len(d.types)
}

// refRow is one reference record, decoded.
type refRow struct {
	table  string // alert_code or alert_type
	delete bool
	id     int64
	code   string
	typeID int64 // alert_code only
	active bool
}

// apply applies rows and records the partitions' next offsets.
func (d *refData) apply(rows []refRow, next map[refPart]int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range rows {
		switch r.table {
		case "alert_type":
			if r.delete {
				delete(d.types, r.id)
			} else {
				d.types[r.id] = r.code
			}
		case "alert_code":
			if old, ok := d.codes[r.id]; ok && d.byName[old.code] == r.id {
				delete(d.byName, old.code)
			}
			if r.delete {
				delete(d.codes, r.id)
				continue
			}
			d.codes[r.id] = refCode{code: r.code, typeID: r.typeID, active: r.active}
			d.byName[r.code] = r.id
		}
	}
	if len(rows) > 0 {
		d.version++
		clear(d.missed)
	}
	for p, o := range next {
		if o > d.consumed[p] {
			d.consumed[p] = o
		}
	}
	close(d.progress)
	d.progress = make(chan struct{})
}

// reached reports whether every partition in ends has been read up to its
// end offset, and returns the channel closed at the next progress.
func (d *refData) reached(ends map[refPart]int64) (bool, <-chan struct{}) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for p, end := range ends {
		if d.consumed[p] < end {
			return false, d.progress
		}
	}
	return true, d.progress
}

// refReader keeps a refData up to date from the reference topics.
type refReader struct {
	data   *refData
	cl     *kgo.Client
	adm    *kadm.Client
	codec  *schemas.Codec
	topics map[string]string // topic name → table
	log    *slog.Logger
	m      *metrics
}

// errRefDecode marks a reference record that cannot be decoded: it is
// skipped (counted and logged by position; it never reaches the DLQ, since
// every replica reads it again at every start).
var errRefDecode = errors.New("undecodable reference record")

// run fetches until ctx is cancelled.
func (r *refReader) run(ctx context.Context) {
	for {
		fs := r.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			r.log.Warn("reading reference data", "topic", topic, "partition", p, "err", err)
		})
		var rows []refRow
		next := map[refPart]int64{}
		fs.EachRecord(func(rec *kgo.Record) {
			next[refPart{rec.Topic, rec.Partition}] = rec.Offset + 1
			row, ok, err := r.decode(ctx, rec)
			if err != nil {
				r.m.refErrors.Inc()
				r.log.Warn("skipping a reference record", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", err)
				return
			}
			if ok {
				rows = append(rows, row)
			}
		})
		// A fetch's high watermark moves the reading position past control
		// records and compacted gaps, so that await ends.
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			k := refPart{p.Topic, p.Partition}
			if p.Err == nil && p.LastStableOffset > next[k] && len(p.Records) == 0 {
				next[k] = p.LastStableOffset
			}
		})
		r.data.apply(rows, next)
		codes, types := r.data.counts()
		r.m.refCodes.Set(float64(codes))
		r.m.refTypes.Set(float64(types))
	}
}

// decode reads one reference record; ok is false for a tombstone.
func (r *refReader) decode(ctx context.Context, rec *kgo.Record) (refRow, bool, error) {
	table := r.topics[rec.Topic]
	if rec.Value == nil {
		return refRow{}, false, nil
	}
	v, err := r.codec.DecodeValue(ctx, rec)
	if err != nil {
		return refRow{}, false, err
	}
	env, _ := v.(map[string]any)
	op, _ := env["op"].(string)
	img := "after"
	if op == "d" {
		img = "before"
	}
	row, ok := unionRecord(env[img])
	if !ok {
		return refRow{}, false, fmt.Errorf("%w: no %s image", errRefDecode, img)
	}
	id, ok1 := row["id"].(int64)
	code, ok2 := row["code"].(string)
	if !ok1 || !ok2 {
		return refRow{}, false, fmt.Errorf("%w: %s.id or %s.code missing", errRefDecode, img, img)
	}
	out := refRow{table: table, delete: op == "d", id: id, code: code, active: true}
	if table == "alert_code" {
		if out.typeID, ok = row["alert_type_id"].(int64); !ok {
			return refRow{}, false, fmt.Errorf("%w: %s.alert_type_id missing", errRefDecode, img)
		}
		out.active = row["deactivated_at"] == nil
	}
	return out, true, nil
}

// unionRecord returns the record of a goavro nullable-union value.
func unionRecord(v any) (map[string]any, bool) {
	u, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	for _, b := range u {
		m, ok := b.(map[string]any)
		return m, ok
	}
	return nil, false
}

// catchUp waits until the reader has read every reference partition to the
// end offset it has now.
func (r *refReader) catchUp(ctx context.Context) error {
	topics := make([]string, 0, len(r.topics))
	for t := range r.topics {
		topics = append(topics, t)
	}
	offs, err := r.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("listing the end offsets of the reference topics: %w", err)
	}
	if err := offs.Error(); err != nil {
		return fmt.Errorf("listing the end offsets of the reference topics: %w", err)
	}
	ends := map[refPart]int64{}
	offs.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			ends[refPart{o.Topic, o.Partition}] = o.Offset
		}
	})
	for {
		done, progress := r.data.reached(ends)
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-progress:
		}
	}
}

// await waits up to wait for the reference data to know what known asks
// for, reading the reference topics to their end repeatedly. key names the
// awaited code for the negative cache.
func (r *refReader) await(ctx context.Context, key string, wait time.Duration, known func() bool) (bool, error) {
	if known() {
		return true, nil
	}
	r.data.mu.RLock()
	v, missed := r.data.missed[key]
	version := r.data.version
	r.data.mu.RUnlock()
	if missed && v == version {
		return false, nil
	}
	began := time.Now()
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	r.m.refWaiting.Inc()
	defer r.m.refWaiting.Dec()
	for {
		err := r.catchUp(wctx)
		if known() {
			r.m.refWaits.WithLabelValues("found").Observe(time.Since(began).Seconds())
			return true, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if wctx.Err() != nil || (err != nil && !errors.Is(err, context.DeadlineExceeded)) {
			r.m.refWaits.WithLabelValues("missing").Observe(time.Since(began).Seconds())
			r.data.mu.Lock()
			r.data.missed[key] = version
			r.data.mu.Unlock()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return false, err
			}
			return false, nil
		}
		select {
		case <-wctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// codeKey and codeIDKey name awaited codes.
func codeKey(code string) string { return "code:" + code }
func codeIDKey(id int64) string  { return "id:" + strconv.FormatInt(id, 10) }
