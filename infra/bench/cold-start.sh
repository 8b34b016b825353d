#!/usr/bin/env bash
# Cold-start benchmark: time from starting adcast-edge to its first correct
# answer, and its RSS once loaded, starting from a snapshot file, from an
# S3-compatible object store (moto on loopback, as a function edge would
# start from S3 with an empty data directory), or from the edge's own index
# image (a restart: the data directory of an edge that booted from the
# snapshot file and stopped). Redis is deliberately unreachable: a cold
# start needs only the snapshot.
#
#   bash infra/bench/cold-start.sh                           # ADS=100000 RUNS=5 SOURCES=file
#   ADS=1000 RUNS=30 SOURCES="file store image" bash infra/bench/cold-start.sh
#   EDGE=/path/to/other/adcast-edge bash infra/bench/cold-start.sh   # compare builds
#   DROP_CACHES=1 SOURCES=image bash infra/bench/cold-start.sh   # restarts with a cold page cache (root)
#
# Every "file" and "store" run is a new process with an empty data
# directory; every "image" run a new process on the same data directory,
# whose image the first (untimed) boot wrote when it stopped. Prints each
# run, then a table with the median and p90 per source; RSS is split into
# anonymous memory and mapped file pages (RssFile: the image's pages, which
# the kernel can drop and read back).
set -euo pipefail
cd "$(dirname "$0")/../.."
ADS="${ADS:-100000}"
RUNS="${RUNS:-5}"
SOURCES="${SOURCES:-file}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
EDGE="${EDGE:-$TARGET_DIR/release/adcast-edge}"   # another build to compare with
WORK=$(mktemp -d)
moto_pid=""
trap '[ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null; rm -rf "$WORK"' EXIT

echo "building (release)…" >&2
cargo build --release --locked -q -p adcast-edge --bins --example make_snapshot
"$TARGET_DIR/release/examples/make_snapshot" "$WORK/snapshot.adsnap" "$ADS" > "$WORK/expected.json"

moto_port=""
if [[ " $SOURCES " == *" store "* ]]; then
  moto=$(bash infra/moto.sh)
  moto_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$moto" -H 127.0.0.1 -p "$moto_port" >/dev/null 2>&1 &
  moto_pid=$!
  # Bucket, object and pointer, as the writer lays them out (docs/operations.md).
  "$(dirname "$moto")/python" - "$moto_port" "$WORK/snapshot.adsnap" <<'PY'
import json, sys, time, zlib
import boto3
port, path = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:%s" % port, region_name="us-east-1",
                  aws_access_key_id="bench", aws_secret_access_key="bench")
for _ in range(100):
    try:
        s3.create_bucket(Bucket="adcast-bench"); break
    except Exception:
        time.sleep(0.1)
data = open(path, "rb").read()
seq = int.from_bytes(data[16:24], "little")
name = "snapshot-%020d.adsnap" % seq
s3.put_object(Bucket="adcast-bench", Key="cold/" + name, Body=data)
# crc32c of the whole object: the snapshot's own header checksum is CRC-32C
# too, but Python has none built in; compute it bitwise (a few ms).
def crc32c(buf):
    crc = 0xFFFFFFFF
    for b in buf:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF
pointer = {"object": name, "seq": seq, "bytes": len(data), "crc32c": crc32c(data)}
s3.put_object(Bucket="adcast-bench", Key="cold/latest", Body=json.dumps(pointer).encode())
PY
fi

python3 - "$EDGE" "$WORK" "$RUNS" "$SOURCES" "$moto_port" <<'PY'
import os, socket, statistics, subprocess, sys, time, urllib.request
binary, work, runs, sources, moto_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(), sys.argv[5]
expected = open(os.path.join(work, "expected.json")).read().strip()
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port
def p90(values):
    ordered = sorted(values); return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
def status(pid, field):
    return int([l for l in open("/proc/%d/status" % pid) if l.startswith(field + ":")][0].split()[1])
rows = []
for source in sources:
    times, rss_values, anon_values, file_values = [], [], [], []
    for run in range(-1 if source == "image" else 0, runs):
        port = free_port()
        env = dict(os.environ, REDIS_URL="redis://127.0.0.1:%d" % free_port(), ADCAST_LOG="warn")
        if source == "store":
            snapshot = "s3://adcast-bench/cold"
            env.update(AWS_ENDPOINT_URL="http://127.0.0.1:%s" % moto_port, AWS_ACCESS_KEY_ID="bench",
                       AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1")
        else:
            snapshot = os.path.join(work, "snapshot.adsnap")
        data_dir = os.path.join(work, "edge-image" if source == "image" else "edge-%s-%d" % (source, run))
        if os.environ.get("DROP_CACHES") == "1" and run >= 0:
            # Every file read from disk again (the snapshot, the image, the binary).
            subprocess.run(["sync"], check=True)
            with open("/proc/sys/vm/drop_caches", "w") as caches:
                caches.write("3\n")
        started = time.monotonic()
        proc = subprocess.Popen([binary, "--listen", "127.0.0.1:%d" % port, "--snapshot", snapshot,
                                 "--data-dir", data_dir, "--worker-threads", "1"],
                                env=env, stderr=subprocess.DEVNULL)
        answer = None
        while time.monotonic() - started < 30:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/ad?limit=1" % port, timeout=1) as r:
                    answer = r.read().decode()
                    if answer == expected:
                        break
            except OSError:
                time.sleep(0.001)
        elapsed = time.monotonic() - started
        if answer != expected:
            proc.kill(); sys.exit("%s run %d: wrong or no answer: %r (expected %r)" % (source, run, answer, expected))
        time.sleep(1.0)  # let the allocator settle after the load
        rss, anon, mapped = (status(proc.pid, field) / 1024 for field in ("VmRSS", "RssAnon", "RssFile"))
        proc.terminate(); proc.wait()  # an image run's edge saves its image again as it stops
        if run < 0:
            if not os.path.exists(os.path.join(data_dir, "index.adimage")):
                sys.exit("image: the first boot wrote no index image")
            print("image: first boot (from the snapshot file, not counted) after %.1f ms" % (elapsed * 1000))
            continue
        times.append(elapsed * 1000); rss_values.append(rss); anon_values.append(anon); file_values.append(mapped)
        print("%s run %d: first correct answer after %.1f ms, RSS %.1f MiB (anonymous %.1f, file %.1f)" % (source, run + 1, elapsed * 1000, rss, anon, mapped))
    rows.append((source, statistics.median(times), p90(times), min(times), max(times), statistics.median(rss_values),
                 statistics.median(anon_values), statistics.median(file_values)))
print()
print("| source | ads | start → first correct answer: median | p90 | range (%d runs) | RSS after load (median) | of which anonymous / file |" % runs)
print("| --- | --- | --- | --- | --- | --- | --- |")
for source, median, ninety, low, high, rss, anon, mapped in rows:
    print("| %s | %s | %.1f ms | %.1f ms | %.1f–%.1f ms | %.1f MiB | %.1f / %.1f MiB |" % (source, os.environ.get("ADS", "100000"), median, ninety, low, high, rss, anon, mapped))
PY
