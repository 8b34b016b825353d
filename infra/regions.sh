#!/usr/bin/env bash
# The region scenarios (infra/testing/tests/regions/): the real writer, edges
# and Redis replicas in network namespaces, with a fault proxy and iptables
# rules between them. Builds what they need, removes what killed runs left
# behind, and runs them one at a time within a time bound.
#
# Needs root, `ip netns` (iproute2) and `iptables` (installed with apt-get
# when missing); where they are not available it prints `SKIPPED: <why>` and
# exits 0. PostgreSQL comes from infra/services.sh, like the other tests.
#
#   bash infra/regions.sh                 # all scenarios
#   bash infra/regions.sh promotion       # those whose name contains "promotion"
#
# ADCAST_REGIONS_TIMEOUT bounds the run of the scenarios (default 10m).
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
  echo "SKIPPED: region scenarios: $*"
  exit 0
}

[ "$(id -u)" = 0 ] || skip "they need root (network namespaces, iptables)"
command -v ip >/dev/null 2>&1 || skip "iproute2 (ip) is not installed"
if ! command -v iptables >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  echo "regions: installing iptables" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables >/dev/null 2>&1 || true
fi
command -v iptables >/dev/null 2>&1 || skip "iptables is missing and could not be installed"
probe="adcast-probe-$$"
if ! ip netns add "$probe" >/dev/null 2>&1; then
  skip "network namespaces cannot be created here (ip netns add failed)"
fi
if ! ip netns exec "$probe" iptables -w -L >/dev/null 2>&1; then
  ip netns del "$probe" >/dev/null 2>&1 || true
  skip "iptables does not work inside a network namespace here"
fi
ip netns del "$probe"

# shellcheck source=infra/services.sh disable=SC1091 # checked on its own
. infra/services.sh
command -v redis-server >/dev/null 2>&1 || skip "redis-server is not installed"

# One run at a time on this machine: region addresses are picked from
# what is free.
lock="${TMPDIR:-/tmp}/adcast-regions.lock"
exec 9>"$lock"
flock -w 900 9 || { echo "regions: another run holds $lock" >&2; exit 1; }

# What a killed run left behind carries its process id: namespaces
# adcast-<pid>-<label> (and the processes in them), veth ends ac<pid>r<N>,
# directories adcast-regions_<pid>_…, databases adcast_test_<pid>_…
gone() { ! kill -0 "$1" 2>/dev/null; }
remove_leftovers() {
  local ns pid link dir db
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    pid=$(printf '%s' "$ns" | sed -nE 's/^adcast-([0-9]+)-.*/\1/p')
    if [ -n "$pid" ] && gone "$pid"; then
      for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'); do
    pid=$(printf '%s' "$link" | sed -nE 's/^ac([0-9]+)r[0-9]+$/\1/p')
    if [ -n "$pid" ] && gone "$pid"; then ip link del "$link" 2>/dev/null || true; fi
  done
  for dir in "${TMPDIR:-/tmp}"/adcast-regions_*; do
    [ -e "$dir" ] || continue
    pid=$(basename "$dir" | sed -nE 's/^adcast-regions_([0-9]+)_.*/\1/p')
    if [ -n "$pid" ] && gone "$pid"; then rm -rf "$dir"; fi
  done
  psql "$ADCAST_TEST_DATABASE_URL/postgres" -Atqc \
    "select datname from pg_database where datname like 'adcast\_test\_%'" 2>/dev/null |
    while read -r db; do
      pid=$(printf '%s' "$db" | sed -nE 's/^adcast_test_([0-9]+)_.*/\1/p')
      if [ -n "$pid" ] && gone "$pid"; then
        psql "$ADCAST_TEST_DATABASE_URL/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
      fi
    done
}
remove_leftovers
trap remove_leftovers EXIT

echo "regions: building adcast-writer, adcast-edge and the scenarios" >&2
cargo build --locked -q -p adcast-writer -p adcast-edge --bins
cargo test --locked -q -p adcast-testing --test regions --no-run
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
export ADCAST_WRITER_BIN="$target_dir/debug/adcast-writer"
export ADCAST_EDGE_BIN="$target_dir/debug/adcast-edge"

# Each scenario has its own deadline inside; this bounds the whole run, and
# the leftovers of a run killed here are removed on exit.
status=0
timeout --kill-after=20s "${ADCAST_REGIONS_TIMEOUT:-10m}" \
  cargo test --locked -p adcast-testing --test regions -- \
  --ignored --test-threads=1 --nocapture "$@" || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "regions: the scenarios did not finish within ${ADCAST_REGIONS_TIMEOUT:-10m}"
fi
exit "$status"
