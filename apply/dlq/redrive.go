package dlq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// RedriveOptions says which holds dlq redrive releases.
type RedriveOptions struct {
	// Stage is the stage whose holds are redriven: apply-dps, apply-nomis
	// or transform.
	Stage string
	// AlertKey redrives the hold on one alert; exclusive with All.
	AlertKey string
	// All redrives every open hold of Stage.
	All bool
	// DryRun prints what would be done and changes nothing.
	DryRun bool
	// DiscardFailed (transform only) releases each hold's failed record
	// without transforming it again, and redrives the records held behind
	// it: for a record that cannot be mended, whose alert a later record
	// (carrying its whole state) brings up to date.
	DiscardFailed bool
	// Since (capture.nomis only), when not zero, leaves out the entries
	// that failed before it.
	Since time.Time
}

// Redrive releases the open holds of opts.Stage that match opts: for each,
// in order of creation, it takes the entries of the hold's current episode
// from alertsync.dlq (the failed command, then those held behind it, in
// DLQ order), deletes the hold row unless it changed since it was read,
// and produces each entry's original key and value to its original topic
// and partition, synchronously and in order, with the single header
// HeaderRedrivenFrom. What it does is printed to out.
//
// A hold whose entries are not all in the DLQ yet, or that changed while
// being redriven, is left as it is and reported; Redrive then returns
// ErrHoldsIncomplete after the other holds. When producing fails, the hold
// is put back (the apply holds the commands already produced again, and a
// later redrive replays them, as no-ops if they were applied) and the error
// returned.
//
// For the transform stage, whose holds the transformer keeps in Kafka, see
// redriveTransform: the held records go back to their source topics and
// the transformer releases the hold. For the capture.nomis stage, whose
// entries hold nothing, see redriveCapture: the capture is asked for a
// resync of each entry's prisoner.
func Redrive(ctx context.Context, cfg Config, deps Deps, opts RedriveOptions, out io.Writer) error {
	if err := CheckStage(opts.Stage); err != nil {
		return err
	}
	if opts.Stage == "" {
		return fmt.Errorf("redrive: a stage is required (%s, %s, %s or %s)", StageApplyDPS, StageApplyNOMIS, StageTransform, StageCaptureNOMIS)
	}
	if opts.All == (opts.AlertKey != "") {
		return errors.New("redrive: give either an alert key or all")
	}
	if !opts.Since.IsZero() && opts.Stage != StageCaptureNOMIS {
		return fmt.Errorf("redrive of stage %s: %w: choosing entries by time is supported for the %s stage only",
			opts.Stage, ErrRedriveUnsupported, StageCaptureNOMIS)
	}
	switch opts.Stage {
	case StageTransform:
		return redriveTransform(ctx, cfg, deps, opts, out)
	case StageCaptureNOMIS:
		return redriveCapture(ctx, cfg, deps, opts, out)
	}
	if opts.DiscardFailed {
		return fmt.Errorf("redrive of stage %s: %w: discarding the failed command is supported for the %s stage only",
			opts.Stage, ErrRedriveUnsupported, StageTransform)
	}
	hs, err := openHolds(ctx, &cfg, opts.Stage)
	if err != nil {
		return fmt.Errorf("redrive %s: %w", opts.Stage, err)
	}
	defer hs.close(ctx)
	open, err := hs.open(ctx)
	if err != nil {
		return fmt.Errorf("redrive %s: %w", opts.Stage, err)
	}
	releasable := selectHolds(maps.Values(open), opts, func(h Hold) (string, time.Time) { return h.Key, h.CreatedAt })
	if len(releasable) == 0 {
		return nothingToRedrive(out, opts, fmt.Sprintf("%s (%s)", hs.database(), hs.table()))
	}
	return withRedriveSession(ctx, &cfg, deps, func(rctx context.Context, s *session) error {
		all, err := s.rd.readAll(rctx)
		if err != nil {
			return fmt.Errorf("redrive %s: %w", opts.Stage, err)
		}
		r := &redriver{s: s, hs: hs, out: out, dryRun: opts.DryRun}
		return r.each(opts.Stage, len(releasable), func(i int) (string, int, error) {
			h := releasable[i]
			n, err := r.one(rctx, h, episode(all, opts.Stage, h.Key, h.FirstCommandID), opts.Stage)
			return h.Key, n, err
		}, "command", "", "; run redrive again")
	})
}

// selectHolds returns the holds of hs that opts names (every one, or the
// one on opts.AlertKey), oldest first; keyOf gives a hold's alert key and
// creation time.
func selectHolds[H any](hs iter.Seq[H], opts RedriveOptions, keyOf func(H) (string, time.Time)) []H {
	var out []H
	for h := range hs {
		if k, _ := keyOf(h); opts.All || k == opts.AlertKey {
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		ki, ci := keyOf(out[i])
		kj, cj := keyOf(out[j])
		if !ci.Equal(cj) {
			return ci.Before(cj)
		}
		return ki < kj
	})
	return out
}

// nothingToRedrive says that opts names no open hold in where.
func nothingToRedrive(out io.Writer, opts RedriveOptions, where string) error {
	what := "no open holds"
	if !opts.All {
		what = "no open hold on " + opts.AlertKey
	}
	_, err := fmt.Fprintf(out, "%s: %s in %s: nothing to redrive\n", opts.Stage, what, where)
	return err
}

// each redrives n holds, the i-th by one (its alert key, how many records
// or commands – unit – it sent back, or a *skip to leave it as it is),
// prints what was done (then tail) and returns ErrHoldsIncomplete naming
// the holds left alone (hint added).
func (r *redriver) each(stage string, n int, one func(i int) (string, int, error), unit, tail, hint string) error {
	var skipped []string
	holds, sent := 0, 0
	for i := range n {
		key, k, err := one(i)
		var sk *skip
		switch {
		case errors.As(err, &sk):
			skipped = append(skipped, key)
			if err := r.printf("  left alone: %s\n", sk.why); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			holds++
			sent += k
		}
	}
	verb := "redriven"
	if r.dryRun {
		verb = "would redrive"
	}
	if err := r.printf("%s: %s %s, %s%s\n", stage, verb, plural(holds, "hold"), plural(sent, unit), tail); err != nil {
		return err
	}
	if len(skipped) > 0 {
		return fmt.Errorf("redrive %s: %w: %v (see above%s)", stage, ErrHoldsIncomplete, skipped, hint)
	}
	return nil
}

// skip is a hold left as it is, with the reason.
type skip struct{ why string }

func (s *skip) Error() string { return s.why }

type redriver struct {
	s      *session
	hs     holdStore
	out    io.Writer
	dryRun bool
}

func (r *redriver) printf(format string, a ...any) error { return fprintf(r.out, format, a...) }

// fprintf prints what a redrive did to out.
func fprintf(out io.Writer, format string, a ...any) error {
	if _, err := fmt.Fprintf(out, format, a...); err != nil {
		return fmt.Errorf("printing what redrive did: %w", err)
	}
	return nil
}

// one redrives hold h whose episode is ep and returns the number of
// commands produced (or that would be).
func (r *redriver) one(ctx context.Context, h Hold, ep []Entry, stage string) (int, error) {
	if err := r.printf("%s: hold on %s (prisoner %s, since %s, %s): first command %s, %d commands\n",
		stage, h.Key, h.PrisonNumber, h.CreatedAt.UTC().Format(time.RFC3339), h.Reason, h.FirstCommandID, h.HeldCommands); err != nil {
		return 0, err
	}
	switch {
	case len(ep) == 0:
		return 0, &skip{fmt.Sprintf("the DLQ entry of the failed command %s is not in %s yet (the apply publishes it from its outbox: is it running?)", h.FirstCommandID, r.s.rd.topic)}
	case len(ep) < h.HeldCommands:
		return 0, &skip{fmt.Sprintf("%d of its %d commands are in %s so far (the apply publishes the others from its outbox: is it running?)", len(ep), h.HeldCommands, r.s.rd.topic)}
	}
	if r.dryRun {
		if err := r.printf("  would delete the hold from %s %s\n", r.hs.database(), r.hs.table()); err != nil {
			return 0, err
		}
		for i := range ep {
			if err := r.printf("  would redrive %s (from %s) to %s/%d (%s command %s)\n", ep[i].DLQRef(), ep[i].Original(),
				ep[i].Topic, ep[i].Partition, role(&ep[i]), dash(ep[i].CommandID)); err != nil {
				return 0, err
			}
		}
		return len(ep), nil
	}
	if err := r.hs.remove(ctx, h); err != nil {
		if errors.Is(err, errHoldChanged) {
			return 0, &skip{"the hold changed while redriving it (a command was held meanwhile, or another redrive released it)"}
		}
		return 0, err
	}
	if err := r.printf("  hold deleted from %s %s\n", r.hs.database(), r.hs.table()); err != nil {
		return 0, err
	}
	for i := range ep {
		e := &ep[i]
		rec := &kgo.Record{
			Topic: e.Topic, Partition: e.Partition, Key: e.Key, Value: e.Value,
			Headers: []kgo.RecordHeader{{Key: HeaderRedrivenFrom, Value: []byte(e.DLQRef())}},
		}
		if err := r.s.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			perr := fmt.Errorf("redriving %s to %s: %w", e.DLQRef(), e.Original(), err)
			if rerr := r.hs.restore(context.WithoutCancel(ctx), h); rerr != nil {
				return i, fmt.Errorf("%w; %w: the hold on %s is gone with %d of its %d commands produced: produce the others by hand or hold the alert", perr, rerr, h.Key, i, len(ep))
			}
			return i, fmt.Errorf("%w: the hold on %s was put back after %d of its %d commands; run redrive again", perr, h.Key, i, len(ep))
		}
		if err := r.printf("  redriven %s (from %s) to %s/%d/%d (%s command %s)\n", e.DLQRef(), e.Original(), rec.Topic, rec.Partition,
			rec.Offset, role(e), dash(e.CommandID)); err != nil {
			return i + 1, err
		}
	}
	return len(ep), nil
}

func role(e *Entry) string {
	if e.Held {
		return "held"
	}
	return "failed"
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
