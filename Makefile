# Build, test and run the AIS executive. `make help` lists the targets.

CARGO ?= cargo
SEEDS ?= 300
SOAK_SEEDS ?= 20000
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: help build release run test test-unit test-sim soak fmt lint clean

help:
	@echo "make run       a 3-node cluster (simulated until the daemon lands) and its ring status"
	@echo "make test      unit tests, protocol tests and $(SEEDS) simulator seeds"
	@echo "make soak      $(SOAK_SEEDS) simulator seeds on $(JOBS) threads"
	@echo "make lint      cargo fmt --check and clippy -D warnings"
	@echo "make build     debug build; make release for optimised binaries"

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --workspace --release

# Until aisexec exists (issue #3) the cluster runs in the deterministic
# simulator: the real protocol code on a simulated network and clock.
run: release
	@echo "3-node cluster, default Totem config, in the deterministic simulator (no daemon yet)"
	@./target/release/sim --scenario steady --nodes 3 --seed 1 | grep -E 'final:|installed|FAIL' | sed 's/^ *//'
	@./target/release/sim --scenario steady --nodes 3 --seed 1 --quiet | tail -1

test: test-unit test-sim

test-unit:
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
