package transform

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the transformer's Prometheus metrics (namespace
// alertsync_transform). With a nil registerer they are created but not
// registered.
type metrics struct {
	records    *prometheus.CounterVec   // topic, result: command, dropped, dlq, skipped, tombstone
	dropped    *prometheus.CounterVec   // reason (rules.Drop)
	commands   *prometheus.CounterVec   // target, kind
	dlq        *prometheus.CounterVec   // topic, error_kind, reason
	skipped    *prometheus.CounterVec   // direction
	txns       *prometheus.CounterVec   // result: committed, aborted
	txnSeconds prometheus.Histogram     // Begin to End
	batch      prometheus.Histogram     // source records per transaction
	freshness  *prometheus.HistogramVec // direction: commit of the command's transaction minus source commit
	lag        *prometheus.GaugeVec     // topic, partition: records behind the last stable offset
	direction  *prometheus.GaugeVec     // direction: 1 on, 0 off
	reloads    *prometheus.CounterVec   // result: ok, error
	errors     *prometheus.CounterVec   // kind
	refCodes   prometheus.Gauge
	refTypes   prometheus.Gauge
	refErrors  prometheus.Counter
	refWaits   *prometheus.HistogramVec // result: found, missing
	refWaiting prometheus.Gauge         // records waiting now
	decoded    *prometheus.CounterVec   // path: fast, generic
	holds      prometheus.Gauge         // open holds
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "alertsync", "transform"
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "records_total",
			Help: "Source records consumed, by topic and result: command (one or more commands produced), dropped (the rules produce nothing, see dropped_total), dlq (failed, or held behind a failed record of its alert), skipped (direction turned off), tombstone; and for records of held alerts: waiting (held already), stale (a redriven record no longer held), discarded (released by dlq redrive --discard-failed)."}, []string{"topic", "result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dropped_total",
			Help: "Source records that produce no command, by reason: sync (written by alertsync itself), not_current_booking, booking_copy, unchanged."}, []string{"reason"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "commands_total",
			Help: "Commands produced in committed transactions, by target (dps, nomis) and kind."}, []string{"target", "kind"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dlq_total",
			Help: "Source records sent to alertsync.dlq in committed transactions, by topic, error kind (decode, mapping, encode, held) and reason (for held: the reason of the failure held behind)."}, []string{"topic", "error_kind", "reason"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "skipped_total",
			Help: "Source records consumed while their direction was turned off (sync.nomis_to_dps, sync.dps_to_nomis), by direction."}, []string{"direction"}),
		txns: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "transactions_total",
			Help: "Kafka transactions ended, by result: committed or aborted (the batch is consumed again)."}, []string{"result"}),
		txnSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "transaction_seconds",
			Help: "Duration of a transaction, from its first record to its end.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_records",
			Help: "Source records per transaction.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		freshness: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "freshness_seconds",
			Help:    "Time from the source commit to the commit of the transaction holding its command, by direction (nomis_to_dps, dps_to_nomis).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16)}, []string{"direction"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "lag_records",
			Help: "Records of a source partition this replica has not yet fetched: the last stable offset (from its fetches, and listed every 5s) minus the offset after the last record fetched, transaction markers included (a caught-up partition is 0). A series exists while the replica owns the partition, from its first fetch of a record of it."}, []string{"topic", "partition"}),
		direction: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "direction_enabled",
			Help: "1 while the direction (nomis_to_dps, dps_to_nomis) produces commands, 0 while it is turned off."}, []string{"direction"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "reloads_total",
			Help: "Reloads of the sync.* switches (SIGHUP or a changed configuration file), by result."}, []string{"result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "errors_total",
			Help: "Errors the transformer retried or stopped on, by kind: kafka, registry, transaction, fatal."}, []string{"kind"}),
		refCodes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "reference_codes",
			Help: "Alert codes in the replica's reference data."}),
		refTypes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "reference_types",
			Help: "Alert types in the replica's reference data."}),
		refErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "reference_errors_total",
			Help: "Reference records that could not be decoded and were skipped."}),
		refWaits: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "reference_wait_seconds",
			Help:    "Waits for an alert code missing from the reference data, by result: found, missing (the record goes to the DLQ).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}, []string{"result"}),
		refWaiting: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "reference_waiting",
			Help: "Records waiting now for an alert code missing from the reference data (each up to transform.reference_wait); the replica transforms nothing else meanwhile."}),
		decoded: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "decoded_total",
			Help: "Source records decoded, by path: fast (written with the current schema of the topic, read straight from Avro binary) or generic (another schema version, decoded with goavro). Counts every attempt, also of transactions that abort."}, []string{"path"}),
		holds: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "holds_open",
			Help: "Alerts (or prisoners) whose records are held behind a record that went to alertsync.dlq, as this replica last read or committed them (alertsync.transform.holds); dlq redrive --stage transform releases them."}),
	}
	if reg != nil {
		reg.MustRegister(m.holds, m.records, m.dropped, m.commands, m.dlq, m.skipped, m.txns, m.txnSeconds, m.batch,
			m.freshness, m.lag, m.direction, m.reloads, m.errors, m.refCodes, m.refTypes, m.refErrors, m.refWaits, m.refWaiting, m.decoded)
	}
	return m
}

// RegisterMetrics registers the metrics transform serves on reg, as the
// component does when it starts; the metrics reference (docs/metrics.md)
// and the checks of the deploy files are built from it.
func RegisterMetrics(reg prometheus.Registerer) { newMetrics(reg) }
