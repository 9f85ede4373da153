package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sampleRun = `goos: linux
goarch: amd64
pkg: github.com/alertsync/alertsync/schemas
cpu: AMD EPYC
BenchmarkCodecEncode  	  295818	      3891 ns/op	  89.95 MB/s	    256991 records/s	       0 B/op	       0 allocs/op
BenchmarkGoavroEncode 	  482706	      4338 ns/op	  80.68 MB/s	    230523 records/s	       0 B/op	       0 allocs/op
BenchmarkCodecDecode  	   57726	     49102 ns/op	   7.13 MB/s	     20000 records/s	    7592 B/op	     107 allocs/op
BenchmarkGoavroDecode 	   56718	     25450 ns/op	  13.75 MB/s	     40000 records/s	    7592 B/op	     107 allocs/op
PASS
ok  	github.com/alertsync/alertsync/schemas	8.738s
`

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		want     []result
		failures int
		wantErr  string
	}{
		{
			name: "one line, several metrics",
			in:   "pkg: example.com/m/schemas\nBenchmarkX-2   100   12.5 ns/op   3 allocs/op\n",
			want: []result{
				{Pkg: "example.com/m/schemas", Bench: "BenchmarkX-2", Unit: "ns/op", Value: 12.5},
				{Pkg: "example.com/m/schemas", Bench: "BenchmarkX-2", Unit: "allocs/op", Value: 3},
			},
		},
		{
			name: "package changes between blocks",
			in:   "pkg: a/x\nBenchmarkA 1 1 ns/op\npkg: a/y\nBenchmarkA 1 2 ns/op\n",
			want: []result{
				{Pkg: "a/x", Bench: "BenchmarkA", Unit: "ns/op", Value: 1},
				{Pkg: "a/y", Bench: "BenchmarkA", Unit: "ns/op", Value: 2},
			},
		},
		{
			name: "name line without results and log text skipped",
			in:   "pkg: p\nBenchmarkSlow\n    bench_test.go:12: warming up\nBenchmarkSlow   \t 3\t 1.5e+06 ns/op\n",
			want: []result{{Pkg: "p", Bench: "BenchmarkSlow", Unit: "ns/op", Value: 1.5e6}},
		},
		{
			name: "sub-benchmarks keep their path",
			in:   "pkg: p\nBenchmarkApply/batch-100-4  10  5 ns/op\n",
			want: []result{{Pkg: "p", Bench: "BenchmarkApply/batch-100-4", Unit: "ns/op", Value: 5}},
		},
		{
			name:     "failures are collected",
			in:       "--- FAIL: BenchmarkX\nFAIL\nFAIL\tp\t0.1s\n",
			failures: 3,
		},
		{
			name:    "garbage value",
			in:      "BenchmarkX 10 abc ns/op\n",
			wantErr: `value "abc" is not a number`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parse(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got.Results)
			assert.Len(t, got.Failures, tt.failures)
		})
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	require.NoError(t, run(strings.NewReader(sampleRun), &out, &errOut))
	assert.Equal(t, strings.Join([]string{
		"BENCH codec.encode 256991 records/s ratio=1.115 ref=goavro.encode",
		"BENCH goavro.encode 230523 records/s",
		"BENCH codec.decode 20000 records/s ratio=0.500 ref=goavro.decode",
		"BENCH goavro.decode 40000 records/s",
	}, "\n")+"\n", out.String())
	assert.Empty(t, errOut.String())
}

func TestFiguresOf(t *testing.T) {
	t.Parallel()
	table := []figure{
		{Name: "x.fast", Pkg: "x", Bench: "BenchmarkFast", Unit: "records/s", Ref: "x.base"},
		{Name: "x.base", Pkg: "x", Bench: "BenchmarkBase", Unit: "records/s"},
		{Name: "x.lat", Pkg: "x", Bench: "BenchmarkFast", Unit: "ns/op"},
		{Name: "y.any", Bench: "BenchmarkY", Unit: "MB/s"},
	}
	tests := []struct {
		name     string
		results  []result
		want     []string
		unmapped []string
	}{
		{
			name: "median of repeated runs, ratio of medians",
			results: []result{
				{Pkg: "m/x", Bench: "BenchmarkFast", Unit: "records/s", Value: 300},
				{Pkg: "m/x", Bench: "BenchmarkFast", Unit: "records/s", Value: 100},
				{Pkg: "m/x", Bench: "BenchmarkFast", Unit: "records/s", Value: 200},
				{Pkg: "m/x", Bench: "BenchmarkBase", Unit: "records/s", Value: 150},
				{Pkg: "m/x", Bench: "BenchmarkBase", Unit: "records/s", Value: 250},
			},
			want: []string{
				"BENCH x.fast 200 records/s ratio=1.000 ref=x.base",
				"BENCH x.base 200 records/s",
			},
		},
		{
			name: "no ratio without the reference in the same input",
			results: []result{
				{Pkg: "m/x", Bench: "BenchmarkFast-8", Unit: "records/s", Value: 1234.5},
				{Pkg: "m/x", Bench: "BenchmarkFast-8", Unit: "ns/op", Value: 810.1},
			},
			want: []string{"BENCH x.fast 1234 records/s", "BENCH x.lat 810 ns/op"},
		},
		{
			name: "package must match as a path suffix",
			results: []result{
				{Pkg: "m/notx", Bench: "BenchmarkFast", Unit: "records/s", Value: 1},
				{Pkg: "other", Bench: "BenchmarkY", Unit: "MB/s", Value: 0.25},
			},
			want:     []string{"BENCH y.any 0.25 MB/s"},
			unmapped: []string{"m/notx BenchmarkFast"},
		},
		{
			name: "small values keep their digits",
			results: []result{
				{Pkg: "p", Bench: "BenchmarkY", Unit: "MB/s", Value: 12.3456},
			},
			want: []string{"BENCH y.any 12.35 MB/s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lines, unmapped := figuresOf(table, tt.results)
			var got []string
			for _, l := range lines {
				got = append(got, l.String())
			}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.unmapped, unmapped)
		})
	}
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	t.Run("empty input", func(t *testing.T) {
		t.Parallel()
		err := run(strings.NewReader("PASS\nok p 0.1s\n"), &bytes.Buffer{}, &bytes.Buffer{})
		require.ErrorContains(t, err, "no benchmark results")
	})
	t.Run("failure after results", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		err := run(strings.NewReader(sampleRun+"--- FAIL: BenchmarkOther\nFAIL\n"), &out, &bytes.Buffer{})
		require.ErrorContains(t, err, "failures")
		assert.Contains(t, out.String(), "BENCH codec.encode", "figures still printed")
	})
	t.Run("unmapped benchmark named on stderr", func(t *testing.T) {
		t.Parallel()
		var out, errOut bytes.Buffer
		require.NoError(t, run(strings.NewReader("pkg: p\nBenchmarkNew 10 5 ns/op\n"), &out, &errOut))
		assert.Empty(t, out.String())
		assert.Contains(t, errOut.String(), "p BenchmarkNew has no figure")
	})
}

// TestTable keeps the figure table consistent: unique names, references
// that exist, units given.
func TestTable(t *testing.T) {
	t.Parallel()
	names := make(map[string]bool)
	for _, f := range figures {
		require.False(t, names[f.Name], "duplicate figure %s", f.Name)
		names[f.Name] = true
		assert.NotEmpty(t, f.Unit, f.Name)
		assert.True(t, strings.HasPrefix(f.Bench, "Benchmark"), f.Name)
	}
	for _, f := range figures {
		if f.Ref != "" {
			assert.True(t, names[f.Ref], "%s refers to unknown figure %s", f.Name, f.Ref)
		}
	}
}
