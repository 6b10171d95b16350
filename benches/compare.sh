#!/usr/bin/env bash
# switchback vs coturn vs the bare forwarder, on loopback, same load (docs/performance.md).
#
#   benches/compare.sh                 # 3 interleaved repetitions, table on stdout
#   REPS=1 DURATION=3 benches/compare.sh
#   SVG=docs/performance.svg benches/compare.sh   # also redraw the chart in the docs
#   CALLS=1 benches/compare.sh         # also the call model (CALL_CASES, allocations:pps)
#   CALLS=1 ONLY=call benches/compare.sh   # only the cases whose name starts with `call`
#   HOLD=100000 ONLY=none benches/compare.sh   # only the held-allocations run (switchback, then coturn; buckets)
#   CASES='^tcp' REPS=2 DURATION=3 benches/compare.sh   # only the cases whose name matches (grep -E)
#   BIN=/tmp/base/release benches/compare.sh      # binaries built elsewhere (an A/B), no build here
#   SCALE="1 10 100 1000 4000 10000" ONLY=scale benches/compare.sh   # the scaling chart: the same
#                                      # total rate (SCALE_RATE msgs/s) over N call-like allocations
#
# Each server is pinned to core 0 (taskset) with one relay thread / worker, the load tool to core 1.
# Servers are started here on free ports and stopped by PID; traffic stays on 127.0.0.0/8; every
# load run is bounded (DURATION seconds, COUNT messages). Needs coturn (`apt-get install coturn`);
# the TLS case needs openssl for a self-signed certificate (skipped without it).
set -euo pipefail

REPS=${REPS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
COUNT=${COUNT:-50000000}
ALLOCATIONS=${ALLOCATIONS:-8}
WINDOW=${WINDOW:-8}
ALLOC_COUNT=${ALLOC_COUNT:-2000}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
SECRET=bench-secret-$$
CALLS=${CALLS:-}            # non-empty: the call-model cases too (10,000 allocations take a while)
# allocations:msgs-per-second-each. Pairs carry the same msgs/s over 10x the allocations; 50 pps
# is an audio call. 10000:50 (500k msgs/s) is beyond one core of any server and of the load tool.
CALL_CASES=${CALL_CASES:-1000:20 10000:2 1000:50 10000:5}
HOLD=${HOLD:-}              # N: hold N allocations on switchback, then coturn (relay-ip 127.0.0.2-9), buckets of 10k
SCALE=${SCALE:-}            # allocation counts for the scaling rows and chart (scale-N cases)
SCALE_RATE=${SCALE_RATE:-10000}  # their total message rate: each of N allocations sends SCALE_RATE/N a second
ONLY=${ONLY:-}              # run only the relay cases whose name starts with this (and no alloc rows)

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
out=${OUT:-$target/compare}
mkdir -p "$out"
work=$(mktemp -d)
results="$out/results.csv"
: > "$results"
calls="$out/calls.txt"
: > "$calls"
call_run=0

command -v turnserver >/dev/null || { echo "coturn is missing: apt-get install coturn" >&2; exit 1; }
CASES=${CASES:-}
if [ -n "${BIN:-}" ]; then
    bin=$BIN
else
    (cd "$root" && cargo build --release --quiet --bin switchback --bin switchback-load)
    bin="$target/release"
fi
selected() { [ -z "$CASES" ] || grep -Eq -- "$CASES" <<<"$1"; }

pin() { # pin CORE CMD...: taskset when there is one and the core exists; exec, so `pin … &` gives $! = the PID
    local core=$1; shift
    if command -v taskset >/dev/null && [ "$(nproc)" -gt "$core" ]; then exec taskset -c "$core" "$@"; else exec "$@"; fi
}

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# A self-signed certificate for 127.0.0.1, for both servers' TLS listeners.
tls_cert=; tls_key=
if command -v openssl >/dev/null; then
    tls_cert="$work/cert.pem"; tls_key="$work/key.pem"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE -addext keyUsage=digitalSignature \
        -addext extendedKeyUsage=serverAuth -keyout "$tls_key" -out "$tls_cert" 2>/dev/null || { tls_cert=; tls_key=; }
fi
[ -n "$tls_cert" ] || echo "openssl missing or failed: the TLS case is skipped" >&2

free_port() { # a free UDP port on 127.0.0.1, below the relay range
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 10000))
        if ! ss -Hlun "sport = :$p" 2>/dev/null | grep -q . && ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"; return
        fi
    done
    echo "no free port" >&2; exit 1
}

wait_for() { # wait_for FILE PATTERN: up to 10 s
    for _ in $(seq 1 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1
}

start_coturn() {
    local port; port=$(free_port)
    local dir="$work/coturn-$1"; mkdir -p "$dir"
    local tls=(--no-tls); coturn_tls_addr=
    if [ -n "$tls_cert" ]; then
        local tport; tport=$(free_port)
        tls=(--tls-listening-port "$tport" --cert "$tls_cert" --pkey "$tls_key")
        coturn_tls_addr="127.0.0.1:$tport"
    fi
    pin "$SERVER_CORE" turnserver -n --listening-ip 127.0.0.1 --relay-ip 127.0.0.1 --listening-port "$port" \
        --use-auth-secret --static-auth-secret "$SECRET" --realm bench.local --allow-loopback-peers \
        "${tls[@]}" --no-dtls --relay-threads 1 --no-cli --log-file "$dir/coturn.log" --simple-log \
        --db "$dir/turndb" --pidfile "$dir/pid" --min-port 49152 --max-port 65535 >"$dir/out" 2>&1 &
    coturn_pid=$!; pids+=("$coturn_pid")
    coturn_addr="127.0.0.1:$port"
    for _ in $(seq 1 100); do ss -Hlun "sport = :$port" | grep -q . && break; sleep 0.1; done
    sleep 0.5
}

start_switchback() {
    local log="$work/switchback-$1.log"
    local workers=()
    if "$bin/switchback" --help | grep -q -- '--workers'; then workers=(--workers 1); fi
    local tls=(--no-tls)
    if [ -n "$tls_cert" ]; then tls=(--cert "$tls_cert" --pkey "$tls_key"); fi
    RUST_LOG=warn pin "$SERVER_CORE" "$bin/switchback" --listening-ip 127.0.0.1 --listening-port 0 \
        --static-auth-secret "$SECRET" --allow-loopback-peers "${tls[@]}" \
        --rate-limit-unauth 0 --rate-limit-allocate 0 --user-quota 0 --total-quota 0 "${workers[@]}" >"$log" 2>&1 &
    switchback_pid=$!; pids+=("$switchback_pid")
    wait_for "$log" "listening udp"
    switchback_addr=$(grep -o 'listening udp [0-9.:]*' "$log" | head -1 | awk '{print $3}')
    # Port 0 gives TCP a port of its own.
    switchback_tcp_addr=$(grep -o 'listening tcp [0-9.:]*' "$log" | head -1 | awk '{print $3}')
    switchback_tls_addr=$(grep -o 'listening tls [0-9.:]*' "$log" | head -1 | awk '{print $3}')
}

start_forwarder() {
    local log="$work/forwarder-$1.log"
    pin "$SERVER_CORE" "$bin/switchback-load" forwarder --duration 3000 >"$log" 2>&1 &
    forwarder_pid=$!; pids+=("$forwarder_pid")
    wait_for "$log" "listening"
    forwarder_addr=$(awk '/listening/{print $2","$3}' "$log")
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

field() { # field NAME RESULT_LINE
    tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1==k{print $2}'
}

# relay CASE SERVER -- load args...
relay() {
    local case=$1 server=$2; shift 3
    local pid addr line
    case $server in
        forwarder) pid=$forwarder_pid; addr=(--forwarder "$forwarder_addr") ;;
        coturn)
            pid=$coturn_pid
            if [[ "$*" == *--tls* ]]; then addr=(--server "$coturn_tls_addr" --tls-cert "$tls_cert"); else addr=(--server "$coturn_addr"); fi
            addr+=(--secret "$SECRET") ;;
        switchback)
            pid=$switchback_pid
            if [[ "$*" == *--tcp* ]]; then addr=(--server "$switchback_tcp_addr");
            elif [[ "$*" == *--tls* ]]; then addr=(--server "$switchback_tls_addr" --tls-cert "$tls_cert");
            else addr=(--server "$switchback_addr"); fi
            addr+=(--secret "$SECRET") ;;
    esac
    # The call model: thousands of allocations, deleted without waiting at the end; each run gets
    # client addresses of its own (127.0.N.2), so no 5-tuple meets an allocation of an earlier run.
    local extra=()
    if [[ "$*" == *--call* ]]; then call_run=$((call_run + 1)); extra=(--client-ip "127.0.$((call_run % 250 + 1)).2"); fi
    line=$(pin "$LOAD_CORE" timeout $((${DURATION%.*} + ${WARMUP%.*} + 181)) "$bin/switchback-load" --quiet relay "${addr[@]}" \
        --server-pid "$pid" --warmup "$WARMUP" --duration "$DURATION" --count "$COUNT" "${extra[@]}" "$@" | grep '^result')
    printf '%s,%s,%s,%s,%s,%s,%s,%s,,\n' "$case" "$server" "$rep" "$(field msgs_per_cpu_s "$line")" \
        "$(field loss_pct "$line")" "$(field rtt_p50_us "$line")" "$(field rtt_p99_us "$line")" \
        "$(field msgs_per_s "$line")" >>"$results"
    echo "  $case $server: $line" >&2
    if [[ "$*" == *--call* ]]; then echo "$case $server $rep $line" >>"$calls"; fi
}

alloc() { # alloc CASE PARALLEL SERVER PID ADDR LAST-OCTET (each run its own client address: no 5-tuple reuse)
    local line
    line=$(pin "$LOAD_CORE" timeout 300 "$bin/switchback-load" --quiet alloc --server "$5" --secret "$SECRET" \
        --count "$ALLOC_COUNT" --parallel "$2" --server-pid "$4" --client-ip "127.0.0.$6" | grep '^result')
    printf '%s,%s,%s,,,,,%s,%s,%s\n' "$1" "$3" "$rep" "$(field allocs_per_s "$line")" \
        "$(field cpu_us_per_alloc "$line")" "$(field kib_per_alloc "$line")" >>"$results"
    echo "  $1 $3: $line" >&2
}

cases=(
    "channel-100|--mode channel --size 100 --allocations $ALLOCATIONS --window $WINDOW"
    "channel-1200|--mode channel --size 1200 --allocations $ALLOCATIONS --window $WINDOW"
    "send-100|--mode send --size 100 --allocations $ALLOCATIONS --window $WINDOW"
    "rtt-unloaded|--mode channel --size 100 --allocations 1 --window 1"
    "tcp-channel-100|--tcp --mode channel --size 100 --allocations $ALLOCATIONS --window $WINDOW"
)
if [ -n "$tls_cert" ]; then
    cases+=("tls-channel-100|--tls --mode channel --size 100 --allocations $ALLOCATIONS --window $WINDOW")
fi
if [ -n "$CALLS" ]; then
    for c in $CALL_CASES; do cases+=("call-${c%%:*}x${c##*:}pps|--call --pps ${c##*:} --allocations ${c%%:*}"); done
fi

for n in $SCALE; do
    pps=$((SCALE_RATE / n)); [ "$pps" -ge 1 ] || pps=1
    cases+=("scale-$n|--call --pps $pps --allocations $n")
done

for rep in $(seq 1 "$REPS"); do
    echo "repetition $rep of $REPS" >&2
    # Fresh servers each repetition; allocations first, so memory growth is measured on a fresh heap.
    start_coturn "$rep"; start_switchback "$rep"; start_forwarder "$rep"
    if (( rep % 2 )); then order=(coturn switchback); else order=(switchback coturn); fi
    # One at a time (a fresh client's two round trips, the server idle in between; memory per held
    # allocation), then 16 in flight (the server busy: CPU per allocation without the idle wake-ups).
    for par in 1 16; do
        [ -z "$ONLY" ] || break
        case_name=alloc; [ "$par" = 1 ] || case_name="alloc-x$par"
        selected "$case_name" || continue
        for s in "${order[@]}"; do
            octet=$((par == 1 ? 3 : 4))
            if [ "$s" = coturn ]; then alloc "$case_name" "$par" coturn "$coturn_pid" "$coturn_addr" "$octet"
            else alloc "$case_name" "$par" switchback "$switchback_pid" "$switchback_addr" "$octet"; fi
        done
    done
    for c in "${cases[@]}"; do
        name=${c%%|*}; args=${c#*|}
        [[ -z "$ONLY" || $name == "$ONLY"* ]] || continue
        selected "$name" || continue
        if (( rep % 2 )); then servers=(forwarder coturn switchback); else servers=(switchback coturn forwarder); fi
        for s in "${servers[@]}"; do
            # The bare forwarder is UDP only.
            if [ "$s" = forwarder ] && [[ $args == *--tcp* || $args == *--tls* ]]; then continue; fi
            # shellcheck disable=SC2086
            relay "$name" "$s" -- $args
        done
    done
    stop "$coturn_pid"; stop "$switchback_pid"; stop "$forwarder_pid"
done

# HOLD=N: N allocations held on one server whose relay sockets spread over 127.0.0.2-127.0.0.9
# (relay-ip repeated, the whole port range on each: 8 x 16,384 ports), from clients on 127.0.1.x;
# the server's and the tool's RLIMIT_NOFILE raised (prlimit, as root) to hold a socket each. First
# switchback, then coturn (HOLD_COTURN=0 skips it), each fresh, the same tool run against each. The
# rows: rate, server CPU and RSS growth per allocation per bucket of HOLD_BUCKET (10,000).
hold() { # hold NAME ADDR PID: the allocation run against one server, its lines prefixed with NAME
    echo "holding $HOLD allocations on $1 ($2)" >&2
    pin "$LOAD_CORE" prlimit --nofile="$nofile:$nofile" timeout 1800 "$bin/switchback-load" --quiet alloc \
        --server "$2" --secret "$SECRET" --count "$HOLD" --parallel 16 --bucket "${HOLD_BUCKET:-10000}" \
        --server-pid "$3" --client-ip 127.0.1.2 --max-time 1500 | sed "s/^/$1 /" | tee -a "$out/hold.txt" >&2 || true
}
if [ -n "$HOLD" ]; then
    : > "$out/hold.txt"
    log="$work/switchback-hold.log"
    nofile=$((HOLD + 4096))
    # Raising the hard limit needs CAP_SYS_RESOURCE; without it both processes stay at the hard
    # limit, and the run stops where the first of them runs out (the result line says which).
    if ! prlimit --nofile="$nofile:$nofile" true 2>/dev/null; then
        echo "cannot raise RLIMIT_NOFILE to $nofile (no CAP_SYS_RESOURCE?): staying at the hard limit $(ulimit -Hn)" >&2
        nofile=$(ulimit -Hn)
    fi
    relay_ips=(); for o in 2 3 4 5 6 7 8 9; do relay_ips+=(--relay-ip "127.0.0.$o"); done
    RUST_LOG=warn pin "$SERVER_CORE" prlimit --nofile="$nofile:$nofile" "$bin/switchback" --listening-ip 127.0.0.1 \
        --listening-port 0 --static-auth-secret "$SECRET" --no-tls "${relay_ips[@]}" \
        --rate-limit-unauth 0 --rate-limit-allocate 0 --user-quota 0 --total-quota 0 --workers 1 >"$log" 2>&1 &
    hold_pid=$!; pids+=("$hold_pid")
    wait_for "$log" "listening udp"
    hold_addr=$(grep -o 'listening udp [0-9.:]*' "$log" | head -1 | awk '{print $3}')
    hold switchback "$hold_addr" "$hold_pid"
    stop "$hold_pid"
    if [ "${HOLD_COTURN:-1}" != 0 ]; then
        port=$(free_port); dir="$work/coturn-hold"; mkdir -p "$dir"
        pin "$SERVER_CORE" prlimit --nofile="$nofile:$nofile" turnserver -n --listening-ip 127.0.0.1 \
            "${relay_ips[@]}" --listening-port "$port" --use-auth-secret --static-auth-secret "$SECRET" \
            --realm bench.local --no-tls --no-dtls --relay-threads 1 --no-cli --log-file "$dir/coturn.log" \
            --simple-log --db "$dir/turndb" --pidfile "$dir/pid" --min-port 49152 --max-port 65535 >"$dir/out" 2>&1 &
        hold_pid=$!; pids+=("$hold_pid")
        for _ in $(seq 1 100); do ss -Hlun "sport = :$port" | grep -q . && break; sleep 0.1; done
        sleep 0.5
        hold coturn "127.0.0.1:$port" "$hold_pid"
        stop "$hold_pid"
    fi
fi

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)"
echo "coturn: $(turnserver --version 2>/dev/null | head -1); switchback $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "load: $ALLOCATIONS allocations x $WINDOW in flight, ${DURATION}s measured after ${WARMUP}s warm-up, $REPS repetitions (medians)"
echo
if [ -s "$results" ]; then "$bin/switchback-load" table --input "$results" --svg "${SVG:-$out/performance.svg}"; fi
if [ -s "$calls" ]; then
    echo
    echo "call model (160-byte payloads both ways through the relay; every repetition):"
    echo
    echo "| case | server | rep | msgs / server CPU-s | loss % | RTT p50 µs | p99 µs | p999 µs | jitter µs | sent late by the tool % |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    while read -r c s r line; do
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$c" "$s" "$r" "$(field msgs_per_cpu_s "$line")" \
            "$(field loss_pct "$line")" "$(field rtt_p50_us "$line")" "$(field rtt_p99_us "$line")" \
            "$(field rtt_p999_us "$line")" "$(field jitter_us "$line")" "$(field late_pct "$line")"
    done <"$calls"
fi
if [ -s "$out/hold.txt" ]; then echo; echo "held allocations (switchback):"; cat "$out/hold.txt"; fi
