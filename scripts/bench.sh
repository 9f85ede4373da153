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
# The end-to-end figures (e2e.freshness.p99.*, e2e.max_rate) come from
# BenchmarkE2EFreshness in internal/e2e (build tag broker): the five components
# as processes against a real Kafka broker, run once (-benchtime 1x) on all
# cores after the rounds, about 4 minutes. It uses the broker of
# ALERTSYNC_TEST_KAFKA when set, else starts one of its own with the JVM's C1
# compiler only (broker.C1Only; needs Java 17+; the jars come from Maven
# Central, cached in .cache/kafka). After each step it logs where the
# machine's CPU went (docs/testing-e2e.md).
#
# Environment: BENCHTIME (go test -benchtime, default 1s), ROUNDS (default 5),
# BENCH (go test -bench regexp, default .), E2E_BENCH (0 leaves out the
# end-to-end benchmark, 1 runs it; default: run it when BENCH is unset or
# names it).
set -euo pipefail

cd "$(dirname "$0")/.."

benchtime=${BENCHTIME:-1s}
rounds=${ROUNDS:-5}
pattern=${BENCH:-.}

mapfile -t pkgs < <(grep -rlE --include='*_test.go' '^func Benchmark[A-Z_]' . \
	| grep -v '^./\.cache/' | xargs -r -n1 dirname | sort -u | grep -v '^./internal/e2e$')
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
# By default the end-to-end benchmark runs with the whole set (BENCH
# unset) or when BENCH names it.
e2e_default=0
if [ "${pattern}" = . ] || [[ "${pattern}" == *E2E* ]]; then e2e_default=1; fi
if [ "${E2E_BENCH:-${e2e_default}}" != 0 ]; then
	echo "bench.sh: end-to-end benchmark (internal/e2e, real broker${ALERTSYNC_TEST_KAFKA:+ ${ALERTSYNC_TEST_KAFKA}}), about 4 minutes" >&2
	go test -tags broker -run '^$' -bench 'BenchmarkE2EFreshness' -benchtime 1x -count 1 \
		-timeout 20m ./internal/e2e >>"${raw}" ||
		echo "bench.sh: the end-to-end benchmark failed (output in ${raw}); benchfmt reports it" >&2
fi
ln -sf "$(basename "${raw}")" .cache/bench/latest.txt

go run ./internal/tools/benchfmt <"${raw}"
