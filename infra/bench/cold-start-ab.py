#!/usr/bin/env python3
"""Cold start from a snapshot file, two edge builds compared in one run.

    python3 infra/bench/cold-start-ab.py MAKE_SNAPSHOT ADS ROUNDS EDGE_A EDGE_B

Every round writes a fresh snapshot of ADS ads with MAKE_SNAPSHOT (the
`make_snapshot` example of a release build) and boots each build from it
once, in a new process with an empty data directory, timing start → first
answer equal to the one `make_snapshot` computed (as
`infra/bench/cold-start.sh` does for its "file" source). The builds take
turns going first. Prints each round, each build's median and range, and
the median over rounds of B's time / A's: on a shared 2-core machine the
per-round ratio is steadier than either median. Redis is unreachable on
purpose: a cold start needs only the snapshot.
"""
import os, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def boot(binary, snapshot, expected, data_dir):
    port = free_port()
    env = dict(os.environ, REDIS_URL="redis://127.0.0.1:%d" % free_port(), ADCAST_LOG="warn")
    started = time.monotonic()
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:%d" % port, "--snapshot", snapshot,
                             "--data-dir", data_dir, "--worker-threads", "1"],
                            env=env, stderr=subprocess.DEVNULL)
    answer = None
    try:
        while time.monotonic() - started < 30:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/ad?limit=1" % port, timeout=1) as r:
                    answer = r.read().decode()
                    if answer == expected:
                        break
            except OSError:
                time.sleep(0.001)
        elapsed = (time.monotonic() - started) * 1000
    finally:
        proc.kill()
        proc.wait()
    if answer != expected:
        sys.exit("%s: wrong or no answer: %r (expected %r)" % (binary, answer, expected))
    return elapsed


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    make, ads, rounds, edges = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    work = tempfile.mkdtemp()
    try:
        times = [[], []]
        snapshot = os.path.join(work, "snapshot.adsnap")
        for n in range(rounds):
            with open(os.path.join(work, "expected.json"), "w") as out:
                subprocess.run([make, snapshot, ads], stdout=out, check=True)
            expected = open(os.path.join(work, "expected.json")).read().strip()
            for which in ((0, 1) if n % 2 == 0 else (1, 0)):
                data_dir = os.path.join(work, "edge-%d-%d" % (which, n))
                times[which].append(boot(edges[which], snapshot, expected, data_dir))
            print("round %d: A %.1f ms, B %.1f ms" % (n + 1, times[0][-1], times[1][-1]), flush=True)
        for which, name in ((0, "A"), (1, "B")):
            print("%s (%s): median %.1f ms (%.1f–%.1f, %d rounds)" % (
                name, edges[which], statistics.median(times[which]), min(times[which]),
                max(times[which]), rounds))
        ratio = statistics.median([b / a for a, b in zip(times[0], times[1])])
        print("median of per-round B / A: %.3f" % ratio)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
