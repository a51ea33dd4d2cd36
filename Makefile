# Build, test and run the AIS executive. `make help` lists the targets.

CARGO ?= cargo
SEEDS ?= 300
SOAK_SEEDS ?= 20000
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: help build release test test-unit test-sim soak fmt lint clean

help:
	@echo "make test      unit tests, protocol tests and $(SEEDS) simulator seeds"
	@echo "make soak      $(SOAK_SEEDS) simulator seeds on $(JOBS) threads"
	@echo "make lint      cargo fmt --check and clippy -D warnings"
	@echo "make build     debug build; make release for optimised binaries"

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --workspace --release

test: test-unit test-sim

test-unit:
	$(CARGO) test --workspace --release

test-sim:
	$(CARGO) run --release -p testsuite --bin sim -- --seeds $(SEEDS) --jobs $(JOBS)

soak:
	$(CARGO) run --release -p testsuite --bin sim -- --seeds $(SOAK_SEEDS) --first 1000000 --jobs $(JOBS)

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
