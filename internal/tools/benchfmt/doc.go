// Command benchfmt turns `go test -bench` output into the figure lines of
// `make bench`, one per figure:
//
//	BENCH <name> <value> <unit>[ ratio=<value/reference> ref=<reference-name>]
//
// It reads the benchmark output on stdin (any number of packages, runs and
// -count repetitions; a figure measured several times is reported by its
// median) and prints the figures of the table in figures.go that the input
// holds, in table order. The ratio is printed only when the reference figure
// was measured in the same input. Benchmarks missing from the table are
// named on stderr. It exits non-zero when the input holds no benchmark
// result or reports a failure.
package main
