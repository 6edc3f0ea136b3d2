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
# With --gateway (issue #12), the gateway itself (bench/GatewayBench: src/Builder.Gateway plus the
# in-process producer endpoint) instead: GW_PROJECTS projects x GW_PER_PROJECT JWT clients spread over
# the nodes (client i on node i % N), GW_EVENTS events per project posted by GW_PRODUCERS producers
# through the HTTP API of every node, then as many published in-process on every node, then the log
# read back; modes `cluster` (three nodes on one redis-server), `single-redis` (one node on Redis) and
# `single` (one node, SQLite, the default deployment). Results in bench/results/gateway-cluster-latest.*
#   bench/cluster.sh --gateway [--short]
#
# Environment overrides: REPS, CLIENTS, BROADCASTS, BURSTS, CONCURRENCY, SERVERS ("node ours"),
# MODES ("cluster single"), SERVER_CPUS / CLIENT_CPUS (taskset lists; default 0 / 1), PORT_BASE
# (default 23000: below the ephemeral port range, so no port the kernel hands to a client or a
# port-0 listener collides with a node), MAX_BURST_SECONDS (300: a burst not delivered by then counts its missing deliveries
# as lost), OUT_DIR; with --gateway GW_PROJECTS, GW_PER_PROJECT, GW_EVENTS, GW_PRODUCERS.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
MODE=full
SCENARIO=broadcast
for arg in "$@"; do
  case "$arg" in
    --short) MODE=short ;;
    --gateway) SCENARIO=gateway ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
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
: "${PORT_BASE:=23000}" "${MAX_BURST_SECONDS:=300}"
if [ "$SCENARIO" = gateway ]; then
  : "${SERVERS:=gateway}" "${MODES:=cluster single-redis single}"
  if [ "$MODE" = short ]; then
    : "${GW_PROJECTS:=30}" "${GW_PER_PROJECT:=6}" "${GW_EVENTS:=3}" "${GW_PRODUCERS:=6}"
  else
    : "${GW_PROJECTS:=1000}" "${GW_PER_PROJECT:=10}" "${GW_EVENTS:=10}" "${GW_PRODUCERS:=48}"
  fi
  CLIENTS=$((GW_PROJECTS * GW_PER_PROJECT))
  GW_SECRET="bench-secret-0123456789-0123456789-0123456789"
  GW_API_KEY="bench-ingest-key-0123456789"
else
  : "${SERVERS:=node ours}" "${MODES:=cluster single}"
fi

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
log "dotnet build -c Release bench/LoadGen bench/BenchHost bench/GatewayBench"
dotnet build -c Release bench/LoadGen -nologo -v q >&2
if [ "$SCENARIO" = gateway ]; then
  dotnet build -c Release bench/GatewayBench -nologo -v q >&2
else
  dotnet build -c Release bench/BenchHost -nologo -v q >&2
fi
if [ "$SCENARIO" = broadcast ] && { [ ! -f bench/node-ref/node_modules/.package-lock.json ] || [ bench/node-ref/package-lock.json -nt bench/node-ref/node_modules/.package-lock.json ]; }; then
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
    gateway) # a cluster node with Redis, else the single-node default: SQLite in the run's directory
      if [ "$redis" != 0 ]; then set -- Builder__Redis__Configuration="127.0.0.1:$redis"; else set -- Builder__Store__Path="$RUN_DIR/gateway-$port.db"; fi
      (cd src/Builder.Gateway && exec env ASPNETCORE_ENVIRONMENT=Production "$@" \
        Builder__Ingest__ApiKeys__0="$GW_API_KEY" Builder__Jwt__Secret="$GW_SECRET" \
        Builder__Limits__MaxConnectionsPerAddress=1000000 Builder__Limits__MaxHandshakesPerAddress=1000000 \
        Logging__LogLevel__Default=Warning \
        "${PIN_SERVER[@]}" dotnet "$ROOT/bench/GatewayBench/$BIN/GatewayBench.dll" --urls "http://127.0.0.1:$port") >"$logf" 2>&1 & ;;
  esac
  PIDS+=("$!")
}

failures=0
if [ "$SCENARIO" = gateway ]; then
  log "mode $MODE, gateway: $GW_PROJECTS projects x $GW_PER_PROJECT clients, $GW_EVENTS events per project over HTTP then in-process, $GW_PRODUCERS producers, $REPS rep(s); $PINNING; load average $(cut -d' ' -f1-3 /proc/loadavg)"
else
  log "mode $MODE: $CLIENTS clients, $BURSTS bursts of $BROADCASTS broadcasts, $REPS rep(s); $PINNING; load average $(cut -d' ' -f1-3 /proc/loadavg)"
fi
for rep in $(seq 1 "$REPS"); do
  idx=0
  for mode in $MODES; do
    for server in $SERVERS; do
      idx=$((idx + 1))
      base=$((PORT_BASE + rep * 100 + idx * 10))
      urls=(); pids=()
      if [ "$mode" = cluster ] || [ "$mode" = single-redis ]; then
        nodes=3; [ "$mode" = single-redis ] && nodes=1
        redis_port=$((base + 9))
        "${PIN_SERVER[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$RUN_DIR/redis-$redis_port.log" 2>&1 &
        PIDS+=("$!"); redis_pid=$!
        for _ in $(seq 1 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
        for n in $(seq 1 "$nodes"); do start_node "$server" $((base + n)) "$redis_port"; pids+=("$!"); urls+=("http://127.0.0.1:$((base + n))"); done
        pids+=("$redis_pid")
      else
        start_node "$server" $((base + 1)) 0; pids+=("$!"); urls+=("http://127.0.0.1:$((base + 1))")
      fi
      log "rep $rep: $server $mode (${urls[*]})"
      if [ "$SCENARIO" = gateway ]; then
        if ! timeout 600 "${PIN_CLIENT[@]}" dotnet "bench/LoadGen/$BIN/LoadGen.dll" gateway-cluster --urls "$(IFS=,; echo "${urls[*]}")" \
            --server gateway --mode "$mode" --rep "$rep" --server-pids "$(IFS=,; echo "${pids[*]}")" --projects "$GW_PROJECTS" \
            --per-project "$GW_PER_PROJECT" --events "$GW_EVENTS" --producers "$GW_PRODUCERS" --concurrency "$CONCURRENCY" \
            --jwt-secret "$GW_SECRET" --api-key "$GW_API_KEY" --idle-timeout "$IDLE_TIMEOUT" --max-burst-seconds "$MAX_BURST_SECONDS" "${STRICT[@]}" \
            --out "$RUN_DIR/$(printf '%02d-%02d' "$rep" "$idx")-gateway-$mode.json"; then
          echo "load client failed against the gateway, $mode (rep $rep); logs in $RUN_DIR" >&2
          failures=$((failures + 1))
        fi
      elif ! timeout 600 "${PIN_CLIENT[@]}" dotnet "bench/LoadGen/$BIN/LoadGen.dll" cluster --urls "$(IFS=,; echo "${urls[*]}")" \
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
REPORT=cluster-report; NAME=cluster-latest
[ "$SCENARIO" = gateway ] && { REPORT=gateway-cluster-report; NAME=gateway-cluster-latest; }
if ! dotnet "bench/LoadGen/$BIN/LoadGen.dll" "$REPORT" --in "$RUN_DIR" --md "$OUT_DIR/$NAME.md" --json "$OUT_DIR/$NAME.json" --note "$NOTE" >/dev/null; then
  echo "report failed" >&2
  failures=$((failures + 1))
fi
log "results: $OUT_DIR/$NAME.md (raw runs in $RUN_DIR)"
if [ "$failures" -gt 0 ]; then
  echo "bench/cluster.sh: $failures failure(s)" >&2
  exit 1
fi
