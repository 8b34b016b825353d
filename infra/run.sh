#!/usr/bin/env bash
# The quick start: brings up PostgreSQL and Redis (reused, started or
# installed), builds adcast, starts a writer and an edge that serves the whole
# API on one URL, seeds demo ads, and prints curl examples. Ctrl-C stops what
# it started.
set -euo pipefail
cd "$(dirname "$0")/.."
. infra/services.sh

command -v curl >/dev/null 2>&1 || apt_install curl

DB_NAME="${ADCAST_DEMO_DB:-adcast}"
WRITER_LISTEN="${ADCAST_WRITER_LISTEN:-127.0.0.1:8081}"
EDGE_LISTEN="${ADCAST_EDGE_LISTEN:-127.0.0.1:8080}"
export DATABASE_URL="${DATABASE_URL:-$ADCAST_TEST_DATABASE_URL/$DB_NAME}"
export REDIS_URL="${REDIS_URL:-$ADCAST_TEST_REDIS_URL}"
export ADCAST_WRITER_LISTEN="$WRITER_LISTEN"
export ADCAST_SNAPSHOT_DIR="${ADCAST_SNAPSHOT_DIR:-./data/snapshots}"

if ! psql "$ADCAST_TEST_DATABASE_URL/postgres" -Atqc "select 1 from pg_database where datname = '$DB_NAME'" | grep -q 1; then
  psql "$ADCAST_TEST_DATABASE_URL/postgres" -qc "create database \"$DB_NAME\"" >/dev/null
fi

echo "building (release)…" >&2
cargo build --release --locked -q
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

wait_ready() {
  for _ in $(seq 1 150); do
    curl -fs "$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "$2 did not become ready" >&2; exit 1
}

"$TARGET_DIR/release/adcast-writer" &
pids+=($!)
WRITER="http://$WRITER_LISTEN"
wait_ready "$WRITER" "the writer"

"$TARGET_DIR/release/adcast-edge" --listen "$EDGE_LISTEN" --writer-url "$WRITER" \
  --data-dir "${ADCAST_DATA_DIR:-./data/edge}" &
pids+=($!)
EDGE="http://$EDGE_LISTEN"
wait_ready "$EDGE" "the edge"

# Everything below goes through the edge: one URL for the whole API.
post() { curl -fs -X POST "$EDGE/api/v1/ad" -H 'content-type: application/json' -d "$1" >/dev/null; }
if [ "$(curl -fs "$EDGE/api/v1/admin/ad?limit=1")" = '{"items":[],"next":null}' ]; then
  start=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
  for i in 1 2 3 4 5; do
    end=$(date -u -d "+$i day" +%Y-%m-%dT%H:%M:%SZ)
    post "{\"title\":\"Demo ad $i\",\"startAt\":\"$start\",\"endAt\":\"$end\",\"conditions\":{\"ageStart\":$((15 + i * 5)),\"country\":[\"TW\",\"JP\"],\"platform\":[\"ios\",\"web\"]}}"
  done
  post "{\"title\":\"Everyone\",\"startAt\":\"$start\",\"endAt\":\"$(date -u -d '+7 day' +%Y-%m-%dT%H:%M:%SZ)\"}"
  post "{\"title\":\"Android in the US or women anywhere\",\"startAt\":\"$start\",\"endAt\":\"$(date -u -d '+3 day' +%Y-%m-%dT%H:%M:%SZ)\",\"conditions\":[{\"country\":[\"US\"],\"platform\":[\"android\"]},{\"gender\":[\"F\"]}]}"
  echo "seeded demo ads" >&2
fi

cat <<MSG

adcast is running.
  edge (whole API, Public API served from memory): $EDGE
  writer (Admin API, also reachable through the edge): $WRITER

Try:
  curl -s '$EDGE/api/v1/ad?age=25&country=TW&platform=ios'
  curl -s '$EDGE/api/v1/ad?gender=F&limit=10&offset=0'
  curl -s -X POST $EDGE/api/v1/ad -H 'content-type: application/json' \\
       -d '{"title":"Hello","startAt":"2024-01-01T00:00:00Z","endAt":"2099-01-01T00:00:00Z","conditions":{"gender":["F"]}}'
  curl -s '$EDGE/api/v1/admin/ad?limit=3'
  curl -s $EDGE/metrics | grep adcast_edge_applied_seq

Ctrl-C stops it.
MSG
wait
