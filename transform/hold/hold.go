// Package hold is the transformer's holds as they are kept in Kafka: one
// record per held alert key in the compacted topic
// alertsync.transform.holds, written by the transformer in the same
// transaction as the DLQ entries and consumed offsets it goes with, a
// tombstone when the hold is released. `alertsync transform` reads the
// topic at start and after every rebalance; `alertsync dlq list` and
// `alertsync dlq redrive --stage transform` read it to show and redrive
// the held records.
//
// A hold lists the source records it holds by where they were read
// (topic, partition, offset), in the order they are to be transformed,
// the failed record first. Each of them has a DLQ entry with the same
// original position, which carries its bytes.
package hold

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/schemas"
)

// Headers of a record dlq redrive sends back to its source topic.
const (
	// HeaderRedriveOf names the held record a redriven record is a copy
	// of, as <topic>/<partition>/<offset>: the transformer transforms it
	// only while it is the record its hold waits on.
	HeaderRedriveOf = "alertsync-redrive-of"
	// HeaderRedriveDiscard, on a redriven record, says to release it from
	// its hold without transforming it (dlq redrive --discard-failed): a
	// later record of the alert, which carries its whole state, replaces
	// it.
	HeaderRedriveDiscard = "alertsync-redrive-discard"
)

// Pos is where a source record was read.
type Pos struct {
	Topic     string
	Partition int32
	Offset    int64
}

// PosOf returns where rec was read.
func PosOf(rec *kgo.Record) Pos { return Pos{rec.Topic, rec.Partition, rec.Offset} }

// String returns "<topic>/<partition>/<offset>", the form of the
// alertsync-source header and of a held DLQ entry's held_behind.
func (p Pos) String() string {
	return p.Topic + "/" + strconv.Itoa(int(p.Partition)) + "/" + strconv.FormatInt(p.Offset, 10)
}

// ParsePos reads the String form of a Pos.
func ParsePos(s string) (Pos, error) {
	i := strings.LastIndexByte(s, '/')
	j := -1
	if i > 0 {
		j = strings.LastIndexByte(s[:i], '/')
	}
	if j <= 0 {
		return Pos{}, fmt.Errorf("source position %q: want <topic>/<partition>/<offset>", s)
	}
	p, err1 := strconv.ParseInt(s[j+1:i], 10, 32)
	o, err2 := strconv.ParseInt(s[i+1:], 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		return Pos{}, fmt.Errorf("source position %q: want <topic>/<partition>/<offset>", s)
	}
	return Pos{Topic: s[:j], Partition: int32(p), Offset: o}, nil
}

// Hold is an open hold on one alert key.
type Hold struct {
	Key          string // "nomis:<booking>:<seq>", "dps:<id>", "prisoner:<number>"
	PrisonNumber string // "" when the failed record names none
	ErrorKind    string // of the latest failure of the hold's first record
	Reason       string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// Pending are the records held, the failed one first; never empty in
	// an open hold.
	Pending []Pos
	// HeadFailed is true while Pending[0] is a record that failed (so that
	// dlq redrive --discard-failed may discard it), false once it is a
	// record held behind a failure that has since been redriven.
	HeadFailed bool
}

// Head returns the record the hold waits on: the failed one.
func (h *Hold) Head() Pos { return h.Pending[0] }

// Holds reports whether p is one of the records h holds.
func (h *Hold) Holds(p Pos) bool { return slices.Contains(h.Pending, p) }

// Clone returns a copy of h that shares nothing with it.
func (h *Hold) Clone() *Hold {
	c := *h
	c.Pending = slices.Clone(h.Pending)
	return &c
}

// Record returns the record that sets the hold on key to h, or releases it
// (a tombstone) when h is nil or holds nothing. tc is bound to
// schemas.TopicTransformHolds. Every record of one alert key is read from
// one topic and partition (records are partitioned by key, and the
// partition counts never change), so the hold stores those once and the
// offsets in order: a hold of 100,000 records stays well under Kafka's
// record size limit. Records from two partitions are an error.
func Record(tc *schemas.TopicCodec, key string, h *Hold) (*kgo.Record, error) {
	k := map[string]any{"alert_key": key}
	if h == nil || len(h.Pending) == 0 {
		return tc.Record(k, nil)
	}
	head := h.Pending[0]
	offsets := make([]any, len(h.Pending))
	for i, p := range h.Pending {
		if p.Topic != head.Topic || p.Partition != head.Partition {
			return nil, fmt.Errorf("the hold on %s holds records of %s/%d and %s/%d: one key's records must be in one partition (were the partition counts changed?)",
				key, head.Topic, head.Partition, p.Topic, p.Partition)
		}
		offsets[i] = p.Offset
	}
	var pn *string
	if h.PrisonNumber != "" {
		pn = &h.PrisonNumber
	}
	return tc.Record(k, map[string]any{
		"alert_key":     key,
		"prison_number": schemas.OptString(pn),
		"error_kind":    h.ErrorKind,
		"reason":        h.Reason,
		"created_at":    schemas.Timestamp(h.CreatedAt),
		"updated_at":    schemas.Timestamp(h.UpdatedAt),
		"head_failed":   h.HeadFailed,
		"topic":         head.Topic,
		"partition":     head.Partition,
		"offsets":       offsets,
	})
}

// Decode reads a record of the holds topic: the alert key and the hold,
// nil for a tombstone (a released hold).
func Decode(ctx context.Context, codec *schemas.Codec, rec *kgo.Record) (string, *Hold, error) {
	kv, err := codec.DecodeKey(ctx, rec)
	if err != nil {
		return "", nil, err
	}
	km, _ := kv.(map[string]any)
	key, ok := schemas.Get[string](km, "alert_key")
	if !ok {
		return "", nil, errors.New("no alert_key in the key")
	}
	if rec.Value == nil {
		return key, nil, nil
	}
	v, err := codec.DecodeValue(ctx, rec)
	if err != nil {
		return key, nil, err
	}
	m, _ := v.(map[string]any)
	h := &Hold{Key: key}
	h.PrisonNumber, _ = schemas.GetOpt[string](m, "prison_number")
	h.ErrorKind, _ = schemas.Get[string](m, "error_kind")
	h.Reason, _ = schemas.Get[string](m, "reason")
	h.CreatedAt, _ = schemas.Get[time.Time](m, "created_at")
	h.UpdatedAt, _ = schemas.Get[time.Time](m, "updated_at")
	h.CreatedAt, h.UpdatedAt = h.CreatedAt.UTC(), h.UpdatedAt.UTC()
	h.HeadFailed, _ = schemas.Get[bool](m, "head_failed")
	topic, ok1 := schemas.Get[string](m, "topic")
	partition, ok2 := schemas.Get[int32](m, "partition")
	offsets, _ := schemas.Get[[]any](m, "offsets")
	if !ok1 || !ok2 {
		return key, nil, errors.New("no topic or partition")
	}
	for _, o := range offsets {
		off, ok := o.(int64)
		if !ok {
			return key, nil, fmt.Errorf("an offset of type %T", o)
		}
		h.Pending = append(h.Pending, Pos{Topic: topic, Partition: partition, Offset: off})
	}
	if len(h.Pending) == 0 {
		return key, nil, nil
	}
	return key, h, nil
}

// Read reads the holds topic to its end as it is now (once the transactions
// open now have ended: kafka.ReadToEnd) and returns the open holds by alert
// key. newClient makes the consuming client
// (see kafka.ReadToEnd). A topic that does not exist has no holds.
func Read(ctx context.Context, adm *kadm.Client, newClient func(...kgo.Opt) (*kgo.Client, error), codec *schemas.Codec, topic string) (map[string]*Hold, error) {
	out := map[string]*Hold{}
	err := kafka.ReadToEnd(ctx, adm, newClient, topic, func(rec *kgo.Record) error {
		key, h, err := Decode(ctx, codec, rec)
		if err != nil {
			return fmt.Errorf("reading the hold at %s[%d]@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
		}
		if h == nil {
			delete(out, key)
		} else {
			out[key] = h
		}
		return nil
	})
	if errors.Is(err, kafka.ErrNoTopic) {
		return out, nil
	}
	return out, err
}
