package cli

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/transform"
)

// recordedSwitches is a switchable that records what it is given.
type recordedSwitches struct {
	mu     sync.Mutex
	set    []transform.Switches
	failed int
}

func (r *recordedSwitches) SetSwitches(s transform.Switches) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.set = append(r.set, s)
}
func (r *recordedSwitches) Reloaded() {}
func (r *recordedSwitches) ReloadFailed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed++
}

func (r *recordedSwitches) snapshot() ([]transform.Switches, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]transform.Switches(nil), r.set...), r.failed
}

// TestWatchConfig: the watcher loads a changed file only once its content
// held from one tick to the next – never the empty or cut-short file an
// editor leaves while it writes in place, whose missing sync.* keys would
// mean "on" – and SIGHUP loads it at once.
func TestWatchConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "alertsync.yaml")
	// The watcher reads through read, which tells the test each time: a
	// step is a tick and the read it makes, so the next write cannot race
	// that read. (SIGHUP reads the file itself: it is kept the same.)
	var mu sync.Mutex
	var content []byte
	reads := make(chan struct{}, 100)
	read := func() ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		reads <- struct{}{}
		return append([]byte(nil), content...), nil
	}
	write := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		content = []byte(s)
		require.NoError(t, os.WriteFile(file, content, 0o600))
	}
	write("sync:\n  dps_to_nomis: false\n")
	rl := &reloader{file: file, lookup: func(string) (string, bool) { return "", false }}
	rec := &recordedSwitches{}
	tick := make(chan time.Time)
	hup := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchConfig(ctx, hup, tick, read, rl, rec, slog.New(slog.DiscardHandler))
	}()
	defer func() { cancel(); <-done }()
	<-reads // the content at start
	step := func() { tick <- time.Now(); <-reads }

	step() // unchanged
	write("")
	step() // half-written: changed, not loaded
	write("sync:\n  dps_to")
	step() // changed again, not loaded
	write("sync:\n  dps_to_nomis: false\n  nomis_to_dps: false\n")
	step() // changed again
	step() // held: loaded
	step() // handled the one before
	set, failed := rec.snapshot()
	require.Equal(t, []transform.Switches{{NOMISToDPS: false, DPSToNOMIS: false}}, set, "only the settled file is loaded")
	require.Zero(t, failed, "the cut-short file was never loaded")

	step() // unchanged: nothing
	write("sync:\n  dps_to_nomis: perhaps\n")
	step()
	step() // settled, refused
	step()
	set, failed = rec.snapshot()
	require.Len(t, set, 1)
	require.Equal(t, 1, failed)

	write("sync:\n  dps_to_nomis: true\n")
	hup <- os.Interrupt // any signal value: the channel is the trigger
	require.Eventually(t, func() bool { set, _ = rec.snapshot(); return len(set) == 2 }, 10*time.Second, time.Millisecond,
		"SIGHUP loads the file at once")
	require.Equal(t, transform.Switches{NOMISToDPS: true, DPSToNOMIS: true}, set[1])
}
