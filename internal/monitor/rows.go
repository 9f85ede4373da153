package monitor

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/alertsync/alertsync/internal/admin"
)

// StateUnreachable is the state of a target whose admin server could not
// be read.
const StateUnreachable = "unreachable"

// A Row is one component of one target, between two samples of it. A
// figure that cannot be told (no earlier sample, a metric the component
// does not serve) is nil.
type Row struct {
	Target    string `json:"target"`
	Component string `json:"component,omitempty"` // empty when the target is unreachable
	State     string `json:"state"`               // an admin.State, or "unreachable"
	Ready     bool   `json:"ready"`               // running
	Detail    string `json:"detail,omitempty"`    // what it waits for, or why the target is unreachable
	Position  string `json:"position,omitempty"`
	LastError string `json:"last_error,omitempty"`

	UptimeSeconds *float64 `json:"uptime_seconds,omitempty"`
	RSSBytes      *float64 `json:"rss_bytes,omitempty"`
	// Rate is what the component handled per second over the interval:
	// change records (captures, transform) or commands (applies).
	Rate   *float64 `json:"rate_per_second,omitempty"`
	RateOf string   `json:"rate_of,omitempty"`
	// Lag is how far behind its source the component is: seconds
	// (captures) or records (the consumers' lag, summed over partitions).
	Lag     *float64 `json:"lag,omitempty"`
	LagUnit string   `json:"lag_unit,omitempty"`
	// FreshnessP99 is the 99th percentile of the freshness observed over
	// the interval (transform: source commit to command; applies: source
	// commit to target commit); nil when nothing was observed.
	FreshnessP99 *float64 `json:"freshness_p99_seconds,omitempty"`
	DLQTotal     *float64 `json:"dlq_total,omitempty"`
	DLQNew       *float64 `json:"dlq_new,omitempty"` // entries over the interval
	ErrorRate    *float64 `json:"errors_per_second,omitempty"`
	Notes        []string `json:"notes,omitempty"`
}

// A spec says which metrics of a component the monitor shows.
type spec struct {
	rate, rateOf  string
	lag, lagUnit  string
	freshness     string
	dlq           []string // the counters of DLQ entries, summed
	errors        string
	notes         []note
	reconcileNote bool
}

// A note is a gauge shown as a short text when it is not zero.
type note struct {
	metric string
	format func(v float64) string
}

func count(what string) func(float64) string {
	return func(v float64) string { return fmt.Sprintf("%s %s", what, formatCount(v)) }
}

// specs are the components alertsync runs, by the name they report on
// /status.
var specs = map[string]spec{
	"capture-dps": {
		rate: "alertsync_capture_dps_records_total", rateOf: "records",
		lag: "alertsync_capture_dps_lag_seconds", lagUnit: "seconds",
		errors: "alertsync_capture_dps_errors_total",
		notes: []note{{"alertsync_capture_dps_slot_retained_wal_bytes", func(v float64) string {
			return "slot retains " + formatBytes(v) + " of WAL"
		}}},
	},
	"capture-nomis": {
		rate: "alertsync_capture_nomis_records_total", rateOf: "records",
		lag: "alertsync_capture_nomis_lag_seconds", lagUnit: "seconds",
		dlq: []string{"alertsync_capture_nomis_dlq_total"}, errors: "alertsync_capture_nomis_errors_total",
		notes: []note{
			{"alertsync_capture_nomis_journal_backlog_rows", count("journal backlog")},
			{"alertsync_capture_nomis_resyncs_pending", count("resyncs pending")},
			{"alertsync_capture_nomis_initial_load_running", func(float64) string { return "initial load running" }},
		},
	},
	"transform": {
		rate: "alertsync_transform_records_total", rateOf: "records",
		lag: "alertsync_transform_lag_records", lagUnit: "records",
		freshness: "alertsync_transform_freshness_seconds",
		dlq:       []string{"alertsync_transform_dlq_total"}, errors: "alertsync_transform_errors_total",
		notes: []note{
			{"alertsync_transform_holds_open", count("holds open")},
			{"alertsync_transform_reference_waiting", count("waiting for reference data")},
		},
	},
	"apply-dps": {
		rate: "alertsync_apply_dps_commands_total", rateOf: "commands",
		lag: "alertsync_apply_dps_lag_records", lagUnit: "records",
		freshness: "alertsync_apply_dps_freshness_seconds",
		// An apply's DLQ entries: the commands the target refused, and
		// the commands held behind them.
		dlq:    []string{"alertsync_apply_dps_dlq_total", "alertsync_apply_dps_held_total"},
		errors: "alertsync_apply_dps_errors_total",
	},
	"apply-nomis": {
		rate: "alertsync_apply_nomis_commands_total", rateOf: "commands",
		lag: "alertsync_apply_nomis_lag_records", lagUnit: "records",
		freshness: "alertsync_apply_nomis_freshness_seconds",
		dlq:       []string{"alertsync_apply_nomis_dlq_total", "alertsync_apply_nomis_held_total"},
		errors:    "alertsync_apply_nomis_errors_total",
	},
	"reconcile": {reconcileNote: true},
}

// Rows compares each target's samples: prev (nil, or a slice as long as
// cur, from an earlier Scrape of the same targets) and cur. A target
// gives one row per component it reports, or one "unreachable" row.
func Rows(targets []Target, prev, cur []Sample) []Row {
	var rows []Row
	for i, t := range targets {
		c := cur[i]
		if c.Err != nil {
			rows = append(rows, Row{Target: t.Name, State: StateUnreachable, Detail: c.Err.Error()})
			continue
		}
		var p *Sample
		if prev != nil && prev[i].Err == nil {
			p = &prev[i]
			if restarted(*p, c) {
				// Every counter and histogram started again from zero:
				// what the process counts now is all since the restart.
				p = &Sample{At: p.At}
			}
		}
		statuses := slices.Clone(c.Statuses)
		sort.SliceStable(statuses, func(a, b int) bool { return order(statuses[a].Name) < order(statuses[b].Name) })
		if len(statuses) == 0 {
			rows = append(rows, Row{Target: t.Name, State: string(admin.Starting), Detail: "no component has started yet"})
			continue
		}
		for j, st := range statuses {
			r := row(t, st, p, c)
			if j == 0 {
				// Uptime and memory are the process's: shown once per
				// target (alertsync demo runs every component in one).
				r.UptimeSeconds, r.RSSBytes = processFigures(c)
			}
			rows = append(rows, r)
		}
	}
	return rows
}

// order sorts components in pipeline order, unknown ones last.
func order(name string) int {
	for i, n := range []string{"capture-dps", "capture-nomis", "transform", "apply-dps", "apply-nomis", "reconcile"} {
		if n == name {
			return i
		}
	}
	return math.MaxInt
}

func row(t Target, st admin.Status, prev *Sample, cur Sample) Row {
	r := Row{Target: t.Name, Component: st.Name, State: string(st.State), Ready: st.State == admin.Running,
		Position: st.Position, LastError: st.LastError}
	if !r.Ready {
		r.Detail = st.Detail
	}
	sp, known := specs[st.Name]
	if !known {
		return r
	}
	if sp.rate != "" {
		r.RateOf = sp.rateOf
		r.Rate = rate(prev, cur, sp.rate)
	}
	if sp.lag != "" {
		r.LagUnit = sp.lagUnit
		if v, ok := sum(cur.Families, sp.lag); ok {
			r.Lag = ptr(v)
		}
	}
	if sp.freshness != "" && prev != nil {
		r.FreshnessP99 = quantile(0.99, prev.Families[sp.freshness], cur.Families[sp.freshness])
	}
	if len(sp.dlq) > 0 {
		var total float64
		for _, name := range sp.dlq {
			v, _ := sum(cur.Families, name) // absent: a vector nothing was counted in yet
			total += v
			if prev != nil {
				r.DLQNew = ptr(deref(r.DLQNew) + *increase(prev, cur, name))
			}
		}
		r.DLQTotal = ptr(total)
	}
	if sp.errors != "" {
		r.ErrorRate = rate(prev, cur, sp.errors)
	}
	for _, n := range sp.notes {
		if v, ok := sum(cur.Families, n.metric); ok && v != 0 {
			r.Notes = append(r.Notes, n.format(v))
		}
	}
	if sp.reconcileNote {
		r.Notes = append(r.Notes, reconcileNotes(cur)...)
	}
	return r
}

// processFigures returns the process's uptime and resident memory, when
// it serves them.
func processFigures(s Sample) (uptime, rss *float64) {
	if start, ok := sum(s.Families, "process_start_time_seconds"); ok {
		uptime = ptr(max(0, s.At.Sub(time.Unix(0, int64(start*1e9))).Seconds()))
	}
	if v, ok := sum(s.Families, "process_resident_memory_bytes"); ok {
		rss = ptr(v)
	}
	return uptime, rss
}

// restarted reports whether the target's process started again between
// two samples (a new process_start_time_seconds), which a counter that
// grew past its old value would not show.
func restarted(prev, cur Sample) bool {
	a, ok1 := sum(prev.Families, "process_start_time_seconds")
	b, ok2 := sum(cur.Families, "process_start_time_seconds")
	return ok1 && ok2 && a != b
}

// reconcileNotes tell when reconcile last ran and what it found.
func reconcileNotes(cur Sample) []string {
	last, ok := sum(cur.Families, "alertsync_reconcile_last_run_timestamp_seconds")
	if !ok || last == 0 {
		return []string{"no run finished yet"}
	}
	ago := cur.At.Sub(time.Unix(0, int64(last*1e9)))
	diffs, _ := sum(cur.Families, "alertsync_reconcile_differences")
	checked, _ := sum(cur.Families, "alertsync_reconcile_prisoners_checked")
	return []string{fmt.Sprintf("last run %s ago: %s prisoners, %s differences", FormatDuration(ago.Seconds()), formatCount(checked), formatCount(diffs))}
}

func ptr(v float64) *float64 { return &v }

func deref(v *float64) float64 {
	if v == nil {
		return 0
	}
	return *v
}

// sum adds up every series of a counter, gauge or untyped family; false
// when the family is not served (or is of another type).
func sum(fams map[string]*dto.MetricFamily, name string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	var total float64
	for _, m := range f.GetMetric() {
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			total += m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			total += m.GetGauge().GetValue()
		case dto.MetricType_UNTYPED:
			total += m.GetUntyped().GetValue()
		default:
			return 0, false
		}
	}
	return total, true
}

// increase is how much a counter family grew from prev to cur; nil
// without prev. A family not served counts 0: the counters the specs name
// are the components' own (TestSpecsNameServedMetrics), and a labelled one
// is served only once something was counted in it. A counter that went
// down was reset (the process restarted): its whole current value is the
// increase, as Prometheus counts it.
func increase(prev *Sample, cur Sample, name string) *float64 {
	if prev == nil {
		return nil
	}
	now, _ := sum(cur.Families, name)
	before, _ := sum(prev.Families, name)
	if now < before {
		return ptr(now)
	}
	return ptr(now - before)
}

// rate is a counter family's increase per second from prev to cur.
func rate(prev *Sample, cur Sample, name string) *float64 {
	inc := increase(prev, cur, name)
	dt := 0.0
	if prev != nil {
		dt = cur.At.Sub(prev.At).Seconds()
	}
	if inc == nil || dt <= 0 {
		return nil
	}
	return ptr(*inc / dt)
}

// quantile estimates the q-quantile of what a histogram family observed
// between two scrapes (all its series merged), interpolating linearly
// within a bucket as Prometheus's histogram_quantile does; nil when
// nothing was observed. An observation in the +Inf bucket gives the
// highest finite bound.
func quantile(q float64, prev, cur *dto.MetricFamily) *float64 {
	if cur == nil || cur.GetType() != dto.MetricType_HISTOGRAM {
		return nil
	}
	buckets := func(f *dto.MetricFamily) (map[float64]float64, float64) {
		out := map[float64]float64{}
		var total float64
		if f == nil {
			return out, 0
		}
		for _, m := range f.GetMetric() {
			h := m.GetHistogram()
			total += float64(h.GetSampleCount())
			for _, b := range h.GetBucket() {
				out[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			}
		}
		return out, total
	}
	now, nowTotal := buckets(cur)
	before, beforeTotal := buckets(prev)
	if nowTotal < beforeTotal { // reset: the process restarted
		before, beforeTotal = map[float64]float64{}, 0
	}
	observed := nowTotal - beforeTotal
	if observed <= 0 {
		return nil
	}
	bounds := make([]float64, 0, len(now))
	for b := range now {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	rank := q * observed
	lower, below := 0.0, 0.0
	for _, b := range bounds {
		in := now[b] - before[b]
		if in >= rank {
			if math.IsInf(b, 1) {
				// In the +Inf bucket: the highest finite bound is all that
				// can be said.
				return ptr(lower)
			}
			if in == below {
				return ptr(b)
			}
			return ptr(lower + (b-lower)*(rank-below)/(in-below))
		}
		lower, below = b, in
	}
	// The buckets hold fewer observations than the count (no +Inf bucket
	// served): the highest bound is all that can be said.
	if len(bounds) == 0 {
		return nil
	}
	return ptr(lower)
}
