package proctest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alertsync/alertsync/internal/testenv/cpustat"
)

// tailLines is how many log lines a Proc keeps for LogTail.
const tailLines = 40

// Proc is one running (or ended) process started by Start.
type Proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // Wait's result, set before done closes
	logPath string
	onLine  func(line []byte)

	mu   sync.Mutex
	tail []string
}

// Start runs bin with args and env (the whole environment) in its own
// process group. Its standard output and error go to the file logPath;
// onLine, when not nil, is called with each complete line of its standard
// error, from the goroutine that copies it. name ("capture", for example)
// names the process in failure messages. The process is SIGKILLed, with its
// group, when tb's test ends.
func Start(tb testing.TB, name, bin string, args, env []string, logPath string, onLine func(line []byte)) *Proc {
	tb.Helper()
	f, err := os.Create(logPath) //nolint:gosec // a path the test chose, normally in its temporary directory
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proc{name: name, done: make(chan struct{}), logPath: logPath, onLine: onLine}
	p.cmd = exec.CommandContext(context.Background(), bin, args...)
	p.cmd.Env = env
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Stderr = &lineWriter{file: f, line: p.line}
	p.cmd.Stdout = f
	if err := p.cmd.Start(); err != nil {
		_ = f.Close()
		tb.Fatalf("starting %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	tb.Cleanup(func() { p.Kill(tb) })
	return p
}

// line keeps a line of the process's standard error in the tail, then
// passes it on: whoever onLine wakes finds the line in LogTail.
func (p *Proc) line(line []byte) {
	p.mu.Lock()
	p.tail = append(p.tail, string(line))
	if len(p.tail) > tailLines {
		p.tail = p.tail[len(p.tail)-tailLines:]
	}
	p.mu.Unlock()
	if p.onLine != nil {
		p.onLine(line)
	}
}

// LogTail returns the path of the log and its last lines, for failure
// messages.
func (p *Proc) LogTail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("%s log (%s), last lines:\n%s", p.name, p.logPath, strings.Join(p.tail, "\n"))
}

// PID returns the process id, which is also the id of its process group.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to end and returns exec.Cmd.Wait's error.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Kill SIGKILLs the process group and waits up to 30s for the process to
// end; it reports an error on tb if either fails. It does nothing once the
// process has ended.
func (p *Proc) Kill(tb testing.TB) {
	tb.Helper()
	if p.Exited() {
		return
	}
	if err := syscall.Kill(-p.PID(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		tb.Errorf("killing %s process group %d: %v", p.name, p.PID(), err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		tb.Errorf("%s process %d still running 30s after SIGKILL", p.name, p.PID())
	}
}

// Stop sends SIGTERM to the process and waits up to timeout for it to end;
// it returns Wait's error, or an error when the process is still running.
func (p *Proc) Stop(timeout time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !p.Exited() {
		return fmt.Errorf("sending SIGTERM: %w", err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("no exit %s after SIGTERM", timeout)
	}
}

// PeakRSS returns the process's peak resident set size (VmHWM) in MB; the
// process must not have been reaped yet.
func (p *Proc) PeakRSS() (float64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID()))
	if err != nil {
		return 0, fmt.Errorf("reading the %s's peak RSS: %w", p.name, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("parsing VmHWM %q: %w", rest, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc/<pid>/status")
}

// CPUTime returns the user and system CPU time process pid has used.
func CPUTime(pid int) (time.Duration, error) {
	p, err := cpustat.Stat(pid)
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of process %d: %w", pid, err)
	}
	return ticks(p.Ticks), nil
}

// MachineCPU returns the busy and total CPU time of the machine, all cores.
func MachineCPU() (busy, total time.Duration, err error) {
	b, t, _, err := cpustat.Machine()
	if err != nil {
		return 0, 0, err
	}
	return ticks(b), ticks(t), nil
}

// ticks converts clock ticks of /proc (USER_HZ, 100 on Linux) to a duration.
func ticks(n uint64) time.Duration { return time.Duration(n) * 10 * time.Millisecond } //nolint:gosec // tick counts are far below 2^63

// lineWriter copies what it is written to file and calls line for each
// complete line.
type lineWriter struct {
	file *os.File
	line func([]byte)
	buf  []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	_, _ = w.file.Write(b)
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.line(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

// NotifyMsg returns an onLine function for Start that sends the time to ch,
// without blocking, for each JSON log line whose "msg" is msg.
func NotifyMsg(msg string, ch chan<- time.Time) func(line []byte) {
	return func(line []byte) {
		var entry struct {
			Msg string `json:"msg"`
		}
		_ = json.Unmarshal(line, &entry)
		if entry.Msg == msg {
			select {
			case ch <- time.Now():
			default:
			}
		}
	}
}
