package proctest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sh runs script with /bin/sh, which every supported machine has.
func sh(t *testing.T, script string, onLine func([]byte)) *Proc {
	t.Helper()
	return Start(t, "sh", "/bin/sh", []string{"-c", script}, os.Environ(), filepath.Join(t.TempDir(), "sh.log"), onLine)
}

func TestStartNotifiesTailsAndKills(t *testing.T) {
	ready := make(chan time.Time, 1)
	p := sh(t, `echo to-stdout; echo plain >&2; echo '{"msg":"ready"}' >&2; exec sleep 60`, NotifyMsg("ready", ready))
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("no ready line\n%s", p.LogTail())
	}
	require.False(t, p.Exited())
	require.Positive(t, p.PID())
	require.Contains(t, p.LogTail(), `{"msg":"ready"}`)
	require.Contains(t, p.LogTail(), "plain")
	rss, err := p.PeakRSS()
	require.NoError(t, err)
	require.Positive(t, rss)
	_, err = CPUTime(p.PID())
	require.NoError(t, err)

	p.Kill(t)
	require.True(t, p.Exited())
	require.Error(t, p.Wait(), "a SIGKILLed process reports its signal")
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Kill")
	}
	log, err := os.ReadFile(p.logPath)
	require.NoError(t, err)
	require.Contains(t, string(log), "to-stdout")
}

func TestStop(t *testing.T) {
	for _, tc := range []struct {
		name    string
		script  string
		wantErr bool
	}{
		{"clean exit on SIGTERM", `trap 'exit 0' TERM; while :; do sleep 0.05; done`, false},
		{"failing exit on SIGTERM", `trap 'exit 3' TERM; while :; do sleep 0.05; done`, true},
		{"ignores SIGTERM", `trap '' TERM; while :; do sleep 0.05; done`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := sh(t, tc.script, nil)
			time.Sleep(200 * time.Millisecond) // let the shell set its trap
			err := p.Stop(2 * time.Second)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.True(t, p.Exited())
		})
	}
}

func TestNotifyMsgIgnoresOtherLines(t *testing.T) {
	ch := make(chan time.Time, 1)
	f := NotifyMsg("x", ch)
	for _, line := range []string{`not json`, `{"msg":"y"}`, `{"level":"x"}`} {
		f([]byte(line))
	}
	require.Empty(t, ch)
	f([]byte(`{"msg":"x"}`))
	f([]byte(`{"msg":"x"}`)) // a full channel drops, never blocks
	require.Len(t, ch, 1)
}

func TestMachineCPU(t *testing.T) {
	busy, total, err := MachineCPU()
	require.NoError(t, err)
	require.Positive(t, total)
	require.LessOrEqual(t, busy, total)
}
