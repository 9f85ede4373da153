package reconcile

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are reconcile's metrics, describing the last finished run.
type Metrics struct {
	checked     prometheus.Gauge
	differences *prometheus.GaugeVec
	lastRun     prometheus.Gauge
	duration    prometheus.Gauge
	runs        *prometheus.CounterVec
}

// NewMetrics registers reconcile's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		checked: prometheus.NewGauge(prometheus.GaugeOpts{Name: "alertsync_reconcile_prisoners_checked",
			Help: "Prisoners compared by the last finished reconcile run."}),
		differences: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "alertsync_reconcile_differences",
			Help: "Differences the last finished reconcile run reported (after the re-check), by kind."}, []string{"kind"}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{Name: "alertsync_reconcile_last_run_timestamp_seconds",
			Help: "Unix time the last finished reconcile run started."}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "alertsync_reconcile_last_run_duration_seconds",
			Help: "Duration of the last finished reconcile run."}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertsync_reconcile_runs_total",
			Help: "Reconcile runs by result: clean, differences or error."}, []string{"result"}),
	}
	reg.MustRegister(m.checked, m.differences, m.lastRun, m.duration, m.runs)
	for _, k := range Kinds() {
		m.differences.WithLabelValues(string(k))
	}
	for _, r := range []string{"clean", "differences", "error"} {
		m.runs.WithLabelValues(r)
	}
	return m
}

// observe records a finished run (res nil: the run failed).
func (m *Metrics) observe(res *Result) {
	if m == nil {
		return
	}
	if res == nil {
		m.runs.WithLabelValues("error").Inc()
		return
	}
	m.checked.Set(float64(res.PrisonersChecked))
	counts := res.Counts()
	for _, k := range Kinds() {
		m.differences.WithLabelValues(string(k)).Set(float64(counts[k]))
	}
	m.lastRun.Set(float64(res.Started.UnixNano()) / 1e9)
	m.duration.Set(res.Duration.Seconds())
	if len(res.Differences) > 0 {
		m.runs.WithLabelValues("differences").Inc()
	} else {
		m.runs.WithLabelValues("clean").Inc()
	}
}
