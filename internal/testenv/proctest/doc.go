// Package proctest runs a program under test as a real process, for tests
// and benchmarks that crash, stop or measure it.
//
// Start runs a binary in its own process group with a given environment,
// copies its output to a log file, calls a function for each line of its
// standard error (JSON log lines, for the alertsync binary) and keeps the
// last 40 of those lines for failure messages. Kill SIGKILLs the whole
// group, Stop SIGTERMs the process and waits for it to exit; a process not
// yet ended when the test finishes is killed by t.Cleanup. PeakRSS reads
// /proc (Linux only); CPUTime and MachineCPU give a process's and the
// machine's CPU time as durations, read by package cpustat.
package proctest
