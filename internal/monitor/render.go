package monitor

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// A Round is what one refresh of the monitor shows.
type Round struct {
	At       time.Time `json:"at"`
	Interval float64   `json:"interval_seconds"` // since the previous round; 0 on the first
	Rows     []Row     `json:"rows"`
}

// AllReady reports whether every row of the round is a running component.
func (r Round) AllReady() bool {
	for _, row := range r.Rows {
		if !row.Ready {
			return false
		}
	}
	return len(r.Rows) > 0
}

// WriteJSON writes the round as one line of JSON.
func (r Round) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(r)
}

// WriteTable writes the round as a table, one row per component.
func (r Round) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "TARGET\tCOMPONENT\tSTATE\tUPTIME\tRSS\tRATE/s\tLAG\tFRESH p99\tDLQ\tERR/s\tNOTES")
	for _, row := range r.Rows {
		notes := row.Notes
		if row.Detail != "" {
			notes = append([]string{quote(row.Detail)}, notes...)
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			quote(row.Target), orDash(row.Component), quote(row.State),
			opt(row.UptimeSeconds, FormatDuration), opt(row.RSSBytes, formatBytes),
			opt(row.Rate, formatRate), lag(row), opt(row.FreshnessP99, FormatDuration),
			dlq(row), opt(row.ErrorRate, formatRate), strings.Join(notes, "; "))
	}
	return tw.Flush() // the writes' errors surface here
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return quote(s)
}

func opt(v *float64, f func(float64) string) string {
	if v == nil {
		return "-"
	}
	return f(*v)
}

func lag(r Row) string {
	if r.Lag == nil {
		return "-"
	}
	if r.LagUnit == "seconds" {
		return FormatDuration(*r.Lag)
	}
	return formatCount(*r.Lag) + " rec"
}

func dlq(r Row) string {
	if r.DLQTotal == nil {
		return "-"
	}
	s := formatCount(*r.DLQTotal)
	if r.DLQNew != nil && *r.DLQNew > 0 {
		s += " (+" + formatCount(*r.DLQNew) + ")"
	}
	return s
}

// Quote shows a string that came from the network as it is when it is
// plain, and quoted when it holds anything a terminal might act on.
func Quote(s string) string { return quote(s) }

func quote(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// FormatDuration shows seconds the way people read them: 350ms, 12.3s,
// 4m10s, 2h3m, 3d4h.
func FormatDuration(s float64) string {
	switch {
	case math.IsNaN(s) || math.IsInf(s, 0):
		return "-"
	case s == 0:
		return "0s"
	case s < 1:
		return strconv.FormatFloat(s*1000, 'f', 0, 64) + "ms"
	case s < 60:
		return strconv.FormatFloat(s, 'f', 1, 64) + "s"
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", int(s)/60, int(s)%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", int(s)/3600, int(s)%3600/60)
	default:
		return fmt.Sprintf("%dd%dh", int(s)/86400, int(s)%86400/3600)
	}
}

func formatRate(v float64) string {
	if v != 0 && v < 10 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func formatCount(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func formatBytes(v float64) string {
	const unit = 1024.0
	for _, u := range []string{"B", "KiB", "MiB", "GiB"} {
		if v < unit {
			if u == "B" {
				return formatCount(v) + u
			}
			return strconv.FormatFloat(v, 'f', 1, 64) + u
		}
		v /= unit
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + "TiB"
}
