# alertsync – make targets. `make test` installs and starts everything it needs.
SHELL := /bin/bash
GO ?= go
BIN := bin/alertsync
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X github.com/alertsync/alertsync/internal/cli.Version=$(VERSION)
GOLANGCI_VERSION := v2.15.0
export GOLANGCI_VERSION

.PHONY: all build test test-unit test-broker lint deps demo bench fuzz docs clean

all: build

build: ## build bin/alertsync
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/alertsync

test: ## everything CI runs: deps, lint, unit + integration (kfake), the real-broker suites
	./scripts/test.sh

test-unit: ## unit and integration tests on kfake and throwaway PostgreSQL, race detector on
	./scripts/test.sh unit

test-broker: ## the Kafka-touching suites on a real Apache Kafka broker
	./scripts/test.sh broker

lint: ## golangci-lint (pinned) and go vet
	./scripts/test.sh lint

deps: ## install what the tests need (PostgreSQL 15, Kafka jars, fastavro, golangci-lint)
	./scripts/deps.sh

demo: build ## run everything in one process on embedded Kafka, registry and PostgreSQL (DEMO_ARGS="--reset" to start over)
	@pg_bin="$${PG_BIN:-/usr/lib/postgresql/15/bin}"; \
	if [ ! -x "$$pg_bin/initdb" ]; then \
	  echo "demo: installing the PostgreSQL 15 server binaries (Debian postgresql-15)" >&2; \
	  if [ "$$(id -u)" -eq 0 ]; then s=; else s=sudo; fi; \
	  $$s apt-get update -qq && $$s env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null; \
	fi
	$(BIN) demo $(DEMO_ARGS)

bench: ## benchmarks, one BENCH line per figure
	./scripts/bench.sh

fuzz: ## run each fuzz target briefly (FUZZTIME=30s by default)
	./scripts/fuzz.sh

docs: ## regenerate docs/configuration.md from the config structs
	$(GO) run ./cmd/alertsync config docs > docs/configuration.md

clean:
	rm -rf bin .cache/bench
