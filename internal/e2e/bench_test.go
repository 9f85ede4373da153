//go:build broker

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/alertsync/alertsync/internal/pgcluster"
	"github.com/alertsync/alertsync/internal/testenv/broker"
	"github.com/alertsync/alertsync/internal/testenv/cpustat"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/proctest"
)

// Benchmark settings.
const (
	// benchRate is the steady rate of the freshness figures, in changes per
	// second in each direction (issue 9: p99 ≤ 500 ms at 500 changes/s).
	benchRate = 500
	// benchSteady is how long the steady rate runs.
	benchSteady = 20 * time.Second
	// benchStep is how long each rate of the max-rate search runs.
	benchStep = 8 * time.Second
	// benchLimit is the p99 freshness the max-rate search allows.
	benchLimit = time.Second
	// benchDrain bounds the wait for a step's changes to arrive.
	benchDrain = 90 * time.Second
	// benchWarmRate and benchWarm are the broker's warm-up before the
	// max-rate search.
	benchWarmRate = 100
	benchWarm     = 30 * time.Second
	// benchWorkers is the number of user sessions per side.
	benchWorkers = 8
)

// benchLadder are the rates (changes/s in each direction) the max-rate
// search climbs, in order, until one is not sustained; benchRate is then
// measured on its own, and when it is sustained, benchAbove too.
var benchLadder = []float64{25, 50, 100, 150, 200, 250, 300, 400}

// benchAbove are the rates tried above benchRate, in order, until one is
// not sustained.
var benchAbove = []float64{750, 1000, 1500, 2000, 3000}

// BenchmarkE2EFreshness runs the five components on the real broker and two
// PostgreSQL clusters (DPS and the NOMIS stand-in). After a short warm-up,
// NOMIS and DPS users each create benchRate alerts per second for
// benchSteady; it reports the p99 end-to-end freshness in each direction –
// target commit time minus source commit time, both read from the stores'
// commit timestamps (track_commit_timestamp) – as sub-benchmarks
// nomis_to_dps and dps_to_nomis (ms), and the rate the users reached as
// steady_rate. The max-rate search climbs from a low rate (benchLadder,
// benchStep each) until a rate is not sustained and reports as max_rate the
// highest rate per direction at which the users kept up (≥ 90% of the rate)
// and both directions' p99 stayed within benchLimit; the steady benchRate
// step runs after the climb (and, when it is sustained, benchAbove), so
// that no step of the search starts just after an overload (its backlog's
// after-effects – vacuum, collections – slowed the steps after it). Run it
// once: -benchtime 1x.
func BenchmarkE2EFreshness(b *testing.B) {
	brokers, brokerPID := benchBroker(b)
	bin := proctest.BuildAlertsync(b)
	pgOpts := pgcluster.Options{Logger: testLogger()}
	profDir := os.Getenv("E2E_PPROF")
	if profDir != "" {
		// Statement statistics, and the plans of statements slower than
		// 20 ms in the server logs.
		pgOpts.Settings = map[string]string{"shared_preload_libraries": "'pg_stat_statements,auto_explain'",
			"auto_explain.log_min_duration": "'20ms'"}
	}
	dpsCluster, nomisCluster := pgtest.NewCluster(b, pgOpts), pgtest.NewCluster(b, pgOpts)
	dps, nomis := pgtest.NewDBOn(b, dpsCluster), pgtest.NewDBOn(b, nomisCluster)
	if profDir != "" {
		for _, db := range []*pgtest.DB{dps, nomis} {
			db.Exec(b, "CREATE EXTENSION pg_stat_statements")
		}
		b.Cleanup(func() {
			statements(b, dps, filepath.Join(profDir, "statements-dps.txt"))
			statements(b, nomis, filepath.Join(profDir, "statements-nomis.txt"))
			for name, c := range map[string]*pgcluster.Cluster{"dps": dpsCluster, "nomis": nomisCluster} {
				if log, err := os.ReadFile(c.LogPath()); err == nil {
					_ = os.WriteFile(filepath.Join(profDir, "server-"+name+".log"), log, 0o600) //nolint:gosec // E2E_PPROF: the runner's own directory
				}
			}
		})
	}
	nomisSide := generatedPrisoners("B", 1, 96)
	dpsSide := generatedPrisoners("C", 1, 96)
	rw := newRestartableWorld(b, bin, brokers, dps, nomis, append(append([]prisoner{}, nomisSide...), dpsSide...))
	clusters := []benchCluster{{"DPS", dpsCluster, dps}, {"NOMIS", nomisCluster, nomis}}

	step := 0
	measure := func(rate float64, d time.Duration) benchStepResult {
		step++
		r := benchStepResult{rate: rate}
		nu := &actor{side: "NOMIS", pool: nomis.Pool, user: "NOMIS_BENCH", prisoners: nomisSide, workers: benchWorkers, createsOnly: true, tagPrefix: fmt.Sprintf("s%dn-", step)}
		du := &actor{side: "DPS", pool: dps.Pool, user: "dps.bench@justice.example", prisoners: dpsSide, workers: benchWorkers, createsOnly: true, tagPrefix: fmt.Sprintf("s%dd-", step)}
		histBefore := [2]histogram{rw.scrapeFreshness(b, "apply-dps"), rw.scrapeFreshness(b, "apply-nomis")}
		transformBefore := [2]histogram{rw.transformFreshness(b, "nomis_to_dps"), rw.transformFreshness(b, "dps_to_nomis")}
		cpuBefore := takeCPU(b, brokerPID)
		ctx, cancel := context.WithTimeout(context.Background(), d)
		began := time.Now()
		var wg sync.WaitGroup
		if profDir != "" && step > 1 {
			rw.profile(b, &wg, profDir, step, d-time.Second)
		}
		wg.Go(func() { nu.run(ctx, rate) })
		wg.Go(func() { du.run(ctx, rate) })
		wg.Wait()
		cancel()
		took := time.Since(began)
		cpuAfter := takeCPU(b, brokerPID)
		r.achieved = math.Min(float64(nu.stats.total()), float64(du.stats.total())) / took.Seconds()
		if f := nu.stats.failed.Load() + du.stats.failed.Load(); f > 0 {
			b.Fatalf("%d user transactions failed at %.0f changes/s; last: %v / %v", f, rate, nu.stats.lastErr.Load(), du.stats.lastErr.Load())
		}
		r.toDPS = rw.freshness(b, nomis, "oms_owner.offender_alerts", "comment_text", dps, "public.alert", "description", nu.tagPrefix)
		r.toNOMIS = rw.freshness(b, dps, "public.alert", "description", nomis, "oms_owner.offender_alerts", "comment_text", du.tagPrefix)
		defer rw.quiesce(b) // after the logs below
		b.Logf("%5.0f changes/s per direction for %s: achieved %.0f/s; freshness NOMIS→DPS %s, DPS→NOMIS %s",
			rate, took.Round(time.Millisecond), r.achieved, summarize(r.toDPS), summarize(r.toNOMIS))
		// The applies' own histograms (alertsync_apply_*_freshness_seconds)
		// as a cross-check of the commit-time measurement.
		b.Logf("      apply metrics: p99 NOMIS→DPS %s, DPS→NOMIS %s (histogram, interpolated in its buckets)",
			rw.scrapeFreshness(b, "apply-dps").minus(histBefore[0]).quantile(0.99).Round(time.Millisecond),
			rw.scrapeFreshness(b, "apply-nomis").minus(histBefore[1]).quantile(0.99).Round(time.Millisecond))
		// How much of it is spent before the applies: source commit to the
		// commit of the transformer's transaction holding the command.
		b.Logf("      up to transform: p50/p99 NOMIS→DPS %s / %s, DPS→NOMIS %s / %s (histogram)",
			rw.transformFreshness(b, "nomis_to_dps").minus(transformBefore[0]).quantile(0.5).Round(time.Millisecond),
			rw.transformFreshness(b, "nomis_to_dps").minus(transformBefore[0]).quantile(0.99).Round(time.Millisecond),
			rw.transformFreshness(b, "dps_to_nomis").minus(transformBefore[1]).quantile(0.5).Round(time.Millisecond),
			rw.transformFreshness(b, "dps_to_nomis").minus(transformBefore[1]).quantile(0.99).Round(time.Millisecond))
		// Where the machine's CPU went while the users wrote.
		if cpuBefore != nil && cpuAfter != nil {
			b.Logf("      cpu, %% of one core: %s", cpustat.Between(cpuBefore, cpuAfter, rw.cpuGroups(b, brokerPID, clusters)))
		}
		return r
	}

	// Warm up: the first records wait for transform to read the reference
	// topics (transform.reference_wait) and every client to connect; that
	// start-up belongs to no rate.
	measure(20, 3*time.Second)
	if rates := os.Getenv("E2E_RATES"); rates != "" {
		// Only these rates, for a look at one load (docs/testing-e2e.md).
		for _, f := range strings.Split(rates, ",") {
			r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || r <= 0 {
				b.Fatalf("E2E_RATES: %q is not a rate in changes/s", f)
			}
			measure(r, benchStep)
		}
		rw.logStages(b)
		return
	}
	// A longer warm-up, not counted either, for the broker: a JVM
	// compiles its hot code during its first minutes (the C2 compiler
	// thread took 13-19% of a core at 150 changes/s five minutes after a
	// start), which a long-running production broker has long finished.
	b.Logf("broker warm-up (not counted):")
	measure(benchWarmRate, benchWarm)
	// The tables were created empty a minute ago and have grown since;
	// autovacuum has not analyzed them yet (it waits for its first minute
	// and for 10% of a table to change), so the planner still takes them for
	// a few rows and reads e.g. OFFENDER_ALERTS whole in apply nomis's set
	// path. A database in service has statistics.
	for _, db := range []*pgtest.DB{dps, nomis} {
		db.Exec(b, "ANALYZE")
	}
	maxRate := 0.0
	climbed := true
	for _, rate := range benchLadder {
		if !measure(rate, benchStep).sustained() {
			climbed = false
			break
		}
		maxRate = rate
	}
	steady := measure(benchRate, benchSteady)
	if climbed && steady.sustained() {
		maxRate = benchRate
		for _, rate := range benchAbove {
			if !measure(rate, benchStep).sustained() {
				break
			}
			maxRate = rate
		}
	}

	rw.logStages(b)
	report := func(name string, v float64, unit string) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
			}
			b.ReportMetric(v, unit)
		})
	}
	report("nomis_to_dps", ms(percentile(steady.toDPS, 0.99)), "ms")
	report("dps_to_nomis", ms(percentile(steady.toNOMIS, 0.99)), "ms")
	report("steady_rate", steady.achieved, "changes/s")
	report("max_rate", maxRate, "changes/s")
}

// benchBroker returns the benchmark's broker and the process id of its JVM
// (0 when unknown). With ALERTSYNC_TEST_KAFKA that is the given broker; its
// JVM is found when it listens on this machine. Otherwise the benchmark
// starts one of its own with the JVM's C1 compiler only (broker.C1Only): a
// new JVM's C2 compiler took 10-40% of a core for its first seven minutes
// under this load, which skewed every step of a 4-minute run and which a
// long-running production broker has long finished. C1's code costs the
// broker more CPU than warm C2 code: the figures err on the slow side.
func benchBroker(b *testing.B) ([]string, int) {
	if kafkatest.Kind() == "real" {
		brokers := kafkatest.Real(b)
		host, port, err := net.SplitHostPort(brokers[0])
		if ip := net.ParseIP(host); err == nil && (host == "localhost" || ip != nil && ip.IsLoopback()) {
			n, _ := strconv.Atoi(port)
			pid, err := cpustat.ListenerPID(n)
			var name string
			if err == nil && pid > 0 {
				var st cpustat.Process
				st, err = cpustat.Stat(pid)
				name = st.Name
			}
			// A proxy in front of the broker (a container's port mapping)
			// is not the broker.
			if err == nil && name == "java" {
				b.Logf("broker %s: JVM pid %d", brokers[0], pid)
				return brokers, pid
			}
			if pid > 0 {
				b.Logf("broker %s: the listener is pid %d (%s), not a JVM", brokers[0], pid, name)
			}
		}
		b.Logf("the broker %s is not a JVM of this machine that can be seen: its CPU is counted in \"other\"", brokers[0])
		return brokers, 0
	}
	own := startPrivateBroker(b, broker.C1Only)
	return []string{own.Addr()}, own.PID()
}

// takeCPU reads the CPU time so far of the machine and its processes, and
// of the broker JVM's threads (for its compiler's share); nil, logged, where
// /proc cannot be read.
func takeCPU(b *testing.B, brokerPID int) *cpustat.Snapshot {
	s, err := cpustat.Take(brokerPID)
	if err != nil {
		b.Logf("no CPU accounting: %v", err)
		return nil
	}
	return s
}

// benchCluster is a PostgreSQL cluster of the benchmark and its database.
type benchCluster struct {
	name    string
	cluster *pgcluster.Cluster
	db      *pgtest.DB
}

// cpuGroups are the parts of the benchmark whose CPU time it reports: the
// broker (and, as a part of it, its JIT compiler threads), each PostgreSQL
// cluster's server processes serving the components (application_name
// "alertsync …") and the rest of it (the simulated users' sessions, the
// server's own processes), each component, and the benchmark's own process
// (the simulated users and the harness). Read when the step's load ends: a
// component's database session that ended during the step is counted in
// its cluster's rest.
func (rw *restartableWorld) cpuGroups(b *testing.B, brokerPID int, clusters []benchCluster) []cpustat.Group {
	groups := []cpustat.Group{
		{Name: "broker", PIDs: []int{brokerPID}},
		{Name: "JIT compiler", PIDs: []int{brokerPID}, Threads: []string{"C1 CompilerThre", "C2 CompilerThre"}},
	}
	for _, c := range clusters {
		var pids []int
		rows, err := c.db.Pool.Query(context.Background(),
			"SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'alertsync %'")
		if err == nil {
			pids, err = pgx.CollectRows(rows, pgx.RowTo[int])
		}
		if err != nil {
			b.Logf("listing the components' sessions on %s: %v", c.name, err)
		}
		// The components' sessions first: the cluster's group below counts
		// only what is left.
		groups = append(groups,
			cpustat.Group{Name: "PostgreSQL " + c.name + " for alertsync", PIDs: pids},
			cpustat.Group{Name: "PostgreSQL " + c.name + " (users, server)", PIDs: []int{c.cluster.PID()}, Children: true})
	}
	for _, p := range rw.procs {
		groups = append(groups, cpustat.Group{Name: p.name, PIDs: []int{p.PID()}})
	}
	return append(groups, cpustat.Group{Name: "users+harness", PIDs: []int{os.Getpid()}})
}

// profile takes a CPU profile of each component for d, in the background
// (wg), into dir/<component>-step<N>.pprof: E2E_PPROF=dir, which also
// turns on the components' admin.pprof (docs/testing-e2e.md).
func (rw *restartableWorld) profile(b *testing.B, wg *sync.WaitGroup, dir string, step int, d time.Duration) {
	b.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil { //nolint:gosec // E2E_PPROF: the runner's own directory
		b.Fatalf("E2E_PPROF: %v", err)
	}
	for i, s := range rw.specs {
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", rw.procs[i].adminAddr(), int(d.Seconds()))
		path := filepath.Join(dir, fmt.Sprintf("%s-step%d.pprof", s.name, step))
		wg.Go(func() {
			resp, err := http.Get(url) //nolint:gosec,noctx // a test's own local admin address; bounded by the profile's seconds
			if err != nil {
				b.Errorf("profiling %s: %v", s.name, err)
				return
			}
			defer func() { _ = resp.Body.Close() }()
			body, err := io.ReadAll(resp.Body)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("%s: %s", resp.Status, body)
			}
			if err == nil {
				err = os.WriteFile(path, body, 0o600) //nolint:gosec // E2E_PPROF: the runner's own directory
			}
			if err != nil {
				b.Errorf("profiling %s: %v", s.name, err)
			}
		})
	}
}

// statements writes db's statements by total execution time
// (pg_stat_statements, E2E_PPROF) to path.
func statements(b *testing.B, db *pgtest.DB, path string) {
	b.Helper()
	rows, err := db.Pool.Query(context.Background(), `
		SELECT calls, round(total_exec_time)::bigint, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 160)
		FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY total_exec_time DESC LIMIT 30`)
	if err != nil {
		b.Errorf("pg_stat_statements: %v", err)
		return
	}
	defer rows.Close()
	var out strings.Builder
	out.WriteString("calls\ttotal_ms\trows\tquery\n")
	for rows.Next() {
		var calls, total, n int64
		var q string
		if err := rows.Scan(&calls, &total, &n, &q); err != nil {
			b.Errorf("pg_stat_statements: %v", err)
			return
		}
		fmt.Fprintf(&out, "%d\t%d\t%d\t%s\n", calls, total, n, q)
	}
	if err := os.WriteFile(path, []byte(out.String()), 0o600); err != nil { //nolint:gosec // E2E_PPROF: the runner's own directory
		b.Errorf("pg_stat_statements: %v", err)
	}
}

// quiesce waits until capture nomis has published its whole journal. Its
// journal also holds apply nomis's writes (the echoes of DPS → NOMIS, sent
// as sync records and dropped by the transformer), which a step's own wait
// (freshness) does not cover; after a step the machine could not keep up
// with, the next step would otherwise start behind that backlog.
func (rw *restartableWorld) quiesce(b *testing.B) {
	b.Helper()
	began := time.Now()
	deadline := began.Add(benchDrain)
	zero := 0 // consecutive empty readings (the gauge is updated every second or so)
	for zero < 2 {
		if time.Now().After(deadline) {
			b.Fatalf("capture nomis's journal did not drain within %s", benchDrain)
		}
		time.Sleep(500 * time.Millisecond)
		if rw.metric(b, "capture-nomis", "alertsync_capture_nomis_journal_backlog_rows", "") == 0 {
			zero++
		} else {
			zero = 0
		}
	}
	if took := time.Since(began); took > 2*time.Second {
		b.Logf("      capture nomis's journal drained %s after the step", took.Round(time.Millisecond))
	}
}

// logStages logs the components' own histograms over the whole run, to see
// which stage takes the time: transaction and batch sizes and times of the
// transformer and the applies, the NOMIS capture's journal reads and the
// DPS capture's produce latency.
func (rw *restartableWorld) logStages(b *testing.B) {
	b.Helper()
	for _, m := range []struct{ proc, metric string }{
		{"capture-nomis", "alertsync_capture_nomis_poll_duration_seconds"},
		{"capture-dps", "alertsync_capture_dps_produce_latency_seconds"},
		{"transform", "alertsync_transform_transaction_seconds"},
		{"transform", "alertsync_transform_batch_records"},
		{"apply-dps", "alertsync_apply_dps_batch_seconds"},
		{"apply-dps", "alertsync_apply_dps_batch_commands"},
		{"apply-nomis", "alertsync_apply_nomis_batch_seconds"},
		{"apply-nomis", "alertsync_apply_nomis_batch_commands"},
	} {
		h := rw.scrapeHistogram(b, m.proc, m.metric, "")
		b.Logf("stage %s: n=%.0f p50 %.4g p90 %.4g p99 %.4g", m.metric, h[math.Inf(1)],
			h.quantile(0.5).Seconds(), h.quantile(0.9).Seconds(), h.quantile(0.99).Seconds())
	}
	// Requests per client and API over the whole run: a broker's CPU goes
	// on its number of requests.
	for _, proc := range []string{"capture-nomis", "capture-dps", "transform", "apply-dps", "apply-nomis"} {
		b.Logf("kafka requests of %s: %s", proc, requestCounts(rw.scrape(b, proc, "alertsync_kafka_requests_total")))
	}
	for _, proc := range []string{"apply-dps", "apply-nomis"} {
		metric := "alertsync_" + strings.ReplaceAll(proc, "-", "_")
		b.Logf("%s retried batches: %s; errors: %s", proc, strings.Join(rw.scrape(b, proc, metric+"_retries_total"), ", "),
			strings.Join(rw.scrape(b, proc, metric+"_errors_total"), ", "))
	}
	b.Logf("apply nomis batches: %s; redone on the statement path: %s",
		strings.Join(rw.scrape(b, "apply-nomis", "alertsync_apply_nomis_committed_batches_total"), ", "),
		strings.Join(rw.scrape(b, "apply-nomis", "alertsync_apply_nomis_statement_path_batches_total"), ", "))
}

// requestCounts shortens alertsync_kafka_requests_total lines to
// "client/API=count" and leaves out the APIs not used.
func requestCounts(lines []string) string {
	var out []string
	for _, l := range lines {
		_, rest, ok := strings.Cut(l, "client_id=\"")
		if !ok {
			continue
		}
		client, rest, _ := strings.Cut(rest, "\"")
		_, rest, _ = strings.Cut(rest, "request=\"")
		api, rest, _ := strings.Cut(rest, "\"")
		n := strings.TrimSpace(rest[strings.LastIndex(rest, "}")+1:])
		if n != "0" {
			out = append(out, client+"/"+api+"="+n)
		}
	}
	return strings.Join(out, " ")
}

// benchStepResult is one rate's measurement.
type benchStepResult struct {
	rate, achieved float64
	toDPS, toNOMIS []time.Duration // freshness of each change
}

// sustained reports whether the users kept up with the rate and both
// directions' p99 freshness stayed within benchLimit.
func (r benchStepResult) sustained() bool {
	return r.achieved >= 0.9*r.rate &&
		percentile(r.toDPS, 0.99) <= benchLimit && percentile(r.toNOMIS, 0.99) <= benchLimit
}

// freshness waits until every alert whose text (column srcCol of srcTable
// in src) starts with prefix has arrived in dstTable of dst (column dstCol
// holds the same text), then returns per alert the target row's commit time
// minus the source row's. Both rows are written once (the benchmark only
// creates), so their xmin is the creating transaction.
func (rw *restartableWorld) freshness(b *testing.B, src *pgtest.DB, srcTable, srcCol string, dst *pgtest.DB, dstTable, dstCol, prefix string) []time.Duration {
	b.Helper()
	read := func(db *pgtest.DB, table, col string) map[string]time.Time {
		rows, err := db.Pool.Query(context.Background(), fmt.Sprintf(
			`SELECT %s, pg_xact_commit_timestamp(xmin) FROM %s WHERE %[1]s LIKE $1 || '%%'`, col, table), prefix)
		if err != nil {
			b.Fatalf("reading commit times of %s: %v", table, err)
		}
		defer rows.Close()
		out := map[string]time.Time{}
		for rows.Next() {
			var text string
			var at time.Time
			if err := rows.Scan(&text, &at); err != nil {
				b.Fatalf("reading commit times of %s: %v", table, err)
			}
			out[text] = at
		}
		if err := rows.Err(); err != nil {
			b.Fatalf("reading commit times of %s: %v", table, err)
		}
		return out
	}
	source := read(src, srcTable, srcCol)
	deadline := time.Now().Add(benchDrain)
	for {
		target := read(dst, dstTable, dstCol)
		if len(target) >= len(source) {
			out := make([]time.Duration, 0, len(source))
			for text, at := range source {
				got, ok := target[text]
				if !ok {
					b.Fatalf("%s: %q reached %s without its source row", prefix, text, dstTable)
				}
				out = append(out, got.Sub(at))
			}
			return out
		}
		if gone := rw.exited(); len(gone) > 0 {
			b.Fatalf("components exited: %v\n%s", gone, rw.logs())
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: %d of %d changes reached %s within %s\n%s", prefix, len(target), len(source), dstTable, benchDrain, rw.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// percentile returns the q-quantile of ds (nearest rank), 0 for none.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// histogram is a scraped Prometheus histogram: cumulative count per upper
// bound (le), +Inf included.
type histogram map[float64]float64

// scrapeFreshness reads the freshness histogram from process name's
// /metrics (alertsync_apply_dps_freshness_seconds for apply-dps).
func (rw *restartableWorld) scrapeFreshness(b *testing.B, name string) histogram {
	b.Helper()
	metric := "alertsync_" + strings.ReplaceAll(name, "-", "_") + "_freshness_seconds"
	h := rw.scrapeHistogram(b, name, metric, "")
	if len(h) == 0 {
		b.Fatalf("scraping %s: no %s in /metrics", name, metric)
	}
	return h
}

// transformFreshness reads the transformer's freshness histogram of one
// direction (empty before its first command).
func (rw *restartableWorld) transformFreshness(b *testing.B, direction string) histogram {
	b.Helper()
	return rw.scrapeHistogram(b, "transform", "alertsync_transform_freshness_seconds", `direction="`+direction+`",`)
}

// scrapeHistogram reads histogram metric from process name's /metrics
// (empty when the series is not there);
// labels, when not empty, are the series' labels before le, as they print
// (`direction="nomis_to_dps",`).
func (rw *restartableWorld) scrapeHistogram(b *testing.B, name, metric, labels string) histogram {
	b.Helper()
	prefix := metric + "_bucket{" + labels + "le=\""
	h := histogram{}
	for _, line := range rw.scrape(b, name, prefix) {
		le, count, ok := strings.Cut(strings.TrimPrefix(line, prefix), "\"} ")
		if !ok {
			continue
		}
		bound, err1 := strconv.ParseFloat(le, 64)
		n, err2 := strconv.ParseFloat(strings.Fields(count)[0], 64)
		if err1 != nil || err2 != nil {
			b.Fatalf("scraping %s: bad bucket line %q", name, line)
		}
		h[bound] = n
	}
	return h
}

// scrape returns the lines of process name's /metrics that start with
// prefix.
func (rw *restartableWorld) scrape(b *testing.B, name, prefix string) []string {
	b.Helper()
	p := rw.procs[rw.index(b, name)]
	ctx, cancel := withTimeout(5 * time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.adminAddr()+"/metrics", http.NoBody)
	if err != nil {
		b.Fatalf("scraping %s: %v", name, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatalf("scraping %s: %v", name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			lines = append(lines, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatalf("scraping %s: %v", name, err)
	}
	return lines
}

// minus returns h's counts less those of an earlier scrape of the same
// histogram (a process restart would make them negative: not done here).
func (h histogram) minus(earlier histogram) histogram {
	out := histogram{}
	for le, n := range h {
		out[le] = n - earlier[le]
	}
	return out
}

// quantile estimates the q-quantile as Prometheus's histogram_quantile
// does: linear interpolation inside the bucket that holds it.
func (h histogram) quantile(q float64) time.Duration {
	bounds := make([]float64, 0, len(h))
	for le := range h {
		bounds = append(bounds, le)
	}
	slices.Sort(bounds)
	total := h[math.Inf(1)]
	if total <= 0 {
		return 0
	}
	rank, lower, below := q*total, 0.0, 0.0
	for _, le := range bounds {
		if h[le] >= rank {
			if math.IsInf(le, 1) {
				return time.Duration(lower * float64(time.Second))
			}
			frac := (rank - below) / math.Max(h[le]-below, 1)
			return time.Duration((lower + (le-lower)*frac) * float64(time.Second))
		}
		lower, below = le, h[le]
	}
	return 0
}

// summarize formats a freshness sample for the log.
func summarize(ds []time.Duration) string {
	return fmt.Sprintf("n=%d p50 %s p99 %s max %s", len(ds), percentile(ds, 0.5).Round(time.Millisecond),
		percentile(ds, 0.99).Round(time.Millisecond), percentile(ds, 1).Round(time.Millisecond))
}
