#!/usr/bin/env bash
# The test command behind `make test` (and test-unit, test-broker, lint).
#   scripts/test.sh            deps, lint, unit+integration on kfake, real-broker suites
#   scripts/test.sh unit|broker|lint
# Each suite prints where it ran and how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}
export GOFLAGS=${GOFLAGS:-}
summary=()
failed=0

suite() { # suite NAME COMMAND...
  local name=$1; shift
  local t0=$(date +%s)
  echo "=== suite $name"
  if "$@"; then
    summary+=("PASS $name $(( $(date +%s) - t0 ))s")
  else
    summary+=("FAIL $name $(( $(date +%s) - t0 ))s")
    failed=1
  fi
}

lint() {
  [ -x .cache/bin/golangci-lint ] || ./scripts/deps.sh
  go build ./... &&
  .cache/bin/golangci-lint run --build-tags broker ./... &&
  go vet ./... && go vet -tags broker ./...
}

unit() {
  # Kafka-touching tests run on in-process kfake here (ALERTSYNC_TEST_KAFKA unset);
  # PostgreSQL tests start throwaway clusters from the PostgreSQL 15 binaries.
  env -u ALERTSYNC_TEST_KAFKA go test -race -count=1 -timeout 20m ./...
}

kafka_packages() {
  # Packages whose tests touch Kafka (they use kafkatest) or need the real
  # broker (files with the broker build tag).
  {
    go list -tags broker -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... |
      awk '/internal\/testenv\/kafkatest/ {print $1}'
    grep -rl --include='*_test.go' '^//go:build broker' . | xargs -r -n1 dirname | sort -u |
      sed 's|^\.|github.com/alertsync/alertsync|'
  } | sort -u
}

broker() {
  local dir addr pid pkgs rc=0
  dir=$(mktemp -d)
  go build -o "$dir/testbroker" ./internal/testenv/cmd/testbroker
  "$dir/testbroker" -addr-file "$dir/addr" >"$dir/broker.out" 2>&1 &
  pid=$!
  for _ in $(seq 1 240); do
    [ -s "$dir/addr" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/broker.out"; return 1; }
    sleep 0.5
  done
  [ -s "$dir/addr" ] || { echo "real Kafka broker did not start"; cat "$dir/broker.out"; kill "$pid"; return 1; }
  addr=$(cat "$dir/addr")
  echo "real Apache Kafka broker at $addr"
  mapfile -t pkgs < <(kafka_packages)
  echo "packages with Kafka suites: ${pkgs[*]}"
  ALERTSYNC_TEST_KAFKA=$addr go test -tags broker -count=1 -timeout 30m "${pkgs[@]}" || rc=$?
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
  return $rc
}

t_start=$(date +%s)
case $mode in
  all)
    ./scripts/deps.sh
    suite "lint (golangci-lint + go vet)" lint
    suite "unit+integration (kafka: kfake, race detector)" unit
    suite "kafka suites (kafka: real Apache Kafka broker)" broker
    ;;
  unit) suite "unit+integration (kafka: kfake, race detector)" unit ;;
  broker) suite "kafka suites (kafka: real Apache Kafka broker)" broker ;;
  lint) suite "lint (golangci-lint + go vet)" lint ;;
  *) echo "usage: $0 [all|unit|broker|lint]" >&2; exit 2 ;;
esac

echo
echo "=== summary ($(( $(date +%s) - t_start ))s in all)"
printf '%s\n' "${summary[@]}"
exit $failed
