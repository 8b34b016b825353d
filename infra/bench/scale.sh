#!/usr/bin/env bash
# Scale run (issue 10): the real system at ADS ads (default 1,000,000), end to end.
#
# Starts PostgreSQL and Redis (services.sh) and, on a scratch database,
# stream key and snapshot directory (all removed on exit):
#   1. a release writer with admin and internal tokens; writes ADS active ads
#      with mixed conditions as NDJSON and loads them with
#      `adcast-writer import FILE` (the CLI, 10,000 ads per request):
#      import wall time and ads/s;
#   2. the snapshot: waits until the running writer's own periodic snapshot
#      covers the import (its /metrics give duration and size), then times
#      `adcast-writer snapshot --out FILE`, the operator's command for
#      provisioning edges from a file (wall time, peak RSS, size);
#   3. cold-starts EDGES edges (default 8) one after the other from that
#      file, each following the stream, the first one forwarding to the
#      writer (--writer-url, internal token): start → first answer equal to
#      the writer's preview of the same query, a deep-offset answer checked
#      against the body computed from the file, RSS after load;
#   4. for DURATION seconds (default 60): RATE creates/s (default 50)
#      POSTed through the forwarding edge, each followed at once by a GET
#      with `Adcast-Min-Seq` to every edge, while wrk (queries.lua,
#      CONNECTIONS connections, 1 thread) queries the forwarding edge:
#      forwarded create latency, `Adcast-Applied: false` count,
#      ack → served by all edges, edge RSS (sampled every 250 ms), wrk's
#      throughput and p99, CPU per process. Then checks that every edge
#      answers two first pages exactly as the writer's preview does, and
#      the deep offset as computed from the file.
#
#   bash infra/bench/scale.sh                         # ADS=1000000 EDGES=8 DURATION=60 RATE=50
#   ADS=20000 EDGES=3 DURATION=10 SKIP_BUILD=1 bash infra/bench/scale.sh   # a quick try
#   WRK=0 bash infra/bench/scale.sh                   # the trickle without the load generator
#   WRITER_ARGS="--snapshot-every-changes 1000000" EDGE_ARGS="..." bash infra/bench/scale.sh   # extra flags
#   REPORT=FILE keeps the summary; KEEP_WORK=1 keeps the work directory (logs, trickle.json per write)
#
# Figures and their reading: BENCHMARKS.md, "Scale run, 1,000,000 ads".
# The measuring helper is infra/bench/scale.py. Everything runs on this one
# machine: EDGES edges, the writer, PostgreSQL, Redis, wrk and the helper
# share its cores, which is itself a limit on every latency measured.
set -euo pipefail
cd "$(dirname "$0")/../.."
. infra/services.sh
command -v wrk >/dev/null 2>&1 || apt_install wrk
command -v curl >/dev/null 2>&1 || apt_install curl
[ -x /usr/bin/time ] || apt_install time

ADS="${ADS:-1000000}"
EDGES="${EDGES:-8}"
DURATION="${DURATION:-60}"
RATE="${RATE:-50}"
CONNECTIONS="${CONNECTIONS:-64}"
WRK="${WRK:-1}"
# Extra flags, for finding out what limits a figure (the defaults are the real system's):
read -r -a WRITER_ARGS <<< "${WRITER_ARGS:-}"   # e.g. WRITER_ARGS="--snapshot-every-changes 100000"
read -r -a EDGE_ARGS <<< "${EDGE_ARGS:-}"       # e.g. EDGE_ARGS="--persist-interval-secs 3600"
# Logs: warnings, plus the writer's snapshots and the edges' compactions and
# saved states (with their durations), summarised after the trickle.
WRITER_LOG="warn,adcast_writer::snapshots=info"
EDGE_LOG="warn,adcast_edge::compaction=debug,adcast_edge::persist=debug"
WRITER_PORT=18381
FIRST_EDGE_PORT=18390
DB="adcast_bench_scale_$$"
STREAM="adcast:bench:scale:$$"
WORK=$(mktemp -d)
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
WRITER_BIN="$TARGET_DIR/release/adcast-writer"
EDGE_BIN="$TARGET_DIR/release/adcast-edge"
ADMIN_TOKEN="scale-admin-$$-$RANDOM$RANDOM"
INTERNAL_TOKEN="scale-edge-$$-$RANDOM$RANDOM"
W="http://127.0.0.1:$WRITER_PORT"

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # The edges are not all children of this shell (scale.py starts them):
  # wait for each pid to go (an edge saves its state on SIGTERM first).
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  redis-cli -u "$ADCAST_TEST_REDIS_URL" del "$STREAM" "$STREAM:heartbeat" >/dev/null 2>&1 || true
  psql "$ADCAST_TEST_DATABASE_URL/postgres" -qc "drop database if exists $DB" >/dev/null 2>&1 || true
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "building (release)…" >&2
  cargo build --release --locked -q -p adcast-writer -p adcast-edge --bins
fi

now_ms() { date +%s%3N; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
say() { printf '%s\n' "$*" | tee -a "$WORK/report.txt"; }

say "date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
say "machine: $(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r)"
say "settings: ADS=$ADS EDGES=$EDGES DURATION=$DURATION RATE=$RATE CONNECTIONS=$CONNECTIONS WRK=$WRK WRITER_ARGS=${WRITER_ARGS[*]:-} EDGE_ARGS=${EDGE_ARGS[*]:-}"
say "load average at start: $(loadavg)"

# --- 1. writer and import ----------------------------------------------------
psql "$ADCAST_TEST_DATABASE_URL/postgres" -qc "create database $DB" >/dev/null
DATABASE_URL="$ADCAST_TEST_DATABASE_URL/$DB" REDIS_URL="$ADCAST_TEST_REDIS_URL" ADCAST_STREAM_KEY="$STREAM" \
  ADCAST_SNAPSHOT_DIR="$WORK/writer-snapshots" ADCAST_LOG="$WRITER_LOG" \
  ADCAST_ADMIN_TOKENS="bench:$ADMIN_TOKEN" ADCAST_INTERNAL_TOKENS="$INTERNAL_TOKEN" \
  "$WRITER_BIN" --listen "127.0.0.1:$WRITER_PORT" "${WRITER_ARGS[@]}" >"$WORK/writer.log" 2>&1 &
writer_pid=$!
pids+=("$writer_pid")
for _ in $(seq 1 150); do curl -fs "$W/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs "$W/readyz" >/dev/null || { echo "the writer is not ready" >&2; cat "$WORK/writer.log" >&2; exit 1; }

python3 infra/bench/scale.py ads "$WORK/ads.ndjson" "$ADS"
say "import file: $(wc -c <"$WORK/ads.ndjson") bytes, $ADS ads"

start=$(now_ms)
ADCAST_WRITER_URL="$W" ADCAST_TOKEN="$ADMIN_TOKEN" "$WRITER_BIN" import "$WORK/ads.ndjson" 2>"$WORK/import.log" \
  || { echo "import failed:" >&2; tail -n 20 "$WORK/import.log" >&2; tail -n 20 "$WORK/writer.log" >&2; exit 1; }
import_ms=$(( $(now_ms) - start ))
tail -n 1 "$WORK/import.log" >&2
seq=$(tail -n 1 "$WORK/import.log" | sed -E 's/.*last change ([0-9]+).*/\1/')
say "1. import: ${import_ms} ms ($((ADS * 1000 / (import_ms > 0 ? import_ms : 1))) ads/s), last change $seq; load average $(loadavg)"

# --- 2. snapshot -------------------------------------------------------------
metric() { curl -fs "$W/metrics" | awk -v name="$1" '$1 == name { printf "%d\n", $2 }'; }
metric_float() { curl -fs "$W/metrics" | awk -v name="$1" '$1 == name { print $2 }'; }
start=$(now_ms)
for _ in $(seq 1 6000); do
  [ "$(metric adcast_snapshot_last_seq)" -ge "$seq" ] 2>/dev/null && break
  sleep 0.1
done
[ "$(metric adcast_snapshot_last_seq)" -ge "$seq" ] \
  || { echo "the writer wrote no snapshot of change $seq within 600 s" >&2; tail -n 20 "$WORK/writer.log" >&2; exit 1; }
say "2a. the running writer's periodic snapshot of change $seq: there $(( $(now_ms) - start )) ms after the import ended;" \
  "it took $(metric_float adcast_snapshot_duration_seconds) s, $(metric adcast_snapshot_bytes) bytes" \
  "(writer snapshot failures: $(metric adcast_snapshot_failures_total))"

SNAPSHOT="$WORK/scale.adsnap"
/usr/bin/time -f "%e %M" -o "$WORK/snapshot.time" \
  env DATABASE_URL="$ADCAST_TEST_DATABASE_URL/$DB" ADCAST_LOG=warn "$WRITER_BIN" snapshot --out "$SNAPSHOT" \
  || { echo "adcast-writer snapshot failed" >&2; exit 1; }
read -r snap_s snap_kib < "$WORK/snapshot.time"
say "2b. adcast-writer snapshot --out FILE: ${snap_s} s, peak RSS $((snap_kib / 1024)) MiB, $(stat -c %s "$SNAPSHOT") bytes; load average $(loadavg)"

# What a correct edge answers: the writer's preview of the same queries.
preview() {
  curl -fsS -H "Authorization: Bearer $ADMIN_TOKEN" "$W/api/v1/admin/preview?$1" > "$2" \
    || { echo "the writer's preview of ?$1 failed" >&2; return 1; }
}
# The writer's preview of a deep offset reads every active ad before it (far
# too slow at 1,000,000 ads): the deep answer is computed from the file.
DEEP_QUERY="offset=$((ADS - 1))&limit=1"
preview "limit=5" "$WORK/expected.json"
python3 infra/bench/scale.py expect "$WORK/ads.ndjson" $((ADS - 1)) > "$WORK/expected-deep.json"

# --- 3. cold starts ----------------------------------------------------------
need_kib=$((EDGES * 800 * 1024))
avail_kib=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
[ "$avail_kib" -ge "$need_kib" ] || [ "$ADS" -lt 1000000 ] \
  || { echo "MemAvailable $((avail_kib / 1024)) MiB < $((need_kib / 1024)) MiB for $EDGES edges of 1,000,000 ads: lower EDGES" >&2; exit 1; }
ports=() edge_pids=()
: > "$WORK/cold.tsv"
for i in $(seq 0 $((EDGES - 1))); do
  port=$((FIRST_EDGE_PORT + i))
  forward=()
  [ "$i" = 0 ] && forward=(--writer-url "$W")
  REDIS_URL="$ADCAST_TEST_REDIS_URL" ADCAST_STREAM_KEY="$STREAM" ADCAST_LOG="$EDGE_LOG" ADCAST_WRITER_TOKEN="$INTERNAL_TOKEN" \
    python3 infra/bench/scale.py cold-start --name "edge $i (:$port)" --port "$port" \
      --expected "$WORK/expected.json" --deep-query "$DEEP_QUERY" --deep-expected "$WORK/expected-deep.json" \
      --pid-file "$WORK/edge-$i.pid" --log "$WORK/edge-$i.log" --results "$WORK/cold.tsv" -- \
      "$EDGE_BIN" --listen "127.0.0.1:$port" --snapshot "$SNAPSHOT" --data-dir "$WORK/edge-$i" "${forward[@]}" "${EDGE_ARGS[@]}" \
    | tee -a "$WORK/report.txt" \
    || { [ -f "$WORK/edge-$i.pid" ] && pids+=("$(cat "$WORK/edge-$i.pid")"); tail -n 20 "$WORK/edge-$i.log" >&2; exit 1; }
  pids+=("$(cat "$WORK/edge-$i.pid")")
  edge_pids+=("$(cat "$WORK/edge-$i.pid")")
  ports+=("$port")
done
python3 - "$WORK/cold.tsv" <<'PY' | tee -a "$WORK/report.txt"
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines() if line]
col = lambda i: [float(r[i]) for r in rows]
print("3. cold start, %d edges one after the other: first correct answer median %.0f ms (%.0f–%.0f ms); "
      "/readyz median %.0f ms; RSS after load median %.1f MiB (%.1f–%.1f MiB), peak during load median %.1f MiB"
      % (len(rows), statistics.median(col(1)), min(col(1)), max(col(1)), statistics.median(col(2)),
         statistics.median(col(3)), min(col(3)), max(col(3)), statistics.median(col(4))))
PY
say "load average after the cold starts: $(loadavg)"

# --- 4. trickle through the forwarding edge, wrk alongside ------------------
wrk_cmd=""
[ "$WRK" = 1 ] && wrk_cmd="wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency -s infra/bench/queries.lua http://127.0.0.1:${ports[0]}"
logs=("$WORK/writer.log")
for i in $(seq 0 $((EDGES - 1))); do logs+=("$WORK/edge-$i.log"); done
log_marks=()
for log in "${logs[@]}"; do log_marks+=("$log:$(wc -l < "$log")"); done
say "4. trickle: $RATE creates/s for $DURATION s through edge 0 (:${ports[0]})${wrk_cmd:+, with: $wrk_cmd}"
python3 infra/bench/scale.py trickle --forward-port "${ports[0]}" \
  --ports "$(IFS=,; echo "${ports[*]}")" --pids "$(IFS=,; echo "${edge_pids[*]}")" \
  --cpu-pids "writer=$writer_pid" --token "$ADMIN_TOKEN" --rate "$RATE" --duration "$DURATION" \
  --out "$WORK/trickle.json" --wrk "$wrk_cmd" | tee -a "$WORK/report.txt"
say "load average after the trickle: $(loadavg)"
say "during the trickle (from the logs):"
python3 infra/bench/scale.py log-summary "${log_marks[@]}" | tee -a "$WORK/report.txt"

# Every edge now holds every write: two first pages as the writer's preview
# answers them, and the deep answer with the trickle's ads (every change
# after the import is one of its creates, all ending before the import's ads).
last=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["last_seq"])' "$WORK/trickle.json")
python3 infra/bench/scale.py expect "$WORK/ads.ndjson" $((ADS - 1)) $((last - seq)) > "$WORK/expected-deep-after.json"
for query in "limit=20&country=TW&age=30" "offset=40&limit=10&platform=ios&gender=F" "$DEEP_QUERY"; do
  if [ "$query" = "$DEEP_QUERY" ]; then cp "$WORK/expected-deep-after.json" "$WORK/check-expected.json"
  else preview "$query" "$WORK/check-expected.json"; fi
  for port in "${ports[@]}"; do
    curl -fs -H "Adcast-Min-Seq: $last" "http://127.0.0.1:$port/api/v1/ad?$query" > "$WORK/check.json"
    cmp -s "$WORK/check.json" "$WORK/check-expected.json" \
      || { echo "edge :$port answers ?$query differently: $(head -c 300 "$WORK/check.json"), expected $(head -c 300 "$WORK/check-expected.json")" >&2; exit 1; }
  done
done
say "check: at change $last all $EDGES edges answer two first pages exactly as the writer's preview, and offset $((ADS - 1)) as expected"
if [ -n "${REPORT:-}" ]; then cp "$WORK/report.txt" "$REPORT"; fi   # REPORT=FILE keeps the summary
