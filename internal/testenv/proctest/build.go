package proctest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// moduleRoot finds the directory of go.mod from the working directory (a
// test runs in its package's directory).
func moduleRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("module root (go.mod) not found above the test's directory")
		}
		dir = parent
	}
}

// BuildAlertsync builds the alertsync binary into a temporary directory of
// tb and returns its path.
func BuildAlertsync(tb testing.TB) string {
	tb.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		tb.Fatalf("the go command, which builds the alertsync binary, is not on PATH: %v", err)
	}
	bin := filepath.Join(tb.TempDir(), "alertsync")
	started := time.Now()
	cmd := exec.CommandContext(context.Background(), goBin, "build", "-o", bin, "./cmd/alertsync")
	cmd.Dir = moduleRoot(tb)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building alertsync: %v\n%s", err, out)
	}
	tb.Logf("built %s in %s", bin, time.Since(started).Round(time.Millisecond))
	return bin
}

// Env is the environment of an alertsync process: this process's
// environment without ALERTSYNC_* settings, then set.
func Env(set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ALERTSYNC_") {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}
