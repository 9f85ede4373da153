package apply

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are an apply's Prometheus metrics (namespace alertsync, subsystem
// apply_<target>). With a nil registerer they are created, not registered.
type Metrics struct {
	Commands  *prometheus.CounterVec // outcome, reason
	Latency   prometheus.Histogram   // one batch's database transaction
	Batch     prometheus.Histogram   // commands per transaction
	Freshness prometheus.Histogram   // target commit minus source commit, per applied command
	Retries   prometheus.Counter
	DLQ       prometheus.Counter
	Held      prometheus.Counter
	Published prometheus.Counter
	Errors    *prometheus.CounterVec // kind
	Lag       *prometheus.GaugeVec   // topic, partition: records behind the last stable offset
}

// NewMetrics creates the metrics of the apply named name (apply-dps, apply-nomis).
func NewMetrics(reg prometheus.Registerer, name string) *Metrics {
	ns, sub := "alertsync", strings.ReplaceAll(name, "-", "_")
	m := &Metrics{
		Commands: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "commands_total",
			Help: "Commands applied, by outcome (APPLIED, SKIPPED, CONFLICT, FAILED) and reason."}, []string{"outcome", "reason"}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_seconds",
			Help: "Duration of one batch's database transaction.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		Batch: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_commands",
			Help: "Commands per database transaction.", Buckets: prometheus.ExponentialBuckets(1, 4, 8)}),
		Freshness: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "freshness_seconds",
			Help: "End-to-end freshness of applied commands: target commit minus source commit.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		Retries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "retries_total",
			Help: "Batches retried after a transient database error."}),
		DLQ: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dlq_total",
			Help: "Commands the target refused (FAILED), sent to the DLQ."}),
		Held: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "held_total",
			Help: "Commands held behind an earlier failed command of the same alert, sent to the DLQ marked held."}),
		Published: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "outcomes_published_total",
			Help: "Outcome records published from the outbox."}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "errors_total",
			Help: "Errors retried, by kind: session, outbox."}, []string{"kind"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "lag_records",
			Help: "Records of a command partition this apply has not yet applied: the last stable offset (from its fetches, and listed every 5s) minus the next offset to apply; a transaction's commit marker counts as a record until the apply has passed it. A series exists while the apply owns the partition, from its first fetch of a record of it."}, []string{"topic", "partition"}),
	}
	if reg != nil {
		reg.MustRegister(m.Commands, m.Latency, m.Batch, m.Freshness, m.Retries, m.DLQ, m.Held, m.Published, m.Errors, m.Lag)
	}
	return m
}

// observe counts a committed batch.
func (m *Metrics) observe(cmds []Cmd, outs []Outcome, took time.Duration) {
	m.Latency.Observe(took.Seconds())
	m.Batch.Observe(float64(len(cmds)))
	now := time.Now()
	for i, o := range outs {
		m.Commands.WithLabelValues(string(o.Result), o.Reason).Inc()
		switch {
		case o.Result == Failed:
			m.DLQ.Inc()
		case o.Reason == ReasonHeld:
			m.Held.Inc()
		case o.Result == Applied && i < len(cmds) && !cmds[i].SourceCommitTime.IsZero():
			m.Freshness.Observe(now.Sub(cmds[i].SourceCommitTime).Seconds())
		}
	}
}

// Outcome reasons shared by both applies.
const (
	ReasonStale       = "stale_position"  // an older or repeated command: the alert holds a newer (or this) position
	ReasonUnchanged   = "unchanged"       // the target already holds this state
	ReasonUnknown     = "unknown_alert"   // a delete or update of an alert the target never had
	ReasonDeleted     = "already_deleted" // a delete of an alert already deleted
	ReasonHeld        = "held"            // held behind an earlier failure of the same alert
	ReasonLost        = "conflict_lost"   // both sides changed the alert; the target's change is later (ties: DPS)
	ReasonWon         = "conflict_won"    // both sides changed the alert; this command's change is later
	ReasonUndecodable = "undecodable"     // the command record could not be decoded
)
