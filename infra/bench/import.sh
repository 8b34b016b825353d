#!/usr/bin/env bash
# Import benchmark: ADS ads (default 100,000) imported with the CLI through
# the Admin API, then the time until an edge serves them all.
#
# Starts PostgreSQL and Redis (services.sh), a release writer and a release
# edge following its stream on a scratch database and stream key, writes an
# NDJSON file of ADS active ads with mixed conditions, runs
# `adcast-writer import FILE` (default chunks: 10,000 ads) and reports:
#   - import wall time (the command, start to exit), and ads/s;
#   - time from the command's exit until the edge answers
#     `GET /api/v1/ad?offset=ADS-1&limit=1` with an item and
#     `Adcast-Seq` >= the import's last change: every ad served.
#
#   bash infra/bench/import.sh          # ADS=100000; SKIP_BUILD=1 uses the binaries as built
set -euo pipefail
cd "$(dirname "$0")/../.."
. infra/services.sh
command -v curl >/dev/null 2>&1 || apt_install curl

ADS="${ADS:-100000}"
WRITER_PORT=18181 EDGE_PORT=18180
DB="adcast_bench_import_$$"
STREAM="adcast:bench:import:$$"
WORK=$(mktemp -d)
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  redis-cli -u "$ADCAST_TEST_REDIS_URL" del "$STREAM" >/dev/null 2>&1 || true
  psql "$ADCAST_TEST_DATABASE_URL/postgres" -qc "drop database if exists $DB" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "building (release)…" >&2
  cargo build --release --locked -q -p adcast-writer -p adcast-edge --bins
fi

psql "$ADCAST_TEST_DATABASE_URL/postgres" -qc "create database $DB" >/dev/null
DATABASE_URL="$ADCAST_TEST_DATABASE_URL/$DB" REDIS_URL="$ADCAST_TEST_REDIS_URL" ADCAST_STREAM_KEY="$STREAM" \
  ADCAST_SNAPSHOT_DIR="$WORK/snapshots" ADCAST_LOG=warn \
  "$TARGET_DIR/release/adcast-writer" --listen "127.0.0.1:$WRITER_PORT" &
pids+=($!)
REDIS_URL="$ADCAST_TEST_REDIS_URL" ADCAST_STREAM_KEY="$STREAM" ADCAST_LOG=warn \
  "$TARGET_DIR/release/adcast-edge" --listen "127.0.0.1:$EDGE_PORT" \
  --data-dir "$WORK/edge" --persist-interval-secs 3600 &
pids+=($!)
for port in $WRITER_PORT $EDGE_PORT; do
  for _ in $(seq 1 150); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { echo "port $port is not ready" >&2; exit 1; }
done

# The same mixed conditions as the scale run (infra/bench/scale.py).
python3 infra/bench/scale.py ads "$WORK/ads.ndjson" "$ADS"
echo "file: $(wc -c <"$WORK/ads.ndjson") bytes, $ADS ads" >&2

now_ms() { date +%s%3N; }
start=$(now_ms)
ADCAST_WRITER_URL="http://127.0.0.1:$WRITER_PORT" "$TARGET_DIR/release/adcast-writer" import "$WORK/ads.ndjson" 2>"$WORK/import.log"
done_at=$(now_ms)
tail -n 1 "$WORK/import.log" >&2
seq=$(tail -n 1 "$WORK/import.log" | sed -E 's/.*last change ([0-9]+).*/\1/')

served_at=""
for _ in $(seq 1 6000); do
  headers=$(curl -s -D - -o "$WORK/answer" "http://127.0.0.1:$EDGE_PORT/api/v1/ad?offset=$((ADS - 1))&limit=1" | tr -d '\r')
  applied=$(printf '%s\n' "$headers" | awk -F': ' 'tolower($1)=="adcast-seq"{print $2}')
  if [ -n "$applied" ] && [ "$applied" -ge "$seq" ] && grep -q '"title"' "$WORK/answer"; then
    served_at=$(now_ms)
    break
  fi
  sleep 0.05
done
[ -n "$served_at" ] || { echo "the edge did not serve all $ADS ads within 300 s" >&2; exit 1; }

import_ms=$((done_at - start))
serve_ms=$((served_at - done_at))
echo "ads: $ADS"
echo "import wall time: ${import_ms} ms ($((ADS * 1000 / (import_ms > 0 ? import_ms : 1))) ads/s)"
echo "edge serving all of them: ${serve_ms} ms after the import ended (last change $seq)"
