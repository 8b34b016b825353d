#!/usr/bin/env bash
# User-space instructions per request, edge vs HTTP ceiling, under callgrind.
#
# Throughput on this shared 2-core machine moves by ±10 % between runs;
# instruction counts do not. This runs the edge (from a snapshot of ADS sample
# ads, no Redis needed) and the ceiling server under `valgrind --tool=callgrind`
# with instrumentation switched on only while wrk drives the same query mix as
# load.sh (queries.lua), and prints instructions per request for each. Kernel
# work (the larger share of a request) is not counted: it is the same for both.
#
#   bash infra/bench/instructions.sh        # ADS=1000 DURATION=6
#   KEEP=1 ...                              # keep the callgrind files for callgrind_annotate
#
# The edge is measured twice: as configured by default (answer cache on,
# 4,096 slots), and with `--answer-cache-entries 0` (off).
set -euo pipefail
cd "$(dirname "$0")/../.."
. infra/services.sh >/dev/null
command -v valgrind >/dev/null 2>&1 || apt_install valgrind
command -v wrk >/dev/null 2>&1 || apt_install wrk
command -v curl >/dev/null 2>&1 || apt_install curl
ADS="${ADS:-1000}"
DURATION="${DURATION:-6}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
WORK=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "callgrind files kept in $WORK" >&2; fi
}
trap cleanup EXIT

echo "building (release)…" >&2
cargo build --release --locked -q -p adcast-edge --bins --example ceiling --example make_snapshot
"$TARGET_DIR/release/examples/make_snapshot" "$WORK/snapshot.adsnap" "$ADS" >/dev/null

measure() { # name port command...
  local name=$1 port=$2
  shift 2
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/$name.%p" "$@" 2>/dev/null &
  pid=$!
  for _ in $(seq 1 150); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.2; done
  curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" || { echo "$name did not come up on port $port" >&2; exit 1; }
  wrk -t1 -c8 -d2s -s infra/bench/queries.lua "http://127.0.0.1:$port" >/dev/null # warm up
  callgrind_control -i on "$pid" >/dev/null 2>&1
  sleep 0.5 # the switch reaches the process asynchronously
  local requests
  requests=$(wrk -t1 -c8 -d"${DURATION}s" -s infra/bench/queries.lua "http://127.0.0.1:$port" |
    awk '/requests in/ { print $1 }')
  callgrind_control -i off "$pid" >/dev/null 2>&1
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
  local instructions
  instructions=$(cat "$WORK/$name".* | awk '/^(summary|totals):/ { print $2 }' | sort -n | tail -1)
  printf '%s\t%d requests\t%d instructions per request\n' "$name" "$requests" $((instructions / requests))
}

# No Redis: the edge serves the snapshot (the tailer retries in the background).
export REDIS_URL=redis://127.0.0.1:1 ADCAST_LOG=error
measure edge 18780 "$TARGET_DIR/release/adcast-edge" --listen 127.0.0.1:18780 --snapshot "$WORK/snapshot.adsnap" \
  --data-dir "$WORK/edge" --worker-threads 1 --persist-interval-secs 3600
measure edge-no-answer-cache 18782 "$TARGET_DIR/release/adcast-edge" --listen 127.0.0.1:18782 \
  --snapshot "$WORK/snapshot.adsnap" --data-dir "$WORK/edge-cache" --worker-threads 1 \
  --persist-interval-secs 3600 --answer-cache-entries 0
# The ceiling's body: 780 bytes, the edge's mean answer for this mix (load.sh).
measure ceiling 18781 "$TARGET_DIR/release/examples/ceiling" 127.0.0.1:18781 780 1
