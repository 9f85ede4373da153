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
	"github.com/alertsync/alertsync/transform/hold"
	"github.com/alertsync/alertsync/transform/rules"
)

// HeaderSource is the header of every command and DLQ entry naming the
// source record: "<topic>/<partition>/<offset>", for tracing a command back.
const HeaderSource = "alertsync-source"

// HeaderReason is the header of every DLQ entry of the transformer holding
// the reason as a stable word (the metric label): undecodable,
// unknown_code, missing_prison_number, malformed_date, ...
const HeaderReason = "alertsync-reason"

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
	if errors.Is(err, errGated) {
		return t.gated(rec, &m, tally)
	}
	if err != nil {
		var derr *schemas.DecodeError
		var shape *decode.Error
		var merr *rules.Error
		switch {
		case errors.Is(err, decode.ErrTombstone):
			tally.record(rec.Topic, "tombstone")
			return nil, nil
		case errors.As(err, &derr) && derr.Permanent(), errors.As(err, &shape):
			return t.fail(rec, &m, decode.ErrorKind, "undecodable", err, tally)
		case errors.As(err, &merr):
			return t.fail(rec, &m, rules.ErrorKindMapping, merr.Reason.String(), err, tally)
		}
		return nil, err
	}
	if m.drop != rules.DropNone {
		if m.redriven {
			t.released(m.key.String(), m.copyOf.of, time.Now())
		}
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
		return t.fail(rec, &m, "encode", "unencodable", err, tally)
	}
	if m.redriven {
		t.released(m.key.String(), m.copyOf.of, time.Now())
	}
	if tally.commands == nil {
		tally.commands = map[[2]string]int{}
	}
	tally.commands[[2]string{targetName(m.cmd.Target), m.cmd.Kind.String()}]++
	if !m.redriven {
		// A redriven record's age is the time it was held, not the pipeline's.
		tally.freshness = append(tally.freshness, freshness{in.dir, m.cmd.SourceCommitTime})
	}
	tally.record(rec.Topic, "command")
	return []*kgo.Record{out}, nil
}

// fail sends rec, which could not be decoded, mapped or encoded, to the
// DLQ and, when its alert is known, holds the alert's later records behind
// it. A redriven record that fails again is already its hold's first.
// Its DLQ entry names the record it copies (the hold's first), so that
// the entry is that record's and redrive finds it.
func (t *Transformer) fail(rec *kgo.Record, m *mapped, kind, reason string, cause error, tally *batchTally) ([]*kgo.Record, error) {
	key := m.key.String()
	src := hold.PosOf(rec)
	switch {
	case key == "":
	case m.redriven:
		t.refailed(key, kind, reason, time.Now())
		src = m.copyOf.of
	default:
		t.startHold(key, m.prison, kind, reason, rec, time.Now())
	}
	return t.toDLQ(rec, src, kind, reason, key, cause, "", tally)
}

// gated does what the hold on rec's alert decided (m.gate).
func (t *Transformer) gated(rec *kgo.Record, m *mapped, tally *batchTally) ([]*kgo.Record, error) {
	key := m.key.String()
	switch m.gate {
	case gateHold:
		h := t.holdBehind(key, rec, time.Now())
		cause := fmt.Errorf("held behind %s, the record of %s that failed (%s %s)", h.Head(), key, h.ErrorKind, h.Reason)
		return t.toDLQ(rec, hold.PosOf(rec), ErrorKindHeld, h.Reason, key, cause, h.Head().String(), tally)
	case gateDiscard:
		t.released(key, m.copyOf.of, time.Now())
		t.log.Info("redriven record discarded", "alert_key", key, "record", m.copyOf.of.String())
		tally.record(rec.Topic, resultDiscarded)
	case gateWaiting:
		tally.record(rec.Topic, resultWaiting)
	default:
		tally.record(rec.Topic, resultStale)
	}
	return nil, nil
}

// ErrorKindHeld is the error kind of a DLQ entry held behind a failed
// record of its alert.
const ErrorKindHeld = "held"

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
	key      alertKey
	prison   string       // prison number, when the record names one
	gate     gateDecision // when mapping stopped with errGated
	redriven bool         // a record dlq redrive sent back, transformed as its hold's first
	copyOf   redrive      // what its redrive headers say (read when its alert is known)
}

// alertKey names the alert (or prisoner) of a record for the DLQ; its text
// is built only when a record goes there.
type alertKey struct {
	prefix string // "nomis", "dps", "prisoner"; "" when unknown
	book   int64
	seq    int32
	id     string // DPS id or prison number
}

func (k alertKey) String() string {
	switch k.prefix {
	case "":
		return ""
	case "nomis":
		return "nomis:" + strconv.FormatInt(k.book, 10) + ":" + strconv.FormatInt(int64(k.seq), 10)
	}
	return k.prefix + ":" + k.id
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
			m.key = alertKey{prefix: "nomis", book: img.OffenderBookID, seq: img.AlertSeq}
		}
		if ch.Context != nil && ch.Context.OffenderNo != nil {
			m.prison = *ch.Context.OffenderNo
		}
		if t.gateOf(rec, &m) {
			return m, errGated
		}
		if t.noopRule != nil {
			m.cmd = *t.noopRule
			return m, nil
		}
		m.cmd, m.drop, err = t.rules.NOMISAlert(&ch)
		if errors.Is(err, errUnknownCode) && t.awaitCodes(ctx, err, nomisCodes(ch.Before, ch.After), nil) {
			m.cmd, m.drop, err = t.rules.NOMISAlert(&ch)
		}
		return m, err
	case inNOMISSnapshot:
		s, err := t.decodeNOMISSnapshot(ctx, rec)
		if err != nil {
			return m, err
		}
		m.key = alertKey{prefix: "prisoner", id: s.OffenderNo}
		m.prison = s.OffenderNo
		if t.gateOf(rec, &m) {
			return m, errGated
		}
		if t.noopRule != nil {
			m.cmd = *t.noopRule
			return m, nil
		}
		m.cmd, m.drop, err = t.rules.NOMISSnapshot(&s)
		if errors.Is(err, errUnknownCode) {
			codes := make([]string, 0, len(s.Alerts))
			for i := range s.Alerts {
				codes = append(codes, s.Alerts[i].Row.AlertCode)
			}
			if t.awaitCodes(ctx, err, codes, nil) {
				m.cmd, m.drop, err = t.rules.NOMISSnapshot(&s)
			}
		}
		return m, err
	case inDPSAlert:
		ch, err := t.decodeDPSAlert(ctx, rec)
		if err != nil {
			return m, err
		}
		if img := firstNonNil(ch.After, ch.Before); img != nil {
			m.key = alertKey{prefix: "dps", id: img.ID}
			m.prison = img.PrisonNumber
		}
		if t.gateOf(rec, &m) {
			return m, errGated
		}
		if t.noopRule != nil {
			m.cmd = *t.noopRule
			return m, nil
		}
		m.cmd, m.drop, err = t.rules.DPSAlert(&ch)
		if errors.Is(err, errUnknownCode) {
			var ids []int64
			for _, img := range []*rules.DPSAlertRow{ch.Before, ch.After} {
				if img != nil {
					ids = append(ids, img.AlertCodeID)
				}
			}
			if t.awaitCodes(ctx, err, nil, ids) {
				m.cmd, m.drop, err = t.rules.DPSAlert(&ch)
			}
		}
		return m, err
	}
	return m, fmt.Errorf("topic %s: no mapping", rec.Topic)
}

// errUnknownCode matches a rules error for a code missing from the
// reference data.
var errUnknownCode = &rules.Error{Reason: rules.ReasonUnknownCode}

// awaitCodes reports whether the rules should run again: err is an unknown
// code and the reference data now holds every code named (by name or DPS
// id), at once or after waiting up to transform.reference_wait. A wait cut
// short by ctx also returns false; the caller's error then stands (the
// loop sees ctx and stops without producing).
func (t *Transformer) awaitCodes(ctx context.Context, err error, names []string, ids []int64) bool {
	if !errors.Is(err, errUnknownCode) {
		return false
	}
	var key string
	known := func() bool {
		for _, c := range names {
			if _, ok := t.ref.Lookup(c); !ok {
				key = codeKey(c)
				return false
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
		return true // arrived meanwhile
	}
	found, werr := t.rr.await(ctx, key, t.cfg.Transform.ReferenceWait, known)
	if werr != nil {
		t.log.Warn("waiting for reference data", "err", werr)
		return false
	}
	return found
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

// commandRecord encodes cmd into a record of its command topic. The bytes
// are encoded in a scratch buffer and copied into a shared block, and the
// record comes from a block of records: a few allocations per thousand
// commands instead of two per command. Blocks are never reused; the
// garbage collector frees one once Kafka has acknowledged every record in
// it. Not safe for concurrent use (the loop is one goroutine).
func (t *Transformer) commandRecord(cmd *rules.Command, src *kgo.Record) (*kgo.Record, error) {
	tc := t.commands[cmd.Target]
	if tc == nil {
		return nil, fmt.Errorf("command %s has no target", cmd.ID)
	}
	kh := avrobin.WireHeader(tc.Key.ID())
	buf := encode.AppendKey(append(t.scratch[:0], kh[:]...), cmd)
	nk := len(buf)
	vh := avrobin.WireHeader(tc.Value.ID())
	buf, err := encode.AppendValue(append(buf, vh[:]...), cmd)
	if err != nil {
		return nil, fmt.Errorf("encoding command %s: %w", cmd.ID, err)
	}
	nv := len(buf)
	buf = appendSource(buf, src)
	t.scratch = buf
	if len(t.block)+len(buf) > cap(t.block) {
		t.block = make([]byte, 0, max(64<<10, len(buf)))
	}
	off := len(t.block)
	t.block = append(t.block, buf...)
	b := t.block[off:len(t.block):len(t.block)]
	if len(t.recs) == 0 {
		t.recs = make([]outRecord, 256)
	}
	out := &t.recs[0]
	t.recs = t.recs[1:]
	out.hdr[0] = kgo.RecordHeader{Key: HeaderSource, Value: b[nv:len(b):len(b)]}
	out.rec = kgo.Record{Topic: tc.Topic, Key: b[:nk:nk], Value: b[nk:nv:nv], Headers: out.hdr[:]}
	return &out.rec, nil
}

// outRecord is a produced command record and its one header.
type outRecord struct {
	rec kgo.Record
	hdr [1]kgo.RecordHeader
}

// appendSource appends the HeaderSource value of src.
func appendSource(b []byte, src *kgo.Record) []byte {
	b = append(b, src.Topic...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(src.Partition), 10)
	b = append(b, '/')
	return strconv.AppendInt(b, src.Offset, 10)
}

func sourceHeader(src *kgo.Record) kgo.RecordHeader {
	return kgo.RecordHeader{Key: HeaderSource, Value: appendSource(make([]byte, 0, len(src.Topic)+24), src)}
}

// toDLQ returns the DLQ entry of rec. The error text names fields, codes
// and keys, never alert text (decode and rules errors are written so).
// src is where the original record was read (for a redriven copy, the
// record it copies); a held entry names the record it is held behind
// (heldBehind).
func (t *Transformer) toDLQ(rec *kgo.Record, src hold.Pos, kind, reason, alertKey string, cause error, heldBehind string, tally *batchTally) ([]*kgo.Record, error) {
	routing := rec.Topic + "/" + strconv.Itoa(int(rec.Partition))
	var ak any
	if alertKey != "" {
		routing, ak = alertKey, schemas.Union("string", alertKey)
	}
	var behind any
	if heldBehind != "" {
		behind = schemas.Union("string", heldBehind)
	}
	headers := make([]any, 0, len(rec.Headers))
	for _, h := range rec.Headers {
		headers = append(headers, map[string]any{"key": h.Key, "value": schemas.OptBytes(h.Value)})
	}
	r, err := t.dlq.Record(map[string]any{"routing_key": routing}, map[string]any{
		"topic":       src.Topic,
		"partition":   src.Partition,
		"offset":      src.Offset,
		"key":         schemas.OptBytes(rec.Key),
		"value":       schemas.OptBytes(rec.Value),
		"headers":     headers,
		"stage":       rules.StageTransform,
		"error":       cause.Error(),
		"error_kind":  kind,
		"attempt":     int32(1),
		"failed_at":   schemas.Timestamp(time.Now()),
		"held":        heldBehind != "",
		"held_behind": behind,
		"alert_key":   ak,
	})
	if err != nil {
		return nil, &fatalError{fmt.Errorf("encoding the DLQ entry of %s/%d/%d: %w", rec.Topic, rec.Partition, rec.Offset, err)}
	}
	r.Headers = []kgo.RecordHeader{sourceHeader(rec), {Key: HeaderReason, Value: []byte(reason)}}
	t.log.Warn("record sent to the DLQ", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset,
		"alert_key", alertKey, "error_kind", kind, "reason", reason, "err", cause)
	if tally.dlq == nil {
		tally.dlq = map[[3]string]int{}
	}
	tally.dlq[[3]string{rec.Topic, kind, reason}]++
	tally.record(rec.Topic, "dlq")
	return []*kgo.Record{r}, nil
}
