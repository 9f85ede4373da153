//go:build broker

package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/proctest"
)

// restartableWorld is a world whose processes can be killed, paused and
// started again with the same configuration (the fault suite and the
// benchmark build it; newWorld's processes cannot be restarted).
type restartableWorld struct {
	*world
	specs  []procSpec // in the order of world.procs
	logDir string
	runs   map[string]int // starts per process name
}

// faultSessionTimeout is the session timeout the fault suite pauses
// processes past: the suite's (pipelineSpecs).
const faultSessionTimeout = sessionTimeout

// newRestartableWorld prepares dps and nomis (schemas, reference data, the
// given NOMIS prisoners, the suite's ledger tables), then starts the five
// components with bin against brokers and waits until each is ready.
func newRestartableWorld(tb testing.TB, bin string, brokers []string, dps, nomis *pgtest.DB, seed []prisoner) *restartableWorld {
	tb.Helper()
	w := &world{dps: dps, nomis: nomis, brokers: brokers, reg: srfake.New(), bin: bin}
	tb.Cleanup(w.reg.Close)
	dps.Exec(tb, deploy.DPSSchemaSQL())
	dps.Exec(tb, deploy.DPSSeedSQL())
	nomis.Exec(tb, deploy.NOMISSchemaSQL())
	nomis.Exec(tb, deploy.NOMISSeedSQL())
	nomis.Exec(tb, seedPrisonersSQL(seed))
	dps.Exec(tb, ledgerSQL)
	nomis.Exec(tb, ledgerSQL)
	var err error
	w.srcl, err = sr.NewClient(sr.URLs(w.reg.URL()))
	require.NoError(tb, err)
	w.prefix = kafkatest.Topic(tb, "e2e") + "."

	rw := &restartableWorld{world: w, specs: pipelineSpecs(w), logDir: tb.TempDir(), runs: map[string]int{}}
	w.started = time.Now()
	for i := range rw.specs {
		w.procs = append(w.procs, rw.start(tb, i))
	}
	tb.Cleanup(func() { rw.stopAll(tb) })
	rw.waitReady(tb, 90*time.Second)
	tb.Logf("pipeline ready in %s (topics prefix %s)", time.Since(w.started).Round(time.Millisecond), w.prefix)
	return rw
}

// seedPrisonersSQL gives each prisoner a current booking and an older one
// (booking + 1000000: generated bookings start at 1000000).
func seedPrisonersSQL(ps []prisoner) string { return prisonersSQL(1000000, ps...) }

// generatedPrisoners returns n prisoners numbered from first, with prison
// numbers letter + 4 digits + "FA" (e.g. F0001FA) and ids derived from the
// letter, distinct from the scenarios' prisoners and other letters'.
func generatedPrisoners(letter string, first, n int) []prisoner {
	out := make([]prisoner, n)
	for i := range out {
		k := int(letter[0])*10000 + first + i
		out[i] = prisoner{number: fmt.Sprintf("%s%04dFA", letter, first+i), offender: int64(k), booking: int64(1000000 + k)}
	}
	return out
}

// ledgerSQL creates the suite's ledger in a store: one row per user change,
// written in the user's own transaction, so that the ledger holds exactly
// the changes that committed even when a commit's answer is lost in a
// fault. No component reads the schema (DPS capture publishes named tables
// only; the NOMIS journal triggers are on OMS_OWNER tables only).
const ledgerSQL = `
CREATE SCHEMA IF NOT EXISTS e2e_ledger;
CREATE TABLE e2e_ledger.change (
    id            bigserial PRIMARY KEY,
    side          text NOT NULL,   -- NOMIS or DPS: whose user made the change
    op            text NOT NULL,   -- create, update, delete
    prison_number text NOT NULL,
    dps_alert_id  uuid,            -- DPS user changes
    booking       bigint,          -- NOMIS user changes
    alert_seq     bigint,
    tag           text             -- the unique text the change wrote, if any
);
-- (booking, alert_seq): the users' max(alert_seq) per booking is an index
-- lookup whatever the planner thinks of the (never analyzed) table – when
-- compared with a bigint: against OFFENDER_BOOK_ID's numeric the column is
-- cast and every NOMIS user insert read the whole ledger.
CREATE INDEX ON e2e_ledger.change (booking, alert_seq);`

// start starts process i of the specs and returns it; its log goes to a new
// file per run.
func (rw *restartableWorld) start(tb testing.TB, i int) *proc {
	tb.Helper()
	s := rw.specs[i]
	rw.runs[s.name]++
	p := &proc{name: s.name}
	logPath := filepath.Join(rw.logDir, fmt.Sprintf("%s.%d.log", s.name, rw.runs[s.name]))
	p.Proc = proctest.Start(tb, s.name, rw.bin, s.args, proctest.Env(s.env), logPath, p.watch)
	return p
}

// index returns the position of the process called name.
func (rw *restartableWorld) index(tb testing.TB, name string) int {
	tb.Helper()
	for i, s := range rw.specs {
		if s.name == name {
			return i
		}
	}
	tb.Fatalf("no process %q", name)
	return -1
}

// restart starts process name again (it must have exited) and waits until
// it is ready.
func (rw *restartableWorld) restart(tb testing.TB, name string, timeout time.Duration) {
	tb.Helper()
	i := rw.index(tb, name)
	require.True(tb, rw.procs[i].Exited(), "%s is still running", name)
	rw.procs[i] = rw.start(tb, i)
	rw.waitReady(tb, timeout)
}

// kill SIGKILLs process name (its whole process group) and waits until it
// has exited.
func (rw *restartableWorld) kill(tb testing.TB, name string) {
	tb.Helper()
	rw.procs[rw.index(tb, name)].Kill(tb)
}

// signal sends sig to process name's process group.
func (rw *restartableWorld) signal(tb testing.TB, name string, sig syscall.Signal) {
	tb.Helper()
	p := rw.procs[rw.index(tb, name)]
	require.NoError(tb, syscall.Kill(-p.PID(), sig), "sending %s to %s", sig, name)
}

// exited returns the names of processes that have exited, with their exit
// errors.
func (rw *restartableWorld) exited() map[string]error {
	out := map[string]error{}
	for _, p := range rw.procs {
		if p.Exited() {
			out[p.name] = p.Wait()
		}
	}
	return out
}

// waitReady waits until every process answers 200 on /readyz; a process
// that exits fails tb.
func (rw *restartableWorld) waitReady(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	cl := &http.Client{Timeout: 2 * time.Second}
	for _, p := range rw.procs {
		for {
			if p.Exited() {
				tb.Fatalf("%s exited while starting: %v\n%s", p.name, p.Wait(), rw.logs())
			}
			if addr := p.adminAddr(); addr != "" && ready(cl, addr) {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("%s not ready (GET /readyz) within %s\n%s", p.name, timeout, rw.logs())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// stopAll stops the running processes in reverse start order; each must
// exit cleanly.
func (rw *restartableWorld) stopAll(tb testing.TB) {
	tb.Helper()
	for i := len(rw.procs) - 1; i >= 0; i-- {
		p := rw.procs[i]
		if p.Exited() {
			continue
		}
		// A paused process cannot act on SIGTERM.
		_ = syscall.Kill(-p.PID(), syscall.SIGCONT)
		if err := p.Stop(20 * time.Second); err != nil {
			tb.Errorf("stopping: %v\n%s", err, p.LogTail())
		}
	}
}

// testLogger is the slog logger of the suite's own infrastructure (private
// broker, clusters): warnings and errors to stderr.
func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// withTimeout is context.WithTimeout on the background context.
func withTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
