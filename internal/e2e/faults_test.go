//go:build broker

package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/pgcluster"
	"github.com/alertsync/alertsync/internal/testenv/broker"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/proctest"
)

// Fault suite settings.
const (
	// faultRate is each side's user changes per second (together at least
	// 100 changes/s, issue 9).
	faultRate = 70
	// faultMinWorkload is the least time the workload runs.
	faultMinWorkload = 60 * time.Second
	// faultGap is the pause between one fault's recovery and the next fault.
	faultGap = 3 * time.Second
	// faultRecover bounds how long the pipeline may take to be ready again
	// after a fault.
	faultRecover = 90 * time.Second
	// faultSettle bounds how long the pipeline may take, once the workload
	// stops, to deliver every change.
	faultSettle = 3 * time.Minute
)

// faultRecord is one injected fault, for the summary.
type faultRecord struct {
	name      string
	at        time.Duration // since the workload started
	took      time.Duration // the fault itself (kill, restart, pause)
	recovered time.Duration // from the fault's end until every process was ready
}

// TestFaults runs a steady random workload of NOMIS and DPS users (at least
// 100 changes/s for at least a minute, on prisoners of one side and shared
// ones) through a pipeline on a private broker and two private PostgreSQL
// clusters, and meanwhile SIGKILLs and restarts each component in turn,
// restarts the broker and each cluster, and pauses a component past its
// session timeout. Afterwards every user change must have reached the other
// side exactly once (per alert, from the ledger each user transaction
// wrote), with no loop, no duplicate row, audit event or mapping, and a
// clean reconcile. It prints the faults and the counts.
func TestFaults(t *testing.T) {
	began := time.Now()
	bin := proctest.BuildAlertsync(t)

	kafka := startPrivateBroker(t)
	dpsCluster := pgtest.NewCluster(t, pgcluster.Options{Logger: testLogger()})
	nomisCluster := pgtest.NewCluster(t, pgcluster.Options{Logger: testLogger()})
	dps, nomis := pgtest.NewDBOn(t, dpsCluster), pgtest.NewDBOn(t, nomisCluster)

	nomisOnly := generatedPrisoners("N", 1, 8)
	dpsOnly := generatedPrisoners("D", 1, 8)
	shared := generatedPrisoners("S", 1, 8)
	all := append(append(append([]prisoner{}, nomisOnly...), dpsOnly...), shared...)
	rw := newRestartableWorld(t, bin, []string{kafka.Addr()}, dps, nomis, all)

	nu := &actor{side: "NOMIS", pool: nomis.Pool, user: "NOMIS_FAULTS", prisoners: append(append([]prisoner{}, nomisOnly...), shared...), workers: 2, tagPrefix: "n"}
	du := &actor{side: "DPS", pool: dps.Pool, user: "dps.faults@justice.example", prisoners: append(append([]prisoner{}, dpsOnly...), shared...), workers: 2, tagPrefix: "d"}
	ctx, stopWorkload := context.WithCancel(context.Background())
	defer stopWorkload()
	var users sync.WaitGroup
	users.Go(func() { nu.run(ctx, faultRate) })
	users.Go(func() { du.run(ctx, faultRate) })
	workloadStart := time.Now()

	var faults []faultRecord
	var unplanned []string
	inject := func(name string, do func()) {
		time.Sleep(faultGap)
		f := faultRecord{name: name, at: time.Since(workloadStart)}
		t0 := time.Now()
		do()
		f.took = time.Since(t0)
		t1 := time.Now()
		unplanned = append(unplanned, rw.restartExited(t)...)
		rw.waitReady(t, faultRecover)
		f.recovered = time.Since(t1)
		faults = append(faults, f)
		t.Logf("fault %-34s at %6s: took %6s, ready again after %6s (changes so far: NOMIS %d, DPS %d)", name,
			f.at.Round(time.Second), f.took.Round(time.Millisecond), f.recovered.Round(time.Millisecond), nu.stats.total(), du.stats.total())
	}
	for _, name := range []string{"capture-dps", "capture-nomis", "transform", "apply-dps", "apply-nomis"} {
		inject("SIGKILL + restart "+name, func() {
			rw.kill(t, name)
			rw.restart(t, name, faultRecover)
		})
	}
	inject("restart Kafka broker", func() {
		restartBroker(t, kafka)
	})
	inject("restart DPS PostgreSQL", func() {
		rctx, cancel := withTimeout(time.Minute)
		defer cancel()
		require.NoError(t, dpsCluster.Restart(rctx), "restarting the DPS cluster")
	})
	inject("restart NOMIS PostgreSQL", func() {
		rctx, cancel := withTimeout(time.Minute)
		defer cancel()
		require.NoError(t, nomisCluster.Restart(rctx), "restarting the NOMIS cluster")
	})
	for _, name := range []string{"transform", "apply-dps"} {
		inject(fmt.Sprintf("SIGSTOP %s %s, SIGCONT", name, faultSessionTimeout+4*time.Second), func() {
			rw.signal(t, name, syscall.SIGSTOP)
			time.Sleep(faultSessionTimeout + 4*time.Second)
			rw.signal(t, name, syscall.SIGCONT)
		})
	}
	if rest := faultMinWorkload - time.Since(workloadStart); rest > 0 {
		time.Sleep(rest)
	}
	stopWorkload()
	users.Wait()
	workload := time.Since(workloadStart)
	unplanned = append(unplanned, rw.restartExited(t)...)
	t.Logf("workload stopped after %s: NOMIS %d changes (%d failed transactions), DPS %d changes (%d failed transactions), %.0f changes/s",
		workload.Round(time.Millisecond), nu.stats.total(), nu.stats.failed.Load(), du.stats.total(), du.stats.failed.Load(),
		float64(nu.stats.total()+du.stats.total())/workload.Seconds())

	led := readLedgers(t, rw.world)
	// The ledger, not what the users saw, is what committed: a commit whose
	// answer a database restart cut off may have committed.
	lostAnswers := map[string]int{"NOMIS": led.total("NOMIS") - int(nu.stats.total()), "DPS": led.total("DPS") - int(du.stats.total())}
	t.Logf("ledger: %s; commits whose answer was lost but which committed: %v", strings.ReplaceAll(describe(led.byOp), "\n", ", "), lostAnswers)

	settleStart := time.Now()
	var tr traffic
	complete := rw.settled(t, faultSettle, "every user change delivered and answered", func() string {
		tr = rw.readTraffic(t)
		got := fmt.Sprintf("%d of %d NOMIS changes and %d of %d DPS changes have a command, %d of %d commands an outcome",
			len(tr.distinct(tr.toDPS)), led.total("NOMIS"), len(tr.distinct(tr.toNOMIS)), led.total("DPS"), tr.answered(), len(tr.distinct(tr.toDPS))+len(tr.distinct(tr.toNOMIS)))
		if len(tr.distinct(tr.toDPS)) < led.total("NOMIS") || len(tr.distinct(tr.toNOMIS)) < led.total("DPS") ||
			tr.answered() < len(tr.distinct(tr.toDPS))+len(tr.distinct(tr.toNOMIS)) {
			return got
		}
		if d := compareStores(t, rw.world, numbers(all)...); d != "" {
			return got + "; stores differ: " + d
		}
		return ""
	})
	settled := time.Since(settleStart)
	if !complete {
		// Say which changes are missing, then stop.
		rw.checkExactlyOnce(t, led, tr)
		t.FailNow()
	}

	before := rw.storeState(t)
	time.Sleep(quietFor)
	after := rw.readTraffic(t)
	require.Equal(t, before, rw.storeState(t), "alert rows changed after the pipeline went quiet (a loop?)")
	require.Equal(t, len(tr.toDPS), len(after.toDPS), "commands to DPS kept coming")
	require.Equal(t, len(tr.toNOMIS), len(after.toNOMIS), "commands to NOMIS kept coming")
	require.Equal(t, len(tr.outcomes), len(after.outcomes), "outcomes kept coming")

	counts := rw.checkExactlyOnce(t, led, tr)

	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row := func(format string, args ...any) { _, _ = fmt.Fprintf(tw, format+"\n", args...) } // into b: cannot fail
	row("FAULT\tAT\tTOOK\tREADY AFTER")
	for _, f := range faults {
		row("%s\t%s\t%s\t%s", f.name, f.at.Round(time.Second), f.took.Round(time.Millisecond), f.recovered.Round(time.Millisecond))
	}
	row("\nCOUNT\tVALUE")
	for _, side := range []*actor{nu, du} {
		row("%s user changes (create/update/delete)\t%d/%d/%d = %d", side.side,
			side.stats.committed[opCreate].Load(), side.stats.committed[opUpdate].Load(), side.stats.committed[opDelete].Load(), side.stats.total())
		row("%s user transactions failed during faults\t%d (last: %v)", side.side, side.stats.failed.Load(), side.stats.lastErr.Load())
	}
	row("commits whose answer was lost (in the ledger)\t%v", lostAnswers)
	row("workload\t%s at %.0f changes/s", workload.Round(time.Second), float64(nu.stats.total()+du.stats.total())/workload.Seconds())
	for _, c := range counts {
		row("%s\t%s", c[0], c[1])
	}
	row("unplanned process exits (restarted)\t%d %v", len(unplanned), unplanned)
	row("settled after the workload in\t%s", settled.Round(time.Millisecond))
	row("process starts\t%v", rw.runs)
	_ = tw.Flush()
	t.Logf("fault suite summary:\n%s", b.String())
	rw.reconcile(t)
	require.Empty(t, unplanned, "components exited on their own during the faults (they should ride out a broker or database restart)")
	t.Logf("TestFaults took %s", time.Since(began).Round(time.Millisecond))
}

// startPrivateBroker starts a Kafka broker of the suite's own, which it may
// restart (the shared broker of ALERTSYNC_TEST_KAFKA serves every package
// and must not be), with these JVM options added, stopped when the test
// ends.
func startPrivateBroker(tb testing.TB, jvmOptions ...string) *broker.Broker {
	tb.Helper()
	ctx, cancel := withTimeout(15 * time.Minute)
	defer cancel()
	b, err := broker.Start(ctx, broker.Options{JVMOptions: jvmOptions, Logger: testLogger()})
	require.NoError(tb, err, "starting a private Kafka broker (needs Java 17+ and Maven: apt-get install -y openjdk-17-jre-headless maven)")
	tb.Cleanup(func() {
		if err := b.Stop(); err != nil {
			tb.Errorf("stopping the private Kafka broker: %v", err)
		}
	})
	tb.Logf("private Kafka broker %s ready in %s", b.Addr(), b.StartupTime().Round(time.Millisecond))
	return b
}

// restartBroker restarts the private broker on the same ports and storage.
// It tries up to three times: while the broker is down, a client's outgoing
// connection can take one of its listener ports as its local port, and
// broker.Restart retries a taken port only when "Address already in use" is
// among the last 40 log lines, which a controller's bind failure scrolls past.
func restartBroker(t *testing.T, b *broker.Broker) {
	t.Helper()
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		ctx, cancel := withTimeout(2 * time.Minute)
		err = b.Restart(ctx)
		cancel()
		if err == nil {
			return
		}
		msg := err.Error()
		if i := strings.Index(msg, "\n"); i > 0 {
			msg = msg[:i]
		}
		t.Logf("restarting the private Kafka broker, attempt %d: %s", attempt, msg)
		time.Sleep(time.Second)
	}
	require.NoError(t, err, "restarting the private Kafka broker")
}

// restartExited starts again every process that exited without being told
// to, as a supervisor would, and returns what happened for the summary.
func (rw *restartableWorld) restartExited(t *testing.T) []string {
	t.Helper()
	var out []string
	for name, err := range rw.exited() {
		t.Logf("%s exited on its own (%v); restarting it\n%s", name, err, rw.procs[rw.index(t, name)].LogTail())
		out = append(out, fmt.Sprintf("%s: %v", name, err))
		rw.procs[rw.index(t, name)] = rw.start(t, rw.index(t, name))
	}
	sort.Strings(out)
	return out
}

// settled polls cond every second until it returns "" (true) or timeout
// passes (false, after an error with cond's last answer); processes that
// exit are restarted and counted as a failure. It logs progress every 15s.
func (rw *restartableWorld) settled(t *testing.T, timeout time.Duration, what string, cond func() string) bool {
	t.Helper()
	began := time.Now()
	deadline := began.Add(timeout)
	lastLog := began
	for {
		if gone := rw.restartExited(t); len(gone) > 0 {
			t.Errorf("components exited while the pipeline settled: %v", gone)
		}
		msg := cond()
		if msg == "" {
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: not within %s: %s\n%s", what, timeout, msg, rw.logs())
			return false
		}
		if time.Since(lastLog) > 15*time.Second {
			t.Logf("after %s: %s", time.Since(began).Round(time.Second), msg)
			lastLog = time.Now()
		}
		time.Sleep(time.Second)
	}
}

func numbers(ps []prisoner) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.number
	}
	return out
}
