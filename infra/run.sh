#!/usr/bin/env bash
# The quick start: brings up PostgreSQL and Redis (reused, started or
# installed), builds adcast, starts a writer and an edge that serves the whole
# API on one URL, seeds demo ads, and prints curl examples. Ctrl-C stops what
# it started. `--reset` first throws the demo's data away (database, stream,
# snapshot files: they only make sense together). `--help` prints the usage.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'USAGE'
Usage: ./infra/run.sh [--reset] [--help]

Runs the adcast demo: PostgreSQL and Redis (reused if running, started if
installed, installed with apt-get if missing), a release build, a writer and
an edge serving the whole API on one URL, a few demo ads. Ctrl-C stops it.

  --reset   Start from nothing: drop the demo database, delete the demo's
            Redis stream key and the demo's snapshot files, then run as usual.
            The database and the stream go together: a fresh database with an
            old stream (or old snapshot files) would not line up.
  --help    Print this and exit.

Environment (all optional):
  ADCAST_DEMO_DB          demo database name                (adcast)
  ADCAST_WRITER_LISTEN    writer address                    (127.0.0.1:8081)
  ADCAST_EDGE_LISTEN      edge address                      (127.0.0.1:8080)
  ADCAST_STREAM_KEY       Redis stream key                  (adcast:events)
  ADCAST_SNAPSHOT_DIR     writer snapshot directory         (./data/snapshots)
  ADCAST_DATA_DIR         edge data directory               (./data/edge)
  CARGO_TARGET_DIR        where cargo builds                (./target)
  DATABASE_URL, REDIS_URL use these servers instead of the local ones
                          (--reset refuses to run with DATABASE_URL set: it
                          only drops the demo's own database)
USAGE
}

reset=false
for arg in "$@"; do
  case "$arg" in
    --reset) reset=true ;;
    -h | --help) usage; exit 0 ;;
    *) printf 'run.sh: unknown argument %s\n\n' "$arg" >&2; usage >&2; exit 2 ;;
  esac
done

if $reset && [ -n "${DATABASE_URL:-}" ]; then
  echo "run.sh: --reset only drops the demo's own database; unset DATABASE_URL to use it" >&2
  exit 2
fi

. infra/services.sh

command -v curl >/dev/null 2>&1 || apt_install curl

DB_NAME="${ADCAST_DEMO_DB:-adcast}"
WRITER_LISTEN="${ADCAST_WRITER_LISTEN:-127.0.0.1:8081}"
EDGE_LISTEN="${ADCAST_EDGE_LISTEN:-127.0.0.1:8080}"
STREAM_KEY="${ADCAST_STREAM_KEY:-adcast:events}"
SNAPSHOT_DIR="${ADCAST_SNAPSHOT_DIR:-./data/snapshots}"
EDGE_DATA_DIR="${ADCAST_DATA_DIR:-./data/edge}"
export DATABASE_URL="${DATABASE_URL:-$ADCAST_TEST_DATABASE_URL/$DB_NAME}"
export REDIS_URL="${REDIS_URL:-$ADCAST_TEST_REDIS_URL}"
export ADCAST_WRITER_LISTEN="$WRITER_LISTEN"
export ADCAST_STREAM_KEY="$STREAM_KEY"
export ADCAST_SNAPSHOT_DIR="$SNAPSHOT_DIR"

# A TCP connect to host:port answers whether something listens there.
listening() {
  local host="${1%:*}"
  host="${host#[}"
  (exec 3<>"/dev/tcp/${host%]}/${1##*:}") 2>/dev/null
}

# Removes snapshot files (and leftover temporary ones) from a directory, then
# the directory if nothing else is in it; other files are left alone.
remove_snapshot_files() {
  [ -d "$1" ] || return 0
  find "$1" -maxdepth 1 -type f \( -name 'snapshot-*.adsnap' -o -name '.snapshot-*.tmp' \) -delete
  rmdir "$1" 2>/dev/null || true
}

if $reset; then
  for address in "$WRITER_LISTEN" "$EDGE_LISTEN"; do
    if listening "$address"; then
      echo "run.sh: something listens on $address; stop the running demo before --reset" >&2
      exit 1
    fi
  done
  command -v redis-cli >/dev/null 2>&1 || apt_install redis-tools
  echo "reset: dropping database $DB_NAME" >&2
  psql "$ADCAST_TEST_DATABASE_URL/postgres" -qc "drop database if exists \"$DB_NAME\"" >/dev/null
  echo "reset: deleting stream key $STREAM_KEY" >&2
  redis-cli -u "$REDIS_URL" DEL "$STREAM_KEY" >/dev/null
  echo "reset: removing snapshot files in $SNAPSHOT_DIR and $EDGE_DATA_DIR" >&2
  remove_snapshot_files "$SNAPSHOT_DIR"
  remove_snapshot_files "$EDGE_DATA_DIR"
fi

if ! psql "$ADCAST_TEST_DATABASE_URL/postgres" -Atqc "select 1 from pg_database where datname = '$DB_NAME'" | grep -q 1; then
  psql "$ADCAST_TEST_DATABASE_URL/postgres" -qc "create database \"$DB_NAME\"" >/dev/null
fi

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cat >&2 <<MSG

Building adcast in release mode (cargo build --release) into $TARGET_DIR/release.
The first build compiles every dependency: about 4-6 minutes on an idle
2-core machine (longer if it is busy). Later runs only rebuild what changed
and take seconds.

MSG
cargo build --release --locked

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
  --data-dir "$EDGE_DATA_DIR" &
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
  curl -s '$EDGE/api/v1/admin/ad?limit=3'

  # create an ad and keep its id (the demo ads have the first ids)
  ID=\$(curl -s -X POST $EDGE/api/v1/ad -H 'content-type: application/json' \\
       -d '{"title":"Hello","startAt":"2024-01-01T00:00:00Z","endAt":"2099-01-01T00:00:00Z","conditions":{"gender":["F"]}}' \\
       | sed -E 's/^\{"id":([0-9]+).*/\1/')
  curl -s $EDGE/api/v1/ad/\$ID
  curl -s '$EDGE/api/v1/ad?gender=F&limit=100' | grep -o Hello
  curl -si -X DELETE $EDGE/api/v1/ad/\$ID
  curl -s $EDGE/metrics | grep adcast_edge_applied_seq

Ctrl-C stops it; ./infra/run.sh --reset starts over with an empty demo.
MSG
wait
