#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for FUZZ_SECONDS each (default 60),
# one after another, and prints one line per target: runs, executions per
# second, CPU seconds, and whether it found a crash (the crashing input is
# kept under fuzz/artifacts/TARGET/). Exit status 1 if any target crashed.
#
# Knobs: FUZZ_SECONDS=60  FUZZ_TARGETS="totem_packet ipc_frame ..."
#        FUZZ_JOBS=1 (libFuzzer -jobs/-workers per target)
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer, coverage
# instrumentation). With a nightly toolchain installed we use it; without
# one, RUSTC_BOOTSTRAP=1 lets the stable compiler accept them (the same
# compiler, only its feature gate lifted). cargo-fuzz itself is installed
# from crates.io when missing.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_JOBS=${FUZZ_JOBS:-1}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if rustup run nightly rustc --version >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
    echo "fuzz: toolchain $(rustup run nightly rustc --version)"
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
    echo "fuzz: no nightly toolchain; stable $(rustc --version) with RUSTC_BOOTSTRAP=1"
fi

targets=${FUZZ_TARGETS:-$("${fuzz[@]}" list)}
buildlog=$(mktemp)
if ! "${fuzz[@]}" build -O >"$buildlog" 2>&1; then
    cat "$buildlog"
    exit 1
fi
rm -f "$buildlog"

failed=0
printf '%-14s %10s %9s %8s %s\n' target runs exec/s cpu_s result
for t in $targets; do
    log=$(mktemp)
    start=$(date +%s)
    set +e
    # -rss_limit_mb: the node harnesses keep a whole daemon state per run.
    parallel=()
    if [ "$FUZZ_JOBS" -gt 1 ]; then
        parallel=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
    fi
    "${fuzz[@]}" run -O "$t" -- -max_total_time="$FUZZ_SECONDS" \
        -rss_limit_mb=4096 "${parallel[@]}" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    # With -jobs the workers log to fuzz-N.log; sum what every log says.
    logs=("$log" $(ls fuzz-*.log 2>/dev/null || true))
    runs=$(cat "${logs[@]}" | grep -o 'stat::number_of_executed_units: *[0-9]*' \
        | awk '{s+=$2} END {print s+0}' || true)
    speed=$(cat "${logs[@]}" | grep -o 'stat::average_exec_per_sec: *[0-9]*' \
        | awk '{s+=$2} END {print s+0}' || true)
    rm -f fuzz-*.log
    secs=$(( ($(date +%s) - start) * FUZZ_JOBS ))
    if [ $rc -eq 0 ]; then
        result=ok
    else
        result="CRASH (exit $rc), see fuzz/artifacts/$t/ and $log"
        failed=1
    fi
    printf '%-14s %10s %9s %8s %s\n' "$t" "$runs" "$speed" "$secs" "$result"
    [ $rc -eq 0 ] && rm -f "$log"
done
exit $failed
