package reconcile

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes res as one JSON document.
func WriteJSON(w io.Writer, res *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return fmt.Errorf("writing the reconcile report: %w", err)
	}
	return nil
}

// WriteTable writes res as a table of differences, one line each, and a
// summary line. Values appear only when the run was asked to show them.
func WriteTable(w io.Writer, res *Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(res.Differences) > 0 {
		// tabwriter buffers until Flush, which returns any write error.
		_, _ = fmt.Fprintln(tw, "PRISONER\tKIND\tSIDE\tDPS ALERT\tNOMIS ALERT\tCODE\tFIELDS\tDETAIL")
	}
	for i := range res.Differences {
		d := &res.Differences[i]
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.PrisonNumber, d.Kind, dash(d.Side), dash(d.DPSAlertID),
			dash(d.NOMISKey()), dash(d.Code), dash(fieldList(d.Fields)), d.Detail)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the reconcile report: %w", err)
	}
	c := res.Counts()
	var parts []string
	for _, k := range Kinds() {
		if c[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
		}
	}
	summary := "no differences"
	if len(parts) > 0 {
		summary = fmt.Sprintf("%d differences (%s)", len(res.Differences), strings.Join(parts, ", "))
	}
	_, err := fmt.Fprintf(w, "%d prisoners checked (%d NOMIS alerts, %d DPS alerts, %d re-checked) in %s: %s\n",
		res.PrisonersChecked, res.NOMISAlerts, res.DPSAlerts, res.Rechecked, res.Duration.Round(1e6), summary)
	if err != nil {
		return fmt.Errorf("writing the reconcile report: %w", err)
	}
	return nil
}

// fieldList renders the fields, with their values when the report has them.
func fieldList(fs []FieldDiff) string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Field)
		if f.NOMIS != nil || f.DPS != nil {
			fmt.Fprintf(&b, " (NOMIS %s, DPS %s)", quoted(f.NOMIS), quoted(f.DPS))
		}
	}
	return b.String()
}

func quoted(s *string) string {
	if s == nil {
		return "null"
	}
	return fmt.Sprintf("%q", *s)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
