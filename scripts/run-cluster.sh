#!/usr/bin/env bash
# A 3-node AIS cluster on this host, for `make run`.
#
# Writes a config per node under ./run/ (node1..3 at 127.0.0.1..3, one UDP
# port, explicit nodeid, run directory ./run/nodeN with its own IPC socket),
# starts the three daemons in the foreground of this script, waits until
# every node is operational with 3 members, prints each node's ring status
# and how to point a client at it, then streams the logs. Ctrl-C (or
# SIGTERM) stops the daemons this script started, by pid, and only those.
#
# The ring is sealed (secauth, the default): the first run makes a key
# with ais-keygen at ./run/authkey (mode 0400) and every node's config
# names it; later runs reuse it.
#
# No root needed. Environment:
#   AIS_RUN_PORT  the UDP port (default 15405)
#   AIS_BIN_DIR   where aisexec and ais-ring-status are (default target/release)
#   AIS_RUN_ROOT  the directory for configs, sockets and logs (default ./run)
#   AIS_RUN_NODES number of nodes (default 3, at most 9)

set -u

root_dir=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=${AIS_BIN_DIR:-$root_dir/target/release}
run_root=${AIS_RUN_ROOT:-$root_dir/run}
port=${AIS_RUN_PORT:-15405}
nodes=${AIS_RUN_NODES:-3}
wait_secs=20

aisexec=$bin_dir/aisexec
ring_status=$bin_dir/ais-ring-status
keygen=$bin_dir/ais-keygen
for b in "$aisexec" "$ring_status" "$keygen"; do
    if [ ! -x "$b" ]; then
        echo "run-cluster: $b is missing; build first (make release)" >&2
        exit 1
    fi
done

mkdir -p "$run_root"
run_root=$(cd "$run_root" && pwd)

# Refuse to start over a cluster that still runs (pid files of an earlier
# run whose process is an aisexec). We never kill it: it is not ours.
for i in $(seq 1 "$nodes"); do
    pidfile=$run_root/node$i/aisexec.pid
    if [ -f "$pidfile" ]; then
        old=$(cat "$pidfile")
        if [ -n "$old" ] && [ "$(cat "/proc/$old/comm" 2>/dev/null)" = aisexec ]; then
            echo "run-cluster: node$i of an earlier run is still running (pid $old);" \
                 "stop it first: kill $old" >&2
            exit 1
        fi
        rm -f "$pidfile"
    fi
done

# ----- configs ----------------------------------------------------------------

keyfile=$run_root/authkey
if [ ! -f "$keyfile" ]; then
    "$keygen" -o "$keyfile" || exit 1
fi

nodelist() {
    echo "nodelist {"
    for j in $(seq 1 "$nodes"); do
        echo "    node {"
        echo "        ring0_addr: 127.0.0.$j"
        echo "        nodeid: $j"
        echo "        name: node$j"
        echo "    }"
    done
    echo "}"
}

for i in $(seq 1 "$nodes"); do
    dir=$run_root/node$i
    mkdir -p "$dir"
    cat > "$dir/aisexec.conf" <<EOF
# Node $i of the local cluster written by scripts/run-cluster.sh.
totem {
    version: 2
    cluster_name: local
    transport: udpu
    nodeid: $i
    port: $port
    token: 1000
    secauth: on
    keyfile: $keyfile
}

$(nodelist)

system {
    run_dir: $dir
}

logging {
    to_stderr: yes
    to_syslog: no
    timestamp: on
    debug: off
}
EOF
done

# ----- start ----------------------------------------------------------------

pids=()
tails=()

stop_all() {
    # A second signal must not cut the cleanup short: `timeout` signals the
    # whole process group and make forwards SIGTERM to this script too.
    trap '' INT TERM
    echo
    echo "run-cluster: stopping the nodes (pids ${pids[*]:-none})"
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null
    done
    for pid in "${tails[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for i in $(seq 1 "$nodes"); do
        rm -f "$run_root/node$i/aisexec.pid"
    done
    echo "run-cluster: stopped"
    exit 0
}
trap stop_all INT TERM

for i in $(seq 1 "$nodes"); do
    dir=$run_root/node$i
    : > "$dir/aisexec.log"
    "$aisexec" -f -c "$dir/aisexec.conf" >> "$dir/aisexec.log" 2>&1 &
    pids+=($!)
    echo $! > "$dir/aisexec.pid"
done
echo "run-cluster: started $nodes nodes (pids ${pids[*]}); waiting for the ring"

# ----- wait for the ring and show it -------------------------------------------

failed=0
for i in $(seq 1 "$nodes"); do
    if ! "$ring_status" --socket "$run_root/node$i/aisexec.sock" \
            --wait-members "$nodes" --timeout "$wait_secs" > /dev/null; then
        failed=1
        echo "run-cluster: node$i did not reach a $nodes-member ring; its log:" >&2
        tail -n 20 "$run_root/node$i/aisexec.log" >&2
    fi
done
if [ "$failed" = 1 ]; then
    stop_all
fi

for i in $(seq 1 "$nodes"); do
    sock=$run_root/node$i/aisexec.sock
    echo
    echo "=== node$i (pid ${pids[$((i - 1))]}, socket $sock)"
    "$ring_status" --socket "$sock"
done
echo
echo "Point a client or tool at a node with its socket, for example:"
echo "    AIS_SOCKET=$run_root/node1/aisexec.sock $ring_status"
echo "Logs: $run_root/node*/aisexec.log. Ctrl-C stops the cluster."
echo

# ----- stream the logs until Ctrl-C ----------------------------------------------

for i in $(seq 1 "$nodes"); do
    # $! is tail's pid (not sed's): killing it ends the pipe.
    tail -n 0 -F "$run_root/node$i/aisexec.log" 2>/dev/null > >(sed -u "s/^/node$i | /") &
    tails+=($!)
done

# Wait for a signal (or for every daemon to exit on its own).
while :; do
    alive=0
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            alive=1
        fi
    done
    if [ "$alive" = 0 ]; then
        echo "run-cluster: every node exited" >&2
        stop_all
    fi
    sleep 1 &
    wait $! 2>/dev/null
done
