# Build, test and run the AIS executive. `make help` lists the targets.

CARGO ?= cargo
SEEDS ?= 300
SOAK_SEEDS ?= 20000
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: bench-backup help build release run test test-unit test-sim soak soak-cluster fmt lint clean install bench bench-corosync bench-secauth fuzz

PREFIX ?= /usr/local
DESTDIR ?=

help:
	@echo "make run       a 3-node aisexec cluster on 127.0.0.1-3, its ring status, then its logs"
	@echo "make test      unit tests, protocol tests and $(SEEDS) simulator seeds (+ $(ACCEL_SEEDS) with the accelerated ring)"
	@echo "make soak      $(SOAK_SEEDS) simulator seeds on $(JOBS) threads"
	@echo "make soak-cluster  a 5-node aisexec cluster under load and faults for SECONDS (default 600), then the EVS/CKPT checks"
	@echo "make lint      cargo fmt --check and clippy -D warnings"
	@echo "make fuzz      every cargo-fuzz target for FUZZ_SECONDS (60) each"
	@echo "make build     debug build; make release for optimised binaries"
	@echo "make install   daemon, tools, libais.so, headers, libais.pc under DESTDIR/PREFIX"
	@echo "make bench     ais-bench on a local 3-node cluster: one table (about 4 min; REPS, SECS, ...)"
	@echo "make bench-corosync  the same, and a real corosync cluster measured in the same run (root)"
	@echo "make bench-secauth   throughput with secauth on and off in one run (REPS, SECS, SIZES, CIPHER)"

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

test: test-unit test-sim test-install

# The multi-process tests (testsuite/tests/daemon_cluster.rs) start the
# release binaries, so build them first.
test-unit:
	$(CARGO) build --release --workspace
	$(CARGO) test --workspace --release

# The accelerated ring (totem { accelerated_window }, off by default) on
# seeds of their own: every node sends up to ACCEL_WINDOW messages per
# token visit after passing the token.
ACCEL_SEEDS ?= 300
ACCEL_WINDOW ?= 17
test-sim:
	$(CARGO) run --release -p testsuite --bin sim -- --seeds $(SEEDS) --jobs $(JOBS)
	$(CARGO) run --release -p testsuite --bin syncsim -- --seeds $(SEEDS) --jobs $(JOBS)
	$(CARGO) run --release -p testsuite --bin sim -- --seeds $(ACCEL_SEEDS) --first 100000 --jobs $(JOBS) --accelerated-window $(ACCEL_WINDOW)
	$(CARGO) run --release -p testsuite --bin syncsim -- --seeds $(ACCEL_SEEDS) --first 100000 --jobs $(JOBS) --accelerated-window $(ACCEL_WINDOW)

# make install into a scratch DESTDIR, then build the C examples the way a
# user would: cc app.c $(pkg-config --cflags --libs libais).
test-install:
	@d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && \
	$(MAKE) --no-print-directory install DESTDIR=$$d PREFIX=/usr >/dev/null && \
	for ex in clm_track evs_chat; do \
		cc -Wall -Werror libais/ctest/$$ex.c \
			$$(PKG_CONFIG_PATH=$$d/usr/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$$d \
			   pkg-config --cflags --libs libais) -o $$d/$$ex || exit 1; \
	done && echo "test-install: make install + pkg-config build of clm_track and evs_chat: ok"

soak:
	$(CARGO) run --release -p testsuite --bin sim -- --seeds $(SOAK_SEEDS) --first 1000000 --jobs $(JOBS)
	$(CARGO) run --release -p testsuite --bin syncsim -- --seeds $(SOAK_SEEDS) --first 1000000 --jobs $(JOBS)

# Every cargo-fuzz target in fuzz/ for FUZZ_SECONDS each (see
# scripts/fuzz.sh and docs/limits.md); crashes land in fuzz/artifacts/.
FUZZ_SECONDS ?= 60
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh

# A real 5-node cluster on 127.0.0.1-5 under EVS and CKPT load while a
# seeded fault injector kills, pauses, terminates and restarts nodes and
# drops/delays packets (test-only hook, AISEXEC_TEST_FAULTS); then the EVS
# properties are checked on every client's delivery log and the checkpoint
# replicas compared. Last line: `soak: N violations`. SEED=S replays a
# schedule. See docs/soak.md.
SECONDS ?= 600
soak-cluster:
	$(CARGO) build --release -p aisexec -p testsuite --bins
	$(CARGO) run --release -p testsuite --bin soak -- --seconds $(SECONDS) $(if $(SEED),--seed $(SEED))

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Installs the daemon, the tools, libais.so (soname libais.so.1), the C
# headers and libais.pc under $(DESTDIR)$(PREFIX).
install: release
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
		$(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 target/release/aisexec $(DESTDIR)$(PREFIX)/sbin/aisexec
	install -m 0755 target/release/ais-ring-status $(DESTDIR)$(PREFIX)/bin/ais-ring-status
	install -m 0755 target/release/ais-ckpt $(DESTDIR)$(PREFIX)/bin/ais-ckpt
	install -m 0755 target/release/ais-keygen $(DESTDIR)$(PREFIX)/sbin/ais-keygen
	install -m 0755 target/release/ais-backup $(DESTDIR)$(PREFIX)/bin/ais-backup
	install -m 0755 target/release/libais.so $(DESTDIR)$(PREFIX)/lib/libais.so.1
	ln -sf libais.so.1 $(DESTDIR)$(PREFIX)/lib/libais.so
	install -m 0644 libais/include/*.h $(DESTDIR)$(PREFIX)/include/
	sed 's|@PREFIX@|$(PREFIX)|' libais/libais.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/libais.pc

# Benchmarks (issue #7), never part of `make test`: a 3-node cluster of
# its own (own port, own temporary run directory, daemons stopped by pid),
# throughput, latency, failure detection, RSS and the raw UDP ceiling,
# printed as one table. Knobs: see scripts/bench.sh (REPS=3 SECS=5 ...).
bench:
	$(CARGO) build --release -p aisexec -p tools --bins
	@./scripts/bench.sh

# The same and, after it, the corosync harness of ../shared/bench/corosync
# (corosync 3 in network namespaces: root, and corosync + libcpg-dev
# installed) with the same knobs; the table gets measured ratios.
COROSYNC_TRANSPORTS ?= udpu knet
bench-corosync:
	$(CARGO) build --release -p aisexec -p tools --bins
	@COROSYNC_TRANSPORTS="$(COROSYNC_TRANSPORTS)" ./scripts/bench.sh

# Backup and restore MiB/s for MIB (1024) MiB of checkpoint data on a local
# 3-node cluster (issue #6; scripts/bench-backup.sh).
bench-backup:
	$(CARGO) build --release -p aisexec -p tools -p testsuite --bins
	@./scripts/bench-backup.sh

# What sealing the ring costs: throughput with secauth on and off, fresh
# clusters per mode, medians and the ratio (scripts/bench-secauth.sh).
bench-secauth:
	$(CARGO) build --release -p aisexec -p tools --bins
	@./scripts/bench-secauth.sh

clean:
	$(CARGO) clean
