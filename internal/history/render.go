package history

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// WriteJSON writes the events as one JSON array.
func WriteJSON(w io.Writer, evs []Event) error {
	if evs == nil {
		evs = []Event{}
	}
	b, err := json.MarshalIndent(evs, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the history as JSON: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing the history: %w", err)
	}
	return nil
}

// WriteText writes one line per event under a header, then a summary line.
func WriteText(w io.Writer, sel Selector, s Selection) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	// tabwriter buffers until Flush, which returns any write error.
	_, _ = fmt.Fprintln(tw, "TIME\tEVENT\tOP\tPRISONER\tNOMIS\tDPS\tCOMMAND\tSYNC\tORIGIN\tPOSITION\tRECORD\tDETAILS")
	for i := range s.Events {
		e := &s.Events[i]
		sync := "-"
		if e.Sync != nil {
			sync = map[bool]string{true: "sync", false: "user"}[*e.Sync]
		}
		origin := cell(e.Origin)
		if e.Kind == KindCommandDPS || e.Kind == KindCommandNOMIS {
			origin = "from " + origin
		}
		pos := "-"
		if e.Position != nil {
			pos = e.Position.String()
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			e.Time.UTC().Format(timeFormat), e.Kind.Label(), cell(e.Op), cell(e.PrisonNumber), cell(e.NOMISAlert), cell(e.DPSAlertID),
			cell(e.CommandID), sync, origin, pos, shown(e.Record.String()), details(e))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the history: %w", err)
	}
	_, err := fmt.Fprintln(w, Summary(sel, s))
	return err
}

// Summary is the last line of the text output: events per kind, and the
// alerts they name.
func Summary(sel Selector, s Selection) string {
	counts := map[Kind]int{}
	for i := range s.Events {
		counts[s.Events[i].Kind]++
	}
	var parts []string
	for _, k := range Kinds() {
		if n := counts[k]; n > 0 {
			parts = append(parts, strconv.Itoa(n)+" "+k.Label())
		}
	}
	b := &strings.Builder{}
	fmt.Fprintf(b, "%s for %s: %s", plural(len(s.Events), "event"), sel, strings.Join(parts, ", "))
	if s.Unattributed > 0 {
		fmt.Fprintf(b, " (%s naming nobody, shown since %s may concern it)",
			plural(s.Unattributed, "undecodable record"), map[bool]string{true: "it", false: "they"}[s.Unattributed == 1])
	}
	alerts := make([]string, len(s.Alerts))
	for i, a := range s.Alerts {
		keys := make([]string, len(a))
		for j, k := range a {
			keys[j] = shown(k)
		}
		alerts[i] = strings.Join(keys, " = ")
	}
	if len(alerts) > 0 {
		fmt.Fprintf(b, "; %s seen: %s", plural(len(alerts), "alert"), strings.Join(alerts, ", "))
	}
	return b.String()
}

// details is the last column of an event's line: what changed, results,
// reasons, links.
func details(e *Event) string {
	var parts []string
	add := func(format string, a ...any) { parts = append(parts, fmt.Sprintf(format, a...)) }
	switch e.Kind {
	case KindNOMISChange, KindDPSChange, KindCommandDPS, KindCommandNOMIS:
		if c := changes(e.Changes, e.image); c != "" {
			parts = append(parts, c)
		}
		if len(e.Alerts) > 0 || e.Op == "REPLACE_PRISONER" {
			add("alerts=%d%s", len(e.Alerts), alertList(e.Alerts))
		}
		if e.Reason != "" {
			add("reason=%s", shown(e.Reason))
		}
		if len(e.Outcomes) > 0 {
			rs := make([]string, len(e.Outcomes))
			for i, o := range e.Outcomes {
				rs[i] = shown(o.Result)
				if o.Reason != "" {
					rs[i] += "(" + shown(o.Reason) + ")"
				}
			}
			add("outcome %s", strings.Join(rs, ", "))
		} else if e.Kind == KindCommandDPS || e.Kind == KindCommandNOMIS {
			add("no outcome read")
		}
	case KindNOMISSnapshot:
		books := make([]string, len(e.Bookings))
		for i, b := range e.Bookings {
			books[i] = strconv.FormatInt(b, 10)
		}
		add("bookings=%s alerts=%d%s", dash(strings.Join(books, ",")), len(e.Alerts), alertList(e.Alerts))
	case KindOutcome:
		add("target=%s", shown(e.Target))
		if e.Reason != "" {
			add("reason=%s", shown(e.Reason))
		}
		if e.Command != nil {
			add("of command→%s %s at %s", shown(e.Command.Target), shown(e.Command.Kind), shown(e.Command.Record.String()))
		} else {
			add("command not read")
		}
	case KindDLQ:
		add("stage=%s", shown(e.Stage))
		if e.Reason != "" {
			add("reason=%s", shown(e.Reason))
		}
		if e.AlertKey != "" {
			add("alert_key=%s", shown(e.AlertKey))
		}
		if e.Held {
			add("held behind %s", cell(e.HeldBehind))
		}
		add("attempt=%d original=%s", e.Attempt, shown(e.Original))
		switch {
		case e.Command == nil:
		case e.Command.Record.String() == e.Original:
			add("(command→%s %s)", shown(e.Command.Target), shown(e.Command.Kind))
		default:
			add("of command→%s %s at %s", shown(e.Command.Target), shown(e.Command.Kind), shown(e.Command.Record.String()))
		}
	case KindUndecodable:
		add("%s", shown(e.Undecodable))
		if e.Unattributed {
			add("(its key names no prisoner or alert: shown with every selection)")
		}
	}
	return dash(strings.Join(parts, " "))
}

// changes renders the changes of an event: field=value for a create (a
// personal field: "field set"), field old→new for an update (a personal
// field: "field changed"), "was field=value ..." for a delete.
func changes(cs []Change, img images) string {
	var parts []string
	for _, c := range cs {
		switch {
		case c.Personal && img == afterOnly:
			parts = append(parts, c.Field+" set")
		case c.Personal:
			parts = append(parts, c.Field+" changed")
		case img == afterOnly:
			parts = append(parts, c.Field+"="+optText(c.To))
		case img == beforeOnly:
			parts = append(parts, c.Field+"="+optText(c.From))
		default:
			parts = append(parts, c.Field+" "+optText(c.From)+"→"+optText(c.To))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	if img == beforeOnly {
		return "was " + strings.Join(parts, " ")
	}
	return strings.Join(parts, " ")
}

func alertList(as []AlertRef) string {
	if len(as) == 0 {
		return ""
	}
	items := make([]string, len(as))
	for i, a := range as {
		id := shown(a.NOMISAlert)
		if a.DPSAlertID != "" {
			if id != "" {
				id += "/"
			}
			id += shown(a.DPSAlertID)
		}
		item := id + " " + shown(a.Code)
		if a.Status != "" {
			item += " " + shown(a.Status)
		}
		item += " from " + shown(a.ActiveFrom)
		if a.ActiveTo != "" {
			item += " to " + shown(a.ActiveTo)
		}
		items[i] = item
	}
	return " [" + strings.Join(items, ", ") + "]"
}

func optText(p *string) string {
	if p == nil {
		return "-"
	}
	return shown(*p)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cell is a value of a record as a column shows it: "-" when empty, else
// shown.
func cell(s string) string { return dash(shown(s)) }

// shown returns s as it is when it is valid UTF-8 of printable characters
// (spaces included, tabs not), and quoted (strconv.Quote) otherwise. The
// strings of a record (a NOMIS session module, a DPS origin marker, codes,
// reasons, ids) are written by others: a line break, a tab or a terminal
// escape in one must not break the columns or reach the terminal.
func shown(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
