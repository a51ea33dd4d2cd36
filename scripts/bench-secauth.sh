#!/usr/bin/env bash
# `make bench-secauth`: what sealing the ring costs. Two local 3-node
# clusters run side by side, one with secauth on (port P) and one with
# secauth off (port P+1); for each of REPS rounds and each size in SIZES,
# ais-bench tput runs SECS seconds against the sealed cluster, then at once
# against the plain one, so both modes see the same load on the host.
# Prints the medians per mode and size and the ratio on/off.
#
# It stops only the daemons it started, by pid (also on Ctrl-C or error).
# Never part of `make test`. Loopback only; no root needed.
#
# Environment (defaults): REPS=3 SECS=5 SIZES="64 1024 8192 65000" SENDERS=1
#   ("all": every node sends; on a loaded host the bench client may then
#   fall behind and be closed as a slow consumer; such a run is retried)
#   CIPHER=aes256 (or aes128, chacha20poly1305) TOKEN_MS=1000
#   BENCH_PORT (default 41000 + 2 x (pid % 500))  BENCH_DIR (default: a new
#   temporary directory, kept for its raw.txt and logs)
#   AIS_BIN_DIR (default target/release)

set -uo pipefail

root_dir=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=${AIS_BIN_DIR:-$root_dir/target/release}
REPS=${REPS:-3}
SECS=${SECS:-5}
SIZES=${SIZES:-"64 1024 8192 65000"}
CIPHER=${CIPHER:-aes256}
TOKEN_MS=${TOKEN_MS:-1000}
SENDERS=${SENDERS:-1}
port=${BENCH_PORT:-$((41000 + 2 * ($$ % 500)))}
nodes=3

aisexec=$bin_dir/aisexec
ring_status=$bin_dir/ais-ring-status
bench=$bin_dir/ais-bench
keygen=$bin_dir/ais-keygen
for b in "$aisexec" "$ring_status" "$bench" "$keygen"; do
    if [ ! -x "$b" ]; then
        echo "bench-secauth: $b is missing; build first (make release)" >&2
        exit 1
    fi
done

work=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/ais-bench-secauth.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)
raw=$work/raw.txt
: > "$raw"
"$keygen" --force -o "$work/authkey" > /dev/null || exit 1
sockets_on=()
sockets_off=()
for i in $(seq 1 $nodes); do
    sockets_on+=(--socket "$work/on/node$i/aisexec.sock")
    sockets_off+=(--socket "$work/off/node$i/aisexec.sock")
done

pids=()

write_config() {  # write_config I MODE
    local i=$1 mode=$2 dir=$work/$2/node$1 p=$port
    [ "$2" = off ] && p=$((port + 1))
    mkdir -p "$dir"
    {
        echo "totem {"
        echo "    version: 2"
        echo "    nodeid: $i"
        echo "    port: $p"
        echo "    token: $TOKEN_MS"
        if [ "$mode" = on ]; then
            echo "    crypto_cipher: $CIPHER"
            echo "    keyfile: $work/authkey"
        else
            echo "    secauth: off"
        fi
        echo "}"
        echo "nodelist {"
        for j in $(seq 1 $nodes); do
            echo "    node {"
            echo "        ring0_addr: 127.0.0.$j"
            echo "        nodeid: $j"
            echo "    }"
        done
        echo "}"
        echo "system {"
        echo "    run_dir: $dir"
        echo "}"
        echo "logging {"
        echo "    to_stderr: yes"
        echo "    to_syslog: no"
        echo "    timestamp: on"
        echo "}"
    } > "$dir/aisexec.conf"
}

stop_all() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2> /dev/null
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do
            kill -0 "$pid" 2> /dev/null || break
            sleep 0.05
        done
        kill -KILL "$pid" 2> /dev/null
        wait "$pid" 2> /dev/null
    done
    pids=()
}
trap stop_all EXIT
trap 'echo "bench-secauth: interrupted" >&2; exit 130' INT TERM

start_cluster() {  # start_cluster MODE
    local i dir
    for i in $(seq 1 $nodes); do
        write_config "$i" "$1"
        dir=$work/$1/node$i
        "$aisexec" -f -c "$dir/aisexec.conf" >> "$dir/aisexec.log" 2>&1 &
        pids+=($!)
    done
    for i in $(seq 1 $nodes); do
        dir=$work/$1/node$i
        if ! "$ring_status" --socket "$dir/aisexec.sock" --wait-members $nodes \
                --timeout 20 > /dev/null; then
            echo "bench-secauth: $1 node$i did not reach a $nodes-member ring; its log:" >&2
            tail -n 20 "$dir/aisexec.log" >&2
            return 1
        fi
    done
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench-secauth: results in $work (ports $port/$((port + 1)), cipher $CIPHER, $REPS reps x $SECS s)" >&2
start_cluster on || exit 1
start_cluster off || exit 1
sleep 0.5
for r in $(seq 1 "$REPS"); do
    for s in $SIZES; do
        for mode in on off; do
            if [ "$mode" = on ]; then socks=("${sockets_on[@]}"); else socks=("${sockets_off[@]}"); fi
            # A run the client could not finish (on a loaded host it can be
            # closed as a slow consumer) is tried again, twice at most.
            line=""
            for try in 1 2 3; do
                out=$(timeout 120 "$bench" tput "${socks[@]}" --size "$s" --secs "$SECS" \
                    --senders "$SENDERS" --label "secauth-$mode")
                line=$(grep ' node=2 ' <<< "$out" | grep 'result=ok ')
                [ -n "$line" ] && break
                echo "bench-secauth: rep $r secauth=$mode size=$s: try $try failed:" \
                    "$(grep ' node=2 ' <<< "$out" | head -c 300)" >&2
            done
            mbs=$(grep -o ' MB_per_s=[0-9.]*' <<< "$line" | head -1 | cut -d= -f2)
            msgs=$(grep -o ' msgs_per_s=[0-9.]*' <<< "$line" | head -1 | cut -d= -f2)
            if [ -n "$msgs" ]; then
                echo "rep=$r secauth=$mode size=$s msgs_per_s=$msgs MB_per_s=$mbs" | tee -a "$raw" >&2
            fi
        done
    done
done
stop_all
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

median() {  # median FIELD MODE SIZE
    grep " secauth=$2 size=$3 " "$raw" | grep -o " $1=[0-9.]*" | cut -d= -f2 | sort -g \
        | awk '{v[NR] = $1} END {
            if (NR == 0) print 0;
            else if (NR % 2) print v[(NR + 1) / 2];
            else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo
echo "Throughput, 3 nodes, senders $SENDERS, delivered at node 2 (medians of $REPS; cipher $CIPHER)"
printf '  %7s %14s %14s %12s %12s %8s\n' size "on msgs/s" "off msgs/s" "on MB/s" "off MB/s" on/off
for s in $SIZES; do
    on_m=$(median msgs_per_s on "$s")
    off_m=$(median msgs_per_s off "$s")
    on_b=$(median MB_per_s on "$s")
    off_b=$(median MB_per_s off "$s")
    ratio=$(awk -v a="$on_m" -v b="$off_m" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    printf '  %7s %14s %14s %12s %12s %8s\n' "$s" "$on_m" "$off_m" "$on_b" "$off_b" "$ratio"
done
echo "  host load average (1/5/15 min): $load_start at the start, $load_end at the end ($(nproc) CPUs)"
echo
echo "raw lines: $raw; daemon logs: $work/{on,off}/node*/aisexec.log"
