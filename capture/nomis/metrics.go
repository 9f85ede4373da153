package nomis

import "github.com/prometheus/client_golang/prometheus"

// metrics of the NOMIS capture, all declared here (STYLE.md).
type metrics struct {
	records      *prometheus.CounterVec // table, op
	backlog      prometheus.Gauge       // rows
	lag          prometheus.Gauge       // seconds
	pollDuration prometheus.Histogram   // seconds
	dlq          *prometheus.CounterVec // kind
	errors       *prometheus.CounterVec // kind

	snapshots          *prometheus.CounterVec // reason
	requests           *prometheus.CounterVec // result
	resyncPending      prometheus.Gauge
	initialLoadAlerts  prometheus.Counter
	initialLoadRunning prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "alertsync", Subsystem: "capture_nomis", Name: "records_total",
			Help: "Change records acknowledged by Kafka, by table and op (c, u, d); tombstones are not counted.",
		}, []string{"table", "op"}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "alertsync", Subsystem: "capture_nomis", Name: "journal_backlog_rows",
			Help: "Rows in the journal: committed changes not yet published, or published but not yet deleted.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "alertsync", Subsystem: "capture_nomis", Name: "lag_seconds",
			Help: "Age of the oldest committed journal row not yet published and acknowledged by Kafka; 0 when the journal is empty.",
		}),
		pollDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "alertsync", Subsystem: "capture_nomis", Name: "poll_duration_seconds",
			Help:    "Time of one journal read (up to capture.batch_size rows in commit order).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "alertsync", Subsystem: "capture_nomis", Name: "dlq_total",
			Help: "Journal rows that could not be turned into records, sent to alertsync.dlq, by error kind.",
		}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "alertsync", Subsystem: "capture_nomis", Name: "errors_total",
			Help: "Errors by kind: nomis, kafka and registry (outages, retried), snapshot (a prisoner snapshot withheld because an alert went to the DLQ), fatal (the capture stops).",
		}, []string{"kind"}),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "alertsync", Subsystem: "capture_nomis", Name: "prisoner_snapshots_total",
			Help: "Prisoner snapshots acknowledged by Kafka on nomis.alertsync.prisoner_alerts, by reason (INITIAL_LOAD, NEW_BOOKING, BOOKING_SWITCHED, BOOKING_MOVED, BOOKING_REMOVED, MERGE, BOOKING_COPY, REDRIVE).",
		}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "alertsync", Subsystem: "capture_nomis", Name: "resync_requests_total",
			Help: "Resync requests (dlq redrive --stage capture.nomis) taken from the journal, by result: resync (a prisoner resync scheduled) or no_prisoner (the booking or offender named is not in NOMIS: dropped).",
		}, []string{"result"}),
		resyncPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "alertsync", Subsystem: "capture_nomis", Name: "resyncs_pending",
			Help: "Prisoner resyncs recorded and waiting for their snapshot (debounced by capture.resync_delay).",
		}),
		initialLoadAlerts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "alertsync", Subsystem: "capture_nomis", Name: "initial_load_alerts_total",
			Help: "Alerts produced as op r by initial loads (counted as produced: a load cut short is repeated whole).",
		}),
		initialLoadRunning: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "alertsync", Subsystem: "capture_nomis", Name: "initial_load_running",
			Help: "1 while an initial load runs, else 0.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.backlog, m.lag, m.pollDuration, m.dlq, m.errors,
			m.snapshots, m.requests, m.resyncPending, m.initialLoadAlerts, m.initialLoadRunning)
	}
	return m
}

// RegisterMetrics registers the metrics capture nomis serves on reg, as the
// component does when it starts; the metrics reference (docs/metrics.md)
// and the checks of the deploy files are built from it.
func RegisterMetrics(reg prometheus.Registerer) { newMetrics(reg) }
