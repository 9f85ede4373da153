package dlq

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Hold states of an entry in List's output.
const (
	HoldOpen   = "open"   // the entry is held by (or is the failure of) an open hold
	HoldClosed = "closed" // no open hold holds the entry: redriven, or never held
)

// ListOptions filters and formats dlq list.
type ListOptions struct {
	// Stage keeps the entries of one stage; "" keeps all.
	Stage string
	// AlertKey keeps the entries of one alert key; "" keeps all.
	AlertKey string
	// JSON prints one JSON object per line instead of a table.
	JSON bool
}

// Listed is one line of List's output.
type Listed struct {
	Entry
	// Hold is HoldOpen or HoldClosed for an entry with an alert key of an
	// apply stage whose target database could be read, or of the transform
	// stage when its holds could be read; else "".
	Hold string
}

// List prints the entries of alertsync.dlq matching opts to out, oldest
// first per DLQ partition, as a table or JSON lines. Key and value bytes
// are never printed, only their sizes. Notes (a target database that cannot
// be reached, so that the HOLD column is left out) go to errOut.
func List(ctx context.Context, cfg Config, deps Deps, opts ListOptions, out, errOut io.Writer) error {
	if err := CheckStage(opts.Stage); err != nil {
		return err
	}
	s, err := newSession(&cfg, deps, "list")
	if err != nil {
		return err
	}
	defer s.close()
	rctx, cancel := s.timeout(ctx)
	defer cancel()
	all, err := s.rd.readAll(rctx)
	if err != nil {
		return err
	}
	es := filter(all, opts.Stage, opts.AlertKey)
	ls, err := s.holdStates(ctx, es, errOut)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(out, ls)
	}
	return writeTable(out, s.rd.topic, ls)
}

// filter returns the entries of es of stage and alert key ("" matches all).
func filter(es []Entry, stage, key string) []Entry {
	var out []Entry
	for _, e := range es {
		if (stage == "" || e.Stage == stage) && (key == "" || e.AlertKey == key) {
			out = append(out, e)
		}
	}
	return out
}

// holdStates marks the apply-stage entries of es as held by an open hold or
// not, reading each apply's holds; a database that cannot be read is noted
// on errOut and its entries get no state.
func (s *session) holdStates(ctx context.Context, es []Entry, errOut io.Writer) ([]Listed, error) {
	ls := make([]Listed, len(es))
	for i := range es {
		ls[i].Entry = es[i]
	}
	if err := s.transformHoldStates(ctx, es, ls, errOut); err != nil {
		return nil, err
	}
	for _, stage := range []string{StageApplyDPS, StageApplyNOMIS} {
		var idx []int
		for i := range es {
			if es[i].Stage == stage && es[i].AlertKey != "" {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			continue
		}
		holds, err := s.readHolds(ctx, stage)
		if err != nil {
			if _, werr := fmt.Fprintf(errOut, "note: the holds of %s cannot be read, so whether its entries are still held is not shown: %v\n", stage, err); werr != nil {
				return nil, fmt.Errorf("writing a note: %w", werr)
			}
			continue
		}
		open := map[[2]int64]bool{} // DLQ partition, offset
		for _, h := range holds {
			for _, e := range episode(es, stage, h.Key, h.FirstCommandID) {
				open[[2]int64{int64(e.DLQPartition), e.DLQOffset}] = true
			}
		}
		for _, i := range idx {
			ls[i].Hold = HoldClosed
			if open[[2]int64{int64(es[i].DLQPartition), es[i].DLQOffset}] {
				ls[i].Hold = HoldOpen
			}
		}
	}
	return ls, nil
}

// transformHoldStates marks the transform-stage entries of es with an alert
// key as held by an open hold of the transformer or not; holds that cannot
// be read are noted on errOut and the entries get no state.
func (s *session) transformHoldStates(ctx context.Context, es []Entry, ls []Listed, errOut io.Writer) error {
	var idx []int
	for i := range es {
		if es[i].Stage == StageTransform && es[i].AlertKey != "" {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	rctx, cancel := s.timeout(ctx)
	defer cancel()
	holds, err := s.transformHolds(rctx)
	if err != nil {
		if _, werr := fmt.Fprintf(errOut, "note: the holds of %s cannot be read, so whether its entries are still held is not shown: %v\n", StageTransform, err); werr != nil {
			return fmt.Errorf("writing a note: %w", werr)
		}
		return nil
	}
	for _, i := range idx {
		e := &es[i]
		ls[i].Hold = HoldClosed
		if h := holds[e.AlertKey]; h != nil && h.Holds(e.source()) {
			ls[i].Hold = HoldOpen
		}
	}
	return nil
}

// readHolds reads the open holds of an apply stage.
func (s *session) readHolds(ctx context.Context, stage string) (map[string]Hold, error) {
	hs, err := openHolds(ctx, s.cfg, stage)
	if err != nil {
		return nil, err
	}
	defer hs.close(ctx)
	return hs.open(ctx)
}

// jsonEntry is the JSON form of a Listed: no key or value bytes.
type jsonEntry struct {
	DLQTopic     string    `json:"dlq_topic"`
	DLQPartition int32     `json:"dlq_partition"`
	DLQOffset    int64     `json:"dlq_offset"`
	FailedAt     time.Time `json:"failed_at"`
	Stage        string    `json:"stage"`
	ErrorKind    string    `json:"error_kind"`
	Error        string    `json:"error"`
	Attempt      int32     `json:"attempt"`
	AlertKey     string    `json:"alert_key,omitempty"`
	CommandID    string    `json:"command_id,omitempty"`
	Held         bool      `json:"held"`
	HeldBehind   string    `json:"held_behind,omitempty"`
	Hold         string    `json:"hold,omitempty"`
	Topic        string    `json:"topic"`
	Partition    int32     `json:"partition"`
	Offset       int64     `json:"offset"`
	KeySize      *int      `json:"key_size"`   // null for a null key
	ValueSize    *int      `json:"value_size"` // null for a tombstone
	HeaderKeys   []string  `json:"header_keys,omitempty"`
}

func size(b []byte) *int {
	if b == nil {
		return nil
	}
	n := len(b)
	return &n
}

func writeJSON(out io.Writer, ls []Listed) error {
	enc := json.NewEncoder(out)
	for i := range ls {
		l := &ls[i]
		if err := enc.Encode(jsonEntry{
			DLQTopic: l.DLQTopic, DLQPartition: l.DLQPartition, DLQOffset: l.DLQOffset,
			FailedAt: l.FailedAt, Stage: l.Stage, ErrorKind: l.ErrorKind, Error: l.Error, Attempt: l.Attempt,
			AlertKey: l.AlertKey, CommandID: l.CommandID, Held: l.Held, HeldBehind: l.HeldBehind, Hold: l.Hold,
			Topic: l.Topic, Partition: l.Partition, Offset: l.Offset,
			KeySize: size(l.Key), ValueSize: size(l.Value), HeaderKeys: l.HeaderKeys,
		}); err != nil {
			return fmt.Errorf("writing DLQ entries as JSON: %w", err)
		}
	}
	return nil
}

func writeTable(out io.Writer, topic string, ls []Listed) error {
	if len(ls) == 0 {
		_, err := fmt.Fprintf(out, "no matching entries in %s\n", topic)
		return err
	}
	withHold := false
	for i := range ls {
		withHold = withHold || ls[i].Hold != ""
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	head := "FAILED AT\tSTAGE\tKIND\tALERT KEY\tCOMMAND\tHELD BEHIND\tORIGINAL\tVALUE\t"
	if withHold {
		head += "HOLD\t"
	}
	_, _ = fmt.Fprintln(tw, head+"ERROR")
	held, open := 0, 0
	for i := range ls {
		l := &ls[i]
		row := []string{
			l.FailedAt.Format(time.RFC3339), l.Stage, l.ErrorKind, dash(l.AlertKey), dash(l.CommandID),
			dash(heldBehind(&l.Entry)), l.Original(), valueSize(l.Value),
		}
		if withHold {
			row = append(row, dash(l.Hold))
		}
		row = append(row, oneLine(l.Error))
		_, _ = fmt.Fprintln(tw, strings.Join(row, "\t"))
		if l.Held {
			held++
		}
		if l.Hold == HoldOpen {
			open++
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing DLQ entries: %w", err)
	}
	summary := fmt.Sprintf("%d entries (%d held)", len(ls), held)
	if withHold {
		summary += fmt.Sprintf(", %d in open holds", open)
	}
	_, err := fmt.Fprintln(out, summary)
	return err
}

func heldBehind(e *Entry) string {
	if !e.Held {
		return ""
	}
	if e.HeldBehind == "" {
		return "yes"
	}
	return e.HeldBehind
}

func valueSize(b []byte) string {
	if b == nil {
		return "null"
	}
	return strconv.Itoa(len(b)) + " B"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
