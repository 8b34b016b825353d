#!/usr/bin/env bash
# Cold-start benchmark: time from starting adcast-edge on a 100,000-ad
# snapshot file to its first correct answer, and its RSS once loaded.
# Redis is deliberately unreachable: a cold start needs only the file.
#
#   bash infra/bench/cold-start.sh      # ADS=100000 RUNS=5
#   EDGE_BIN=/path/to/adcast-edge ...   # time another build (before/after)
set -euo pipefail
cd "$(dirname "$0")/../.."
ADS="${ADS:-100000}"
RUNS="${RUNS:-5}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "building (release)…" >&2
cargo build --release --locked -q -p adcast-edge --bins --example make_snapshot
"$TARGET_DIR/release/examples/make_snapshot" "$WORK/snapshot.adsnap" "$ADS" > "$WORK/expected.json"

python3 - "${EDGE_BIN:-$TARGET_DIR/release/adcast-edge}" "$WORK" "$RUNS" <<'PY'
import os, socket, statistics, subprocess, sys, time, urllib.request
binary, work, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
expected = open(os.path.join(work, "expected.json")).read().strip()
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port
times, rss_values = [], []
for run in range(runs):
    port = free_port()
    env = dict(os.environ, REDIS_URL="redis://127.0.0.1:%d" % free_port(), ADCAST_LOG="warn")
    started = time.monotonic()
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:%d" % port, "--snapshot", os.path.join(work, "snapshot.adsnap"),
                             "--data-dir", os.path.join(work, "edge-%d" % run), "--worker-threads", "1"],
                            env=env, stderr=subprocess.DEVNULL)
    answer = None
    while time.monotonic() - started < 30:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/ad?limit=1" % port, timeout=1) as r:
                answer = r.read().decode()
                if answer == expected:
                    break
        except OSError:
            time.sleep(0.002)
    elapsed = time.monotonic() - started
    if answer != expected:
        proc.kill(); sys.exit("run %d: wrong or no answer: %r (expected %r)" % (run, answer, expected))
    time.sleep(1.0)  # let the allocator settle after the load
    rss_kib = int([l for l in open("/proc/%d/status" % proc.pid) if l.startswith("VmRSS:")][0].split()[1])
    proc.terminate(); proc.wait()
    times.append(elapsed * 1000); rss_values.append(rss_kib / 1024)
    print("run %d: first correct answer after %.0f ms, RSS %.1f MiB" % (run + 1, elapsed * 1000, rss_kib / 1024))
print()
print("| ads | cold start to first correct answer (median of %d) | RSS after load (median) |" % runs)
print("| --- | --- | --- |")
print("| %s | %.0f ms | %.1f MiB |" % (os.environ.get("ADS", "100000"), statistics.median(times), statistics.median(rss_values)))
PY
