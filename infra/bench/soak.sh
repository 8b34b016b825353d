#!/usr/bin/env bash
# Soak test: Public API load on EDGES edges plus a steady trickle of writes
# (creates, replaces, deletes, ads expiring) for SOAK_SECONDS. Reports
# non-2xx answers and socket errors (must be 0), each edge's RSS every 10 s
# (must stay flat), and finally checks that every edge serves exactly what
# the writer's database says is active. Exit status 1 on any failure.
#
#   bash infra/bench/soak.sh            # SOAK_SECONDS=600 EDGES=2 WRITES_PER_SECOND=5
set -euo pipefail
cd "$(dirname "$0")/../.."
. infra/services.sh
command -v wrk >/dev/null 2>&1 || apt_install wrk
command -v curl >/dev/null 2>&1 || apt_install curl

SOAK_SECONDS="${SOAK_SECONDS:-600}"
EDGES="${EDGES:-2}"
WRITES_PER_SECOND="${WRITES_PER_SECOND:-5}"
WRITER_PORT=18190
DB=adcast_soak
STREAM="adcast:soak:$$"
WORK=$(mktemp -d)
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
pids=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  redis-cli -u "$ADCAST_TEST_REDIS_URL" del "$STREAM" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "building (release)…" >&2
cargo build --release --locked -q -p adcast-writer -p adcast-edge
psql "$ADCAST_TEST_DATABASE_URL/postgres" -qc "drop database if exists $DB" -c "create database $DB" >/dev/null 2>&1

DATABASE_URL="$ADCAST_TEST_DATABASE_URL/$DB" REDIS_URL="$ADCAST_TEST_REDIS_URL" ADCAST_STREAM_KEY="$STREAM" \
  ADCAST_SNAPSHOT_DIR="$WORK/snapshots" ADCAST_LOG=warn ADCAST_SNAPSHOT_INTERVAL_SECS=30 \
  "$TARGET_DIR/release/adcast-writer" --listen "127.0.0.1:$WRITER_PORT" &
pids+=($!)
edge_pids=()
for e in $(seq 1 "$EDGES"); do
  REDIS_URL="$ADCAST_TEST_REDIS_URL" ADCAST_STREAM_KEY="$STREAM" ADCAST_LOG=warn \
    "$TARGET_DIR/release/adcast-edge" --listen "127.0.0.1:$((18180 + e))" --worker-threads 1 \
    --writer-url "http://127.0.0.1:$WRITER_PORT" --data-dir "$WORK/edge-$e" --persist-interval-secs 20 &
  pids+=($!)
  edge_pids+=($!)
done
for port in $WRITER_PORT $(seq 18181 $((18180 + EDGES))); do
  for _ in $(seq 1 150); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
done
python3 infra/bench/seed.py "http://127.0.0.1:$WRITER_PORT" 500

# Load: one wrk per edge, modest connection count, for the whole soak.
for e in $(seq 1 "$EDGES"); do
  wrk -t1 -c16 -d"${SOAK_SECONDS}s" -s infra/bench/queries.lua "http://127.0.0.1:$((18180 + e))" > "$WORK/wrk-$e.txt" &
  pids+=($!)
done

# Trickle of writes through the writer.
python3 - "$WRITER_PORT" "$SOAK_SECONDS" "$WRITES_PER_SECOND" > "$WORK/writes.txt" 2> "$WORK/writes.err" <<'PY' &
import datetime, http.client, json, random, sys, time
port, seconds, rate = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
rng = random.Random(3)
live, failures, done = [], 0, 0
deadline = time.monotonic() + seconds
def iso(delta):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
def call(method, path, body=None):
    conn.request(method, path, json.dumps(body) if body is not None else None, {"content-type": "application/json"})
    r = conn.getresponse(); data = r.read(); return r.status, data
while time.monotonic() < deadline:
    started = time.monotonic()
    action = rng.random()
    body = {"title": "soak %d" % done, "startAt": iso(-60),
            "endAt": iso(rng.choice([rng.randint(20, 120), rng.randint(3600, 86400)])),
            "conditions": {"country": [rng.choice(["TW", "JP", "US"])]} if rng.random() < 0.5 else None}
    if action < 0.7 or not live:
        status, data = call("POST", "/api/v1/ad", body)
        if status == 201: live.append(json.loads(data)["id"])
    elif action < 0.85:
        status, _ = call("PUT", "/api/v1/ad/%d" % rng.choice(live), body)
    else:
        status, _ = call("DELETE", "/api/v1/ad/%d" % live.pop(rng.randrange(len(live))))
    failures += status not in (200, 201, 204)
    done += 1
    time.sleep(max(0, 1 / rate - (time.monotonic() - started)))
print(done, failures)
PY
writes_pid=$!

echo "soaking for $SOAK_SECONDS s…" >&2
printf 'seconds' > "$WORK/rss.tsv"
for e in $(seq 1 "$EDGES"); do printf '\tedge %s RSS MiB' "$e" >> "$WORK/rss.tsv"; done
echo >> "$WORK/rss.tsv"
elapsed=0
while [ "$elapsed" -le "$SOAK_SECONDS" ]; do
  printf '%s' "$elapsed" >> "$WORK/rss.tsv"
  for pid in "${edge_pids[@]}"; do
    awk '/VmRSS/ { printf "\t%.1f", $2 / 1024 }' "/proc/$pid/status" >> "$WORK/rss.tsv"
  done
  echo >> "$WORK/rss.tsv"
  sleep 10
  elapsed=$((elapsed + 10))
done
wait "$writes_pid" || { echo "the write trickle failed:"; cat "$WORK/writes.err"; exit 1; }
read -r writes write_failures < "$WORK/writes.txt"
wait_for_wrk() { for f in "$WORK"/wrk-*.txt; do while ! grep -q "Requests/sec" "$f"; do sleep 1; done; done; }
wait_for_wrk

status=0
echo "RSS over time:"; cat "$WORK/rss.tsv"
for e in $(seq 1 "$EDGES"); do
  file="$WORK/wrk-$e.txt"
  rps=$(awk '/Requests\/sec/ { print $2 }' "$file")
  non2xx=$(awk '/Non-2xx/ { print $5 }' "$file"); non2xx=${non2xx:-0}
  errors=$({ grep -oE '(connect|read|write|timeout) [0-9]+' "$file" || true; } | awk '{ s += $2 } END { print s + 0 }')
  echo "edge $e: $rps requests/s, non-2xx $non2xx, socket errors $errors"
  [ "$non2xx" = 0 ] && [ "$errors" = 0 ] || status=1
done
echo "writes: $writes, failed: $write_failures"
[ "$write_failures" = 0 ] || status=1

# Consistency: every edge serves exactly the database's active ads.
last_seq=$(psql "$ADCAST_TEST_DATABASE_URL/$DB" -Atc "select last_seq from change_sequence")
python3 - "$ADCAST_TEST_DATABASE_URL/$DB" "$last_seq" "$EDGES" <<'PY' || status=1
import json, subprocess, sys, urllib.request
db, last_seq, edges = sys.argv[1], sys.argv[2], int(sys.argv[3])
def expected():
    out = subprocess.run(["psql", db, "-Atc",
        "select json_agg(json_build_object('title', title, 'endAt', to_char(end_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')) order by end_at, id) "
        "from ads where deleted_at is null and start_at < now() and end_at > now()"], capture_output=True, text=True, check=True).stdout.strip()
    return json.loads(out) if out else []
def served(port):
    items, offset = [], 0
    while True:
        req = urllib.request.Request("http://127.0.0.1:%d/api/v1/ad?limit=100&offset=%d" % (port, offset), headers={"Adcast-Min-Seq": last_seq})
        page = json.load(urllib.request.urlopen(req))["items"]
        items += page; offset += 100
        if len(page) < 100: return items
ok = True
for e in range(1, edges + 1):
    for attempt in range(3):  # an ad may end between the two reads; read again
        want, got = expected(), served(18180 + e)
        if want == got: break
    print("edge %d: %d active ads served, %s" % (e, len(got), "matches the database" if want == got else "DIFFERS from the database"))
    ok &= want == got
sys.exit(0 if ok else 1)
PY
[ "$status" = 0 ] && echo "soak passed" || echo "soak FAILED"
exit "$status"
