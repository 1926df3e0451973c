# Tidewatch — build, run, test.
GO        ?= go
BIN       ?= bin/tidewatch
PKG       := github.com/tidewatch/tidewatch
VERSION   ?= $(shell cat VERSION 2>/dev/null || echo 0.1.0-dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -X $(PKG)/internal/version.Version=$(VERSION) -X $(PKG)/internal/version.Revision=$(REVISION) \
             -X $(PKG)/internal/version.BuildDate=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)
# Real peers the integration tests start (Debian packages, installed when missing).
TEST_PACKAGES := prometheus prometheus-node-exporter clickhouse-server clickhouse-client prometheus-alertmanager \
                 etcd-server etcd-client zookeeper prometheus-blackbox-exporter haproxy chromium
TEST_TIMEOUT  ?= 20m
# Prometheus' slice label representation: its default (stringlabels) panics on
# a label over 16 MiB inside the scrape loop, where nothing can recover it, so
# one hostile scrape target could take Tidewatch down (README, "Building").
TAGS      ?= slicelabels

.PHONY: build run test test-deps bench lint clean

build:
	$(GO) build -tags $(TAGS) -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/tidewatch

# The quick start: `tidewatch demo` on :9470 — a fleet of demo instances under
# a load wave with a surge, scraped, probed, alerted on and autoscaled
# (embedded store in data/demo). Ctrl-C stops it and every instance.
run: build
	./$(BIN) demo

test-deps:
	$(GO) run ./internal/testinfra/cmd/install $(TEST_PACKAGES)

# The packages whose tests exercise concurrency run under the race detector
# (instead of without it, so the suite stays within its time budget).
RACE_PACKAGES := ./collector/... ./autoscaler/... ./alerting/... ./web/... ./internal/lifecycle/...

# The whole suite, including the ClickHouse and peer integration tests.
test: lint test-deps
	race=$$($(GO) list -tags $(TAGS) $(RACE_PACKAGES)); \
	other=$$($(GO) list -tags $(TAGS) ./... | grep -vxF "$$race"); \
	$(GO) test -tags $(TAGS) -count=1 -timeout $(TEST_TIMEOUT) $$other; plain=$$?; \
	$(GO) test -race -tags $(TAGS) -count=1 -timeout $(TEST_TIMEOUT) $$race; raced=$$?; \
	[ $$plain -eq 0 ] && [ $$raced -eq 0 ]

bench:
	$(GO) test -tags $(TAGS) -run '^$$' -bench . -benchmem -count 6 ./collector/... ./store/... | tee bench.out

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags $(TAGS) ./...

clean:
	rm -rf bin data bench.out
