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
		if now.Ticks >= p.Ticks+n {
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
	require.NoError(t, burnUntil(filepath.Join("/proc", strconv.Itoa(child.Process.Pid), "stat"), 40))
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
	// Every online CPU; NumCPU counts those this process may use.
	require.GreaterOrEqual(t, u.Cores, runtime.NumCPU())
	st, err := Stat(child.Process.Pid)
	require.NoError(t, err)
	require.Equal(t, "sh", st.Name)
	require.Equal(t, self, st.PPID)
	require.Greater(t, u.Share("child"), 0.0)
	require.LessOrEqual(t, u.Busy, float64(u.Cores*100)+1)
	// The child is in "child" only; every group together is within the
	// machine's busy time (each counts whole ticks its own way: allow 10% of a core).
	require.LessOrEqual(t, u.Share("child")+u.Share("test"), u.Busy+10)
	require.InDelta(t, max(0, u.Busy-u.Share("child")-u.Share("test")), u.Other, 0.001, "Other: busy time no group took; the thread group is a part, not beside")
	require.GreaterOrEqual(t, u.Other, 0.0)
	require.Zero(t, u.Share("no such group"))
	require.Greater(t, u.Share("named thread"), 0.0)
	require.LessOrEqual(t, u.Share("named thread"), u.Share("test"), "a thread's time is part of its process's")
	require.Contains(t, u.String(), "test ")
	require.Contains(t, u.String(), "(of which named thread ")
}

// TestBetweenArithmetic checks the shares on made-up snapshots: 2 CPUs,
// 1000 ticks of all CPUs between them (500 per core), so 5 ticks are 1% of
// one core.
func TestBetweenArithmetic(t *testing.T) {
	a := &Snapshot{cpus: 2, busy: 1000, total: 5000,
		procs: map[int]Process{
			10: {PPID: 1, Ticks: 100, Start: 7},     // a postmaster
			11: {PPID: 10, Ticks: 50, Start: 8},     // its server process
			13: {PPID: 11, Ticks: 5, Start: 8},      // a grandchild: not a member
			20: {PPID: 1, Ticks: 400, Start: 9},     // a component, its id reused below
			30: {PPID: 1, Ticks: 1000, Start: 3},    // the broker
			40: {PPID: 1, Ticks: 70, Start: 3},      // ends before b
			50: {PPID: 1, Ticks: 90, Start: 3},      // its count went down: taken whole
			60: {PPID: 10, Ticks: 1_000, Start: 30}, // also a child of 10, counted in "named" first
		},
		threads: map[int]map[int]Process{30: {31: {Name: "C2 CompilerThre", Ticks: 10, Start: 4}, 32: {Name: "main", Ticks: 5, Start: 4}}},
	}
	b := &Snapshot{cpus: 2, busy: 1800, total: 6000,
		procs: map[int]Process{
			10: {PPID: 1, Ticks: 110, Start: 7},     // +10
			11: {PPID: 10, Ticks: 60, Start: 8},     // +10
			12: {PPID: 10, Ticks: 15, Start: 40},    // new child: 15 whole
			13: {PPID: 11, Ticks: 500, Start: 8},    // grandchild: in Other
			20: {PPID: 1, Ticks: 450, Start: 50},    // another process under the same id: 450 whole
			30: {PPID: 1, Ticks: 1200, Start: 3},    // +200
			50: {PPID: 1, Ticks: 60, Start: 3},      // 60 whole
			60: {PPID: 10, Ticks: 1_025, Start: 30}, // +25
		},
		threads: map[int]map[int]Process{30: {
			31: {Name: "C2 CompilerThre", Ticks: 60, Start: 4}, // +50
			32: {Name: "main", Ticks: 25, Start: 4},
			33: {Name: "C1 CompilerThre", Ticks: 5, Start: 60}, // new: 5 whole
		}},
	}
	u := Between(a, b, []Group{
		{Name: "named", PIDs: []int{60}},
		{Name: "postgres", PIDs: []int{10, 0}, Children: true},
		{Name: "component", PIDs: []int{20}},
		{Name: "broker", PIDs: []int{30}},
		{Name: "jit", PIDs: []int{30}, Threads: []string{"C1 ", "C2 "}},
		{Name: "again", PIDs: []int{30, 50}},
		{Name: "gone", PIDs: []int{40}},
	})
	require.Equal(t, 2, u.Cores)
	require.InDelta(t, 160.0, u.Busy, 1e-9) // 800 ticks
	for name, want := range map[string]float64{
		"named":     5,  // 25 ticks
		"postgres":  7,  // 10 + 10 + 15 = 35 ticks
		"component": 90, // 450 ticks
		"broker":    40, // 200 ticks
		"jit":       11, // 55 ticks
		"again":     12, // 50 already counted in "broker"; 60 ticks of 50
		"gone":      0,
	} {
		require.InDelta(t, want, u.Share(name), 1e-9, name)
	}
	// 800 busy ticks: 25 + 35 + 450 + 200 + 60 = 770 in groups, the thread
	// group being a part of "broker".
	require.InDelta(t, 6.0, u.Other, 1e-9)

	// More in groups than the machine's busy time (their counts are
	// sampled differently): Other stays at 0.
	b.busy = a.busy + 400 // 80%, the component alone 90%
	require.Zero(t, Between(a, b, []Group{{Name: "component", PIDs: []int{20}}}).Other)
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
