#!/usr/bin/env bash
# Writer snapshot benchmark: ADS live ads (default 1,000,000) inserted
# straight into a scratch database with SQL (mixed conditions: everyone,
# one group, two groups), then `adcast-writer snapshot --out FILE` timed
# with its peak RSS (GNU time) and the file size.
#
#   bash infra/bench/writer-snapshot.sh     # ADS=1000000 RUNS=3; SKIP_BUILD=1 uses the binaries as built
set -euo pipefail
cd "$(dirname "$0")/../.."
ADS="${ADS:-1000000}"
RUNS="${RUNS:-3}"
BASE_URL="${ADCAST_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
DB="adcast_bench_snapshot_$$"
WORK=$(mktemp -d)
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cleanup() {
  psql "$BASE_URL/postgres" -qAtc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
command -v /usr/bin/time >/dev/null 2>&1 || { apt-get install -y -qq time >/dev/null; }

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "building (release)…" >&2
  cargo build --release --locked -q -p adcast-writer --bins
fi
WRITER="$TARGET_DIR/release/adcast-writer"

psql "$BASE_URL/postgres" -qAtc "CREATE DATABASE $DB" >/dev/null
export DATABASE_URL="$BASE_URL/$DB"
ADCAST_LOG=warn "$WRITER" migrate >/dev/null
echo "inserting $ADS ads…" >&2
psql "$DATABASE_URL" -qAt <<SQL
INSERT INTO ads (id, title, start_at, end_at, conditions, last_seq)
SELECT i,
       'Bench ad number ' || i || ' with a realistic title',
       now() - interval '1 day',
       now() + (1 + i % 30) * interval '1 day',
       CASE i % 10
         WHEN 0 THEN 'null'::jsonb
         WHEN 1 THEN '[{"ageStart":18,"ageEnd":35,"gender":["F"]},{"country":["TW","JP"],"platform":["ios"]}]'::jsonb
         ELSE jsonb_build_array(jsonb_build_object(
                'ageStart', 13 + i % 40, 'ageEnd', 53 + i % 40,
                'country', jsonb_build_array((ARRAY['TW','JP','US','FR','BR','IN','DE','GB'])[1 + i % 8]),
                'platform', jsonb_build_array((ARRAY['android','ios','web'])[1 + i % 3])))
       END,
       i
FROM generate_series(1, $ADS) AS i;
UPDATE change_sequence SET last_seq = $ADS;
ANALYZE ads;
SQL

for run in $(seq 1 "$RUNS"); do
  /usr/bin/time -f "%e %M" -o "$WORK/time" env ADCAST_LOG=warn "$WRITER" snapshot --out "$WORK/snapshot.adsnap"
  read -r seconds kib < "$WORK/time"
  size=$(stat -c %s "$WORK/snapshot.adsnap")
  echo "run $run: ${seconds} s, peak RSS $((kib / 1024)) MiB, file $size bytes"
done
