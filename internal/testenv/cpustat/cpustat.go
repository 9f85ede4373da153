// Package cpustat says where a machine's CPU time went between two moments:
// the machine's busy time and the share of named groups of processes (a
// broker, a PostgreSQL cluster and its server processes, the components
// under test), read from Linux's /proc. Benchmarks log it next to their
// figures, so that a figure comes with the load it was measured under.
//
// Shares are in percent of one core: a machine with two cores has 200.
// They are computed from clock ticks of the same clock (/proc/stat and
// /proc/<pid>/stat count in USER_HZ), so no tick length is assumed.
package cpustat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrUnavailable is returned (wrapped) where /proc cannot be read: not
// Linux, or /proc not mounted.
var ErrUnavailable = errors.New("CPU accounting needs Linux's /proc")

// Process is a process's or thread's /proc/<id>/stat: its parent, name and
// CPU time so far.
type Process struct {
	PPID  int
	Name  string // comm, e.g. "java"
	Ticks uint64 // user + system time, in USER_HZ clock ticks
	Start uint64 // start time after boot: tells a reused id from the old one
}

// Snapshot is the CPU time of the machine, of every process and of the
// threads of the processes asked for, at one moment.
type Snapshot struct {
	cpus    int
	busy    uint64 // machine ticks spent outside idle and iowait, all CPUs
	total   uint64 // all machine ticks, all CPUs
	procs   map[int]Process
	threads map[int]map[int]Process // pid -> tid -> thread
}

// Take reads the machine's CPU time, every process's, and the threads of
// threadsOf (for Group.Threads).
func Take(threadsOf ...int) (*Snapshot, error) {
	s := &Snapshot{threads: map[int]map[int]Process{}}
	var err error
	if s.busy, s.total, s.cpus, err = Machine(); err != nil {
		return nil, err
	}
	if s.procs, err = Processes(); err != nil {
		return nil, err
	}
	for _, pid := range threadsOf {
		if pid <= 0 {
			continue
		}
		dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
		tids, err := os.ReadDir(dir)
		if err != nil {
			continue // ended
		}
		ts := map[int]Process{}
		for _, t := range tids {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if p, err := readStat(filepath.Join(dir, t.Name(), "stat")); err == nil {
				ts[tid] = p
			}
		}
		s.threads[pid] = ts
	}
	return s, nil
}

// Machine returns the machine's busy and total CPU time so far, in
// USER_HZ clock ticks summed over all CPUs (from the "cpu" line of
// /proc/stat), and its number of CPUs.
func Machine() (busy, total uint64, cpus int, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) > 0 && fields[0] == "cpu":
			// user nice system idle iowait irq softirq steal guest guest_nice;
			// guest time is counted in user already. Steal (time the
			// hypervisor gave to others) counts as busy: no process has it,
			// so it ends in Usage.Other.
			for i, v := range fields[1:min(len(fields), 9)] {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return 0, 0, 0, fmt.Errorf("reading /proc/stat: %q: %w", sc.Text(), err)
				}
				total += n
				if i != 3 && i != 4 { // idle, iowait
					busy += n
				}
			}
		case len(fields) > 0 && strings.HasPrefix(fields[0], "cpu"):
			cpus++
		}
		if !strings.HasPrefix(sc.Text(), "cpu") {
			break // the cpu lines come first; "intr" can be longer than a Scanner line
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, 0, fmt.Errorf("reading /proc/stat: %w", err)
	}
	if total == 0 || cpus == 0 {
		return 0, 0, 0, fmt.Errorf("%w: no cpu lines in /proc/stat", ErrUnavailable)
	}
	return busy, total, cpus, nil
}

// Processes returns every process of the machine by pid; one that ends
// while they are read is left out.
func Processes() (map[int]Process, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	out := make(map[int]Process, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, err := readStat(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			out[pid] = p
		}
	}
	return out, nil
}

// Stat returns process pid's /proc/<pid>/stat.
func Stat(pid int) (Process, error) {
	return readStat(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
}

// readStat reads a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat file.
func readStat(path string) (Process, error) {
	b, err := os.ReadFile(path) //nolint:gosec // a /proc path built from a pid
	if err != nil {
		return Process{}, err
	}
	// pid (comm) state ppid ... utime(14) stime(15) ... starttime(22): comm
	// may hold spaces and parentheses, so split after the last ')'.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return Process{}, fmt.Errorf("%s: unexpected format", path)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 20 {
		return Process{}, fmt.Errorf("%s: %d fields after the name", path, len(f))
	}
	ppid, err1 := strconv.Atoi(f[1])
	utime, err2 := strconv.ParseUint(f[11], 10, 64)
	stime, err3 := strconv.ParseUint(f[12], 10, 64)
	start, err4 := strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Process{}, fmt.Errorf("%s: %w", path, err)
	}
	return Process{PPID: ppid, Name: string(b[open+1 : end]), Ticks: utime + stime, Start: start}, nil
}

// Group names some processes whose CPU time is counted together.
type Group struct {
	Name string
	// PIDs are the group's processes; 0 entries are ignored (a process
	// not running).
	PIDs []int
	// Children adds the processes whose parent is one of PIDs (a
	// PostgreSQL cluster: the postmaster's server processes), not their
	// children in turn.
	Children bool
	// Threads, when set, counts only the threads of PIDs whose name starts
	// with one of these (e.g. a JVM's compiler threads, "C1 CompilerThre"
	// and "C2 CompilerThre"), taken with Take(pid). Such a group is a part
	// of another group's time, not beside it: it is left out of
	// Usage.Other.
	Threads []string
}

// Share is one group's CPU time in percent of one core.
type Share struct {
	Name    string
	Percent float64
	part    bool // a Threads group: part of another share
}

// Usage is where the machine's CPU time went between two snapshots.
type Usage struct {
	Cores  int     // CPUs of the machine
	Busy   float64 // the machine's busy time, percent of one core (Cores*100 at most)
	Shares []Share // per group, in the order asked
	// Other is the busy time no group accounts for (other processes,
	// processes that ended between the snapshots, the kernel's own work,
	// time stolen by a hypervisor), never below 0.
	Other float64
}

// Between returns the CPU time spent between a and b (taken in this order)
// by the machine and by each group. A process that started after a counts
// whole; one that ended before b is in Other.
func Between(a, b *Snapshot, groups []Group) Usage {
	elapsed := float64(b.total - a.total)
	if b.total <= a.total {
		elapsed = 1 // not taken in order: guard the division only
	}
	// Ticks of all CPUs: one core's worth is elapsed/cpus.
	pct := func(ticks uint64) float64 { return float64(ticks) / elapsed * float64(b.cpus) * 100 }
	u := Usage{Cores: b.cpus, Busy: pct(b.busy - min(a.busy, b.busy))}
	counted := map[int]bool{}
	var grouped float64
	for _, g := range groups {
		var ticks uint64
		if len(g.Threads) > 0 {
			for _, pid := range g.PIDs {
				for tid, t := range b.threads[pid] {
					if slices.ContainsFunc(g.Threads, func(prefix string) bool { return strings.HasPrefix(t.Name, prefix) }) {
						ticks += since(a.threads[pid], b.threads[pid], tid)
					}
				}
			}
			u.Shares = append(u.Shares, Share{Name: g.Name, Percent: pct(ticks), part: true})
			continue
		}
		parents := map[int]bool{}
		for _, pid := range g.PIDs {
			if pid > 0 {
				parents[pid] = true
			}
		}
		members := maps.Clone(parents)
		if g.Children {
			for pid, p := range b.procs {
				if parents[p.PPID] {
					members[pid] = true // children, not grandchildren
				}
			}
		}
		for pid := range members {
			if counted[pid] {
				continue // in an earlier group
			}
			counted[pid] = true
			ticks += since(a.procs, b.procs, pid)
		}
		s := Share{Name: g.Name, Percent: pct(ticks)}
		grouped += s.Percent
		u.Shares = append(u.Shares, s)
	}
	u.Other = max(0, u.Busy-grouped)
	return u
}

// since returns the ticks of entry id of b since a (all of them when a
// lacks it, or held another process or thread under the same id: it started
// after a).
func since(a, b map[int]Process, id int) uint64 {
	pb, ok := b[id]
	if !ok {
		return 0
	}
	if pa, ok := a[id]; ok && pa.Start == pb.Start && pa.Ticks <= pb.Ticks {
		return pb.Ticks - pa.Ticks
	}
	return pb.Ticks
}

// Share returns the share of the group named name (0 when there is none).
func (u Usage) Share(name string) float64 {
	for _, s := range u.Shares {
		if s.Name == name {
			return s.Percent
		}
	}
	return 0
}

// String formats u on one line, e.g. "2 cores (200%): busy 158% = broker
// 45% (of which JIT compiler 3%) + PostgreSQL 37% + ... + other 10%".
func (u Usage) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d cores (%d%%): busy %.0f%% =", u.Cores, u.Cores*100, u.Busy)
	sep := " "
	for _, s := range u.Shares {
		if s.part {
			fmt.Fprintf(&b, " (of which %s %.0f%%)", s.Name, s.Percent)
			continue
		}
		fmt.Fprintf(&b, "%s%s %.0f%%", sep, s.Name, s.Percent)
		sep = " + "
	}
	fmt.Fprintf(&b, "%sother %.0f%%", sep, u.Other)
	return b.String()
}
