package cpustat

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// burnUntil spins until the stat file at path (a process's or a thread's)
// shows n more ticks of CPU time.
func burnUntil(path string, n uint64) error {
	p, err := readStat(path)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	x := 0
	for {
		now, err := readStat(path)
		if err != nil {
			return err
		}
		if now.ticks >= p.ticks+n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not %d ticks of CPU in 30s", path, n)
		}
		for i := range 1_000_000 {
			x += i
		}
		sink = x
	}
}

var sink int

func TestBetween(t *testing.T) {
	self := os.Getpid()
	// A busy child process: counted in its own group, not again in the
	// group of its parent (this process, with Children).
	ctx, cancel := context.WithCancel(context.Background())
	child := exec.CommandContext(ctx, "sh", "-c", "while :; do :; done")
	require.NoError(t, child.Start())
	t.Cleanup(func() { cancel(); _ = child.Wait() })

	// A named thread of this process that burns CPU when told, for
	// Threads; it lives until the second snapshot is taken.
	type burner struct {
		tid int
		err error
	}
	named, burned := make(chan burner), make(chan error)
	start, stop := make(chan struct{}), make(chan struct{})
	go func() {
		runtime.LockOSThread() // the thread ends with the goroutine
		b := []byte("cpustat-burner\x00")
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0); errno != 0 { //nolint:gosec // prctl takes the name's address; b lives past the call
			named <- burner{err: errno}
			return
		}
		tid := syscall.Gettid()
		named <- burner{tid: tid}
		<-start
		burned <- burnUntil(filepath.Join("/proc", strconv.Itoa(self), "task", strconv.Itoa(tid), "stat"), 10)
		<-stop
	}()
	nb := <-named
	require.NoError(t, nb.err, "prctl(PR_SET_NAME)")
	defer close(stop)

	a, err := Take(self)
	require.NoError(t, err)
	require.NoError(t, burnUntil(filepath.Join("/proc", strconv.Itoa(child.Process.Pid), "stat"), 20))
	close(start)
	require.NoError(t, <-burned)
	b, err := Take(self)
	require.NoError(t, err)

	groups := []Group{
		{Name: "child", PIDs: []int{child.Process.Pid}},
		{Name: "test", PIDs: []int{self, 0}, Children: true},
		{Name: "named thread", PIDs: []int{self}, Threads: []string{"no such thread", "cpustat-burn"}},
	}
	u := Between(a, b, groups)
	t.Logf("%s", u)
	require.Equal(t, runtime.NumCPU(), u.Cores)
	require.Greater(t, u.Share("child"), 0.0)
	require.LessOrEqual(t, u.Busy, float64(u.Cores*100)+1)
	// The child is in "child" only; every group together is within the
	// machine's busy time (each counts whole ticks its own way: allow 5% of a core).
	require.LessOrEqual(t, u.Share("child")+u.Share("test"), u.Busy+5)
	require.InDelta(t, u.Busy-u.Share("child")-u.Share("test"), u.Other, 0.001, "Other: busy time no group took; the thread group is a part, not beside")
	require.GreaterOrEqual(t, u.Other, 0.0)
	require.Zero(t, u.Share("no such group"))
	require.Greater(t, u.Share("named thread"), 0.0)
	require.LessOrEqual(t, u.Share("named thread"), u.Share("test"), "a thread's time is part of its process's")
	require.Contains(t, u.String(), "test ")
	require.Contains(t, u.String(), "(of which named thread ")
}

func TestListenerPID(t *testing.T) {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	pid, err := ListenerPID(port)
	require.NoError(t, err)
	require.Equal(t, os.Getpid(), pid)
	require.NoError(t, l.Close())
	pid, err = ListenerPID(port)
	require.NoError(t, err)
	require.Zero(t, pid, "after the listener closed")
}

// TestListening reads both tables' formats: IPv6 addresses are longer, and
// only LISTEN (0A) rows on the port count.
func TestListening(t *testing.T) {
	table := filepath.Join(t.TempDir(), "tcp6")
	require.NoError(t, os.WriteFile(table, []byte(`  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:A58F 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:A58F 00000000000000000000000001000000:D431 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0
   3: 0100007F:A58F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4545 1 0000000000000000 100 0 0 10 0
`), 0o600))
	inodes := map[string]bool{}
	require.NoError(t, listening(table, 0xA58F, inodes))
	require.Equal(t, map[string]bool{"4242": true, "4545": true}, inodes)
}

func TestString(t *testing.T) {
	u := Usage{Cores: 2, Busy: 158.4, Other: 10.2, Shares: []Share{
		{Name: "broker", Percent: 45}, {Name: "JIT compiler", Percent: 3.4, part: true}, {Name: "PostgreSQL", Percent: 103.2},
	}}
	require.Equal(t, "2 cores (200%): busy 158% = broker 45% (of which JIT compiler 3%) + PostgreSQL 103% + other 10%", u.String())
}
