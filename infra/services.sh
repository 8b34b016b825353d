#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on 127.0.0.1 (5432 and 6379): reuses
# running servers, starts installed ones, installs missing ones with apt-get.
# Source it (`. infra/services.sh`) to get ADCAST_TEST_DATABASE_URL and
# ADCAST_TEST_REDIS_URL exported; running it works too.
set -euo pipefail

PG_PORT=5432
REDIS_PORT=6379

log() { printf 'services: %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 100); do
    port_open "$1" && return 0
    sleep 0.2
  done
  log "nothing answers on port $1"; return 1
}

apt_install() {
  if [ "$(id -u)" != 0 ]; then log "need root to install $*"; return 1; fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  if ! port_open "$PG_PORT"; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
      apt_install postgresql
    fi
    local version
    version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
    log "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
    wait_port "$PG_PORT"
  fi
  command -v psql >/dev/null 2>&1 || apt_install postgresql-client
  # Tests connect over TCP as user postgres. A stock Debian install asks for a
  # password there; give it one rather than weakening authentication.
  if PGCONNECT_TIMEOUT=5 psql "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -Atqc 'select 1' >/dev/null 2>&1; then
    export ADCAST_TEST_DATABASE_URL="${ADCAST_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:$PG_PORT}"
  else
    if ! PGPASSWORD=postgres psql "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -Atqc 'select 1' >/dev/null 2>&1; then
      log "setting a password for the postgres role (local test server)"
      runuser -u postgres -- psql -qc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null
    fi
    export ADCAST_TEST_DATABASE_URL="${ADCAST_TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:$PG_PORT}"
  fi
}

ensure_redis() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  if ! port_open "$REDIS_PORT"; then
    log "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
      --dir "${TMPDIR:-/tmp}" --logfile "${TMPDIR:-/tmp}/adcast-redis.log"
    wait_port "$REDIS_PORT"
  fi
  export ADCAST_TEST_REDIS_URL="${ADCAST_TEST_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}"
}

ensure_postgres
ensure_redis
log "PostgreSQL and Redis are up"
