# Build, test and run the AIS executive. `make help` lists the targets.

CARGO ?= cargo
SEEDS ?= 300
SOAK_SEEDS ?= 20000
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: help build release run test test-unit test-sim soak fmt lint clean

help:
	@echo "make run       a 3-node aisexec cluster on 127.0.0.1-3, its ring status, then its logs"
	@echo "make test      unit tests, protocol tests and $(SEEDS) simulator seeds"
	@echo "make soak      $(SOAK_SEEDS) simulator seeds on $(JOBS) threads"
	@echo "make lint      cargo fmt --check and clippy -D warnings"
	@echo "make build     debug build; make release for optimised binaries"

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --workspace --release

# Three aisexec daemons on 127.0.0.1-3 (configs, sockets and logs under
# ./run/), their ring status once the ring formed, then their logs until
# Ctrl-C, which stops them. No root needed; see scripts/run-cluster.sh.
run:
	$(CARGO) build --release -p aisexec -p tools --bins
	@./scripts/run-cluster.sh

test: test-unit test-sim

# The multi-process tests (testsuite/tests/daemon_cluster.rs) start the
# release binaries, so build them first.
test-unit:
	$(CARGO) build --release --workspace
	$(CARGO) test --workspace --release

test-sim:
	$(CARGO) run --release -p testsuite --bin sim -- --seeds $(SEEDS) --jobs $(JOBS)
	$(CARGO) run --release -p testsuite --bin syncsim -- --seeds $(SEEDS) --jobs $(JOBS)

soak:
	$(CARGO) run --release -p testsuite --bin sim -- --seeds $(SOAK_SEEDS) --first 1000000 --jobs $(JOBS)
	$(CARGO) run --release -p testsuite --bin syncsim -- --seeds $(SOAK_SEEDS) --first 1000000 --jobs $(JOBS)

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
