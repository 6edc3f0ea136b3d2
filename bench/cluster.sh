#!/usr/bin/env bash
# The cluster benchmark (issue #11): three of our servers (bench/BenchHost --redis, our Redis adapter
# src/SocketIO.Redis) against three Node.js socket.io 4.8 servers with @socket.io/redis-adapter 8.3
# (bench/node-ref --redis-port), each cluster on its own fresh redis-server on this machine; the same
# C# load client (bench/LoadGen `cluster`) spreads the clients evenly over the three nodes, joins them
# all to one room, and asks the first node for bursts of broadcasts to that room: deliveries/s,
# latency p50/p99 from the emit on the first node to the client's read, lost and out-of-order
# deliveries, server CPU per delivery (the three nodes and redis-server summed). Each server is also
# run alone without Redis on the same clients (`single`): the cost of a cross-node broadcast against a
# local one. Servers interleaved per repetition; results in bench/results/cluster-latest.md/json.
#
#   bench/cluster.sh           full run (10 000 clients, 3 bursts of 200 broadcasts, 3 repetitions)
#   bench/cluster.sh --short   smoke mode (300 clients, 2 bursts of 10, 1 repetition; CI): checks the
#                              harness end to end, fails on a lost delivery; results in bench/results/tmp/
#
# Environment overrides: REPS, CLIENTS, BROADCASTS, BURSTS, CONCURRENCY, SERVERS ("node ours"),
# MODES ("cluster single"), SERVER_CPUS / CLIENT_CPUS (taskset lists; default 0 / 1), PORT_BASE
# (default 43000), MAX_BURST_SECONDS (300: a burst not delivered by then counts its missing deliveries
# as lost), OUT_DIR.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
MODE=full
for arg in "$@"; do
  case "$arg" in
    --short) MODE=short ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
log() { printf '==> %s\n' "$*" >&2; }

if [ "$MODE" = short ]; then
  : "${REPS:=1}" "${CLIENTS:=300}" "${BROADCASTS:=10}" "${BURSTS:=2}" "${CONCURRENCY:=50}" "${IDLE_TIMEOUT:=5}"
  : "${OUT_DIR:=$ROOT/bench/results/tmp/cluster-short}"
  STRICT=(--strict)
else
  : "${REPS:=3}" "${CLIENTS:=10000}" "${BROADCASTS:=200}" "${BURSTS:=3}" "${CONCURRENCY:=100}" "${IDLE_TIMEOUT:=10}"
  : "${OUT_DIR:=$ROOT/bench/results}"
  STRICT=()
fi
: "${SERVERS:=node ours}" "${MODES:=cluster single}" "${PORT_BASE:=43000}" "${MAX_BURST_SECONDS:=300}"

command -v redis-server >/dev/null || { echo "redis-server is missing (apt-get install -y redis-server)" >&2; exit 1; }
ulimit -n 65535 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((CLIENTS + 512)) ]; then
  echo "file-descriptor limit $(ulimit -n) is below the $((CLIENTS + 512)) this run needs" >&2
  exit 1
fi

NPROC=$(nproc 2>/dev/null || echo 1)
if command -v taskset >/dev/null 2>&1 && [ "$NPROC" -ge 2 ]; then
  : "${SERVER_CPUS:=0}" "${CLIENT_CPUS:=1}"
  PIN_SERVER=(taskset -c "$SERVER_CPUS"); PIN_CLIENT=(taskset -c "$CLIENT_CPUS")
  PINNING="nodes and redis-server on CPU $SERVER_CPUS, load client on CPU $CLIENT_CPUS (taskset)"
else
  PIN_SERVER=(); PIN_CLIENT=(); PINNING="not pinned (taskset missing or 1 core)"
fi

BIN=bin/Release/net10.0
log "dotnet build -c Release bench/LoadGen bench/BenchHost"
dotnet build -c Release bench/LoadGen -nologo -v q >&2
dotnet build -c Release bench/BenchHost -nologo -v q >&2
if [ ! -f bench/node-ref/node_modules/.package-lock.json ] || [ bench/node-ref/package-lock.json -nt bench/node-ref/node_modules/.package-lock.json ]; then
  log "npm ci (bench/node-ref)"
  (cd bench/node-ref && npm ci --no-audit --no-fund >&2)
fi

RUN_DIR="$ROOT/bench/results/tmp/cluster-$(date +%Y%m%d-%H%M%S)-$$"
mkdir -p "$RUN_DIR" "$OUT_DIR"
PIDS=()
stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
trap stop_all EXIT

start_node() { # server port redis-port(0: none)
  local server="$1" port="$2" redis="$3" logf="$RUN_DIR/$1-$2.log"
  case "$server" in
    node)
      if [ "$redis" != 0 ]; then set -- --redis-port "$redis"; else set --; fi
      "${PIN_SERVER[@]}" node bench/node-ref/server.js --port "$port" "$@" >"$logf" 2>&1 & ;;
    ours)
      if [ "$redis" != 0 ]; then set -- --redis "127.0.0.1:$redis"; else set --; fi
      "${PIN_SERVER[@]}" dotnet "bench/BenchHost/$BIN/BenchHost.dll" --port "$port" "$@" >"$logf" 2>&1 & ;;
  esac
  PIDS+=("$!")
}

failures=0
log "mode $MODE: $CLIENTS clients, $BURSTS bursts of $BROADCASTS broadcasts, $REPS rep(s); $PINNING; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for rep in $(seq 1 "$REPS"); do
  idx=0
  for mode in $MODES; do
    for server in $SERVERS; do
      idx=$((idx + 1))
      base=$((PORT_BASE + rep * 100 + idx * 10))
      urls=(); pids=()
      if [ "$mode" = cluster ]; then
        redis_port=$((base + 9))
        "${PIN_SERVER[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$RUN_DIR/redis-$redis_port.log" 2>&1 &
        PIDS+=("$!"); redis_pid=$!
        for _ in $(seq 1 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
        for n in 1 2 3; do start_node "$server" $((base + n)) "$redis_port"; pids+=("$!"); urls+=("http://127.0.0.1:$((base + n))"); done
        pids+=("$redis_pid")
      else
        start_node "$server" $((base + 1)) 0; pids+=("$!"); urls+=("http://127.0.0.1:$((base + 1))")
      fi
      log "rep $rep: $server $mode (${urls[*]})"
      if ! timeout 600 "${PIN_CLIENT[@]}" dotnet "bench/LoadGen/$BIN/LoadGen.dll" cluster --urls "$(IFS=,; echo "${urls[*]}")" \
          --server "$server" --mode "$mode" --rep "$rep" --server-pids "$(IFS=,; echo "${pids[*]}")" --clients "$CLIENTS" \
          --broadcasts "$BROADCASTS" --bursts "$BURSTS" --concurrency "$CONCURRENCY" --idle-timeout "$IDLE_TIMEOUT" --max-burst-seconds "$MAX_BURST_SECONDS" "${STRICT[@]}" \
          --out "$RUN_DIR/$(printf '%02d-%02d' "$rep" "$idx")-$server-$mode.json"; then
        echo "load client failed against $server $mode (rep $rep); logs in $RUN_DIR" >&2
        failures=$((failures + 1))
      fi
      stop_all
    done
  done
done

NOTE="Machine: $NPROC cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $PINNING, $(redis-server --version | cut -d' ' -f3). Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
if ! dotnet "bench/LoadGen/$BIN/LoadGen.dll" cluster-report --in "$RUN_DIR" --md "$OUT_DIR/cluster-latest.md" --json "$OUT_DIR/cluster-latest.json" --note "$NOTE" >/dev/null; then
  echo "report failed" >&2
  failures=$((failures + 1))
fi
log "results: $OUT_DIR/cluster-latest.md (raw runs in $RUN_DIR)"
if [ "$failures" -gt 0 ]; then
  echo "bench/cluster.sh: $failures failure(s)" >&2
  exit 1
fi
