//go:build broker

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

func TestMain(m *testing.M) { os.Exit(pgtest.Run(kafkatest.Wrap(m))) }

// prisoner is a seeded NOMIS prisoner with a current booking.
type prisoner struct {
	number   string
	offender int64
	booking  int64
}

// prisoners are seeded in NOMIS before the pipeline starts: one per
// scenario, so that scenarios never touch each other's alerts.
var prisoners = []prisoner{
	{"A1001EA", 101, 1101},
	{"A1002EB", 102, 1102},
	{"A1003EC", 103, 1103},
	{"A1004ED", 104, 1104},
	{"A1005EE", 105, 1105},
}

// prisonersSQL gives each of ps a current booking (BOOKING_SEQ 1) and an
// older one (booking + older, BOOKING_SEQ 2), written by a NOMIS user before
// capture exists (so not journaled).
func prisonersSQL(older int64, ps ...prisoner) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, `
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id) VALUES (%[1]d, '%[2]s', %[1]d);
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
VALUES (%[3]d, TIMESTAMP '2025-03-01 10:00:00', %[1]d, %[1]d, 1, 'Y', 'MDI'),
       (%[3]d + %[4]d, TIMESTAMP '2021-01-01 09:00:00', %[1]d, %[1]d, 2, 'N', 'LEI');`, p.offender, p.number, p.booking, older)
	}
	return b.String()
}

// seedSQL seeds the suite's prisoners, the older booking at booking + 5000.
func seedSQL() string { return scenarioPrisonersSQL(prisoners...) }

// world is one running pipeline: the two databases (possibly one database
// holding both), the registry, and the five processes.
type world struct {
	dps, nomis *pgtest.DB
	brokers    []string
	reg        *srfake.Registry
	srcl       *sr.Client
	prefix     string
	procs      []*proc
	started    time.Time
	bin        string // the alertsync binary
	// specs are how each process was started, by name, so that a test can
	// stop one and start it again (restartProc) or run a subcommand with
	// its environment (componentEnv).
	specs map[string]componentSpec
	// logDir holds the processes' logs.
	logDir string
}

// componentSpec is how one component process is started.
type componentSpec struct {
	args []string
	env  map[string]string
}

// worldOptions changes how newWorldWith sets a pipeline up; the zero value
// sets it up as newWorld does.
type worldOptions struct {
	// seed is SQL run on NOMIS after the prisoners' seed, before any
	// component starts; empty: none.
	seed string
	// dpsSeed is SQL run on DPS after its seed, before any component
	// starts; empty: none.
	dpsSeed string
	// initialLoad runs capture nomis with capture.initial_load = auto
	// (default false: never).
	initialLoad bool
	// transformConfig, when set, is passed to transform as --config FILE
	// (its sync.* switches are reloaded on SIGHUP and when it changes);
	// empty: no config file.
	transformConfig string
	// readyTimeout bounds the wait for every /readyz; 0 means 90s.
	readyTimeout time.Duration
	// resyncDelay is capture nomis's capture.resync_delay; 0 leaves the
	// default (5s).
	resyncDelay time.Duration
}

// proc is one component process and the admin address it logged.
type proc struct {
	*proctest.Proc
	name  string
	mu    sync.Mutex
	admin string
}

func (p *proc) adminAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.admin
}

// newWorld creates the schemas, reference data and prisoners in dps and
// nomis (which may be the same database), then starts the five components
// with bin and waits until each reports ready.
func newWorld(t *testing.T, bin string, dps, nomis *pgtest.DB) *world {
	t.Helper()
	return newWorldWith(t, bin, dps, nomis, worldOptions{})
}

// newWorldWith is newWorld with the changes of opts.
func newWorldWith(t *testing.T, bin string, dps, nomis *pgtest.DB, opts worldOptions) *world {
	t.Helper()
	w := &world{dps: dps, nomis: nomis, brokers: kafkatest.Real(t), reg: srfake.New(), bin: bin, specs: map[string]componentSpec{}}
	t.Cleanup(w.reg.Close)
	dps.Exec(t, deploy.DPSSchemaSQL())
	dps.Exec(t, deploy.DPSSeedSQL())
	nomis.Exec(t, deploy.NOMISSchemaSQL())
	nomis.Exec(t, deploy.NOMISSeedSQL())
	nomis.Exec(t, seedSQL())
	if opts.seed != "" {
		nomis.Exec(t, opts.seed)
	}
	if opts.dpsSeed != "" {
		dps.Exec(t, opts.dpsSeed)
	}
	require.True(t, pgtest.QueryValue[bool](t, nomis, "SELECT current_setting('track_commit_timestamp')::bool"),
		"the shared test cluster must run with track_commit_timestamp = on (internal/pgcluster sets it)")
	require.Equal(t, "logical", pgtest.QueryValue[string](t, dps, "SELECT current_setting('wal_level')"))
	var err error
	w.srcl, err = sr.NewClient(sr.URLs(w.reg.URL()))
	require.NoError(t, err)

	w.prefix = kafkatest.Topic(t, "e2e") + "."
	specs := pipelineSpecs(w)
	for i := range specs {
		switch c := &specs[i]; {
		case c.name == "capture-nomis" && opts.initialLoad:
			c.env["ALERTSYNC_CAPTURE_INITIAL_LOAD"] = "auto"
		case c.name == "transform" && opts.transformConfig != "":
			c.args = append(c.args, "--config", opts.transformConfig)
		}
		if c := &specs[i]; c.name == "capture-nomis" && opts.resyncDelay > 0 {
			c.env["ALERTSYNC_CAPTURE_RESYNC_DELAY"] = opts.resyncDelay.String()
		}
	}
	w.logDir = t.TempDir()
	w.started = time.Now()
	for _, c := range specs {
		w.specs[c.name] = componentSpec{args: c.args, env: c.env}
		p := &proc{name: c.name}
		p.Proc = proctest.Start(t, c.name, bin, c.args, proctest.Env(c.env), filepath.Join(w.logDir, c.name+".log"), p.watch)
		w.procs = append(w.procs, p)
	}
	t.Cleanup(func() { w.stop(t) })
	readyTimeout := opts.readyTimeout
	if readyTimeout == 0 {
		readyTimeout = 90 * time.Second
	}
	w.waitReady(t, readyTimeout)
	t.Logf("pipeline ready in %s (topics prefix %s)", time.Since(w.started).Round(time.Millisecond), w.prefix)
	return w
}

// watch picks the admin address out of a process's JSON log.
func (p *proc) watch(line []byte) {
	var l struct {
		Msg  string `json:"msg"`
		Addr string `json:"addr"`
	}
	if json.Unmarshal(line, &l) == nil && l.Msg == "admin server listening" && l.Addr != "" {
		p.mu.Lock()
		p.admin = l.Addr
		p.mu.Unlock()
	}
}

// waitReady waits until every process answers 200 on /readyz.
func (w *world) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	cl := &http.Client{Timeout: 2 * time.Second}
	for _, p := range w.procs {
		for {
			w.requireRunning(t)
			if addr := p.adminAddr(); addr != "" && ready(cl, addr) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready (GET /readyz) within %s\n%s", p.name, timeout, w.logs())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func ready(cl *http.Client, addr string) bool {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+addr+"/readyz", http.NoBody)
	if err != nil {
		return false
	}
	resp, err := cl.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// requireRunning fails the test when a process has exited.
func (w *world) requireRunning(t *testing.T) {
	t.Helper()
	for _, p := range w.procs {
		if p.Exited() {
			t.Fatalf("a component exited: %v\n%s", p.Wait(), w.logs())
		}
	}
}

// logs returns the last log lines of every process, for failure messages.
func (w *world) logs() string {
	var b strings.Builder
	for _, p := range w.procs {
		b.WriteString("\n--- ")
		b.WriteString(p.LogTail())
		b.WriteString("\n")
	}
	return b.String()
}

// stop stops the processes in reverse start order; each must exit cleanly.
func (w *world) stop(t *testing.T) {
	t.Helper()
	for i := len(w.procs) - 1; i >= 0; i-- {
		p := w.procs[i]
		if p.Exited() {
			continue
		}
		if err := p.Stop(20 * time.Second); err != nil {
			t.Errorf("stopping: %v\n%s", err, p.LogTail())
		}
	}
}

// eventually polls cond every 100ms until it returns "" or timeout passes,
// then fails with cond's last answer and every process's log tail.
func (w *world) eventually(t *testing.T, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		w.requireRunning(t)
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s\n%s", what, timeout, msg, w.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sessionTimeout is the consumer group session timeout of transform and
// both applies in the suite (the brokers' minimum is 6 s).
const sessionTimeout = 6 * time.Second

// procSpec is how one component process is started, kept so that the
// fault suite can start it again after killing it.
type procSpec struct {
	name string
	args []string
	env  map[string]string
}

// pipelineSpecs returns the five components' start specs for w (the
// environment of each with the shared keys merged in): what newWorld starts
// and what the fault suite restarts.
func pipelineSpecs(w *world) []procSpec {
	unique := strings.TrimSuffix(w.prefix, ".")
	slot := "e2e_" + strings.ReplaceAll(unique[len(unique)-8:], "-", "_")
	common := map[string]string{
		"ALERTSYNC_KAFKA_BROKERS":             strings.Join(w.brokers, ","),
		"ALERTSYNC_REGISTRY_URL":              w.reg.URL(),
		"ALERTSYNC_TOPICS_PREFIX":             w.prefix,
		"ALERTSYNC_TOPICS_PARTITIONS":         "3",
		"ALERTSYNC_TOPICS_REPLICATION_FACTOR": "1",
		"ALERTSYNC_ADMIN_LISTEN":              "127.0.0.1:0",
		"ALERTSYNC_LOG_FORMAT":                "json",
		"ALERTSYNC_LOG_LEVEL":                 "info",
		"ALERTSYNC_SHUTDOWN_TIMEOUT":          "10s",
	}
	specs := []procSpec{
		{"capture-dps", []string{"capture", "dps"}, map[string]string{
			"ALERTSYNC_DPS_DSN":             w.dps.DSN,
			"ALERTSYNC_CAPTURE_SLOT":        slot,
			"ALERTSYNC_CAPTURE_PUBLICATION": slot,
			"ALERTSYNC_CAPTURE_HEARTBEAT":   "1s",
		}},
		{"capture-nomis", []string{"capture", "nomis"}, map[string]string{
			"ALERTSYNC_NOMIS_DSN":     w.nomis.DSN,
			"ALERTSYNC_NOMIS_DIALECT": "postgres",
			// The prisoners were seeded before the journal existed; an
			// initial load would send a snapshot of each, which is not what
			// the scenarios count (worldOptions.initialLoad turns it on).
			"ALERTSYNC_CAPTURE_INITIAL_LOAD": "never",
		}},
		{"transform", []string{"transform"}, map[string]string{
			"ALERTSYNC_TRANSFORM_GROUP":                   unique + "-transform",
			"ALERTSYNC_TRANSFORM_REPLICA_ID":              "e2e-1",
			"ALERTSYNC_TRANSFORM_TRANSACTIONAL_ID_PREFIX": unique + "-tx-",
			"ALERTSYNC_TRANSFORM_SESSION_TIMEOUT":         sessionTimeout.String(),
		}},
		{"apply-dps", []string{"apply", "dps"}, map[string]string{
			"ALERTSYNC_DPS_DSN":               w.dps.DSN,
			"ALERTSYNC_APPLY_GROUP":           unique + "-apply-dps",
			"ALERTSYNC_APPLY_OWNER":           "e2e-apply-dps",
			"ALERTSYNC_APPLY_SESSION_TIMEOUT": sessionTimeout.String(),
			"ALERTSYNC_APPLY_MAX_BACKOFF":     "1s",
			"ALERTSYNC_APPLY_OUTBOX_INTERVAL": "50ms",
		}},
		{"apply-nomis", []string{"apply", "nomis"}, map[string]string{
			"ALERTSYNC_NOMIS_DSN":             w.nomis.DSN,
			"ALERTSYNC_NOMIS_DIALECT":         "postgres",
			"ALERTSYNC_DPS_DSN":               w.dps.DSN,
			"ALERTSYNC_APPLY_GROUP":           unique + "-apply-nomis",
			"ALERTSYNC_APPLY_OWNER":           "e2e-apply-nomis",
			"ALERTSYNC_APPLY_SESSION_TIMEOUT": sessionTimeout.String(),
			"ALERTSYNC_APPLY_MAX_BACKOFF":     "1s",
			"ALERTSYNC_APPLY_OUTBOX_INTERVAL": "50ms",
			"ALERTSYNC_APPLY_NOMIS_SWEEP":     "false",
		}},
	}
	if os.Getenv("E2E_PPROF") != "" {
		common["ALERTSYNC_ADMIN_PPROF"] = "true" // BenchmarkE2EFreshness's profiles
	}
	// E2E_SET="ALERTSYNC_K=v;ALERTSYNC_K2=v2": settings of every component,
	// over the suite's own, to compare tunings (docs/testing-e2e.md).
	set := map[string]string{}
	for _, kv := range strings.Split(os.Getenv("E2E_SET"), ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && strings.HasPrefix(k, "ALERTSYNC_") {
			set[k] = v
		}
	}
	for i := range specs {
		env := map[string]string{}
		for k, v := range common {
			env[k] = v
		}
		for k, v := range specs[i].env {
			env[k] = v
		}
		for k, v := range set {
			env[k] = v
		}
		specs[i].env = env
	}
	return specs
}
