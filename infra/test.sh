#!/usr/bin/env bash
# The test command: brings up PostgreSQL and Redis if needed (and installs
# moto's S3 server for the object-storage tests), then runs every test of the
# workspace (unit, property and integration tests), then the web console in a
# real browser (infra/console-test.sh), then the region scenarios
# (infra/regions.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. infra/services.sh

# Every test removes what it created. What a killed test binary left behind
# is named after its process id (adcast_test_<pid>_…, adcast:test:<pid>:…):
# remove it only when that process is gone, so a concurrent run is untouched.
gone() { ! kill -0 "$1" 2>/dev/null; }
psql "$ADCAST_TEST_DATABASE_URL/postgres" -Atqc \
  "select datname from pg_database where datname like 'adcast\_test\_%'" 2>/dev/null |
  while read -r db; do
    pid=$(printf '%s' "$db" | sed -nE 's/^adcast_test_([0-9]+)_.*/\1/p')
    if [ -n "$pid" ] && gone "$pid"; then
      psql "$ADCAST_TEST_DATABASE_URL/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
    fi
  done
if command -v redis-cli >/dev/null 2>&1; then
  redis-cli -u "$ADCAST_TEST_REDIS_URL" --scan --pattern 'adcast:test:*' 2>/dev/null |
    while read -r key; do
      pid=$(printf '%s' "$key" | sed -nE 's/^adcast:test:([0-9]+):.*/\1/p')
      if [ -n "$pid" ] && gone "$pid"; then redis-cli -u "$ADCAST_TEST_REDIS_URL" del "$key" >/dev/null; fi
    done
fi

# moto's S3-compatible server for the object-storage tests (installed into a
# venv once; each test starts its own server from it on a free port).
# If the install fails, the rest still runs and those tests fail saying why.
if ADCAST_TEST_MOTO=$(bash infra/moto.sh); then
  export ADCAST_TEST_MOTO
else
  echo "warning: moto could not be installed; the object-storage tests will fail" >&2
fi

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
# The web console in a real browser (Playwright driving Debian's Chromium,
# both installed when missing).
bash infra/console-test.sh 2>&1 | tee -a "$log_file" || status=$?
# The region scenarios: real binaries in network namespaces behind a fault
# proxy (bounded; prints SKIPPED where namespaces are not available).
bash infra/regions.sh 2>&1 | tee -a "$log_file" || status=$?
# One closing line for the whole run, summed over every test binary.
# (cargo's "test result:" lines and pytest's closing "N passed, M failed" line).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     /^(=+ )?[0-9]+ (passed|failed)/ && / in [0-9.]+s/ { for (i = 2; i <= NF; i++) { if ($(i) ~ /^passed,?$/) p += $(i-1); if ($(i) ~ /^failed,?$/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log_file"
exit "$status"
