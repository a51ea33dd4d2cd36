#!/usr/bin/env bash
# `make bench`: measure a local 3-node aisexec cluster with ais-bench and
# print one table (issue #7). `make bench-corosync` adds a real corosync
# cluster measured in the same run (shared/bench/corosync; root, netns).
#
# What it does, in order:
#   1. writes 3 configs (127.0.0.1-3, one UDP port of its own, token 1000 ms,
#      run directories under a fresh temporary directory) and starts the
#      daemons; waits for a synchronized 3-member ring;
#   2. idle RSS; throughput for every size in SIZES with 1 sender (node 1)
#      and with all 3 sending, SECS seconds each; RSS after the load;
#      latency (LAT_COUNT single messages, LAT_SIZES);
#   2b. CKPT (issue #5): `ais-ckpt bench` against node 1, CKPT_SECS seconds
#      of 1 KiB section overwrites then reads, for each write mode in
#      CKPT_MODES, REPS times; medians of writes/s, reads/s and the
#      latencies go under the table (raw lines: ckpt.txt);
#   3. failure detection: kill -9 node 3 (FO_REPS times) and SIGTERM it
#      (FO_TERM_REPS times), restarting it and waiting for the ring after
#      each;
#   4. stops the daemons; the raw loopback UDP ceiling for every size, and
#      the latency floor (one datagram round a ring of 3 sockets);
#   5. with COROSYNC_TRANSPORTS (make bench-corosync: "udpu knet"), runs the
#      corosync harness's setup.sh / run-bench.sh / teardown.sh for each
#      transport with the same knobs, after our cluster is stopped;
#   6. prints the table (ais-bench report) and where the raw lines are.
# Everything is repeated REPS times; the table shows medians.
#
# It stops only the daemons it started, by pid (also on Ctrl-C or error).
# Never part of `make test`. Loopback only; no root needed unless
# COROSYNC_TRANSPORTS is set or SCHED_RR=yes.
#
# Environment (defaults):
#   REPS=3 SECS=5 SIZES="64 1024 8192 65000" LAT_COUNT=2000 LAT_SIZES="64 1024"
#   FO_REPS=3 FO_TERM_REPS=3 UDP_SECS=1 TOKEN_MS=1000 SCHED_RR=no
#   ACCEL=0 (totem { accelerated_window }: 0 the standard protocol, N the
#   Accelerated Ring sending up to N messages per visit after the token)
#   SECAUTH=on (the ring sealed with a fresh key made by ais-keygen; "off"
#   measures the unencrypted ring)
#   IDLE_LAT_COUNT=200 IDLE_LAT_GAP_MS=20: latency of 64-byte messages sent
#   IDLE_LAT_GAP_MS apart (the ring idles between them, so the token is
#   held), from node 1 (the representative) and node 2; 0 skips it
#   CKPT_MODES="all active" ("" skips CKPT) CKPT_SECS=$SECS CKPT_SIZE=1024
#   CKPT_SECTIONS=16
#   BENCH_PORT (default: 40000 + pid % 1000)  BENCH_DIR (default: a new
#   temporary directory, kept for its raw.txt, table.txt and logs)
#   AIS_BIN_DIR (default target/release)
#   RSS_SOAK_SECS=0: if > 0, after the throughput runs, a sustained load
#   (every node sends RSS_SOAK_SIZE=1024-byte messages for that long)
#   while each daemon's VmRSS is sampled every RSS_SOAK_EVERY=10 s into
#   rss-soak.txt; its first/last/max go under the table. REPS=0
#   FO_REPS=0 FO_TERM_REPS=0 CKPT_MODES="" runs the soak alone.
#   COROSYNC_TRANSPORTS="" ("udpu", "knet" or both)  COROSYNC_HARNESS
#   (default ../shared/bench/corosync beside the repository)

set -uo pipefail

root_dir=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=${AIS_BIN_DIR:-$root_dir/target/release}
REPS=${REPS:-3}
SECS=${SECS:-5}
SIZES=${SIZES:-"64 1024 8192 65000"}
LAT_COUNT=${LAT_COUNT:-2000}
LAT_SIZES=${LAT_SIZES:-"64 1024"}
IDLE_LAT_COUNT=${IDLE_LAT_COUNT:-200}
IDLE_LAT_GAP_MS=${IDLE_LAT_GAP_MS:-20}
FO_REPS=${FO_REPS:-3}
FO_TERM_REPS=${FO_TERM_REPS:-3}
UDP_SECS=${UDP_SECS:-1}
TOKEN_MS=${TOKEN_MS:-1000}
ACCEL=${ACCEL:-0}
CKPT_MODES=${CKPT_MODES-all active}
CKPT_SECS=${CKPT_SECS:-$SECS}
CKPT_SIZE=${CKPT_SIZE:-1024}
CKPT_SECTIONS=${CKPT_SECTIONS:-16}
SCHED_RR=${SCHED_RR:-no}
SECAUTH=${SECAUTH:-on}
RSS_SOAK_SECS=${RSS_SOAK_SECS:-0}
RSS_SOAK_SIZE=${RSS_SOAK_SIZE:-1024}
RSS_SOAK_EVERY=${RSS_SOAK_EVERY:-10}
port=${BENCH_PORT:-$((40000 + $$ % 1000))}
COROSYNC_TRANSPORTS=${COROSYNC_TRANSPORTS:-}
harness=${COROSYNC_HARNESS:-$root_dir/../shared/bench/corosync}
nodes=3

aisexec=$bin_dir/aisexec
ring_status=$bin_dir/ais-ring-status
bench=$bin_dir/ais-bench
ckpt_tool=$bin_dir/ais-ckpt
keygen=$bin_dir/ais-keygen
for b in "$aisexec" "$ring_status" "$bench" "$keygen" ${CKPT_MODES:+"$ckpt_tool"}; do
    if [ ! -x "$b" ]; then
        echo "bench: $b is missing; build first (make release)" >&2
        exit 1
    fi
done

if [ -n "$COROSYNC_TRANSPORTS" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "bench: the corosync comparison needs root (network namespaces)" >&2
        exit 1
    fi
    if ! command -v corosync > /dev/null || [ ! -e /usr/include/corosync/cpg.h ]; then
        echo "bench: corosync is not installed; as root:" >&2
        echo "  apt-get update && apt-get install -y corosync libcpg-dev libcorosync-common-dev \\" >&2
        echo "      libquorum-dev libcfg-dev libcmap-dev libvotequorum-dev" >&2
        exit 1
    fi
    if [ ! -x "$harness/run-bench.sh" ]; then
        echo "bench: no corosync harness at $harness (set COROSYNC_HARNESS)" >&2
        exit 1
    fi
fi

work=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/ais-bench.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)
raw=$work/raw.txt
: > "$raw"
if [ "$SECAUTH" != off ]; then
    "$keygen" --force -o "$work/authkey" > /dev/null || exit 1
fi
ckpt_raw=$work/ckpt.txt
: > "$ckpt_raw"
sockets=()
for i in $(seq 1 $nodes); do
    sockets+=(--socket "$work/node$i/aisexec.sock")
done

# ----- the cluster ----------------------------------------------------------------

pids=()   # pids[i-1]: node i's daemon, started here ("" when not running)

write_config() {
    local i=$1 dir=$work/node$1
    mkdir -p "$dir"
    {
        echo "# Node $i of the bench cluster written by scripts/bench.sh."
        echo "totem {"
        echo "    version: 2"
        echo "    cluster_name: bench"
        echo "    transport: udpu"
        echo "    nodeid: $i"
        echo "    port: $port"
        echo "    token: $TOKEN_MS"
        if [ "$ACCEL" != 0 ]; then
            echo "    accelerated_window: $ACCEL"
        fi
        if [ "$SECAUTH" = off ]; then
            echo "    secauth: off"
        else
            echo "    keyfile: $work/authkey"
        fi
        echo "}"
        echo "nodelist {"
        for j in $(seq 1 $nodes); do
            echo "    node {"
            echo "        ring0_addr: 127.0.0.$j"
            echo "        nodeid: $j"
            echo "        name: node$j"
            echo "    }"
        done
        echo "}"
        echo "system {"
        echo "    run_dir: $dir"
        [ "$SCHED_RR" = yes ] && echo "    sched_rr: yes"
        echo "}"
        echo "logging {"
        echo "    to_stderr: yes"
        echo "    to_syslog: no"
        echo "    timestamp: on"
        echo "    debug: off"
        echo "}"
    } > "$dir/aisexec.conf"
}

start_node() {
    local i=$1 dir=$work/node$1
    "$aisexec" -f -c "$dir/aisexec.conf" >> "$dir/aisexec.log" 2>&1 &
    pids[$((i - 1))]=$!
    # Out of the job table: no "Killed" notice when ais-bench kills it
    # (bash still reaps it; a zombie meanwhile counts as gone below).
    disown "$!"
}

# running PID: the process exists and has not exited (a zombie, exited but
# not reaped yet, still answers kill -0).
running() {
    kill -0 "$1" 2> /dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2> /dev/null)" != Z ]
}

# gone PID TRIES: wait up to TRIES x 50 ms for PID to exit.
gone() {
    for _ in $(seq "$2"); do
        running "$1" || return 0
        sleep 0.05
    done
    return 1
}

# stop_node I SIGNAL: signal node I's daemon (ours, by pid), wait for it to
# exit, SIGKILL it after 5 s.
stop_node() {
    local i=$1 sig=$2 pid=${pids[$(($1 - 1))]:-}
    [ -n "$pid" ] || return 0
    kill "-$sig" "$pid" 2> /dev/null
    if ! gone "$pid" 100; then
        echo "bench: node $i (pid $pid) did not exit on SIG$sig; killing it" >&2
        kill -KILL "$pid" 2> /dev/null
        gone "$pid" 100
    fi
    pids[$((i - 1))]=""
}

# reap_node I: ais-bench signalled node I's daemon; wait for it to exit.
reap_node() {
    local i=$1 pid=${pids[$(($1 - 1))]:-}
    [ -n "$pid" ] || return 0
    if ! gone "$pid" 200; then
        echo "bench: node $i (pid $pid) did not exit after its signal; killing it" >&2
        kill -KILL "$pid" 2> /dev/null
        gone "$pid" 100
    fi
    pids[$((i - 1))]=""
}

stop_all() {
    for i in $(seq 1 $nodes); do
        stop_node "$i" TERM
    done
}

corosync_up=""
cleanup() {
    trap '' INT TERM
    stop_all
    if [ -n "$corosync_up" ]; then
        "$harness/teardown.sh" > /dev/null 2>&1 || true
        corosync_up=""
    fi
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

wait_ring() {
    local i
    for i in $(seq 1 $nodes); do
        if ! "$ring_status" --socket "$work/node$i/aisexec.sock" --wait-members $nodes \
                --timeout 20 > /dev/null; then
            echo "bench: node$i did not reach a $nodes-member ring; its log:" >&2
            tail -n 20 "$work/node$i/aisexec.log" >&2
            return 1
        fi
    done
}

# run REP CMD...: one ais-bench run, its lines prefixed with rep=REP.
run() {
    local rep=$1
    shift
    local out
    out=$(timeout 120 "$bench" "$@")
    local rc=$?
    [ $rc = 0 ] || echo "bench: ais-bench $1 exited $rc" >&2
    [ -n "$out" ] && sed "s/^/rep=$rep /" <<< "$out" >> "$raw"
    printf '%s\n' "$out"
}

t_start=$(date +%s)
echo "bench: results in $work (port $port, token $TOKEN_MS ms, sched_rr $SCHED_RR, accelerated_window $ACCEL)" >&2
echo "rep=0 impl=ais mode=env token_ms=$TOKEN_MS sched_rr=$SCHED_RR secauth=$SECAUTH accelerated_window=$ACCEL reps=$REPS secs=$SECS" \
    "lat_count=$LAT_COUNT kernel=$(uname -r) cpus=$(nproc) date=$(date -Is)" >> "$raw"
for i in $(seq 1 $nodes); do
    write_config "$i"
    start_node "$i"
done
wait_ring || exit 1
sleep 1
run 1 rss "${sockets[@]}" --phase idle > /dev/null

# ----- throughput and latency --------------------------------------------------------

for r in $(seq 1 "$REPS"); do
    for k in 1 all; do
        for s in $SIZES; do
            line=$(run "$r" tput "${sockets[@]}" --size "$s" --secs "$SECS" --senders $k \
                --label "k$k" | grep ' node=2 ')
            echo "tput size=$s senders=$k rep=$r: $(grep -o 'msgs_per_s=[0-9.]* MB_per_s=[0-9.]*' <<< "$line")" \
                "$(grep -o 'lost=[0-9]* fifo_viol=[0-9]*' <<< "$line")" >&2
        done
    done
done
run 1 rss "${sockets[@]}" --phase after > /dev/null

# ----- RSS under sustained load (RSS_SOAK_SECS) --------------------------------------

soak_raw=$work/rss-soak.txt
: > "$soak_raw"
rss_kib() {  # rss_kib PID: VmRSS in KiB, or NA
    awk '/^VmRSS:/ {print $2; found = 1} END {if (!found) print "NA"}' "/proc/$1/status" 2> /dev/null \
        || echo NA
}
if [ "$RSS_SOAK_SECS" -gt 0 ]; then
    echo "bench: RSS soak: $RSS_SOAK_SECS s of ${RSS_SOAK_SIZE}-byte messages from every node" >&2
    timeout $((RSS_SOAK_SECS + 120)) "$bench" tput "${sockets[@]}" --size "$RSS_SOAK_SIZE" \
        --secs "$RSS_SOAK_SECS" --senders all --label soak > "$work/rss-soak.tput.txt" 2>&1 &
    soak_pid=$!
    t0=$(date +%s)
    while running "$soak_pid"; do
        line="t_s=$(($(date +%s) - t0))"
        for i in $(seq 1 $nodes); do
            line="$line node$i=$(rss_kib "${pids[$((i - 1))]}")"
        done
        echo "$line" >> "$soak_raw"
        sleep "$RSS_SOAK_EVERY"
    done
    wait "$soak_pid" 2> /dev/null
    grep ' node=2 ' "$work/rss-soak.tput.txt" | grep -o 'result=[a-z]* .*msgs_per_s=[0-9]*' >&2
fi

# soak_table: per node, the first, last and largest RSS sample of the soak.
soak_table() {
    [ -s "$soak_raw" ] || return 0
    echo "RSS under sustained load ($RSS_SOAK_SECS s, every node sending ${RSS_SOAK_SIZE} B;" \
        "VmRSS sampled every $RSS_SOAK_EVERY s; MiB; rss-soak.txt)"
    for i in $(seq 1 $nodes); do
        grep -o " node$i=[0-9]*" "$soak_raw" | cut -d= -f2 | awk -v n="$i" '
            NR == 1 {first = $1} {last = $1; if ($1 > max) max = $1}
            END {printf "  node%s  first %.1f  last %.1f  max %.1f  (%d samples)\n",
                 n, first / 1024, last / 1024, max / 1024, NR}'
    done
}

for r in $(seq 1 "$REPS"); do
    for s in $LAT_SIZES; do
        line=$(run "$r" lat "${sockets[@]}" --size "$s" --count "$LAT_COUNT" | grep 'kind=self')
        echo "lat size=$s rep=$r: $(grep -o 'p50_us=[0-9.]* p90_us=[0-9.]* p99_us=[0-9.]*' <<< "$line")" >&2
    done
done

# Idle ring: each message starts on a ring whose token the representative
# holds (its own lines in idle-lat.txt: the table's latency row stays the
# back-to-back one the corosync harness also measures).
idle_raw=$work/idle-lat.txt
: > "$idle_raw"
if [ "$IDLE_LAT_COUNT" -gt 0 ]; then
    for r in $(seq 1 "$REPS"); do
        for snd in 1 2; do
            out=$(timeout 300 "$bench" lat "${sockets[@]}" --size 64 --count "$IDLE_LAT_COUNT" \
                --warmup 5 --sender "$snd" --gap-ms "$IDLE_LAT_GAP_MS" | grep 'kind=self')
            [ -n "$out" ] && echo "rep=$r sender=$snd $out" >> "$idle_raw"
        done
    done
fi

idle_table() {
    [ -s "$idle_raw" ] || return 0
    echo "Idle ring latency: 64 B, one message every $IDLE_LAT_GAP_MS ms (token held between them), self-delivery (us); medians of $REPS"
    for snd in 1 2; do
        local row=()
        for f in p50_us p99_us max_us; do
            row+=("$(grep "^rep=[0-9]* sender=$snd " "$idle_raw" | grep -o " $f=[0-9.]*" | cut -d= -f2 \
                | sort -g | awk '{v[NR] = $1} END {
                    if (NR == 0) print "-";
                    else if (NR % 2) print v[(NR + 1) / 2];
                    else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')")
        done
        printf '  from node %s%s  p50 %s  p99 %s  max %s\n' "$snd" \
            "$([ "$snd" = 1 ] && echo " (representative)" || echo "                 ")" "${row[@]}"
    done
}

# ----- CKPT: section writes and reads through node 1 ------------------------------------

# One line per run in ckpt.txt: rep=R mode=M writes_per_s=... reads_per_s=...
# w_p50_us=... w_p99_us=... r_p50_us=... r_p99_us=... try_agains=...
for r in $(seq 1 "$REPS"); do
    for m in $CKPT_MODES; do
        out=$(timeout $((2 * ${CKPT_SECS%.*} + 60)) "$ckpt_tool" --socket "$work/node1/aisexec.sock" \
            bench --seconds "$CKPT_SECS" --sections "$CKPT_SECTIONS" --size "$CKPT_SIZE" \
            --mode "$m")
        rc=$?
        if [ $rc != 0 ] || [ -z "$out" ]; then
            echo "bench: ais-ckpt bench --mode $m exited $rc" >&2
            continue
        fi
        # "writes  N/s  OPS ops  p50 X us  p99 Y us  max Z us", then reads.
        line=$(awk '
            $1 == "writes" { w = $2; wp50 = $6; wp99 = $9 }
            $1 == "reads" { r = $2; rp50 = $6; rp99 = $9 }
            /^try_again retries:/ { t = $3 }
            END { sub("/s", "", w); sub("/s", "", r)
                  printf "writes_per_s=%s reads_per_s=%s w_p50_us=%s w_p99_us=%s", w, r, wp50, wp99
                  printf " r_p50_us=%s r_p99_us=%s try_agains=%s\n", rp50, rp99, t }' <<< "$out")
        echo "rep=$r mode=$m size=$CKPT_SIZE sections=$CKPT_SECTIONS secs=$CKPT_SECS $line" >> "$ckpt_raw"
        echo "ckpt mode=$m rep=$r: $line" >&2
    done
done

# ckpt_table: medians over the reps of every ckpt.txt field, per mode.
ckpt_table() {
    [ -s "$ckpt_raw" ] || return 0
    echo "CKPT (ais-ckpt bench via node 1, ${CKPT_SIZE}-byte sections x $CKPT_SECTIONS," \
        "${CKPT_SECS} s per phase, one request at a time; medians of $REPS)"
    printf '  %-7s %11s %10s %10s %10s %10s %10s\n' mode writes/s reads/s \
        w_p50_us w_p99_us r_p50_us r_p99_us
    for m in $CKPT_MODES; do
        local row=()
        for f in writes_per_s reads_per_s w_p50_us w_p99_us r_p50_us r_p99_us; do
            row+=("$(grep " mode=$m " "$ckpt_raw" | grep -o " $f=[0-9.]*" | cut -d= -f2 \
                | sort -g | awk '{v[NR] = $1} END {
                    if (NR == 0) print "-";
                    else if (NR % 2) print v[(NR + 1) / 2];
                    else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')")
        done
        printf '  %-7s %11s %10s %10s %10s %10s %10s\n' "$m" "${row[@]}"
    done
}

# ----- failure detection -------------------------------------------------------------

fo_run() {  # fo_run kill|term REP
    local sig=$1 r=$2
    run "$r" failover "${sockets[@]}" --victim 3 --signal "$sig" | sed "s/^/  /" >&2
    reap_node 3
    start_node 3
    wait_ring || return 1
    sleep 0.5
}
for r in $(seq 1 "$FO_REPS"); do fo_run kill "$r" || exit 1; done
for r in $(seq 1 "$FO_TERM_REPS"); do fo_run term "$r" || exit 1; done

stop_all

# ----- the raw UDP ceiling -------------------------------------------------------------

udp_sizes=()
for s in $SIZES; do udp_sizes+=(--size "$s"); done
for r in $(seq 1 "$REPS"); do
    run "$r" udp "${udp_sizes[@]}" --secs "$UDP_SECS" \
        | grep -o 'size=[0-9]* .*dgrams_per_s=[0-9.]*\|hops=.*p50_us=[0-9.]*' \
        | sed "s/^/udp rep=$r: /" >&2
done
echo "bench: ours took $(($(date +%s) - t_start)) s" >&2

# ----- corosync, in the same run ---------------------------------------------------------

coro_raw=()
for tr in $COROSYNC_TRANSPORTS; do
    echo "bench: corosync ($tr), with the same knobs" >&2
    export COROBENCH_DIR=$work/corosync-$tr
    corosync_up=yes
    if ! "$harness/setup.sh" "$tr" > "$work/corosync-$tr.setup.log" 2>&1 \
        && ! { grep -q "already exists" "$work/corosync-$tr.setup.log" \
            && echo "bench: an interrupted corosync run left its namespaces; teardown.sh, then setup again" >&2 \
            && { "$harness/teardown.sh" > /dev/null 2>&1 || true; } \
            && "$harness/setup.sh" "$tr" > "$work/corosync-$tr.setup.log" 2>&1; }; then
        echo "bench: corosync setup ($tr) failed; see $work/corosync-$tr.setup.log" >&2
        "$harness/teardown.sh" > /dev/null 2>&1
        corosync_up=""
        continue
    fi
    REPS=$REPS SECS=$SECS SIZES=$SIZES LAT_COUNT=$LAT_COUNT LAT_SIZES=$LAT_SIZES \
        FO_REPS=$FO_REPS FO_TERM_REPS=$FO_TERM_REPS TAG=ais-bench \
        "$harness/run-bench.sh" > "$work/corosync-$tr.log" 2>&1
    "$harness/teardown.sh" >> "$work/corosync-$tr.log" 2>&1
    corosync_up=""
    f=$(sed -n 's/^raw results: //p' "$work/corosync-$tr.log" | tail -1)
    if [ -n "$f" ] && [ -s "$f" ]; then
        cp "$f" "$work/corosync-$tr.raw.txt"
        coro_raw+=("$work/corosync-$tr.raw.txt")
    else
        echo "bench: corosync run ($tr) left no results; see $work/corosync-$tr.log" >&2
    fi
done

# ----- the table ----------------------------------------------------------------------------

"$bench" report "$raw" "${coro_raw[@]}" > "$work/table.txt"
if [ -s "$idle_raw" ]; then
    { echo; idle_table; } >> "$work/table.txt"
fi
if [ -s "$ckpt_raw" ]; then
    { echo; ckpt_table; } >> "$work/table.txt"
fi
if [ -s "$soak_raw" ]; then
    { echo; soak_table; } >> "$work/table.txt"
fi
echo
cat "$work/table.txt"
echo
echo "raw lines: $raw${coro_raw[*]:+ ${coro_raw[*]}}${CKPT_MODES:+ $ckpt_raw}; daemon logs: $work/node*/aisexec.log"
echo "bench: total $(($(date +%s) - t_start)) s" >&2
