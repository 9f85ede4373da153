package dlq

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/alertsync/alertsync/capture/nomis"
)

// ErrEntriesLeftAlone is returned by the redrive of capture.nomis when at
// least one entry names no prisoner (its journal row could not be read for
// one): nothing was asked for it.
var ErrEntriesLeftAlone = errors.New("some entries name no prisoner and were not redriven")

// redriveCapture redrives capture.nomis entries. A journal row the capture
// could not turn into a record holds nothing (the alert's later rows were
// published meanwhile), and the row itself is not worth publishing late:
// what NOMIS holds now is. So the redrive asks the capture for a resync of
// the prisoner each entry names (the alert's booking, the booking's
// offender, the offender's prison number: a moved booking or a renumbered
// offender names both), one per booking, offender or prison number named
// (the capture merges those of one prisoner), by writing resync requests
// to the journal in one transaction (nomis.Dialect.RequestResyncs). The capture
// reads them in commit order and publishes a REDRIVE snapshot of each
// prisoner capture.resync_delay later; the transformer makes NOMIS's
// current booking authoritative for the prisoner in DPS (ADR004), which
// brings in what the failed rows carried, deletes included.
//
// Fix the cause first (a NOMIS value the capture cannot read: the snapshot
// reads the same rows). Entries stay in the DLQ; redriving them again asks
// for new snapshots, which is harmless.
func redriveCapture(ctx context.Context, cfg Config, deps Deps, opts RedriveOptions, out io.Writer) error {
	if opts.DiscardFailed {
		return fmt.Errorf("redrive of stage %s: %w: discarding the failed command is supported for the %s stage only",
			opts.Stage, ErrRedriveUnsupported, StageTransform)
	}
	return withRedriveSession(ctx, &cfg, deps, func(rctx context.Context, s *session) error {
		all, err := s.rd.readAll(rctx)
		if err != nil {
			return fmt.Errorf("redrive %s: %w", opts.Stage, err)
		}
		var entries []Entry
		for _, e := range filter(all, StageCaptureNOMIS, opts.AlertKey) {
			if !e.FailedAt.Before(opts.Since) {
				entries = append(entries, e)
			}
		}
		return requestFor(rctx, &cfg, opts, s.rd.topic, entries, out)
	})
}

// requestFor asks for the resyncs of entries (see redriveCapture), printing
// what it does to out; topic is the DLQ's name, for messages.
func requestFor(ctx context.Context, cfg *Config, opts RedriveOptions, topic string, entries []Entry, out io.Writer) error {
	// In the order the capture met them (the offset is the journal id).
	slices.SortStableFunc(entries, func(a, b Entry) int { return cmp.Compare(a.Offset, b.Offset) })
	p := &printer{out: out}
	if len(entries) == 0 {
		what := "no entries"
		if !opts.All {
			what = "no entries on " + opts.AlertKey
		}
		if !opts.Since.IsZero() {
			what += " since " + opts.Since.UTC().Format(time.RFC3339)
		}
		p.printf("%s: %s in %s: nothing to redrive\n", opts.Stage, what, topic)
		return p.err
	}
	var (
		reqs    []nomis.ResyncRequest
		seen    = map[string]bool{}
		skipped []string
	)
	for i := range entries {
		e := &entries[i]
		row := fmt.Sprintf("journal row %d", e.Offset)
		if e.Offset == 0 {
			row = "a snapshot's alert row" // the capture's snapshots read rows outside the journal
		}
		p.printf("%s: entry %s (%s, %s): ", opts.Stage, e.DLQRef(), row, e.ErrorKind)
		rs := requestsOf(e)
		if len(rs) == 0 {
			skipped = append(skipped, e.DLQRef())
			p.printf("left alone: its journal row names no prisoner (no readable offender_id_display, offender_id or offender_book_id)\n")
			continue
		}
		for j, r := range rs {
			if j > 0 {
				p.printf(", ")
			}
			p.printf("resync of %s", r)
			if !seen[r.String()] {
				seen[r.String()] = true
				reqs = append(reqs, r)
			}
		}
		p.printf("\n")
	}
	if p.err != nil {
		return p.err
	}
	done := len(entries) - len(skipped)
	switch {
	case len(reqs) == 0:
	case opts.DryRun:
		p.printf("%s: would request %s for %s (nothing written)\n", opts.Stage, plural(len(reqs), "prisoner resync"), nEntries(done))
	default:
		if err := requestResyncs(ctx, cfg, reqs); err != nil {
			return fmt.Errorf("redrive %s: %w", opts.Stage, err)
		}
		p.printf("%s: requested %s (%s) for %s; the capture publishes each prisoner's snapshot capture.resync_delay after reading its request\n",
			opts.Stage, plural(len(reqs), "prisoner resync"), nomis.ReasonRedrive, nEntries(done))
	}
	if p.err != nil {
		return p.err
	}
	if len(skipped) > 0 {
		return fmt.Errorf("redrive %s: %w: %v (see above; reconcile shows whether their prisoners differ)", opts.Stage, ErrEntriesLeftAlone, skipped)
	}
	return nil
}

// printer prints with fprintf, keeping the first error.
type printer struct {
	out io.Writer
	err error
}

func (p *printer) printf(format string, a ...any) {
	if p.err == nil {
		p.err = fprintf(p.out, format, a...)
	}
}

// requestResyncs writes reqs to the NOMIS journal (nomis.dsn, with the
// dialect of nomis.dialect), connecting within dlq.connect_timeout.
func requestResyncs(ctx context.Context, cfg *Config, reqs []nomis.ResyncRequest) error {
	d, err := nomis.NewDialect(cfg.NOMIS.Dialect, nomis.Options{})
	if err != nil {
		return err
	}
	h, err := d.Open(cfg.NOMIS)
	if err != nil {
		return fmt.Errorf("nomis.dsn: %w", err)
	}
	defer func() { _ = h.Close() }()
	cctx, cancel := context.WithTimeout(ctx, cfg.Own.ConnectTimeout)
	conn, err := h.Conn(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("connecting to NOMIS (nomis.dsn, %s dialect): %w", d.Name(), err)
	}
	defer func() { _ = conn.Close() }()
	if err := d.RequestResyncs(ctx, conn, reqs); err != nil {
		return fmt.Errorf("asking the NOMIS capture for resyncs in %s: %w", d.JournalTable(), err)
	}
	return nil
}

// capturedRow is the journal row a capture.nomis entry carries as its
// value (the capture's rawRow): the images as the text the journal held.
type capturedRow struct {
	OldRow *string `json:"old_row"`
	NewRow *string `json:"new_row"`
}

// requestsOf returns the prisoners a capture.nomis entry names: from each
// image of its journal row, the prison number (offender_id_display), else
// the offender id, else the booking id, whichever reads as one; failing
// that, the booking of its alert key. Duplicates are dropped. It reads ids
// only, never another value.
func requestsOf(e *Entry) []nomis.ResyncRequest {
	var out []nomis.ResyncRequest
	add := func(r nomis.ResyncRequest) {
		r.Reason = nomis.ReasonRedrive
		if r.Check() != nil {
			return
		}
		for _, o := range out {
			if o == r {
				return
			}
		}
		out = append(out, r)
	}
	var row capturedRow
	if json.Unmarshal(e.Value, &row) == nil {
		for _, img := range []*string{row.OldRow, row.NewRow} {
			if img != nil {
				if r, ok := prisonerOf(*img); ok {
					add(r)
				}
			}
		}
	}
	if len(out) == 0 {
		var book, seq int64
		if n, _ := fmt.Sscanf(e.AlertKey, "nomis:%d:%d", &book, &seq); n == 2 {
			add(nomis.ResyncRequest{BookID: book})
		}
	}
	return out
}

// prisonerOf reads the prisoner named by a journal image (a JSON object),
// by the first of its ids that reads as one.
func prisonerOf(img string) (nomis.ResyncRequest, bool) {
	dec := json.NewDecoder(bytes.NewReader([]byte(img)))
	dec.UseNumber()
	var fields map[string]any
	if dec.Decode(&fields) != nil {
		return nomis.ResyncRequest{}, false
	}
	id := func(name string) int64 {
		n, ok := fields[name].(json.Number)
		if !ok {
			return 0
		}
		v, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil || v <= 0 {
			return 0
		}
		return v
	}
	if no, ok := fields["offender_id_display"].(string); ok {
		if r := (nomis.ResyncRequest{OffenderNo: no, Reason: nomis.ReasonRedrive}); r.Check() == nil {
			return r, true
		}
	}
	if v := id("offender_id"); v > 0 {
		return nomis.ResyncRequest{OffenderID: v}, true
	}
	if v := id("offender_book_id"); v > 0 {
		return nomis.ResyncRequest{BookID: v}, true
	}
	return nomis.ResyncRequest{}, false
}

// nEntries is "1 entry" or "<n> entries".
func nEntries(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return strconv.Itoa(n) + " entries"
}
