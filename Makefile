# clickd — the two commands a newcomer needs:
#   make run    install what is missing, build, start a private PostgreSQL and a click log
#   make test   install what is missing, build everything and run every test
# and for operators and developers:
#   make test-citus  the Citus tier's tests (Citus installed; docs/scale-out.md)
#   make bench  the benchmarks of bench/ (results: docs/benchmarks.md)
#   make fuzz   every fuzz target for FUZZ_SECONDS (default 60) under libFuzzer (docs/fuzzing.md)
#   make lint   the tree as swift format (.swift-format) writes it; CI runs it; `make format` fixes it

SWIFT ?= swift

.PHONY: all deps build release test test-citus run bench fuzz lint format clean

all: build

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# Build once (tests included), then run without rebuilding. The report pages' browser test
# needs Chromium and selenium (scripts/install-deps --browser).
test:
	@scripts/install-deps --browser
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# The Citus tier (docs/scale-out.md): a coordinator and two workers on this machine from the
# installed Citus extension; fails, never skips, when Citus is not installed. Not in `make test`.
test-citus:
	@scripts/install-deps
	$(SWIFT) build --build-tests
	CLICKD_TEST_CITUS=1 $(SWIFT) test --skip-build --filter CitusTests

run: release
	@scripts/run-local

bench: release
	@bench/log-append.sh && bench/links.sh && bench/edge.sh && bench/ingest.sh && bench/analysts.sh && bench/rebuild.sh && bench/latency.sh

fuzz: deps
	@scripts/fuzz

# swift format ships with the toolchain; the configuration is .swift-format.
FORMATTED = Sources Tests Package.swift
lint:
	$(SWIFT) format lint --strict --recursive --parallel $(FORMATTED)

format:
	$(SWIFT) format format --in-place --recursive --parallel $(FORMATTED)

clean:
	rm -rf .build
