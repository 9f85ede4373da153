package dlq

import (
	"context"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/transform/hold"
)

// The transformer's holds live in Kafka (alertsync.transform.holds, package
// transform/hold), not in a database: the transformer writes them in the
// transactions that write the DLQ entries, and only it changes them. A
// redrive of the transform stage therefore deletes nothing: it sends the
// held records back to their source topic and partition, each marked with
// hold.HeaderRedriveOf, and the transformer transforms each while it is the
// record its hold waits on, releasing the hold after the last.

// transformHolds reads the transformer's open holds, by alert key.
func (s *session) transformHolds(ctx context.Context) (map[string]*hold.Hold, error) {
	return hold.Read(ctx, kadm.NewClient(s.cl), s.rd.newCl, s.codec, s.cfg.Topics.Name(kafka.TransformHolds))
}

// transformEntries returns the last transform-stage DLQ entry of each
// original record among es: a record that failed again after a redrive has
// several, with the same bytes.
func transformEntries(es []Entry) map[hold.Pos]*Entry {
	out := map[hold.Pos]*Entry{}
	for i := range es {
		if es[i].Stage == StageTransform {
			out[es[i].source()] = &es[i]
		}
	}
	return out
}

// redriveTransform is Redrive for the transform stage.
func redriveTransform(ctx context.Context, cfg Config, deps Deps, opts RedriveOptions, out io.Writer) error {
	return withRedriveSession(ctx, &cfg, deps, func(rctx context.Context, s *session) error {
		holds, err := s.transformHolds(rctx)
		if err != nil {
			return fmt.Errorf("redrive %s: %w", opts.Stage, err)
		}
		matching := selectHolds(maps.Values(holds), opts, func(h *hold.Hold) (string, time.Time) { return h.Key, h.CreatedAt })
		if len(matching) == 0 {
			return nothingToRedrive(out, opts, cfg.Topics.Name(kafka.TransformHolds))
		}
		all, err := s.rd.readAll(rctx)
		if err != nil {
			return fmt.Errorf("redrive %s: %w", opts.Stage, err)
		}
		r := &redriver{s: s, out: out, dryRun: opts.DryRun}
		byPos := transformEntries(all)
		return r.each(opts.Stage, len(matching), func(i int) (string, int, error) {
			n, err := r.transformHold(rctx, matching[i], byPos, opts.DiscardFailed)
			return matching[i].Key, n, err
		}, "record", "; the transformer releases each hold once it has transformed its records (dlq list shows it closed)", "")
	})
}

// transformHold sends the records held by h back to their source topic and
// partition, in order, and returns how many it sent (or would).
func (r *redriver) transformHold(ctx context.Context, h *hold.Hold, byPos map[hold.Pos]*Entry, discard bool) (int, error) {
	if err := r.printf("%s: hold on %s (prisoner %s, since %s, %s %s): first record %s, %d records\n",
		StageTransform, h.Key, dash(h.PrisonNumber), h.CreatedAt.UTC().Format(time.RFC3339), h.ErrorKind, h.Reason, h.Head(), len(h.Pending)); err != nil {
		return 0, err
	}
	es := make([]*Entry, len(h.Pending))
	for i, p := range h.Pending {
		if es[i] = byPos[p]; es[i] == nil {
			return 0, &skip{fmt.Sprintf("the DLQ entry of held record %s is not in %s", p, r.s.rd.topic)}
		}
	}
	discard = discard && h.HeadFailed
	if !h.HeadFailed {
		if err := r.printf("  its first record is held behind a failure already redriven: it is transformed, not discarded\n"); err != nil {
			return 0, err
		}
	}
	for i, e := range es {
		what := "transform"
		if i == 0 && discard {
			what = "discard"
		}
		if r.dryRun {
			if err := r.printf("  would redrive %s (from %s) to %s/%d (%s, to %s)\n", e.DLQRef(), e.Original(), e.Topic, e.Partition, roleOf(i), what); err != nil {
				return 0, err
			}
			continue
		}
		hs := append(originalHeaders(e.Headers),
			kgo.RecordHeader{Key: HeaderRedrivenFrom, Value: []byte(e.DLQRef())},
			kgo.RecordHeader{Key: hold.HeaderRedriveOf, Value: []byte(h.Pending[i].String())})
		if i == 0 && discard {
			hs = append(hs, kgo.RecordHeader{Key: hold.HeaderRedriveDiscard, Value: []byte("true")})
		}
		rec := &kgo.Record{Topic: e.Topic, Partition: e.Partition, Key: e.Key, Value: e.Value, Headers: hs}
		if err := r.s.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			// Nothing to put back: the hold is the transformer's and still
			// holds every record; the ones sent are transformed in order
			// and the others wait for the next redrive.
			return i, fmt.Errorf("redriving %s to %s: %w: %d of the %d records of the hold on %s were sent; run redrive again",
				e.DLQRef(), e.Original(), err, i, len(es), h.Key)
		}
		if err := r.printf("  redriven %s (from %s) to %s/%d/%d (%s, to %s)\n", e.DLQRef(), e.Original(), rec.Topic, rec.Partition, rec.Offset, roleOf(i), what); err != nil {
			return i + 1, err
		}
	}
	return len(es), nil
}

// originalHeaders returns a copy of hs without the headers of an earlier
// redrive (the entry of a copy that failed again carries them), with room
// for three more.
func originalHeaders(hs []kgo.RecordHeader) []kgo.RecordHeader {
	out := make([]kgo.RecordHeader, 0, len(hs)+3)
	for _, h := range hs {
		switch h.Key {
		case HeaderRedrivenFrom, hold.HeaderRedriveOf, hold.HeaderRedriveDiscard:
		default:
			out = append(out, h)
		}
	}
	return out
}

func roleOf(i int) string {
	if i == 0 {
		return "failed"
	}
	return "held"
}
