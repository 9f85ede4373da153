package dps

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/testenv/cpustat"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/proctest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
)

// The benchmarks measure the real `alertsync capture dps` binary, run as a
// subprocess so that its memory is its own, against a real Kafka broker
// (kafkatest.Real: acknowledgements cost what they cost in production, and
// the broker's CPU is not the benchmark process's, as kfake's would be)
// beside pg_recvlogical, the decoding ceiling, draining the same WAL from a
// pgoutput slot of its own in the same run (DESIGN.md, `make bench`).
//
// The workload is committed while no reader runs; a template slot created
// before it is copied (pg_copy_logical_replication_slot) for each drain, so
// every reader, and every b.N iteration, drains the same committed WAL:
//
//   - pg_recvlogical is timed from its start until it exits at the end LSN
//     (--endpos);
//   - the capture from its "streaming" log line (replication started; the
//     start-up before it is logged) until the high watermarks of its topic
//     account for every change, that is until Kafka has acknowledged the last
//     record. Its peak RSS (VmHWM) is read before it is killed.
//
// Figures (internal/tools/benchfmt): capture.dps.large_txn and
// capture.dps.small_txn in changes/s with ratio to pg_recvlogical.large_txn
// and pg_recvlogical.small_txn, and capture.dps.rss in MB. The capture runs
// with GOMAXPROCS of the benchmark (1 under scripts/bench.sh, -cpu 1).
//
// The helpers below (building and driving the capture process) are shared
// with the crash test (crash_test.go, build tag broker).

// BenchmarkCaptureLargeTxn: 1,000,000 inserts into alert in 10 transactions
// of 100,000.
func BenchmarkCaptureLargeTxn(b *testing.B) {
	benchCapture(b, benchWorkload{name: "large_txn", txns: 10, rowsPerTxn: 100_000, reportRSS: true})
}

// BenchmarkCaptureSmallTxn: 100,000 one-row transactions (inserts into alert).
func BenchmarkCaptureSmallTxn(b *testing.B) {
	benchCapture(b, benchWorkload{name: "small_txn", txns: 100_000, rowsPerTxn: 1})
}

type benchWorkload struct {
	name       string
	txns       int
	rowsPerTxn int
	reportRSS  bool
}

func (w benchWorkload) changes() int { return w.txns * w.rowsPerTxn }

func benchCapture(b *testing.B, w benchWorkload) {
	recvlogical := pgRecvlogicalPath(b)
	bin := buildCapture(b)
	db := pgtest.NewDB(b)
	db.Exec(b, deploy.DPSSchemaSQL())
	db.Exec(b, deploy.DPSSeedSQL())
	brokers := kafkatest.Real(b)
	reg := srfake.New()
	b.Cleanup(reg.Close)
	adm := kadm.NewClient(kafkatest.Client(b, brokers, kgo.MetadataMinAge(10*time.Millisecond)))

	prefix := kafkatest.Topic(b, "bench") + "."
	const slot, template, refSlot, pub = "bench_capture", "bench_template", "bench_recvlogical", "bench_pub"
	topic := prefix + "dps.public.alert"
	env := captureEnv(db.DSN, brokers, reg.URL(), prefix, slot, pub, map[string]string{
		"ALERTSYNC_CAPTURE_HEARTBEAT": "1m", // no heartbeat WAL between the workload and its end LSN
		"GOMAXPROCS":                  strconv.Itoa(runtime.GOMAXPROCS(0)),
	})
	logDir := b.TempDir()

	// First start: publication, slot, (empty) snapshot, topics. Then the
	// template slot at the capture's confirmed position, before the workload.
	p := startCapture(b, bin, env, filepath.Join(logDir, "capture-setup.log"))
	p.waitStreaming(b, 2*time.Minute)
	if err := p.Stop(30 * time.Second); err != nil {
		b.Fatalf("stopping the capture after its first start: %v\n%s", err, p.LogTail())
	}
	waitSlotIdle(b, db, slot, 30*time.Second)
	db.Exec(b, "SELECT pg_copy_logical_replication_slot($1, $2)", slot, template)

	ctx := context.Background()
	codeID := pgtest.QueryValue[int64](b, db, "SELECT id FROM alert_code WHERE code = $1", "XA")
	genStart := time.Now()
	generateWorkload(b, db, w, codeID)
	end := walLSN(b, db)
	gen := time.Since(genStart)
	b.Logf("%s: %d changes in %d transactions committed in %s (%.0f changes/s); end LSN %s",
		w.name, w.changes(), w.txns, gen.Round(time.Millisecond), float64(w.changes())/gen.Seconds(), end)

	broker := childProcess("java") // the broker kafkatest.Real started, if it did

	b.Run("pg_recvlogical", func(b *testing.B) {
		var drained time.Duration
		for i := range b.N {
			b.StopTimer()
			copySlotFrom(b, db, template, refSlot)
			meter := startCPUMeter(map[string]int{"kafka": broker})
			b.StartTimer()
			started := time.Now()
			// -F 0: no fsync of the output; the slot's confirmed position
			// follows what was written.
			cmd := exec.CommandContext(ctx, recvlogical, "-d", db.DSN, "-S", refSlot, "--start", "--no-loop",
				"-o", "proto_version=1", "-o", "publication_names="+pub,
				"-f", "/dev/null", "-F", "0", "-E", end.String())
			out, err := cmd.CombinedOutput()
			took := time.Since(started)
			b.StopTimer()
			if err != nil {
				b.Fatalf("pg_recvlogical: %v\n%s", err, out)
			}
			if got := slotConfirmed(b, db, refSlot); got < end {
				b.Fatalf("pg_recvlogical exited at %s, before the end LSN %s\n%s", got, end, out)
			}
			drained += took
			db.Exec(b, "SELECT pg_drop_replication_slot($1)", refSlot)
			b.Logf("pg_recvlogical #%d: %d changes in %s (%.0f changes/s); %s, pg_recvlogical %s",
				i+1, w.changes(), took.Round(time.Millisecond), float64(w.changes())/took.Seconds(), meter,
				(cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Round(10*time.Millisecond))
			b.StartTimer()
		}
		b.ReportMetric(float64(w.changes()*b.N)/drained.Seconds(), "changes/s")
	})

	b.Run("capture", func(b *testing.B) {
		var (
			drained time.Duration
			peakMB  float64
		)
		for i := range b.N {
			b.StopTimer()
			waitSlotIdle(b, db, slot, 30*time.Second)
			db.Exec(b, "SELECT pg_drop_replication_slot($1)", slot)
			copySlotFrom(b, db, template, slot)
			base := topictest.Sum(topictest.EndOffsets(ctx, b, adm, topic))
			want := base + int64(w.changes())
			b.StartTimer()
			launched := time.Now()
			p := startCapture(b, bin, env, filepath.Join(logDir, fmt.Sprintf("capture-%s-%d.log", w.name, i)))
			started := p.waitStreaming(b, 2*time.Minute)
			perf := startPerf(b, p.PID(), fmt.Sprintf("%s-%d", w.name, i))
			meter := startCPUMeter(map[string]int{"kafka": broker, "capture": p.PID(),
				"walsender": int(pgtest.QueryValue[int32](b, db, "SELECT coalesce(active_pid, 0) FROM pg_replication_slots WHERE slot_name = $1", slot))})
			var acked int64
			for acked < want {
				if p.Exited() {
					b.StopTimer()
					b.Fatalf("capture exited while draining: %v\n%s", p.Wait(), p.LogTail())
				}
				time.Sleep(20 * time.Millisecond)
				acked = topictest.Sum(topictest.EndOffsets(ctx, b, adm, topic))
			}
			took := time.Since(started)
			b.StopTimer()
			usage := meter.String()
			perf.stop(b)
			rss, err := p.PeakRSS()
			if err != nil {
				b.Fatal(err)
			}
			if acked != want {
				b.Fatalf("topic %s has %d records after the drain, want %d: duplicates without a crash", topic, acked-base, w.changes())
			}
			waitConfirmed(b, db, slot, end, time.Minute)
			p.Kill(b)
			drained += took
			peakMB = max(peakMB, rss)
			b.Logf("capture #%d: %d changes in %s (%.0f changes/s) after a start-up of %s; peak RSS %.1f MB; %s",
				i+1, w.changes(), took.Round(time.Millisecond), float64(w.changes())/took.Seconds(),
				started.Sub(launched).Round(time.Millisecond), rss, usage)
			b.StartTimer()
		}
		b.ReportMetric(float64(w.changes()*b.N)/drained.Seconds(), "changes/s")
		if w.reportRSS {
			b.ReportMetric(peakMB, "MB")
		}
	})
}

// childProcess returns the pid of a child process of this one whose command
// name is comm, or 0.
func childProcess(comm string) int {
	procs, _ := cpustat.Processes()
	for pid, p := range procs {
		if p.Name == comm && p.PPID == os.Getpid() {
			return pid
		}
	}
	return 0
}

// generateWorkload commits w's inserts into alert: large transactions as one
// INSERT … SELECT each, one-row transactions from a DO block that commits
// after every insert.
func generateWorkload(tb testing.TB, db *pgtest.DB, w benchWorkload, codeID int64) {
	tb.Helper()
	const values = `gen_random_uuid(), %d, 'B' || lpad((i %% 10000)::text, 4, '0') || 'CD',
		'Benchmark alert ' || i || ': assessed risk to others, see the case notes of the keyworker', 'bench',
		date '2024-01-02', timestamp '2024-06-01 12:00:00' + i * interval '1 second', 1`
	const cols = "(id, alert_code_id, prison_number, description, authorised_by, active_from, created_at, version)"
	if w.rowsPerTxn == 1 {
		db.Exec(tb, fmt.Sprintf(`DO $$ BEGIN FOR i IN 1..%d LOOP
			INSERT INTO alert %s VALUES (`+values+`);
			COMMIT;
		END LOOP; END $$`, w.txns, cols, codeID))
		return
	}
	for t := range w.txns {
		db.Exec(tb, fmt.Sprintf("INSERT INTO alert %s SELECT "+values+" FROM generate_series(%d, %d) i",
			cols, codeID, t*w.rowsPerTxn+1, (t+1)*w.rowsPerTxn))
	}
}

// pgRecvlogicalPath finds pg_recvlogical of the PostgreSQL 15 client binaries.
func pgRecvlogicalPath(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("PG_BIN")
	if dir == "" {
		dir = "/usr/lib/postgresql/15/bin"
	}
	path := filepath.Join(dir, "pg_recvlogical")
	if _, err := os.Stat(path); err != nil { //nolint:gosec // PG_BIN is the tester's own setting
		tb.Fatalf("pg_recvlogical, the benchmark's reference, is missing (%v): apt-get install -y postgresql-client-15, or set PG_BIN", err)
	}
	return path
}

// buildCapture builds the alertsync binary into a temporary directory.
func buildCapture(tb testing.TB) string { tb.Helper(); return proctest.BuildAlertsync(tb) }

// captureEnv is the environment of a capture process: this process's
// environment without ALERTSYNC_* settings, then the given configuration.
func captureEnv(dsn string, brokers []string, registry, prefix, slot, pub string, extra map[string]string) []string {
	set := map[string]string{
		"ALERTSYNC_DPS_DSN":                   dsn,
		"ALERTSYNC_KAFKA_BROKERS":             strings.Join(brokers, ","),
		"ALERTSYNC_REGISTRY_URL":              registry,
		"ALERTSYNC_TOPICS_PREFIX":             prefix,
		"ALERTSYNC_TOPICS_REPLICATION_FACTOR": "1",
		"ALERTSYNC_CAPTURE_SLOT":              slot,
		"ALERTSYNC_CAPTURE_PUBLICATION":       pub,
		"ALERTSYNC_ADMIN_LISTEN":              "127.0.0.1:0",
		"ALERTSYNC_LOG_FORMAT":                "json",
		"ALERTSYNC_LOG_LEVEL":                 "info",
		"ALERTSYNC_SHUTDOWN_TIMEOUT":          "20s",
	}
	for k, v := range extra {
		set[k] = v
	}
	return proctest.Env(set)
}

// captureProc is one `alertsync capture dps` process, its JSON log
// watched for "streaming".
type captureProc struct {
	*proctest.Proc
	streaming chan time.Time
}

func startCapture(tb testing.TB, bin string, env []string, logPath string) *captureProc {
	tb.Helper()
	p := &captureProc{streaming: make(chan time.Time, 16)}
	p.Proc = proctest.Start(tb, "capture", bin, []string{"capture", "dps"}, env, logPath, proctest.NotifyMsg("streaming", p.streaming))
	return p
}

// waitStreaming waits for the "streaming" log line and returns when it was
// read; it fails the test if the process exits or timeout passes first.
func (p *captureProc) waitStreaming(tb testing.TB, timeout time.Duration) time.Time {
	tb.Helper()
	select {
	case at := <-p.streaming:
		return at
	case <-p.Done():
		tb.Fatalf("capture exited before streaming: %v\n%s", p.Wait(), p.LogTail())
	case <-time.After(timeout):
		tb.Fatalf("capture not streaming after %s\n%s", timeout, p.LogTail())
	}
	return time.Time{}
}

// perfRecord is a `perf record` of the capture during one drain, made when
// BENCH_PERF names a directory: a CPU profile with call graphs, read with
// `perf report -i <dir>/capture-<workload>-<n>.perf`.
type perfRecord struct{ cmd *exec.Cmd }

func startPerf(tb testing.TB, pid int, name string) *perfRecord {
	tb.Helper()
	dir := os.Getenv("BENCH_PERF")
	if dir == "" {
		return nil
	}
	out := filepath.Join(dir, "capture-"+name+".perf")
	cmd := exec.CommandContext(context.Background(), "perf", "record", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", out) //nolint:gosec // BENCH_PERF is the tester's own setting
	if err := cmd.Start(); err != nil {
		tb.Fatalf("BENCH_PERF is set but perf does not start (apt-get install -y linux-perf): %v", err)
	}
	tb.Logf("recording a CPU profile of the capture in %s", out)
	return &perfRecord{cmd: cmd}
}

func (r *perfRecord) stop(tb testing.TB) {
	tb.Helper()
	if r == nil {
		return
	}
	_ = r.cmd.Process.Signal(os.Interrupt)
	_ = r.cmd.Wait() // perf ends by the interrupt
	out := r.cmd.Args[len(r.cmd.Args)-1]
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		tb.Errorf("perf record wrote no profile to %s: %v", out, err)
	}
}

// cpuMeter measures the CPU used by some processes and the machine over a
// span of time, for the benchmark logs: who was busy during a drain.
type cpuMeter struct {
	pids      map[string]int
	start     map[string]time.Duration
	busy0, t0 time.Duration
}

func startCPUMeter(pids map[string]int) *cpuMeter {
	m := &cpuMeter{pids: pids, start: map[string]time.Duration{}}
	for name, pid := range pids {
		m.start[name], _ = proctest.CPUTime(pid)
	}
	m.busy0, m.t0, _ = proctest.MachineCPU()
	return m
}

// String reports each process's CPU time and the machine's busy share since start.
func (m *cpuMeter) String() string {
	var parts []string
	for name, pid := range m.pids {
		if d, err := proctest.CPUTime(pid); err == nil {
			parts = append(parts, fmt.Sprintf("%s %s", name, (d-m.start[name]).Round(10*time.Millisecond)))
		}
	}
	sort.Strings(parts)
	if busy, total, err := proctest.MachineCPU(); err == nil && total > m.t0 {
		parts = append(parts, fmt.Sprintf("machine %.0f%% busy (%d cores)", 100*float64(busy-m.busy0)/float64(total-m.t0), runtime.NumCPU()))
	}
	return "CPU " + strings.Join(parts, ", ")
}

// waitSlotIdle waits until no process uses slot and no capture session is
// left on the database (a killed process's backends end when they notice
// the closed socket).
func waitSlotIdle(tb testing.TB, db *pgtest.DB, slot string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		busy := pgtest.QueryValue[int64](tb, db, `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active)
			+ (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'alertsync capture dps')`, slot)
		if busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("slot %q still in use %s after the capture ended", slot, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func copySlotFrom(tb testing.TB, db *pgtest.DB, from, to string) {
	tb.Helper()
	db.Exec(tb, "SELECT pg_copy_logical_replication_slot($1, $2)", from, to)
}

func walLSN(tb testing.TB, db *pgtest.DB) pglogrepl.LSN {
	tb.Helper()
	return lsnOf(tb, pgtest.QueryValue[string](tb, db, "SELECT pg_current_wal_lsn()::text"))
}

// slotConfirmed returns the slot's confirmed_flush_lsn (0 when it has none).
func slotConfirmed(tb testing.TB, db *pgtest.DB, slot string) pglogrepl.LSN {
	tb.Helper()
	s := pgtest.QueryValue[string](tb, db, "SELECT coalesce((SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1), '0/0')", slot)
	return lsnOf(tb, s)
}

func lsnOf(tb testing.TB, s string) pglogrepl.LSN {
	tb.Helper()
	l, err := pglogrepl.ParseLSN(s)
	if err != nil {
		tb.Fatalf("parsing LSN %q: %v", s, err)
	}
	return l
}

// waitConfirmed waits until the slot's confirmed position reaches end.
func waitConfirmed(tb testing.TB, db *pgtest.DB, slot string, end pglogrepl.LSN, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := slotConfirmed(tb, db, slot)
		if got >= end {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("slot %q confirmed %s after %s, want at least %s", slot, got, timeout, end)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
