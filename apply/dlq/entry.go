package dlq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/hold"
)

// Stages whose entries alertsync.dlq holds (the entry's stage field).
const (
	StageApplyDPS     = "apply-dps"
	StageApplyNOMIS   = "apply-nomis"
	StageTransform    = "transform"
	StageCaptureNOMIS = "capture.nomis"
)

// Stages returns the known stages, apply stages first.
func Stages() []string {
	return []string{StageApplyDPS, StageApplyNOMIS, StageTransform, StageCaptureNOMIS}
}

// HeaderRedrivenFrom is the only header of a redriven record: the DLQ entry
// it came from, as <dlq topic>/<partition>/<offset>.
const HeaderRedrivenFrom = "alertsync-redriven-from"

// Sentinel errors; branch with errors.Is.
var (
	// ErrUnknownStage: a --stage that is not one of Stages.
	ErrUnknownStage = errors.New("unknown stage")
	// ErrRedriveUnsupported: redrive of a stage other than the applies'.
	ErrRedriveUnsupported = errors.New("redrive is not supported for this stage yet")
	// ErrNoDLQTopic: alertsync.dlq does not exist under topics.prefix.
	ErrNoDLQTopic = errors.New("DLQ topic does not exist")
	// ErrHoldsIncomplete is returned by Redrive when at least one hold was
	// left alone (its entries not all in the DLQ yet, or changed meanwhile).
	ErrHoldsIncomplete = errors.New("some holds were not redriven")
)

// CheckStage returns nil when stage is empty or one of Stages.
func CheckStage(stage string) error {
	if stage == "" {
		return nil
	}
	for _, s := range Stages() {
		if s == stage {
			return nil
		}
	}
	return fmt.Errorf("%w %q (want one of %v)", ErrUnknownStage, stage, Stages())
}

// isApply reports whether stage is an apply's.
func isApply(stage string) bool { return stage == StageApplyDPS || stage == StageApplyNOMIS }

// Entry is one DLQ entry as read from alertsync.dlq.
type Entry struct {
	// DLQTopic, DLQPartition and DLQOffset say where the entry is.
	DLQTopic     string
	DLQPartition int32
	DLQOffset    int64

	// Topic, Partition and Offset say where the original record was read.
	Topic     string
	Partition int32
	Offset    int64
	// Key and Value are the original bytes; Value holds alert text: never
	// print or log them. A nil Value is a tombstone.
	Key, Value []byte
	// HeaderKeys are the original headers' keys, in order.
	HeaderKeys []string
	// Headers are the original headers, in order; their values may hold
	// personal data (a DPS user's name): never print or log them.
	Headers []kgo.RecordHeader

	Stage      string
	Error      string
	ErrorKind  string
	Attempt    int32
	FailedAt   time.Time
	Held       bool
	HeldBehind string // id of the command held behind (applies), or ""
	AlertKey   string // "" when unknown

	// CommandID is the command id of an apply-stage entry with an alert
	// key, read from the original value (a command); "" otherwise or when
	// the value could not be decoded.
	CommandID string
}

// DLQRef names the entry as <dlq topic>/<partition>/<offset>.
func (e *Entry) DLQRef() string {
	return e.DLQTopic + "/" + strconv.Itoa(int(e.DLQPartition)) + "/" + strconv.FormatInt(e.DLQOffset, 10)
}

// Original names the original record as <topic>/<partition>/<offset>.
func (e *Entry) Original() string { return e.source().String() }

// source is where the original record was read.
func (e *Entry) source() hold.Pos {
	return hold.Pos{Topic: e.Topic, Partition: e.Partition, Offset: e.Offset}
}

// entryFrom converts a decoded DLQ entry value.
func entryFrom(v map[string]any) (Entry, error) {
	var e Entry
	var ok bool
	if e.Topic, ok = schemas.Get[string](v, "topic"); !ok {
		return e, errors.New("no topic field")
	}
	if e.Partition, ok = schemas.Get[int32](v, "partition"); !ok {
		return e, errors.New("no partition field")
	}
	if e.Offset, ok = schemas.Get[int64](v, "offset"); !ok {
		return e, errors.New("no offset field")
	}
	e.Key, _ = schemas.GetOpt[[]byte](v, "key")
	e.Value, _ = schemas.GetOpt[[]byte](v, "value")
	hs, _ := schemas.Get[[]any](v, "headers")
	for _, h := range hs {
		if m, ok := h.(map[string]any); ok {
			k, _ := schemas.Get[string](m, "key")
			hv, _ := schemas.GetOpt[[]byte](m, "value")
			e.HeaderKeys = append(e.HeaderKeys, k)
			e.Headers = append(e.Headers, kgo.RecordHeader{Key: k, Value: cloneBytes(hv)})
		}
	}
	e.Stage, _ = schemas.Get[string](v, "stage")
	e.Error, _ = schemas.Get[string](v, "error")
	e.ErrorKind, _ = schemas.Get[string](v, "error_kind")
	e.Attempt, _ = schemas.Get[int32](v, "attempt")
	e.FailedAt, _ = schemas.Get[time.Time](v, "failed_at")
	e.FailedAt = e.FailedAt.UTC()
	e.Held, _ = schemas.Get[bool](v, "held")
	e.HeldBehind, _ = schemas.GetOpt[string](v, "held_behind")
	e.AlertKey, _ = schemas.GetOpt[string](v, "alert_key")
	// Copies: decoded bytes alias the fetched record.
	e.Key = cloneBytes(e.Key)
	e.Value = cloneBytes(e.Value)
	return e, nil
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// reader reads alertsync.dlq.
type reader struct {
	cl    *kgo.Client // plain client: admin requests
	newCl func(opts ...kgo.Opt) (*kgo.Client, error)
	codec *schemas.Codec
	topic string
	log   *slog.Logger
}

// readAll reads every entry of the DLQ topic from its start up to its end as
// it is now (once the transactions open now have ended: see
// kafka.ReadToEnd), in (partition, offset) order, and fills
// the command ids of the failed apply-stage entries.
func (r *reader) readAll(ctx context.Context) ([]Entry, error) {
	var out []Entry
	err := kafka.ReadToEnd(ctx, kadm.NewClient(r.cl), r.newCl, r.topic, func(rec *kgo.Record) error {
		v, err := r.codec.DecodeValue(ctx, rec)
		if err != nil {
			return err
		}
		m, _ := v.(map[string]any)
		if m == nil {
			return nil // a tombstone: not an entry
		}
		e, err := entryFrom(m)
		if err != nil {
			return fmt.Errorf("reading the DLQ entry at %s[%d]@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
		}
		e.DLQTopic, e.DLQPartition, e.DLQOffset = rec.Topic, rec.Partition, rec.Offset
		out = append(out, e)
		return nil
	})
	if errors.Is(err, kafka.ErrNoTopic) {
		return nil, fmt.Errorf("reading %s: %w: check topics.prefix (the pipeline creates it at start)", r.topic, ErrNoDLQTopic)
	}
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].DLQPartition != out[j].DLQPartition {
			return out[i].DLQPartition < out[j].DLQPartition
		}
		return out[i].DLQOffset < out[j].DLQOffset
	})
	if err := r.commandIDs(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// commandIDs fills CommandID of the apply-stage entries that have an alert
// key, from their original values (commands). A value that cannot be
// decoded is left without an id (and cannot start an episode); an
// unreachable registry is an error.
func (r *reader) commandIDs(ctx context.Context, es []Entry) error {
	for i := range es {
		e := &es[i]
		if !isApply(e.Stage) || e.AlertKey == "" || len(e.Value) == 0 {
			continue
		}
		v, err := r.codec.Decode(ctx, e.Value, schemas.Location{Topic: e.Topic, Partition: e.Partition, Offset: e.Offset, Part: schemas.PartValue})
		if err != nil {
			var de *schemas.DecodeError
			if errors.As(err, &de) && de.Permanent() {
				r.log.Warn("the command of a DLQ entry cannot be decoded", "dlq_entry", e.DLQRef(), "err", err)
				continue
			}
			return fmt.Errorf("decoding the command of DLQ entry %s: %w", e.DLQRef(), err)
		}
		if m, ok := v.(map[string]any); ok {
			e.CommandID, _ = schemas.Get[string](m, "command_id")
		}
	}
	return nil
}
