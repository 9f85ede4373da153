#!/usr/bin/env bash
# Installs what the tests need on a fresh machine of this kind, idempotently:
# PostgreSQL 15 server and client binaries (Debian), fastavro (PyPI), the jars
# of the real Apache Kafka broker (Maven Central, cached in .cache/kafka) and
# golangci-lint at its pinned version (Go module proxy, in .cache/bin),
# Chromium (Debian), in which the demo test loads the admin page, and
# promtool (Debian's prometheus package), which tests the alert rules.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
GOLANGCI_VERSION=${GOLANGCI_VERSION:-v2.15.0}
FASTAVRO_VERSION=1.13.1

log() { echo "deps: $*" >&2; }

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=()
[ -x "$PG_BIN/initdb" ] || apt_packages+=(postgresql-15)
command -v pg_recvlogical >/dev/null 2>&1 || [ -x "$PG_BIN/pg_recvlogical" ] || apt_packages+=(postgresql-client-15)
command -v runuser >/dev/null 2>&1 || apt_packages+=(util-linux)
command -v java >/dev/null 2>&1 || apt_packages+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || apt_packages+=(maven)
command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium) # the demo test loads the admin page in headless Chromium
if [ ${#apt_packages[@]} -gt 0 ]; then
  log "installing Debian packages: ${apt_packages[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi
# promtool checks and unit-tests the Prometheus rules in deploy/prometheus;
# the package's recommends (node exporter, ...) are not needed.
if ! command -v promtool >/dev/null 2>&1; then
  log "installing Debian package prometheus (for promtool)"
  [ ${#apt_packages[@]} -gt 0 ] || sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
id postgres >/dev/null 2>&1 || { log "creating the postgres OS user"; sudo_if_needed useradd --system --home /var/lib/postgresql --shell /bin/bash postgres; }

if ! python3 -c 'import fastavro' 2>/dev/null; then
  log "installing fastavro $FASTAVRO_VERSION"
  python3 -m pip install --quiet --disable-pip-version-check "fastavro==$FASTAVRO_VERSION"
fi

log "resolving the Kafka broker's jars (cached)"
go run ./internal/testenv/cmd/testbroker -prepare

mkdir -p .cache/bin
lint=.cache/bin/golangci-lint
if ! { [ -x "$lint" ] && "$lint" version 2>/dev/null | grep -q "${GOLANGCI_VERSION#v}"; }; then
  log "building golangci-lint $GOLANGCI_VERSION (a few minutes on a fresh machine)"
  GOBIN="$PWD/.cache/bin" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_VERSION"
fi
log "ready"
