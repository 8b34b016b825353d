#!/usr/bin/env bash
# Measures the hit rate a CDN in front of the edges would reach with the load
# benchmark's query mix: starts a writer and an edge on their own ports,
# database and stream key, seeds ADS active ads (infra/bench/seed.py), and
# replays the mix through infra/deploy/cdn-hit-rate.py at several request
# rates. DEPLOYING.md ("Costs") records the figures.
#
#   bash infra/deploy/cdn-hit-rate.sh
#   ADS=1000 RATES=100,1000,10000,100000 DURATION=60 CACHES=1,10 bash infra/deploy/cdn-hit-rate.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. infra/services.sh

ADS="${ADS:-1000}"
RATES="${RATES:-100,1000,10000,100000}"
DURATION="${DURATION:-60}"
CACHES="${CACHES:-1,10}"
WRITER_PORT="${WRITER_PORT:-28181}"
EDGE_PORT="${EDGE_PORT:-28180}"
DB="adcast_deploy_cdn_$$"
STREAM="adcast:deploy-cdn:$$"
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

cargo build --release --locked -q -p adcast-writer -p adcast-edge --bins
psql "$ADCAST_TEST_DATABASE_URL/postgres" -qc "create database $DB" >/dev/null

DATABASE_URL="$ADCAST_TEST_DATABASE_URL/$DB" REDIS_URL="$ADCAST_TEST_REDIS_URL" ADCAST_STREAM_KEY="$STREAM" \
  ADCAST_SNAPSHOT_DIR="$WORK/snapshots" ADCAST_LOG=warn \
  "$TARGET_DIR/release/adcast-writer" --listen "127.0.0.1:$WRITER_PORT" &
pids+=("$!")
REDIS_URL="$ADCAST_TEST_REDIS_URL" ADCAST_STREAM_KEY="$STREAM" ADCAST_LOG=warn \
  "$TARGET_DIR/release/adcast-edge" --listen "127.0.0.1:$EDGE_PORT" --data-dir "$WORK/edge" &
pids+=("$!")

for port in $WRITER_PORT $EDGE_PORT; do
  for _ in $(seq 1 150); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null || { echo "nothing answers on port $port" >&2; exit 1; }
done
python3 infra/bench/seed.py "http://127.0.0.1:$WRITER_PORT" "$ADS"
curl -fs -H "Adcast-Min-Seq: $ADS" "http://127.0.0.1:$EDGE_PORT/api/v1/ad" >/dev/null \
  || { sleep 2; curl -fs -H "Adcast-Min-Seq: $ADS" "http://127.0.0.1:$EDGE_PORT/api/v1/ad" >/dev/null; }
echo "cache-control of a typical answer: $(curl -fsI "http://127.0.0.1:$EDGE_PORT/api/v1/ad?country=TW&limit=5" | tr -d '\r' | grep -i '^cache-control')" >&2

python3 infra/deploy/cdn-hit-rate.py "http://127.0.0.1:$EDGE_PORT" --rates "$RATES" --duration "$DURATION" --caches "$CACHES"
python3 infra/deploy/cdn-hit-rate.py "http://127.0.0.1:$EDGE_PORT" --rates "$RATES" --duration "$DURATION" --caches 1 --modes draw --normalize \
  | tail -n +3
