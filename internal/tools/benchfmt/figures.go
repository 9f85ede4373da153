package main

// figure names one benchmark metric in `make bench` output.
type figure struct {
	// Name is the figure name printed after BENCH, e.g. "codec.encode".
	Name string
	// Pkg is the package the benchmark lives in: an import path or a suffix
	// of one after a slash ("schemas"). Empty matches any package.
	Pkg string
	// Bench is the benchmark function name, sub-benchmarks after a slash,
	// without the -GOMAXPROCS suffix go test may add.
	Bench string
	// Unit is the metric reported, e.g. "records/s", "ns/op", "MB/s".
	Unit string
	// Ref is the name of the figure this one is measured against, printed
	// as ratio=<value/ref> ref=<Ref> when both are in the same input.
	// Empty for none.
	Ref string
}

// figures is the table of every figure benchfmt prints, in output order.
// To publish a new figure, add its benchmark here (and its reference, if it
// has one, as a figure of its own).
var figures = []figure{
	{Name: "codec.encode", Pkg: "schemas", Bench: "BenchmarkCodecEncode", Unit: "records/s", Ref: "goavro.encode"},
	{Name: "goavro.encode", Pkg: "schemas", Bench: "BenchmarkGoavroEncode", Unit: "records/s"},
	{Name: "codec.decode", Pkg: "schemas", Bench: "BenchmarkCodecDecode", Unit: "records/s", Ref: "goavro.decode"},
	{Name: "goavro.decode", Pkg: "schemas", Bench: "BenchmarkGoavroDecode", Unit: "records/s"},
	{Name: "capture.dps.large_txn", Pkg: "capture/dps", Bench: "BenchmarkCaptureLargeTxn/capture", Unit: "changes/s", Ref: "pg_recvlogical.large_txn"},
	{Name: "pg_recvlogical.large_txn", Pkg: "capture/dps", Bench: "BenchmarkCaptureLargeTxn/pg_recvlogical", Unit: "changes/s"},
	{Name: "capture.dps.small_txn", Pkg: "capture/dps", Bench: "BenchmarkCaptureSmallTxn/capture", Unit: "changes/s", Ref: "pg_recvlogical.small_txn"},
	{Name: "pg_recvlogical.small_txn", Pkg: "capture/dps", Bench: "BenchmarkCaptureSmallTxn/pg_recvlogical", Unit: "changes/s"},
	{Name: "capture.dps.rss", Pkg: "capture/dps", Bench: "BenchmarkCaptureLargeTxn/capture", Unit: "MB"},
	{Name: "capture.dps.encode", Pkg: "capture/dps", Bench: "BenchmarkEncodeEnvelope/direct", Unit: "records/s", Ref: "capture.dps.encode_goavro"},
	{Name: "capture.dps.encode_goavro", Pkg: "capture/dps", Bench: "BenchmarkEncodeEnvelope/goavro", Unit: "records/s"},
	{Name: "capture.dps.decode", Pkg: "capture/dps", Bench: "BenchmarkDecode", Unit: "changes/s"},
	{Name: "capture.nomis", Pkg: "capture/nomis", Bench: "BenchmarkCaptureNomis", Unit: "changes/s"},
	{Name: "capture.nomis.initial_load", Pkg: "capture/nomis", Bench: "BenchmarkInitialLoad", Unit: "alerts/s"},
	{Name: "nomis.trigger_overhead", Pkg: "capture/nomis", Bench: "BenchmarkNomisTriggerOverhead/durable", Unit: "with_changes/s", Ref: "nomis.no_trigger"},
	{Name: "nomis.no_trigger", Pkg: "capture/nomis", Bench: "BenchmarkNomisTriggerOverhead/durable", Unit: "without_changes/s"},
	{Name: "nomis.trigger_overhead.nofsync", Pkg: "capture/nomis", Bench: "BenchmarkNomisTriggerOverhead/nofsync", Unit: "with_changes/s", Ref: "nomis.no_trigger.nofsync"},
	{Name: "nomis.no_trigger.nofsync", Pkg: "capture/nomis", Bench: "BenchmarkNomisTriggerOverhead/nofsync", Unit: "without_changes/s"},
	{Name: "transform.core", Pkg: "transform", Bench: "BenchmarkTransformCore/rules", Unit: "records/s", Ref: "transform.noop_rule"},
	{Name: "transform.noop_rule", Pkg: "transform", Bench: "BenchmarkTransformCore/noop_rule", Unit: "records/s"},
	{Name: "transform.kfake", Pkg: "transform", Bench: "BenchmarkTransformKfake", Unit: "records/s"},
	{Name: "apply.dps", Pkg: "apply/dps", Bench: "BenchmarkApplyDPS/apply", Unit: "commands/s", Ref: "apply.dps.plain_insert"},
	{Name: "apply.dps.plain_insert", Pkg: "apply/dps", Bench: "BenchmarkApplyDPS/plain_insert", Unit: "commands/s"},
	{Name: "apply.nomis", Pkg: "apply/nomis", Bench: "BenchmarkApplyNOMIS/apply", Unit: "commands/s", Ref: "apply.nomis.plain_insert"},
	{Name: "apply.nomis.plain_insert", Pkg: "apply/nomis", Bench: "BenchmarkApplyNOMIS/plain_insert", Unit: "commands/s"},
	{Name: "e2e.freshness.p99.nomis_to_dps", Pkg: "internal/e2e", Bench: "BenchmarkE2EFreshness/nomis_to_dps", Unit: "ms"},
	{Name: "e2e.freshness.p99.dps_to_nomis", Pkg: "internal/e2e", Bench: "BenchmarkE2EFreshness/dps_to_nomis", Unit: "ms"},
	{Name: "e2e.freshness.achieved_rate", Pkg: "internal/e2e", Bench: "BenchmarkE2EFreshness/steady_rate", Unit: "changes/s"},
	{Name: "e2e.max_rate", Pkg: "internal/e2e", Bench: "BenchmarkE2EFreshness/max_rate", Unit: "changes/s"},
	{Name: "reconcile", Pkg: "internal/reconcile", Bench: "BenchmarkReconcile/reconcile", Unit: "prisoners/s", Ref: "reconcile.full_scan"},
	{Name: "reconcile.full_scan", Pkg: "internal/reconcile", Bench: "BenchmarkReconcile/full_scan", Unit: "prisoners/s"},
}
