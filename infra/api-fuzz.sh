#!/usr/bin/env bash
# Bounded schema fuzzing for CI: starts a writer and a forwarding edge (debug
# builds) on a scratch database and stream, runs infra/schemathesis.sh against
# both, and stops them. MAX_EXAMPLES (default 25) and TIME_BUDGET (default 180 s
# per service) keep it short; run infra/schemathesis.sh yourself for more.
set -euo pipefail
cd "$(dirname "$0")/.."
. infra/services.sh
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --locked -q -p adcast-writer -p adcast-edge

DB="adcast_apifuzz_$$"
STREAM="adcast:apifuzz:$$"
WORK=$(mktemp -d)
# Free ports unless given: a benchmark or another run on the machine may hold fixed ones.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WRITER_PORT=${WRITER_PORT:-$(free_port)} EDGE_PORT=${EDGE_PORT:-$(free_port)}
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$ADCAST_TEST_DATABASE_URL/postgres" -qc "drop database if exists $DB" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
psql "$ADCAST_TEST_DATABASE_URL/postgres" -qc "create database $DB" >/dev/null

DATABASE_URL="$ADCAST_TEST_DATABASE_URL/$DB" REDIS_URL="$ADCAST_TEST_REDIS_URL" ADCAST_STREAM_KEY="$STREAM" \
  ADCAST_SNAPSHOT_DIR="$WORK/snapshots" ADCAST_LOG=error \
  "$TARGET_DIR/debug/adcast-writer" --listen "127.0.0.1:$WRITER_PORT" &
pids+=($!)
REDIS_URL="$ADCAST_TEST_REDIS_URL" ADCAST_STREAM_KEY="$STREAM" ADCAST_LOG=error \
  "$TARGET_DIR/debug/adcast-edge" --listen "127.0.0.1:$EDGE_PORT" \
  --writer-url "http://127.0.0.1:$WRITER_PORT" --data-dir "$WORK/edge" &
pids+=($!)

# The stateful phase (create/read/replace/delete chains) is off by default:
# see infra/schemathesis.sh. `STATEFUL=1 bash infra/api-fuzz.sh` runs it (it
# passed with seeds 1, 2, 3 and 20261127 on 2026-11-27).
WRITER_URL="http://127.0.0.1:$WRITER_PORT" EDGE_URL="http://127.0.0.1:$EDGE_PORT" EDGE_ADMIN=1 STATEFUL="${STATEFUL:-0}" \
  MAX_EXAMPLES="${MAX_EXAMPLES:-25}" TIME_BUDGET="${TIME_BUDGET:-180}" SEED="${SEED:-20261127}" \
  bash infra/schemathesis.sh
