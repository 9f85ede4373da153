#!/usr/bin/env bash
# bench.sh – run the Go benchmarks on one core and print the figures of
# `make bench`: one line per figure, `BENCH <name> <value> <unit>` plus
# ` ratio=<value/reference> ref=<reference-name>` where a reference was
# measured in the same run (internal/tools/benchfmt maps benchmarks to names).
#
# Every package with a Benchmark function is run ROUNDS times, one `go test
# -count 1` per round, so that a figure and its reference are measured side by
# side in each round and drift of a busy machine hits both; benchfmt reports
# the median of the rounds. The raw go output is kept in .cache/bench/.
#
# Environment: BENCHTIME (go test -benchtime, default 1s), ROUNDS (default 5),
# BENCH (go test -bench regexp, default .).
set -euo pipefail

cd "$(dirname "$0")/.."

benchtime=${BENCHTIME:-1s}
rounds=${ROUNDS:-5}
pattern=${BENCH:-.}

mapfile -t pkgs < <(grep -rlE --include='*_test.go' '^func Benchmark[A-Z_]' . \
	| grep -v '^./\.cache/' | xargs -r -n1 dirname | sort -u)
if [ "${#pkgs[@]}" -eq 0 ]; then
	echo "bench.sh: no package has benchmarks" >&2
	exit 1
fi

mkdir -p .cache/bench
raw=".cache/bench/raw-$(date -u +%Y%m%dT%H%M%SZ).txt"
echo "bench.sh: ${#pkgs[@]} package(s), ${rounds} round(s) of -benchtime ${benchtime} on one core; raw output in ${raw}" >&2

for ((round = 1; round <= rounds; round++)); do
	echo "bench.sh: round ${round}/${rounds}" >&2
	GOMAXPROCS=1 go test -run '^$' -bench "${pattern}" -benchmem -cpu 1 -count 1 \
		-benchtime "${benchtime}" -timeout 30m "${pkgs[@]}" >>"${raw}"
done
ln -sf "$(basename "${raw}")" .cache/bench/latest.txt

go run ./internal/tools/benchfmt <"${raw}"
