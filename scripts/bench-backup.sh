#!/usr/bin/env bash
# `make bench-backup`: backup and restore throughput (issue #6).
#
# Starts a local 3-node cluster (127.0.0.1-3, one UDP port, a sealed ring,
# ckpt_memory_limit raised to hold the data), then runs the testsuite's
# backup_throughput against node 1: it loads MIB MiB of checkpoint data
# (CHECKPOINTS checkpoints of 1 MiB sections, every write through the
# ring), times a backup of all of it into a fresh directory (start to
# COMPLETE: every share written, fsynced and its CRC reported, manifest
# flushed), a verify of the backup's files, and a restore of it over the
# same checkpoints (overwrite: through the ring into every replica).
# Repeated REPS times on a fresh cluster each; prints every run and the
# medians. Each daemon's peak RSS is printed after each run.
#
# Stops only the daemons it started, by pid. Loopback only; no root.
#
# Environment (defaults): MIB=1024 CHECKPOINTS=64 REPS=3
#   BENCH_DIR (default: a new temporary directory; the backups are
#   removed after each run, the logs kept)  AIS_BIN_DIR (target/release)
#   BENCH_PORT (default 41000 + pid % 1000)

set -uo pipefail

root_dir=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=${AIS_BIN_DIR:-$root_dir/target/release}
MIB=${MIB:-1024}
CHECKPOINTS=${CHECKPOINTS:-64}
REPS=${REPS:-3}
port=${BENCH_PORT:-$((41000 + $$ % 1000))}
nodes=3

for b in aisexec ais-ring-status ais-keygen backup_throughput; do
    if [ ! -x "$bin_dir/$b" ]; then
        echo "bench-backup: $bin_dir/$b is missing (make bench-backup builds it)" >&2
        exit 1
    fi
done

work=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/ais-bench-backup.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)
"$bin_dir/ais-keygen" --force -o "$work/authkey" > /dev/null || exit 1
# Three replicas of the data plus slack for the restore's rewrite.
limit=$(( (MIB + 64) * 1024 * 1024 ))

pids=()

write_config() {
    local i=$1 dir=$work/node$1
    mkdir -p "$dir"
    {
        echo "totem {"
        echo "    version: 2"
        echo "    cluster_name: bench-backup"
        echo "    transport: udpu"
        echo "    nodeid: $i"
        echo "    port: $port"
        echo "    keyfile: $work/authkey"
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
        echo "    ckpt_memory_limit: $limit"
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
        [ -n "$pid" ] && kill -TERM "$pid" 2> /dev/null
    done
    for pid in "${pids[@]}"; do
        [ -n "$pid" ] || continue
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
trap 'echo "bench-backup: interrupted" >&2; exit 130' INT TERM

results=$work/results.txt
: > "$results"
for rep in $(seq 1 "$REPS"); do
    for i in $(seq 1 $nodes); do
        rm -rf "$work/node$i"
        write_config "$i"
        "$bin_dir/aisexec" -f -c "$work/node$i/aisexec.conf" \
            >> "$work/node$i/aisexec.log" 2>&1 &
        pids+=($!)
    done
    for i in $(seq 1 $nodes); do
        if ! "$bin_dir/ais-ring-status" --socket "$work/node$i/aisexec.sock" \
                --wait-members $nodes --timeout 20 > /dev/null; then
            echo "bench-backup: node$i did not reach a $nodes-member ring" >&2
            tail -n 20 "$work/node$i/aisexec.log" >&2
            exit 1
        fi
    done
    dest=$work/dest
    rm -rf "$dest"
    mkdir -p "$dest"
    echo "bench-backup: run $rep of $REPS: $MIB MiB in $CHECKPOINTS checkpoints"
    if ! "$bin_dir/backup_throughput" --socket "$work/node1/aisexec.sock" \
            --dest "$dest" --mib "$MIB" --checkpoints "$CHECKPOINTS" \
            | tee -a "$results"; then
        echo "bench-backup: run $rep failed; logs in $work/node*/aisexec.log" >&2
        exit 1
    fi
    for i in $(seq 1 $nodes); do
        hwm=$(awk '/VmHWM/ {print $2}' "/proc/${pids[$((i - 1))]}/status" 2> /dev/null)
        echo "  node $i peak RSS: $((${hwm:-0} / 1024)) MiB"
    done
    stop_all
    rm -rf "$dest"
done

median() {
    sort -n | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'
}
echo
echo "bench-backup: medians of $REPS runs, $MIB MiB of checkpoint data, 3 nodes"
for phase in load backup verify restore; do
    m=$(grep "^$phase:" "$results" | sed 's/.*= \([0-9.]*\) MiB\/s.*/\1/' | median)
    printf '  %-8s %8s MiB/s\n' "$phase" "$m"
done
echo "raw lines: $results; daemon logs: $work/node*/aisexec.log"
