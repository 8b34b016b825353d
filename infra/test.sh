#!/usr/bin/env bash
# The test command: brings up PostgreSQL and Redis if needed, then runs every
# test of the workspace (unit, property and integration tests).
set -euo pipefail
cd "$(dirname "$0")/.."
. infra/services.sh

# Integration tests create databases named adcast_test_*; drop old ones.
psql "$ADCAST_TEST_DATABASE_URL/postgres" -Atqc \
  "select datname from pg_database where datname like 'adcast\_test\_%'" 2>/dev/null |
  while read -r db; do psql "$ADCAST_TEST_DATABASE_URL/postgres" -qc "drop database if exists \"$db\"" >/dev/null 2>&1 || true; done

log_file=$(mktemp)
tests="" follower=""
stop_tests() {
  if [ -n "$tests" ]; then kill -KILL -- "-$tests" 2>/dev/null || true; fi
  if [ -n "$follower" ]; then kill "$follower" 2>/dev/null || true; fi
}
trap 'stop_tests; rm -f "$log_file"' EXIT
trap 'exit 130' INT TERM
status=0
# cargo runs in the background under `timeout` (its own process group) and its
# output is followed until it exits, not until every descendant closes the
# output: a process a failed test left running cannot hang the run, and the
# group is killed afterwards (also when this script is interrupted).
# --no-fail-fast reports every failing test.
timeout --kill-after=30s "${ADCAST_TEST_TIMEOUT:-40m}" \
  cargo test --workspace --locked --no-fail-fast "$@" >"$log_file" 2>&1 &
tests=$!
# In the background too, so that a signal to this script is handled at once.
tail -n +1 -f --pid="$tests" "$log_file" &
follower=$!
wait "$follower" || true
wait "$tests" || status=$?
stop_tests
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "the tests did not finish within ${ADCAST_TEST_TIMEOUT:-40m}"
fi
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log_file"
exit "$status"
