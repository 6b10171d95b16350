#!/usr/bin/env bash
# The XDP fast path (issue #19) against the user-space path: messages relayed per TOTAL system
# CPU-second (every CPU's user+nice+system+irq+softirq from /proc/stat, the load generator
# included), on the veth setup of tests/xdp.rs (docs/performance.md, "The XDP fast path").
#
#   sudo benches/xdp.sh                          # REPS=2: off, xdp, off, xdp; Markdown table on stdout
#   REPS=3 DURATION=10 ALLOCATIONS=50 WINDOW=8 SIZE=100 benches/xdp.sh
#   BIN=/tmp/elsewhere/release benches/xdp.sh    # binaries built elsewhere (built with --features xdp,load)
#
# Needs root (namespaces, XDP), ip, ethtool, curl, taskset (optional). It creates two network
# namespaces of its own (sbxc$$ with the load tool: clients and echo peer, sbxs$$ with the daemon)
# joined by a veth pair, addresses from 198.18.0.0/15 (RFC 2544's benchmarking range, which exists
# only inside them); TX checksum offload off on the client side and an XDP_PASS program on the
# client end (a veth takes XDP_TX frames only when its peer runs XDP), in both modes. The release
# daemon runs in the server namespace twice per repetition, `fast-path off` and `fast-path xdp` on
# its veth end, each for one bounded load run (`switchback-load relay --netns-addresses`: DURATION
# seconds, at most COUNT messages). The machine is shared: before each measured run the script waits
# while /tmp/bench.lock exists (every 5 s, 15 minutes at most), holds /tmp/bench.xdp.lock during the
# measurement, and measures the background (the other users' CPU) for BASELINE seconds just before.
# Everything it starts it stops by PID; the namespaces go on exit.
set -euo pipefail

REPS=${REPS:-2}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
COUNT=${COUNT:-20000000}
ALLOCATIONS=${ALLOCATIONS:-50}
WINDOW=${WINDOW:-8}
SIZE=${SIZE:-100}
BASELINE=${BASELINE:-2}     # seconds of idle measurement (our processes quiet) before each run
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
LOCK_WAIT=${LOCK_WAIT:-900} # seconds to wait for /tmp/bench.lock to go

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, XDP)" >&2; exit 1; }
for tool in ip ethtool curl; do command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 1; }; done

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
if [ -n "${BIN:-}" ]; then
    bin=$BIN
else
    (cd "$root" && nice -n 10 cargo build --release --quiet --features xdp,load --bin switchback --bin switchback-load)
    bin="$target/release"
fi
# The XDP_PASS program for the client end: the object build.rs compiled (newest build).
obj=$(ls -t "$bin"/build/switchback-*/out/channel_relay.o 2>/dev/null | head -1 || true)
[ -n "$obj" ] || { echo "no channel_relay.o under $bin/build (build with --features xdp)" >&2; exit 1; }

SECRET=xdp-bench-$$
CNS=sbxc$$; SNS=sbxs$$; CIF=vxc$$; SIF=vxs$$
SERVER_IP=198.18.0.1; CLIENT_IP=198.18.0.2
METRICS=$SERVER_IP:9641
work=$(mktemp -d)
daemon_pid=
holding_lock=

stop() { # stop PID: TERM, then KILL after 5 s; only a PID this script started
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    [ -n "$daemon_pid" ] && stop "$daemon_pid"
    [ -n "$holding_lock" ] && rm -f /tmp/bench.xdp.lock
    ip netns del "$CNS" 2>/dev/null || true
    ip netns del "$SNS" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pin() { # pin CORE CMD...: taskset when there is one and the core exists; exec, so `pin … &` gives $! = the PID
    local core=$1; shift
    if command -v taskset >/dev/null && [ "$(nproc)" -gt "$core" ]; then exec taskset -c "$core" "$@"; else exec "$@"; fi
}

# The namespaces, as tests/xdp.rs makes them.
ip netns add "$CNS"
ip netns add "$SNS"
ip link add "$CIF" netns "$CNS" type veth peer name "$SIF" netns "$SNS"
ip -n "$CNS" addr add "$CLIENT_IP/24" dev "$CIF"
ip -n "$SNS" addr add "$SERVER_IP/24" dev "$SIF"
ip -n "$CNS" link set lo up
ip -n "$SNS" link set lo up
ip -n "$CNS" link set "$CIF" up
ip -n "$SNS" link set "$SIF" up
ip -n "$CNS" link set dev "$CIF" xdp obj "$obj" sec xdp program pass_all
# A veth hands on the sender's UDP checksum half done (TX offload); a wire delivers complete ones.
ip netns exec "$CNS" ethtool -K "$CIF" tx off >/dev/null

wait_for() { # wait_for LOG TEXT [FAIL_TEXT]: up to 15 s
    local i
    for i in $(seq 150); do
        grep -q -- "$2" "$1" && return 0
        if [ -n "${3:-}" ] && grep -q -- "$3" "$1"; then echo "daemon: $3" >&2; cat "$1" >&2; exit 1; fi
        kill -0 "$daemon_pid" 2>/dev/null || { echo "the daemon exited" >&2; cat "$1" >&2; exit 1; }
        sleep 0.1
    done
    echo "no '$2' in $1 after 15 s" >&2; cat "$1" >&2; exit 1
}

start_daemon() { # start_daemon MODE (off|xdp)
    local log="$work/switchback-$1-$rep.log" fast=(--fast-path "$1")
    [ "$1" = xdp ] && fast+=(--xdp-interface "$SIF")
    RUST_LOG=info pin "$SERVER_CORE" ip netns exec "$SNS" "$bin/switchback" --listening-ip "$SERVER_IP" \
        --listening-port 3478 --relay-ip "$SERVER_IP" --allowed-peer-ip "$CLIENT_IP" --static-auth-secret "$SECRET" \
        --no-tls --no-tcp --workers 1 --rate-limit-unauth 0 --rate-limit-allocate 0 --user-quota 0 --total-quota 0 \
        --metrics-listen "$METRICS" "${fast[@]}" >"$log" 2>&1 &
    daemon_pid=$!
    wait_for "$log" "listening udp"
    [ "$1" = xdp ] && wait_for "$log" "XDP program attached" "fast path off"
    # `ip netns exec` and taskset exec: the PID is the daemon's (PIDs are global across net namespaces).
    [ "$(cat /proc/"$daemon_pid"/comm)" = switchback ] || { echo "PID $daemon_pid is not the daemon" >&2; exit 1; }
    wait_metrics
}

metrics() { ip netns exec "$SNS" curl -s --max-time 5 "http://$METRICS/metrics"; }
wait_metrics() { # until the metrics face answers, 10 s at most
    local i
    for i in $(seq 100); do metrics >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "no metrics on $METRICS" >&2; exit 1
}
sample() { # sample METRICS_TEXT NAME{labels}: the value, 0 if absent
    awk -v k="$2" '$1==k{printf "%.0f", $2; found=1} END{if(!found) print 0}' <<<"$1"
}
packets() { # packets METRICS_TEXT PREFIX: to_peer + to_client of PREFIX_packets_total
    echo $(( $(sample "$1" "${2}_packets_total{direction=\"to_peer\"}") + $(sample "$1" "${2}_packets_total{direction=\"to_client\"}") ))
}

busy_ticks() { awk '$1=="cpu"{print $2+$3+$4+$7+$8; exit}' /proc/stat; }

take_lock() { # waits while /tmp/bench.lock exists (the lead's benchmarks), then holds ours
    local waited=0
    while [ -e /tmp/bench.lock ]; do
        if [ "$waited" -ge "$LOCK_WAIT" ]; then echo "/tmp/bench.lock still there after $LOCK_WAIT s: giving up" >&2; exit 1; fi
        [ "$waited" = 0 ] && echo "waiting for /tmp/bench.lock to go" >&2
        sleep 5; waited=$((waited + 5))
    done
    echo "$$" > /tmp/bench.xdp.lock; holding_lock=1
}
drop_lock() { rm -f /tmp/bench.xdp.lock; holding_lock=; }

field() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1==k{print $2}'; }

hz=$(getconf CLK_TCK)
rows="$work/rows"
: > "$rows"
echo "command: REPS=$REPS DURATION=$DURATION WARMUP=$WARMUP COUNT=$COUNT ALLOCATIONS=$ALLOCATIONS WINDOW=$WINDOW SIZE=$SIZE benches/xdp.sh"
echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), kernel $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"

run() { # run MODE
    local mode=$1 line before after m0 m1 b0 b1 bg
    start_daemon "$mode"
    take_lock
    # The background: what the rest of the machine uses while our processes are quiet.
    b0=$(busy_ticks); sleep "$BASELINE"; b1=$(busy_ticks)
    bg=$(awk -v d=$((b1 - b0)) -v hz="$hz" -v s="$BASELINE" 'BEGIN{printf "%.3f", d / hz / s}')
    m0=$(metrics)
    line=$(pin "$LOAD_CORE" timeout $((${DURATION%.*} + ${WARMUP%.*} + 120)) ip netns exec "$CNS" \
        "$bin/switchback-load" --quiet relay --netns-addresses --server "$SERVER_IP:3478" --client-ip "$CLIENT_IP" \
        --secret "$SECRET" --mode channel --allocations "$ALLOCATIONS" --window "$WINDOW" --size "$SIZE" \
        --warmup "$WARMUP" --duration "$DURATION" --count "$COUNT" --server-pid "$daemon_pid" | grep '^result')
    drop_lock
    # The kernel's counters are folded into the metrics once a second and when an allocation ends
    # (the tool deletes its allocations): wait until the relayed total stops moving (5 s at most).
    local relayed=-1 i
    for i in $(seq 50); do
        m1=$(metrics)
        [ "$(packets "$m1" switchback_relayed)" = "$relayed" ] && [ "$(sample "$m1" switchback_fastpath_channels)" = 0 ] && break
        relayed=$(packets "$m1" switchback_relayed)
        sleep 0.1
    done
    local fast=$(( $(packets "$m1" switchback_fastpath) - $(packets "$m0" switchback_fastpath) ))
    local all=$(( $(packets "$m1" switchback_relayed) - $(packets "$m0" switchback_relayed) ))
    stop "$daemon_pid"; daemon_pid=
    echo "  $mode rep $rep: background ${bg} CPUs busy; kernel relayed $fast of $all packets; $line" >&2
    echo "$rep $mode $bg $fast $all $line" >> "$rows"
}

for rep in $(seq "$REPS"); do
    run off
    run xdp
done

# The table: every run, then the means per mode and the ratios. "ours" is the CPU our runs are
# charged with: the daemon, the load tool and the kernel's ksoftirqd threads (this kernel uses tick
# accounting without IRQ time accounting, so softirq work done in a task's context is that task's);
# it leaves out what the other users of the machine ran meanwhile, which the total counts.
awk '
function f(line, k,   n, a, i, kv) { n = split(line, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); if (kv[1] == k) return kv[2] } return "" }
BEGIN {
    print "| rep | path | msgs/s | msgs per total system CPU-s | msgs per CPU-s of ours | system CPU-s (softirq) | server CPU-s | load tool CPU-s | ksoftirqd CPU-s | background CPUs busy | RTT p50 / p99 µs | loss % | relayed in the kernel |"
    print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
}
{
    rep = $1; mode = $2; bg = $3; fast = $4; all = $5; line = $0
    msgs = f(line, "msgs"); sys = f(line, "system_cpu_s"); soft = f(line, "softirq_cpu_s")
    load = f(line, "load_cpu_s"); srv = f(line, "server_cpu_s"); kso = f(line, "ksoftirqd_cpu_s")
    ours = srv + load + kso; if (ours < 0.001) ours = 0.001
    per = msgs / (sys > 0 ? sys : 0.001); perours = msgs / ours
    share = (all > 0) ? 100 * fast / all : 0
    printf "| %s | %s | %.0f | %.0f | %.0f | %.2f (%.2f) | %.2f | %.2f | %.2f | %.2f | %s / %s | %s | %.1f %% of %d |\n", \
        rep, mode, f(line, "msgs_per_s"), per, perours, sys, soft, srv, load, kso, bg, f(line, "rtt_p50_us"), \
        f(line, "rtt_p99_us"), f(line, "loss_pct"), share, all
    n[mode]++; s_rate[mode] += f(line, "msgs_per_s"); s_per[mode] += per; s_ours[mode] += perours
}
END {
    if (n["off"] && n["xdp"]) {
        for (m in n) { r[m] = s_rate[m] / n[m]; p[m] = s_per[m] / n[m]; o[m] = s_ours[m] / n[m] }
        printf "\nMeans over %d repetitions: off %.0f msgs/s, %.0f msgs per total system CPU-s, %.0f per CPU-s of ours; xdp %.0f msgs/s, %.0f msgs per total system CPU-s, %.0f per CPU-s of ours.\n", \
            n["off"], r["off"], p["off"], o["off"], r["xdp"], p["xdp"], o["xdp"]
        printf "Ratio xdp / off: msgs per total system CPU-s %.2fx, per CPU-s of ours %.2fx, msgs/s %.2fx.\n", \
            p["xdp"] / p["off"], o["xdp"] / o["off"], r["xdp"] / r["off"]
    }
}' "$rows"
