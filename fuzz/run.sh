#!/usr/bin/env bash
# Coverage-guided fuzzing of the server's parsers with SharpFuzz and AFL++ (see docs/fuzzing.md).
#
#   bash fuzz/run.sh <target|all> <seconds per target>
#
# targets: polling, socketio, websocket, requesthead, events. Installs afl++ (Debian) when
# afl-fuzz is missing and restores the SharpFuzz instrumentation tool (fuzz/.config), builds the
# harness in Release, instruments EngineIO.dll, SocketIO.dll and Builder.dll, then runs afl-fuzz
# on one target at a time. Prints per target the executions done, the rate, and the crashes and
# hangs found (each crash replayed with its exception); exits non-zero when any crash was found
# other than one of the open defects listed in fuzz/regressions/known-failing.txt.
# Findings stay in fuzz/out/findings/<target>/default/{crashes,hangs,queue}.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
FUZZ="$(pwd)"
ROOT="$(cd .. && pwd)"
TARGETS=(polling socketio websocket requesthead events)

usage() { echo "usage: bash fuzz/run.sh <${TARGETS[*]// /|}|all> <seconds per target>" >&2; exit 2; }
[ "$#" -eq 2 ] || usage
case "$2" in '' | *[!0-9]*) usage ;; esac
SECONDS_PER_TARGET="$2"
if [ "$1" = all ]; then
  selected=("${TARGETS[@]}")
else
  case " ${TARGETS[*]} " in *" $1 "*) selected=("$1") ;; *) usage ;; esac
fi

log() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "need root (or sudo) to run: $*" >&2
    return 1
  fi
}

# --- AFL++ (Debian) and the SharpFuzz instrumentation tool (local dotnet tool) ------------------
if ! command -v afl-fuzz >/dev/null 2>&1; then
  log "installing afl++ (apt)"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends afl++
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
log "dotnet tool restore (SharpFuzz.CommandLine)"
dotnet tool restore

# --- build, then instrument a copy ---------------------------------------------------------------
OUT="$FUZZ/out"
BIN="$OUT/bin"
rm -rf "$BIN"
mkdir -p "$OUT"
log "dotnet publish fuzz/Fuzz -c Release"
dotnet publish "$FUZZ/Fuzz/Fuzz.csproj" -c Release -o "$BIN" --nologo -v quiet
for dll in EngineIO.dll SocketIO.dll Builder.dll; do
  log "sharpfuzz $dll"
  dotnet sharpfuzz "$BIN/$dll"
done

# --- fuzz, one target at a time ------------------------------------------------------------------
export AFL_SKIP_BIN_CHECK=1                   # the forkserver is SharpFuzz's, in a managed program
export AFL_SKIP_CPUFREQ=1                     # containers cannot set the CPU governor
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 # core_pattern is the host's
export AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_FAST_CAL=1 AFL_SKIP_CRASHES=1
export AFL_NO_WARN_INSTABILITY=1 AFL_IGNORE_UNKNOWN_ENVS=1

summary=()
total_crashes=0
for target in "${selected[@]}"; do
  findings="$OUT/findings/$target"
  rm -f "$OUT/afl-$target.log"
  rm -rf "$findings"
  mkdir -p "$findings"
  dict=()
  if [ -f "$FUZZ/dict/$target.dict" ]; then
    dict=(-x "$FUZZ/dict/$target.dict")
  fi
  log "afl-fuzz $target for ${SECONDS_PER_TARGET}s"
  started=$(date +%s)
  # -t: a generous timeout per input (the JIT warms up on the first ones); -m none: the CLR
  # reserves far more virtual memory than AFL's default limit
  # (once in a while, on a loaded machine, the first dry run sees no coverage: one more try)
  for attempt in 1 2; do
    if afl-fuzz -i "$FUZZ/corpus/$target" -o "$findings" -t 5000 -m none -V "$SECONDS_PER_TARGET" "${dict[@]}" \
      -- dotnet "$BIN/Fuzz.dll" "$target" > "$OUT/afl-$target.log" 2>&1; then
      break
    fi
    if [ "$attempt" -eq 2 ] || ! grep -q 'No instrumentation detected' "$OUT/afl-$target.log"; then
      echo "afl-fuzz failed for $target; the end of its log:" >&2
      tail -n 30 "$OUT/afl-$target.log" >&2
      exit 1
    fi
    echo "afl-fuzz saw no instrumentation on its dry run; trying again"
    rm -rf "$findings"
    mkdir -p "$findings"
  done
  elapsed=$(( $(date +%s) - started ))
  stats="$findings/default/fuzzer_stats"
  stat() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
  execs="$(stat execs_done)"
  rate="$(stat execs_per_sec)"
  paths="$(stat corpus_count)"
  crashes=0
  hangs=0
  shopt -s nullglob
  crash_files=("$findings"/default/crashes/id:*)
  hang_files=("$findings"/default/hangs/id:*)
  shopt -u nullglob
  crashes=${#crash_files[@]}
  hangs=${#hang_files[@]}
  new_crashes=0
  if [ "$crashes" -gt 0 ]; then
    # replayed with the same build before instrumentation: a crash that fails like an input of
    # fuzz/regressions/known-failing.txt (same exception, same frame) is that open defect again
    log "$target: $crashes crash(es); replaying them"
    dotnet "$ROOT/fuzz/Fuzz/bin/Release/net10.0/Fuzz.dll" --triage "$target" "$FUZZ" "${crash_files[@]}" > "$findings/triage.log" 2>&1 || true
    grep -v '^known defect' "$findings/triage.log" || true
    known="$(grep -c '^known defect' "$findings/triage.log" || true)"
    echo "$known of them fail like a known, reported defect (fuzz/regressions/known-failing.txt):"
    grep '^known defect' "$findings/triage.log" | sed -E 's/: .*//' | sort | uniq -c || true
    new_crashes=$((crashes - known))
  fi
  total_crashes=$((total_crashes + new_crashes))
  if [ "$hangs" -gt 0 ]; then
    log "$target: $hangs hang(s) (over 5 s each under afl-fuzz): ${hang_files[*]}"
  fi
  summary+=("$(printf '%-12s %6ss %12s execs %9s execs/s %6s paths %3s crashes (%s new) %3s hangs' "$target" "$elapsed" "$execs" "$rate" "$paths" "$crashes" "$new_crashes" "$hangs")")
done

echo
echo "fuzz summary (findings in fuzz/out/findings/<target>/default):"
printf '  %s\n' "${summary[@]}"
if [ "$total_crashes" -gt 0 ]; then
  echo "FUZZING FOUND $total_crashes NEW CRASH(ES)"
  exit 1
fi
echo "no new crashes"
