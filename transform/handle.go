package transform

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/avrobin"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/decode"
	"github.com/alertsync/alertsync/transform/encode"
	"github.com/alertsync/alertsync/transform/rules"
)

// HeaderSource is the header of every command and DLQ entry naming the
// source record: "<topic>/<partition>/<offset>", for tracing a command back.
const HeaderSource = "alertsync-source"

// batchTally counts a transaction's records; published once it commits.
type batchTally struct {
	records   map[[2]string]int // topic, result
	dropped   map[rules.Drop]int
	commands  map[[2]string]int // target, kind
	dlq       map[[3]string]int // topic, error kind, reason
	skipped   map[Direction]int
	freshness []freshness
}

type freshness struct {
	dir    Direction
	commit time.Time
}

func (b *batchTally) record(topic, result string) {
	if b.records == nil {
		b.records = map[[2]string]int{}
	}
	b.records[[2]string{topic, result}]++
}

func (b *batchTally) publish(m *metrics, committedAt time.Time) {
	for k, n := range b.records {
		m.records.WithLabelValues(k[0], k[1]).Add(float64(n))
	}
	for d, n := range b.dropped {
		m.dropped.WithLabelValues(d.String()).Add(float64(n))
	}
	for k, n := range b.commands {
		m.commands.WithLabelValues(k[0], k[1]).Add(float64(n))
	}
	for k, n := range b.dlq {
		m.dlq.WithLabelValues(k[0], k[1], k[2]).Add(float64(n))
	}
	for d, n := range b.skipped {
		m.skipped.WithLabelValues(d.String()).Add(float64(n))
	}
	for _, f := range b.freshness {
		m.freshness.WithLabelValues(f.dir.String()).Observe(max(0, committedAt.Sub(f.commit).Seconds()))
	}
}

// handle maps one source record to the records to produce: commands, a DLQ
// entry, or nothing. An error means the record could not be judged now (the
// registry or Kafka is away, ctx ended): the batch is retried.
func (t *Transformer) handle(ctx context.Context, rec *kgo.Record, sw Switches, tally *batchTally) ([]*kgo.Record, error) {
	in, ok := t.inputs[rec.Topic]
	if !ok {
		return nil, fmt.Errorf("consumed a record of topic %q, which the transformer does not read", rec.Topic)
	}
	if rec.Value == nil {
		tally.record(rec.Topic, "tombstone")
		return nil, nil
	}
	if (in.dir == NOMISToDPS && !sw.NOMISToDPS) || (in.dir == DPSToNOMIS && !sw.DPSToNOMIS) {
		if tally.skipped == nil {
			tally.skipped = map[Direction]int{}
		}
		tally.skipped[in.dir]++
		tally.record(rec.Topic, "skipped")
		return nil, nil
	}
	m, err := t.mapRecord(ctx, rec, in)
	if err != nil {
		var derr *schemas.DecodeError
		var shape *decode.Error
		var merr *rules.Error
		switch {
		case errors.Is(err, decode.ErrTombstone):
			tally.record(rec.Topic, "tombstone")
			return nil, nil
		case errors.As(err, &derr) && derr.Permanent(), errors.As(err, &shape):
			return t.toDLQ(rec, decode.ErrorKind, "undecodable", m.alertKey, err, tally)
		case errors.As(err, &merr):
			return t.toDLQ(rec, rules.ErrorKindMapping, merr.Reason.String(), m.alertKey, err, tally)
		}
		return nil, err
	}
	if m.drop != rules.DropNone {
		if tally.dropped == nil {
			tally.dropped = map[rules.Drop]int{}
		}
		tally.dropped[m.drop]++
		tally.record(rec.Topic, "dropped")
		return nil, nil
	}
	out, err := t.commandRecord(&m.cmd, rec)
	if err != nil {
		// The rules made a command its schema cannot hold: a bug, but the
		// record is kept, in the DLQ, rather than stopping the pipeline.
		return t.toDLQ(rec, "encode", "unencodable", m.alertKey, err, tally)
	}
	if tally.commands == nil {
		tally.commands = map[[2]string]int{}
	}
	tally.commands[[2]string{targetName(m.cmd.Target), m.cmd.Kind.String()}]++
	tally.freshness = append(tally.freshness, freshness{in.dir, m.cmd.SourceCommitTime})
	tally.record(rec.Topic, "command")
	return []*kgo.Record{out}, nil
}

func targetName(s rules.Side) string {
	if s == rules.SideNOMIS {
		return "nomis"
	}
	return "dps"
}

// mapped is the result of mapping one record.
type mapped struct {
	cmd      rules.Command
	drop     rules.Drop
	alertKey string // "nomis:<book>:<seq>", "dps:<id>" or "prisoner:<number>", when known
}

// mapRecord decodes rec and runs the rules; an unknown code makes it wait
// for the reference data (transform.reference_wait) and try once more.
func (t *Transformer) mapRecord(ctx context.Context, rec *kgo.Record, in input) (mapped, error) {
	var m mapped
	switch in.kind {
	case inNOMISAlert:
		ch, err := t.decodeNOMISAlert(ctx, rec)
		if err != nil {
			return m, err
		}
		if img := firstNonNil(ch.After, ch.Before); img != nil {
			m.alertKey = "nomis:" + strconv.FormatInt(img.OffenderBookID, 10) + ":" + strconv.FormatInt(int64(img.AlertSeq), 10)
		}
		run := func() error { var err error; m.cmd, m.drop, err = t.rules.NOMISAlert(&ch); return err }
		codes := func() []string { return nomisCodes(ch.Before, ch.After) }
		return m, t.withCodes(ctx, run, codes, nil)
	case inNOMISSnapshot:
		s, err := t.decodeNOMISSnapshot(ctx, rec)
		if err != nil {
			return m, err
		}
		m.alertKey = "prisoner:" + s.OffenderNo
		run := func() error { var err error; m.cmd, m.drop, err = t.rules.NOMISSnapshot(&s); return err }
		codes := func() []string {
			out := make([]string, 0, len(s.Alerts))
			for i := range s.Alerts {
				out = append(out, s.Alerts[i].Row.AlertCode)
			}
			return out
		}
		return m, t.withCodes(ctx, run, codes, nil)
	case inDPSAlert:
		ch, err := t.decodeDPSAlert(ctx, rec)
		if err != nil {
			return m, err
		}
		var ids []int64
		for _, img := range []*rules.DPSAlertRow{ch.Before, ch.After} {
			if img != nil {
				m.alertKey = "dps:" + img.ID
				ids = append(ids, img.AlertCodeID)
			}
		}
		run := func() error { var err error; m.cmd, m.drop, err = t.rules.DPSAlert(&ch); return err }
		return m, t.withCodes(ctx, run, nil, ids)
	}
	return m, fmt.Errorf("topic %s: no mapping", rec.Topic)
}

// withCodes runs run; when it fails for an unknown code, it waits for the
// reference data to hold every code named (by name or DPS id) and runs it
// again.
func (t *Transformer) withCodes(ctx context.Context, run func() error, names func() []string, ids []int64) error {
	err := run()
	if !errors.Is(err, &rules.Error{Reason: rules.ReasonUnknownCode}) {
		return err
	}
	var key string
	known := func() bool {
		if names != nil {
			for _, c := range names() {
				if _, ok := t.ref.Lookup(c); !ok {
					key = codeKey(c)
					return false
				}
			}
		}
		for _, id := range ids {
			if _, ok := t.ref.CodeByID(id); !ok {
				key = codeIDKey(id)
				return false
			}
		}
		return true
	}
	if known() {
		// The code the rules missed has arrived meanwhile.
		return run()
	}
	found, werr := t.rr.await(ctx, key, t.cfg.Transform.ReferenceWait, known)
	if werr != nil {
		return werr
	}
	if !found {
		return err
	}
	return run()
}

func firstNonNil[T any](ps ...*T) *T {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

func nomisCodes(rows ...*rules.NOMISAlertRow) []string {
	var out []string
	for _, r := range rows {
		if r != nil && r.AlertCode != "" {
			out = append(out, r.AlertCode)
		}
	}
	return out
}

// commandRecord encodes cmd into a record of its command topic.
func (t *Transformer) commandRecord(cmd *rules.Command, src *kgo.Record) (*kgo.Record, error) {
	tc := t.commands[cmd.Target]
	if tc == nil {
		return nil, fmt.Errorf("command %s has no target", cmd.ID)
	}
	kh := avrobin.WireHeader(tc.Key.ID())
	key := encode.AppendKey(append(make([]byte, 0, 32), kh[:]...), cmd)
	vh := avrobin.WireHeader(tc.Value.ID())
	value, err := encode.AppendValue(append(make([]byte, 0, 512), vh[:]...), cmd)
	if err != nil {
		return nil, fmt.Errorf("encoding command %s: %w", cmd.ID, err)
	}
	return &kgo.Record{Topic: tc.Topic, Key: key, Value: value, Headers: []kgo.RecordHeader{sourceHeader(src)}}, nil
}

func sourceHeader(src *kgo.Record) kgo.RecordHeader {
	v := make([]byte, 0, len(src.Topic)+24)
	v = append(v, src.Topic...)
	v = append(v, '/')
	v = strconv.AppendInt(v, int64(src.Partition), 10)
	v = append(v, '/')
	v = strconv.AppendInt(v, src.Offset, 10)
	return kgo.RecordHeader{Key: HeaderSource, Value: v}
}

// toDLQ returns the DLQ entry of rec. The error text names fields, codes
// and keys, never alert text (decode and rules errors are written so).
func (t *Transformer) toDLQ(rec *kgo.Record, kind, reason, alertKey string, cause error, tally *batchTally) ([]*kgo.Record, error) {
	routing := rec.Topic + "/" + strconv.Itoa(int(rec.Partition))
	var ak any
	if alertKey != "" {
		routing, ak = alertKey, schemas.Union("string", alertKey)
	}
	headers := make([]any, 0, len(rec.Headers))
	for _, h := range rec.Headers {
		headers = append(headers, map[string]any{"key": h.Key, "value": schemas.OptBytes(h.Value)})
	}
	r, err := t.dlq.Record(map[string]any{"routing_key": routing}, map[string]any{
		"topic":       rec.Topic,
		"partition":   rec.Partition,
		"offset":      rec.Offset,
		"key":         schemas.OptBytes(rec.Key),
		"value":       schemas.OptBytes(rec.Value),
		"headers":     headers,
		"stage":       rules.StageTransform,
		"error":       cause.Error(),
		"error_kind":  kind,
		"attempt":     int32(1),
		"failed_at":   schemas.Timestamp(time.Now()),
		"held":        false,
		"held_behind": nil,
		"alert_key":   ak,
	})
	if err != nil {
		return nil, &fatalError{fmt.Errorf("encoding the DLQ entry of %s/%d/%d: %w", rec.Topic, rec.Partition, rec.Offset, err)}
	}
	r.Headers = []kgo.RecordHeader{sourceHeader(rec)}
	t.log.Warn("record sent to the DLQ", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset,
		"alert_key", alertKey, "error_kind", kind, "reason", reason, "err", cause)
	if tally.dlq == nil {
		tally.dlq = map[[3]string]int{}
	}
	tally.dlq[[3]string{rec.Topic, kind, reason}]++
	tally.record(rec.Topic, "dlq")
	return []*kgo.Record{r}, nil
}
