#!/usr/bin/env bash
# End-to-end benchmark: the same C# load client (bench/LoadGen) drives, one after another,
#   node  - Node.js socket.io 4.8.4 (bench/node-ref, npm lockfile),
#   ours  - our Socket.IO server (bench/BenchHost),
#   raw   - plain Kestrel WebSockets broadcasting one pre-encoded frame (bench/RawKestrel, the ceiling),
#   node-msgpack, ours-msgpack - the same two servers with the MessagePack parser
#           (socket.io-msgpack-parser 3.x format; the load client speaks it with --parser msgpack;
#           not in the default SERVERS: e.g. SERVERS="node node-msgpack ours ours-msgpack" SKIP_GATEWAY=1),
# through scenarios (1) fan-out, (2) fixed rate, (3) idle memory, (4) connect rate (cold, and again
# warm at the end), repeated
# REPS times (servers interleaved), then (5) the gateway end to end (src/Builder.Gateway, hosted by
# bench/GatewayBench, which adds the in-process producers and a read-back of the log).
# Writes bench/results/latest.md and bench/results/latest.json (medians, spreads, ratios).
#
#   bench/run.sh            full run (10 000 clients, 3 repetitions, then the gateway; ~12 minutes)
#   bench/run.sh --short    smoke mode (200 clients, 1 repetition, < 60 s): checks the harness
#                           works end to end; results go to bench/results/tmp/short/, exit code
#                           non-zero when the harness fails. No timing is asserted.
#
# Environment overrides: REPS, CLIENTS, FANOUT, BROADCASTS, BATCH, FIXED_RATE, FIXED_SECONDS,
# CONCURRENCY, GW_PROJECTS, GW_PER_PROJECT, GW_EVENTS, GW_PRODUCERS, GW_BATCH_EVENTS (events per project
# of the batched bursts), GW_FIXED_RATE / GW_FIXED_SECONDS (the gateway's fixed-rate phase: single
# events POSTed at that aggregate rate for that long, round-robin over the projects; 0 skips it),
# GW_DURABILITY (normal|full: the gateway's sqlite log), SERVERS ("node ours raw"; also node-msgpack,
# ours-msgpack),
# SKIP_GATEWAY=1, SERVER_CPUS / CLIENT_CPUS (taskset lists; default 0 / 1 when there are 2+ cores),
# PORT_BASE (default 21000: below the ephemeral port range, so no port the kernel hands to a client
# or a port-0 listener collides with a server), BENCH_NO_BUILD=1, OURS_DLL (another build of
# bench/BenchHost, e.g. an older commit's, to measure a change side by side), OURS_ARGS (extra
# BenchHost arguments, e.g. "--flush-deferrals 0"), GW_DLL (another build of bench/GatewayBench,
# likewise, for scenario 5), GW_ENV (NAME=VALUE settings of the gateway's process only; default
# "DOTNET_GCgen0size=0x1000000", the gateway's runtime setting as `dotnet run` applies it from
# launchSettings.json, see docs/architecture.md "Runtime configuration"; GW_ENV=" " runs it on the
# runtime's defaults), OUT_DIR (where latest.md/json go).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
MODE=full
for arg in "$@"; do
  case "$arg" in
    --short) MODE=short ;;
    -h|--help) sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
log() { printf '==> %s\n' "$*" >&2; }

if [ "$MODE" = short ]; then
  : "${REPS:=1}" "${CLIENTS:=200}" "${FANOUT:=50,200}" "${BROADCASTS:=20}" "${FIXED_RATE:=20}" "${FIXED_SECONDS:=1}"
  : "${CONCURRENCY:=50}" "${GW_PROJECTS:=20}" "${GW_PER_PROJECT:=5}" "${GW_EVENTS:=3}" "${GW_PRODUCERS:=4}" "${GW_REPS:=1}" "${GW_BATCH_EVENTS:=10}"
  : "${GW_FIXED_RATE:=100}" "${GW_FIXED_SECONDS:=1}"
  : "${SETTLE:=1}" "${IDLE_TIMEOUT:=5}"
  : "${OUT_DIR:=$ROOT/bench/results/tmp/short}"
else
  : "${REPS:=3}" "${CLIENTS:=10000}" "${FANOUT:=1000,5000,10000}" "${BROADCASTS:=200}" "${FIXED_RATE:=20}" "${FIXED_SECONDS:=10}"
  : "${CONCURRENCY:=100}" "${GW_PROJECTS:=1000}" "${GW_PER_PROJECT:=10}" "${GW_EVENTS:=10}" "${GW_PRODUCERS:=32}" "${GW_REPS:=3}" "${GW_BATCH_EVENTS:=100}"
  : "${GW_FIXED_RATE:=2000}" "${GW_FIXED_SECONDS:=10}"
  : "${SETTLE:=3}" "${IDLE_TIMEOUT:=10}"
  : "${OUT_DIR:=$ROOT/bench/results}"
fi
: "${BATCH:=1}" "${SERVERS:=node ours raw}" "${PORT_BASE:=21000}" "${SKIP_GATEWAY:=0}" "${GW_DURABILITY:=normal}"

# --- file descriptors: 10 000 sockets in the client and as many in the server ---------------------
ulimit -n 65535 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
need=$(( (CLIENTS > GW_PROJECTS * GW_PER_PROJECT ? CLIENTS : GW_PROJECTS * GW_PER_PROJECT) + 512 ))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  echo "file-descriptor limit $(ulimit -n) is below the $need this run needs (raise the hard limit)" >&2
  exit 1
fi

# --- pinning: server and load client on different cores ----------------------------------------
NPROC=$(nproc 2>/dev/null || echo 1)
if command -v taskset >/dev/null 2>&1 && [ "$NPROC" -ge 2 ]; then
  : "${SERVER_CPUS:=0}" "${CLIENT_CPUS:=1}"
  PIN_SERVER=(taskset -c "$SERVER_CPUS"); PIN_CLIENT=(taskset -c "$CLIENT_CPUS")
  PINNING="server on CPU $SERVER_CPUS, load client on CPU $CLIENT_CPUS (taskset)"
else
  PIN_SERVER=(); PIN_CLIENT=(); PINNING="not pinned (taskset missing or 1 core)"
fi

# --- build (skipped when the outputs are newer than every source) --------------------------------
build() { # project-dir output-dll source-dirs...
  local proj="$1" dll="$2"; shift 2
  if [ "${BENCH_NO_BUILD:-0}" = 1 ] && [ -f "$dll" ]; then return; fi
  if [ -f "$dll" ] && [ -z "$(find "$@" Directory.Build.props Directory.Packages.props -newer "$dll" \
        \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' -o -name '*.json' \) -not -path '*/bin/*' -not -path '*/obj/*' -print -quit 2>/dev/null)" ]; then
    return
  fi
  log "dotnet build -c Release $proj"
  dotnet build -c Release "$proj" -nologo -v q >&2
}
BIN=bin/Release/net10.0
build bench/LoadGen "bench/LoadGen/$BIN/LoadGen.dll" bench/LoadGen
build bench/BenchHost "bench/BenchHost/$BIN/BenchHost.dll" bench/BenchHost src/SocketIO src/EngineIO
build bench/RawKestrel "bench/RawKestrel/$BIN/RawKestrel.dll" bench/RawKestrel
if [ "$SKIP_GATEWAY" != 1 ]; then
  build bench/GatewayBench "bench/GatewayBench/$BIN/GatewayBench.dll" bench/GatewayBench src
fi
if [ ! -f bench/node-ref/node_modules/.package-lock.json ] || [ bench/node-ref/package-lock.json -nt bench/node-ref/node_modules/.package-lock.json ]; then
  log "npm ci (bench/node-ref, socket.io pinned by package-lock.json)"
  (cd bench/node-ref && npm ci --no-audit --no-fund >&2)
fi

LOADGEN=("${PIN_CLIENT[@]}" dotnet "$ROOT/bench/LoadGen/$BIN/LoadGen.dll")
RUN_DIR="$ROOT/bench/results/tmp/run-$(date +%Y%m%d-%H%M%S)-$$"
mkdir -p "$RUN_DIR" "$OUT_DIR"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

start_server() { # name port
  local name="$1" port="$2" logf="$RUN_DIR/$1-$2.log"
  case "$name" in
    node) "${PIN_SERVER[@]}" node bench/node-ref/server.js --port "$port" >"$logf" 2>&1 & ;;
    node-msgpack) "${PIN_SERVER[@]}" node bench/node-ref/server.js --port "$port" --msgpack >"$logf" 2>&1 & ;;
    # shellcheck disable=SC2086 # OURS_ARGS is a list of arguments
    ours) "${PIN_SERVER[@]}" dotnet "${OURS_DLL:-bench/BenchHost/$BIN/BenchHost.dll}" --port "$port" ${OURS_ARGS:-} >"$logf" 2>&1 & ;;
    # shellcheck disable=SC2086
    ours-msgpack) "${PIN_SERVER[@]}" dotnet "${OURS_DLL:-bench/BenchHost/$BIN/BenchHost.dll}" --port "$port" --msgpack ${OURS_ARGS:-} >"$logf" 2>&1 & ;;
    raw)  "${PIN_SERVER[@]}" dotnet "bench/RawKestrel/$BIN/RawKestrel.dll" --port "$port" >"$logf" 2>&1 & ;;
    gateway)
      # shellcheck disable=SC2086 # GW_ENV is a list of settings
      (cd src/Builder.Gateway && exec env ASPNETCORE_ENVIRONMENT=Production \
        Builder__Ingest__ApiKeys__0="$GW_API_KEY" Builder__Jwt__Secret="$GW_SECRET" Builder__Store__Provider=sqlite Builder__Store__Path="$RUN_DIR/gateway-$port.db" Builder__Store__Durability="$GW_DURABILITY" \
        Builder__Limits__MaxConnectionsPerAddress=1000000 Builder__Limits__MaxHandshakesPerAddress=1000000 \
        Logging__LogLevel__Default=Warning ${GW_ENV-DOTNET_GCgen0size=0x1000000} \
        "${PIN_SERVER[@]}" dotnet "${GW_DLL:-$ROOT/bench/GatewayBench/$BIN/GatewayBench.dll}" --urls "http://127.0.0.1:$port") >"$logf" 2>&1 & ;;
    *) echo "unknown server '$name' in SERVERS (node, node-msgpack, ours, ours-msgpack, raw)" >&2; exit 2 ;;
  esac
  SERVER_PID=$!
}

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

STRICT=()
[ "$MODE" = short ] && STRICT=(--strict)
failures=0
log "mode $MODE: $CLIENTS clients, fan-out $FANOUT x $BROADCASTS, fixed $FIXED_RATE/s x ${FIXED_SECONDS}s, $REPS rep(s); $PINNING; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for rep in $(seq 1 "$REPS"); do
  idx=0
  for server in $SERVERS; do
    idx=$((idx + 1))
    port=$((PORT_BASE + rep * 10 + idx))
    log "rep $rep: $server on port $port"
    start_server "$server" "$port"
    parser=json
    case "$server" in *-msgpack) parser=msgpack ;; esac
    if ! timeout $((300 + FIXED_SECONDS * 2)) "${LOADGEN[@]}" run --url "http://127.0.0.1:$port" --server "$server" --rep "$rep" \
        --parser "$parser" --server-pid "$SERVER_PID" --clients "$CLIENTS" --fanout "$FANOUT" --broadcasts "$BROADCASTS" --batch "$BATCH" \
        --fixed-rate "$FIXED_RATE" --fixed-seconds "$FIXED_SECONDS" --concurrency "$CONCURRENCY" --settle "$SETTLE" \
        --idle-timeout "$IDLE_TIMEOUT" "${STRICT[@]}" --out "$RUN_DIR/$(printf '%02d' "$rep")-$idx-$server.json"; then
      echo "load client failed against $server (rep $rep); server log: $RUN_DIR/$server-$port.log" >&2
      failures=$((failures + 1))
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "server $server exited during the run; log: $RUN_DIR/$server-$port.log" >&2
      failures=$((failures + 1))
    fi
    stop_server
  done
done

if [ "$SKIP_GATEWAY" != 1 ]; then
  GW_SECRET="bench-secret-0123456789-0123456789-0123456789"
  GW_API_KEY="bench-ingest-key-0123456789"
  for rep in $(seq 1 "$GW_REPS"); do
    port=$((PORT_BASE + 900 + rep))
    log "rep $rep: gateway on port $port ($GW_PROJECTS projects x $GW_PER_PROJECT clients, $GW_EVENTS events each; fixed $GW_FIXED_RATE/s x ${GW_FIXED_SECONDS}s)"
    start_server gateway "$port"
    if ! timeout $((400 + GW_FIXED_SECONDS * 2)) "${LOADGEN[@]}" gateway --url "http://127.0.0.1:$port" --server gateway --rep "$rep" --server-pid "$SERVER_PID" \
        --projects "$GW_PROJECTS" --per-project "$GW_PER_PROJECT" --events "$GW_EVENTS" --producers "$GW_PRODUCERS" --batch-events "$GW_BATCH_EVENTS" \
        --fixed-rate "$GW_FIXED_RATE" --fixed-seconds "$GW_FIXED_SECONDS" \
        --concurrency "$CONCURRENCY" --jwt-secret "$GW_SECRET" --api-key "$GW_API_KEY" --idle-timeout "$IDLE_TIMEOUT" \
        "${STRICT[@]}" --out "$RUN_DIR/$(printf '%02d' "$((90 + rep))")-gateway.json"; then
      echo "load client failed against the gateway (rep $rep); server log: $RUN_DIR/gateway-$port.log" >&2
      failures=$((failures + 1))
    fi
    stop_server
  done
fi

NOTE="Machine: $NPROC cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $PINNING. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
if ! dotnet "$ROOT/bench/LoadGen/$BIN/LoadGen.dll" report --in "$RUN_DIR" --md "$OUT_DIR/latest.md" --json "$OUT_DIR/latest.json" \
    --mode "$MODE" --note "$NOTE" >/dev/null; then
  echo "report failed" >&2
  failures=$((failures + 1))
fi
log "results: $OUT_DIR/latest.md, $OUT_DIR/latest.json (raw runs in $RUN_DIR)"
if [ "$failures" -gt 0 ]; then
  echo "bench/run.sh: $failures failure(s)" >&2
  exit 1
fi
