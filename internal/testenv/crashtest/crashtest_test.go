package crashtest

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/failpoint"
	"github.com/alertsync/alertsync/internal/testenv/proctest"
)

// TestKillAtPoints runs this test binary as the process: a child that
// passes points a and b forever. Each point kills it twice.
func TestKillAtPoints(t *testing.T) {
	if os.Getenv("CRASHTEST_CHILD") == "1" {
		for {
			failpoint.Hit("a")
			failpoint.Hit("b")
			time.Sleep(time.Millisecond)
		}
	}
	t.Parallel()
	dir := t.TempDir()
	runs := 0
	kills, _ := KillAtPoints(t, []string{"a", "b"}, 2, func(armed string, run int) *proctest.Proc {
		runs++
		env := append(os.Environ(), "CRASHTEST_CHILD=1", failpoint.Env+"="+armed)
		return proctest.Start(t, "child", os.Args[0], []string{"-test.run", "^TestKillAtPoints$"}, env,
			filepath.Join(dir, "run-"+strconv.Itoa(run)+".log"), nil)
	}, func() bool { return true })
	require.Equal(t, map[string]int{"a": 2, "b": 2}, kills)
	require.Equal(t, 4, runs)
}
