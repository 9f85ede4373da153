package transform

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/testenv/proctest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/rules"
)

// logLines collects a process's JSON log lines.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
}

func (l *logLines) add(line []byte) {
	var m map[string]any
	if json.Unmarshal(line, &m) == nil {
		l.mu.Lock()
		l.lines = append(l.lines, m)
		l.mu.Unlock()
	}
}

// wait waits until a line for which match is true has been logged.
func (l *logLines) wait(t *testing.T, p *proctest.Proc, what string, match func(map[string]any) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l.mu.Lock()
		for _, m := range l.lines {
			if match(m) {
				l.mu.Unlock()
				return
			}
		}
		l.mu.Unlock()
		require.False(t, p.Exited(), "transform exited while waiting for %s\n%s", what, p.LogTail())
		require.True(t, time.Now().Before(deadline), "no log line %s after 30s\n%s", what, p.LogTail())
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// scrape returns the value of the sample of a counter or gauge named
// name{labels} on the admin server at addr, 0 when absent.
func scrape(t *testing.T, addr, name, labels string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics") //nolint:noctx // a test
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	prefix := name + "{" + labels + "} "
	if labels == "" {
		prefix = name + " "
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			require.NoError(t, err)
			return f
		}
	}
	return 0
}

// TestSwitchesReload runs the real `alertsync transform --config FILE`:
// a change of the file turns DPS → NOMIS off without a restart, DPS records
// are then consumed and counted but make no command; SIGHUP after the file
// turns it back on; a file that no longer loads leaves the switches as
// they are.
func TestSwitchesReload(t *testing.T) {
	t.Parallel()
	bin := proctest.BuildAlertsync(t)
	h := newHarness(t)
	h.seedReference(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "alertsync.yaml")
	writeSwitches := func(dpsToNOMIS string) {
		require.NoError(t, os.WriteFile(file, []byte(fmt.Sprintf("sync:\n  nomis_to_dps: true\n  dps_to_nomis: %s\n", dpsToNOMIS)), 0o600))
	}
	writeSwitches("true")
	admin := freeAddr(t)
	env := proctest.Env(map[string]string{
		"ALERTSYNC_KAFKA_BROKERS":                     strings.Join(h.brokers, ","),
		"ALERTSYNC_REGISTRY_URL":                      h.reg.URL(),
		"ALERTSYNC_TOPICS_PREFIX":                     h.cfg.Pipeline.Topics.Prefix,
		"ALERTSYNC_TOPICS_PARTITIONS":                 "3",
		"ALERTSYNC_TOPICS_REPLICATION_FACTOR":         "1",
		"ALERTSYNC_TRANSFORM_GROUP":                   h.cfg.Transform.Group,
		"ALERTSYNC_TRANSFORM_REPLICA_ID":              "reload-1",
		"ALERTSYNC_TRANSFORM_TRANSACTIONAL_ID_PREFIX": h.cfg.Transform.TransactionalID,
		"ALERTSYNC_TRANSFORM_WATCH_INTERVAL":          "200ms",
		"ALERTSYNC_ADMIN_LISTEN":                      admin,
		"ALERTSYNC_LOG_FORMAT":                        "json",
	})
	logs := &logLines{}
	p := proctest.Start(t, "transform", bin, []string{"transform", "--config", file}, env, filepath.Join(dir, "transform.log"), logs.add)
	logs.wait(t, p, "transforming", func(m map[string]any) bool { return m["msg"] == "transforming" })

	h.dpsAlert(t, rules.OpCreate, dpsID1, "C3456DE", 10, false)
	require.Len(t, h.reader().Until(t, 1, 30*time.Second, h.name(schemas.TopicCommandsNOMIS)), 1)

	// Off by a change of the watched file.
	writeSwitches("false")
	switched := func(on bool) func(map[string]any) bool {
		return func(m map[string]any) bool {
			return m["msg"] == "direction switched" && m["direction"] == "dps_to_nomis" && m["enabled"] == on
		}
	}
	logs.wait(t, p, "switching dps_to_nomis off", switched(false))
	require.Zero(t, scrape(t, admin, "alertsync_transform_direction_enabled", `direction="dps_to_nomis"`))
	h.dpsAlert(t, rules.OpCreate, dpsID2, "C3456DE", 10, false)
	deadline := time.Now().Add(30 * time.Second)
	for scrape(t, admin, "alertsync_transform_skipped_total", `direction="dps_to_nomis"`) < 1 {
		require.True(t, time.Now().Before(deadline), "the DPS record was not skipped\n%s", p.LogTail())
		time.Sleep(50 * time.Millisecond)
	}

	// A file that no longer loads: logged, switches unchanged – seen by
	// the watcher, then asked for again by SIGHUP (in this order: the
	// watcher loads each content once, so the two failures are counted
	// whatever the timing).
	require.NoError(t, os.WriteFile(file, []byte("sync:\n  dps_to_nomis: perhaps\n"), 0o600))
	failed := func(trigger string) func(map[string]any) bool {
		return func(m map[string]any) bool {
			return m["msg"] == "reloading the configuration; the sync switches stay as they are" && m["trigger"] == trigger &&
				strings.Contains(fmt.Sprint(m["err"]), "sync.dps_to_nomis")
		}
	}
	logs.wait(t, p, "a failed reload of the changed file", failed("file changed"))
	require.NoError(t, syscall.Kill(p.PID(), syscall.SIGHUP))
	logs.wait(t, p, "a failed reload on SIGHUP", failed("SIGHUP"))
	require.Zero(t, scrape(t, admin, "alertsync_transform_direction_enabled", `direction="dps_to_nomis"`))

	// On again by SIGHUP.
	writeSwitches("true")
	require.NoError(t, syscall.Kill(p.PID(), syscall.SIGHUP))
	logs.wait(t, p, "a reload on SIGHUP", func(m map[string]any) bool {
		return m["msg"] == "configuration reloaded (only sync.* applies while running)" && m["trigger"] == "SIGHUP" && m["dps_to_nomis"] == true
	})
	logs.wait(t, p, "switching dps_to_nomis on", switched(true))
	h.dpsAlert(t, rules.OpUpdate, dpsID1, "C3456DE", 10, false)
	cmds := h.reader().Until(t, 2, 30*time.Second, h.name(schemas.TopicCommandsNOMIS))
	require.Len(t, cmds, 2)
	for _, c := range cmds {
		require.Equal(t, dpsID1, unionString(c.Value["dps_alert_id"]), "no command for the record of the off period")
	}
	require.Equal(t, 2.0, scrape(t, admin, "alertsync_transform_reloads_total", `result="error"`))
	require.NoError(t, p.Stop(30*time.Second), "clean stop\n%s", p.LogTail())
}
