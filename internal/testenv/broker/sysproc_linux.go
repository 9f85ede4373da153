package broker

import "syscall"

// sysProcAttr runs the JVM in its own process group (so a terminal's Ctrl-C
// reaches only the Go process, which then stops the broker) and has the
// kernel kill it if the Go process dies first, so that no broker outlives
// a crashed test binary.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
