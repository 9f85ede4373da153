//go:build unix && !linux

package broker

import "syscall"

// sysProcAttr runs the JVM in its own process group. Outside Linux there is
// no parent-death signal: a crashed test binary can leave a broker behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
