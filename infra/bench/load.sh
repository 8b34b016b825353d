#!/usr/bin/env bash
# Load benchmark: the edge against the bare-hyper HTTP ceiling, same run.
#
# Starts PostgreSQL and Redis (services.sh), a writer and an edge with
# --worker-threads 1, seeds 1,000 active ads with mixed conditions through the
# Admin API, then drives the edge and the ceiling server (edge/examples/
# ceiling.rs, answering a fixed body of the edge's typical answer size)
# alternately, ROUNDS times each, with wrk and a random realistic query mix
# (queries.lua). Server pinned to CPU 0, wrk to CPU 1. Prints the medians of
# requests/s and p99 latency, non-2xx counts, and the edge/ceiling ratio.
#
#   bash infra/bench/load.sh            # DURATION=10 ROUNDS=3 CONNECTIONS=64 ADS=1000
#   EDGE_ARGS="--answer-cache-entries 0" bash infra/bench/load.sh   # extra edge flags
#   SNAPSHOT_ADS=1000000 bash infra/bench/load.sh   # the edge booted from a make_snapshot
#       file of that many ads (the same condition mix), no writer: for
#       catalogs too large to seed through the Admin API one ad at a time
#   SNAPSHOT_ADS=1000000 OFFSET_MAX=100000 bash infra/bench/load.sh   # every query paged deep
#   EDGE=/path/to/other/adcast-edge bash infra/bench/load.sh   # compare builds
set -euo pipefail
cd "$(dirname "$0")/../.."
. infra/services.sh
command -v wrk >/dev/null 2>&1 || apt_install wrk
command -v curl >/dev/null 2>&1 || apt_install curl

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
ADS="${ADS:-1000}"
SNAPSHOT_ADS="${SNAPSHOT_ADS:-}"
OFFSET_MAX="${OFFSET_MAX:-}"   # set: every query paged 0..OFFSET_MAX deep (queries.lua)
export OFFSET_MAX
WRITER_PORT=18081 EDGE_PORT=18080 CEILING_PORT=18090
DB=adcast_bench
STREAM="adcast:bench:$$"
WORK=$(mktemp -d)
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
EDGE="${EDGE:-$TARGET_DIR/release/adcast-edge}"   # another build to compare with

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  redis-cli -u "$ADCAST_TEST_REDIS_URL" del "$STREAM" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "building (release)…" >&2
cargo build --release --locked -q -p adcast-writer -p adcast-edge --bins --example ceiling --example make_snapshot

read -r -a edge_args <<< "${EDGE_ARGS:-}"
if [ -n "$SNAPSHOT_ADS" ]; then
  ADS="$SNAPSHOT_ADS"
  "$TARGET_DIR/release/examples/make_snapshot" "$WORK/snapshot.adsnap" "$ADS" >/dev/null
  edge_args+=(--snapshot "$WORK/snapshot.adsnap")
else
  psql "$ADCAST_TEST_DATABASE_URL/postgres" -qc "drop database if exists $DB" -c "create database $DB" >/dev/null
  DATABASE_URL="$ADCAST_TEST_DATABASE_URL/$DB" REDIS_URL="$ADCAST_TEST_REDIS_URL" ADCAST_STREAM_KEY="$STREAM" \
    ADCAST_SNAPSHOT_DIR="$WORK/snapshots" ADCAST_LOG=warn \
    "$TARGET_DIR/release/adcast-writer" --listen "127.0.0.1:$WRITER_PORT" &
  writer_pid=$!
  pids+=("$writer_pid")
fi
REDIS_URL="$ADCAST_TEST_REDIS_URL" ADCAST_STREAM_KEY="$STREAM" ADCAST_LOG=warn \
  taskset -c 0 "$EDGE" --listen "127.0.0.1:$EDGE_PORT" --worker-threads 1 \
  --data-dir "$WORK/edge" --persist-interval-secs 3600 "${edge_args[@]}" &
edge_pid=$!
pids+=("$edge_pid")

wait_for() { # url what
  for _ in $(seq 1 300); do curl -fs "$1" >/dev/null 2>&1 && return; sleep 0.2; done
  curl -fs "$1" >/dev/null || { echo "$2" >&2; exit 1; }
}
if [ -n "$SNAPSHOT_ADS" ]; then
  wait_for "http://127.0.0.1:$EDGE_PORT/readyz" "the edge did not get ready"
else
  for port in $WRITER_PORT $EDGE_PORT; do
    wait_for "http://127.0.0.1:$port/healthz" "nothing answers on port $port"
  done
  python3 infra/bench/seed.py "http://127.0.0.1:$WRITER_PORT" "$ADS"
  curl -fs -H "Adcast-Min-Seq: $ADS" "http://127.0.0.1:$EDGE_PORT/api/v1/ad" >/dev/null \
    || { sleep 2; curl -fs -H "Adcast-Min-Seq: $ADS" "http://127.0.0.1:$EDGE_PORT/api/v1/ad" >/dev/null; }
  # The writer is not part of the measurement: stop it so it takes no CPU.
  kill "$writer_pid"
fi

# The ceiling answers with a body the size of the edge's mean answer (to
# queries paged as deep as the wrk script's).
body_size=$(python3 - "$EDGE_PORT" "${OFFSET_MAX:-0}" <<'PY'
import random, sys, urllib.request
port, offset_max = sys.argv[1], int(sys.argv[2])
random.seed(1)
sizes = []
for _ in range(200):
    q = []
    if random.random() < 0.6: q.append("age=%d" % random.randint(13, 72))
    if random.random() < 0.6: q.append("gender=" + random.choice("MF"))
    if random.random() < 0.7: q.append("country=" + random.choice(["TW","JP","US","FR","BR","IN","DE","GB"]))
    if random.random() < 0.7: q.append("platform=" + random.choice(["android","ios","web"]))
    q.append("limit=" + str(random.choice([5, 5, 10, 20])))
    if offset_max: q.append("offset=%d" % random.randint(0, offset_max))
    with urllib.request.urlopen("http://127.0.0.1:%s/api/v1/ad?%s" % (port, "&".join(q))) as r:
        sizes.append(len(r.read()))
print(sum(sizes) // len(sizes))
PY
)
taskset -c 0 "$TARGET_DIR/release/examples/ceiling" "127.0.0.1:$CEILING_PORT" "$body_size" 1 2>/dev/null &
ceiling_pid=$!
pids+=("$ceiling_pid")
sleep 0.5

cpu_ticks() { # pid → user+system clock ticks used so far
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}
run_wrk() { # name port server-pid
  local before
  before=$(cpu_ticks "$3")
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s infra/bench/queries.lua \
    "http://127.0.0.1:$2" > "$WORK/$1.txt"
  # Share of one core the server used: 100 % means the server, not wrk, is
  # what limits the request rate.
  local busy=$(( ($(cpu_ticks "$3") - before) * 100 / $(getconf CLK_TCK) / DURATION ))
  python3 - "$WORK/$1.txt" "$1" "$busy" <<'PY' >> "$WORK/results.tsv"
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
def ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
p99 = ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", text).groups())
non2xx = int((re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text) or [0, 0])[1])
errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
print("%s\t%.0f\t%.3f\t%d\t%d\t%s" % (sys.argv[2], rps, p99, non2xx, errors, sys.argv[3]))
PY
}

echo "warming up…" >&2
DURATION=2 run_wrk warmup-edge $EDGE_PORT "$edge_pid"
DURATION=2 run_wrk warmup-ceiling $CEILING_PORT "$ceiling_pid"
: > "$WORK/results.tsv"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS…" >&2
  run_wrk edge $EDGE_PORT "$edge_pid"
  run_wrk ceiling $CEILING_PORT "$ceiling_pid"
done

python3 - "$WORK/results.tsv" "$body_size" "$ADS" <<'PY'
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().split("\n") if line]
def med(name, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == name)
def total(name, col):
    return sum(int(r[col]) for r in rows if r[0] == name)
print("run\trequests/s\tp99 ms\tnon-2xx\tsocket errors\tserver CPU %")
for r in rows:
    print("\t".join(r))
edge, ceiling = med("edge", 1), med("ceiling", 1)
print()
print("| server | median requests/s | median p99 latency | non-2xx (all rounds) | socket errors | median server CPU |")
print("| --- | --- | --- | --- | --- | --- |")
print("| edge (1 worker thread, %s ads) | %.0f | %.2f ms | %d | %d | %.0f %% |" % ("{:,}".format(int(sys.argv[3])), edge, med("edge", 2), total("edge", 3), total("edge", 4), med("edge", 5)))
print("| ceiling (bare hyper, %s-byte body) | %.0f | %.2f ms | %d | %d | %.0f %% |" % (sys.argv[2], ceiling, med("ceiling", 2), total("ceiling", 3), total("ceiling", 4), med("ceiling", 5)))
print()
print("edge / ceiling throughput ratio: %.3f" % (edge / ceiling))
PY
