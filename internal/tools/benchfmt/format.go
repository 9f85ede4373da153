package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// result is one metric of one benchmark run.
type result struct {
	Pkg   string
	Bench string
	Unit  string
	Value float64
}

// parsed is what the input holds.
type parsed struct {
	Results  []result
	Failures []string // FAIL lines
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads `go test -bench` output: "pkg:" lines set the package of the
// benchmark lines that follow; a benchmark line is a name, an iteration
// count, then value/unit pairs. Other lines are skipped.
func parse(r io.Reader) (parsed, error) {
	var out parsed
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "pkg:"):
			pkg = strings.TrimSpace(strings.TrimPrefix(line, "pkg:"))
			continue
		case line == "FAIL" || strings.HasPrefix(line, "FAIL\t") || strings.HasPrefix(line, "--- FAIL"):
			out.Failures = append(out.Failures, line)
			continue
		case !strings.HasPrefix(line, "Benchmark"):
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || len(fields)%2 != 0 {
			continue // a name line without results, or log text
		}
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			continue
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return parsed{}, fmt.Errorf("parsing %q: value %q is not a number", line, fields[i])
			}
			out.Results = append(out.Results, result{Pkg: pkg, Bench: fields[0], Unit: fields[i+1], Value: v})
		}
	}
	if err := sc.Err(); err != nil {
		return parsed{}, fmt.Errorf("reading benchmark output: %w", err)
	}
	return out, nil
}

func pkgMatches(want, got string) bool {
	return want == "" || want == got || strings.HasSuffix(got, "/"+want)
}

// benchMatches compares names with and without the -GOMAXPROCS suffix go
// test adds when it is not 1.
func benchMatches(want, got string) bool {
	return want == got || want == procSuffix.ReplaceAllString(got, "")
}

func median(vs []float64) float64 {
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// line is one output line.
type line struct {
	Name  string
	Value float64
	Unit  string
	Ref   string  // empty when no reference was measured
	Ratio float64 // Value / reference value
}

// String formats the line as make bench prints it.
func (l line) String() string {
	s := fmt.Sprintf("BENCH %s %s %s", l.Name, formatValue(l.Value), l.Unit)
	if l.Ref != "" {
		s += fmt.Sprintf(" ratio=%s ref=%s", strconv.FormatFloat(l.Ratio, 'f', 3, 64), l.Ref)
	}
	return s
}

func formatValue(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
}

// figuresOf returns the lines of the table's figures found in results, and
// the benchmarks of results the table does not know.
func figuresOf(table []figure, results []result) (lines []line, unmapped []string) {
	values := make(map[string]float64)
	var found []figure
	for _, f := range table {
		var vs []float64
		for _, r := range results {
			if r.Unit == f.Unit && benchMatches(f.Bench, r.Bench) && pkgMatches(f.Pkg, r.Pkg) {
				vs = append(vs, r.Value)
			}
		}
		if len(vs) > 0 {
			values[f.Name] = median(vs)
			found = append(found, f)
		}
	}
	for _, f := range found {
		l := line{Name: f.Name, Value: values[f.Name], Unit: f.Unit}
		if ref, ok := values[f.Ref]; ok && f.Ref != "" && ref != 0 {
			l.Ref, l.Ratio = f.Ref, l.Value/ref
		}
		lines = append(lines, l)
	}

	seen := make(map[string]bool)
	for _, r := range results {
		known := false
		for _, f := range table {
			if benchMatches(f.Bench, r.Bench) && pkgMatches(f.Pkg, r.Pkg) {
				known = true
				break
			}
		}
		key := r.Pkg + " " + r.Bench
		if !known && !seen[key] {
			seen[key] = true
			unmapped = append(unmapped, key)
		}
	}
	return lines, unmapped
}

func run(stdin io.Reader, stdout, stderr io.Writer) error {
	p, err := parse(stdin)
	if err != nil {
		return err
	}
	if len(p.Results) == 0 {
		return errors.New("no benchmark results on stdin (pipe `go test -run '^$' -bench .` output in)")
	}
	lines, unmapped := figuresOf(figures, p.Results)
	for _, l := range lines {
		if _, err := fmt.Fprintln(stdout, l); err != nil {
			return err
		}
	}
	for _, u := range unmapped {
		if _, err := fmt.Fprintf(stderr, "benchfmt: %s has no figure in figures.go; not printed\n", u); err != nil {
			return err
		}
	}
	if len(p.Failures) > 0 {
		return fmt.Errorf("benchmark run reported failures: %s", strings.Join(p.Failures, "; "))
	}
	return nil
}
