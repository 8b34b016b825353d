#!/usr/bin/env bash
# Browser tests of the web console (/admin/): a real writer on a free port,
# with a fresh PostgreSQL database, its own Redis stream key and snapshot
# directory, driven by Playwright (Python) in Debian's Chromium, headless.
#
#   bash infra/console-test.sh [pytest arguments, e.g. -k delete]
#
# Environment:
#   ADCAST_TEST_DATABASE_URL  PostgreSQL server URL, no database name
#                             (postgres://postgres@127.0.0.1:5432)
#   ADCAST_TEST_REDIS_URL     Redis URL                 (redis://127.0.0.1:6379)
#   ADCAST_ARTIFACTS          where screenshots and the writer's log go
#                             (target/console-artifacts)
#   ADCAST_CONSOLE_VENV       the tools' virtualenv
#                             (/var/tmp/adcast-ci-tools/console-venv)
#   CHROMIUM                  the browser                (/usr/bin/chromium)
#   CARGO_TARGET_DIR          as for cargo               (target)
#
# Installs what is missing (chromium with apt-get, the Python packages of
# console-tests/requirements.txt into the virtualenv; nothing when both are
# there), builds the writer, runs the tests, and removes the database, the
# stream key and the directories it made, also when a test fails.
set -euo pipefail

cd "$(dirname "$0")/.."
DB_BASE=${ADCAST_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${ADCAST_TEST_REDIS_URL:-redis://127.0.0.1:6379}
ARTIFACTS=${ADCAST_ARTIFACTS:-target/console-artifacts}
VENV=${ADCAST_CONSOLE_VENV:-/var/tmp/adcast-ci-tools/console-venv}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
REQUIREMENTS=infra/console-tests/requirements.txt

log() { printf '[console-test] %s\n' "$*" >&2; }

# --- tools -----------------------------------------------------------------
if [[ ! -x "$CHROMIUM" ]]; then
  log "installing chromium (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# The stamp holds the requirements it was installed from: a changed pin
# reinstalls, an unchanged one costs nothing.
stamp="$VENV/.adcast-requirements"
if ! cmp -s "$REQUIREMENTS" "$stamp" 2>/dev/null || ! "$VENV/bin/python" -c 'import playwright, pytest' 2>/dev/null; then
  log "installing Playwright and pytest into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$stamp"
fi

# --- writer ----------------------------------------------------------------
log "building the writer"
cargo build --quiet -p adcast-writer --locked
WRITER="${CARGO_TARGET_DIR:-target}/debug/adcast-writer"

mkdir -p "$ARTIFACTS"
ARTIFACTS=$(cd "$ARTIFACTS" && pwd)
suffix=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
DB_NAME="adcast_console_$suffix"
STREAM_KEY="adcast:console:$suffix"
SNAPSHOT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/adcast-console-snapshots.XXXXXX")
ADMIN_TOKEN="console-admin-$suffix"
READ_TOKEN="console-read-$suffix"
INTERNAL_TOKEN="console-internal-$suffix"
WRITER_PID=""

cleanup() {
  local status=$?
  if [[ -n "$WRITER_PID" ]]; then
    kill "$WRITER_PID" 2>/dev/null || true
    wait "$WRITER_PID" 2>/dev/null || true
  fi
  psql -q "$DB_BASE/postgres" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 \
    || log "could not drop database $DB_NAME"
  redis-cli -u "$REDIS_URL" DEL "$STREAM_KEY" >/dev/null 2>&1 || log "could not delete stream $STREAM_KEY"
  rm -rf "$SNAPSHOT_DIR"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql -q -v ON_ERROR_STOP=1 "$DB_BASE/postgres" -c "CREATE DATABASE $DB_NAME" >/dev/null
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
flags=(--listen "127.0.0.1:$PORT" --database-url "$DB_BASE/$DB_NAME" --redis-url "$REDIS_URL"
       --stream-key "$STREAM_KEY" --snapshot-dir "$SNAPSHOT_DIR" --log warn)
# Scoped and labelled tokens are newer than this script's first version:
# use them where the writer has them.
if "$WRITER" --help | grep -q -- '--read-token'; then
  flags+=(--admin-token "console-admin:$ADMIN_TOKEN" --read-token "viewer:$READ_TOKEN"
          --internal-token "$INTERNAL_TOKEN")
else
  flags+=(--admin-token "$ADMIN_TOKEN")
  READ_TOKEN=""
  INTERNAL_TOKEN=""
fi
"$WRITER" "${flags[@]}" >"$ARTIFACTS/writer.log" 2>&1 &
WRITER_PID=$!

URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 150); do
  if curl -fsS "$URL/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$WRITER_PID" 2>/dev/null; then
    log "the writer exited; its log:"; cat "$ARTIFACTS/writer.log" >&2; exit 1
  fi
  sleep 0.2
done
curl -fsS "$URL/readyz" >/dev/null || { log "the writer is not ready after 30 s"; exit 1; }

log "writer on $URL; screenshots go to $ARTIFACTS"
ADCAST_CONSOLE_URL="$URL" ADCAST_ADMIN_TOKEN="$ADMIN_TOKEN" ADCAST_READ_TOKEN="$READ_TOKEN" \
ADCAST_INTERNAL_TOKEN="$INTERNAL_TOKEN" \
ADCAST_ARTIFACTS="$ARTIFACTS" CHROMIUM="$CHROMIUM" PYTHONDONTWRITEBYTECODE=1 \
  "$VENV/bin/python" -m pytest -p no:cacheprovider -q infra/console-tests "$@"
