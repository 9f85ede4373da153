package dps

import "github.com/prometheus/client_golang/prometheus"

// metrics of the DPS capture, all declared here (STYLE.md).
type metrics struct {
	records        *prometheus.CounterVec // table, op
	withoutUser    prometheus.Counter
	lag            prometheus.Gauge       // seconds
	retainedWAL    prometheus.Gauge       // bytes
	produceLatency prometheus.Histogram   // seconds
	errors         *prometheus.CounterVec // kind
	snapshotRows   *prometheus.CounterVec // table
	confirmedLSN   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		withoutUser: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "alertsync", Subsystem: "capture_dps", Name: "records_without_user_total",
			Help: "Alert change records published without the alertsync-actioned-by header: no audit_event of the transaction named the alert, or the transaction held more than 10,000 alert changes.",
		}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "alertsync", Subsystem: "capture_dps", Name: "records_total",
			Help: "Change records produced to Kafka, by table and op (c, u, d, r, t).",
		}, []string{"table", "op"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "alertsync", Subsystem: "capture_dps", Name: "lag_seconds",
			Help: "Age of the oldest committed change not yet acknowledged by Kafka; 0 when caught up.",
		}),
		retainedWAL: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "alertsync", Subsystem: "capture_dps", Name: "slot_retained_wal_bytes",
			Help: "WAL the replication slot keeps on the server (current LSN minus the slot's restart LSN).",
		}),
		produceLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "alertsync", Subsystem: "capture_dps", Name: "produce_latency_seconds",
			Help:    "Time from producing a record to Kafka's acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "alertsync", Subsystem: "capture_dps", Name: "errors_total",
			Help: "Errors by kind: postgresql, kafka and registry (outages, retried), decode, fatal (the capture stops).",
		}, []string{"kind"}),
		snapshotRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "alertsync", Subsystem: "capture_dps", Name: "snapshot_rows_total",
			Help: "Rows read by the initial snapshot, by table.",
		}, []string{"table"}),
		confirmedLSN: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "alertsync", Subsystem: "capture_dps", Name: "confirmed_lsn",
			Help: "Flush LSN last confirmed to the server, as a number.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.withoutUser, m.records, m.lag, m.retainedWAL, m.produceLatency, m.errors, m.snapshotRows, m.confirmedLSN)
	}
	return m
}

// RegisterMetrics registers the metrics capture dps serves on reg, as the
// component does when it starts; the metrics reference (docs/metrics.md)
// and the checks of the deploy files are built from it.
func RegisterMetrics(reg prometheus.Registerer) { newMetrics(reg) }
