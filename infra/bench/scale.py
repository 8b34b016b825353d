#!/usr/bin/env python3
"""Helper of infra/bench/scale.sh (the 1,000,000-ad scale run); standard library only.

Subcommands:

  ads FILE COUNT
      Writes COUNT active ads with mixed conditions as NDJSON (the same
      generator as import.sh).

  expect FILE OFFSET [BEFORE]
      Prints the body a correct edge answers to
      GET /api/v1/ad?offset=OFFSET&limit=1 when it holds the ads of FILE
      plus BEFORE ads that end before all of them (the trickle's).

  cold-start --port P --expected FILE --deep-query Q --deep-expected FILE
             --pid-file F --log F --results F --name N -- COMMAND...
      Starts COMMAND (an edge) in the background, polls
      GET /api/v1/ad?limit=5 every 2 ms until the body equals FILE (the
      writer's preview of that query), then checks the deep query Q against
      its preview too, waits for /readyz, and after 1 s more reads VmRSS and
      VmHWM. Writes the edge's pid to F (the edge outlives this helper; the
      script stops it) and appends one TSV line to the results file.

  log-summary FILE:LINE...
      Counts, after line LINE of each log, the writer's snapshots and the
      edges' compactions and saved states, with their durations.

  trickle --forward-port P --ports P1,P2,... --pids PID1,... --token T
          --rate R --duration S --out FILE [--wrk "COMMAND"] [--cpu-pids NAME=PID,...]
      For S seconds: R creates/s POSTed to the forwarding edge (each one as
      soon as its slot comes, whatever the previous one is doing); for every
      acknowledged create, one GET with `Adcast-Min-Seq: <seq>` to every
      edge, sent at once, until each answers 200 with the write in its first
      item; VmRSS/VmHWM of every edge every 250 ms; wrk running alongside
      when given. Prints the figures and writes them to FILE as JSON.
"""

import argparse
import asyncio
import datetime
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request


# --- ads ---------------------------------------------------------------------

def write_ads(path, count):
    rng = random.Random(11)
    countries = ["TW", "JP", "US", "FR", "BR", "IN", "GB", "DE"]
    with open(path, "w") as out:
        for i in range(count):
            group = {}
            if rng.random() < 0.5:
                a, b = sorted(rng.randint(1, 100) for _ in range(2))
                group.update(ageStart=a, ageEnd=b)
            if rng.random() < 0.4:
                group["gender"] = rng.choice(["M", "F"])
            if rng.random() < 0.6:
                group["country"] = rng.sample(countries, rng.randint(1, 3))
            if rng.random() < 0.4:
                group["platform"] = rng.sample(["android", "ios", "web"], rng.randint(1, 2))
            conditions = group if rng.random() < 0.9 else [group, {"gender": ["F"]}]
            out.write(json.dumps({"title": f"AD {i}", "startAt": "2024-01-01T00:00:00Z",
                                  "endAt": f"2099-{1 + i % 12:02d}-01T00:00:00Z",
                                  "conditions": conditions}) + "\n")


def expect(path, offset, before):
    """The Public API's answer to `?offset=OFFSET&limit=1` (no filter) when
    BEFORE ads ending earlier than every ad of the file (the trickle's) are
    served too: the file's ads sorted by endAt, ties by id (file order).
    Computed here because the writer's preview of a deep offset reads every
    active ad before it, far too slow at 1,000,000 ads."""
    ads = []
    with open(path) as lines:
        for i, line in enumerate(lines):
            ad = json.loads(line)
            ads.append((ad["endAt"], i, ad["title"]))
    ads.sort()
    position = offset - before
    if not 0 <= position < len(ads):
        return '{"items":[]}'
    end_at, _, title = ads[position]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", end_at), end_at
    return json.dumps({"items": [{"title": title, "endAt": end_at[:-1] + ".000Z"}]}, separators=(",", ":"))


def log_summary(specs):
    """FILE:LINE pairs: what the writer's and edges' logs say happened after
    line LINE (the trickle): snapshots written, compactions, saved states."""
    for spec in specs:
        path, _, skip = spec.rpartition(":")
        lines = open(path, errors="replace").read().splitlines()[int(skip):]
        name = os.path.basename(path)
        snapshots = [int(m.group(1)) for l in lines if "snapshot written" in l
                     for m in [re.search(r"elapsed_ms=(\d+)", l)] if m]
        compactions = [int(m.group(1)) for l in lines if "index compacted" in l
                       for m in [re.search(r"elapsed_ms=(\d+)", l)] if m]
        saved = sum(1 for l in lines if "saved local snapshot" in l)
        parts = []
        if snapshots:
            parts.append(f"{len(snapshots)} snapshots written ({', '.join(f'{v / 1000:.1f} s' for v in snapshots)})")
        if compactions:
            parts.append(f"{len(compactions)} index compactions ({', '.join(f'{v / 1000:.1f} s' for v in compactions)})")
        if saved:
            parts.append(f"{saved} local states saved")
        print(f"  {name}: " + ("; ".join(parts) if parts else "nothing logged"))


# --- /proc -------------------------------------------------------------------

def proc_status_kib(pid, *fields):
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in fields:
                values[name] = int(rest.split()[0])
    return [values.get(field, 0) for field in fields]


def proc_ticks(pid):
    """User + system clock ticks of one process (its threads included)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def machine_ticks():
    """(busy, total) clock ticks of the whole machine so far."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values[:8]) - idle, sum(values[:8])


# --- cold start --------------------------------------------------------------

def get(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def cold_start(args):
    expected = open(args.expected, "rb").read()
    deep_expected = open(args.deep_expected, "rb").read()
    base = f"http://127.0.0.1:{args.port}"
    log = open(args.log, "ab")
    started = time.monotonic()
    proc = subprocess.Popen(args.command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    with open(args.pid_file, "w") as pid_file:
        pid_file.write(str(proc.pid))
    answer = None
    while time.monotonic() - started < 120:
        if proc.poll() is not None:
            sys.exit(f"{args.name}: the edge exited with status {proc.returncode} (log: {args.log})")
        try:
            status, answer = get(base + "/api/v1/ad?limit=5", timeout=1)
            if status == 200 and answer == expected:
                break
        except OSError:
            pass
        time.sleep(0.002)
    elapsed_ms = (time.monotonic() - started) * 1000
    if answer != expected:
        sys.exit(f"{args.name}: no correct answer within 120 s; last: {answer!r}, expected {expected!r}")
    status, deep = get(base + "/api/v1/ad?" + args.deep_query, timeout=10)
    if status != 200 or deep != deep_expected:
        sys.exit(f"{args.name}: /api/v1/ad?{args.deep_query} answered {status} {deep!r}, "
                 f"the writer's preview {deep_expected!r}")
    ready_ms = None
    while time.monotonic() - started < 120:
        try:
            if get(base + "/readyz", timeout=1)[0] == 200:
                ready_ms = (time.monotonic() - started) * 1000
                break
        except OSError:
            pass
        time.sleep(0.01)
    time.sleep(1.0)  # let the allocator settle after the load, as cold-start.sh does
    rss, hwm = proc_status_kib(proc.pid, "VmRSS", "VmHWM")
    print(f"{args.name}: first correct answer after {elapsed_ms:.1f} ms, ready (/readyz) after "
          f"{ready_ms if ready_ms is None else round(ready_ms, 1)} ms, "
          f"RSS {rss / 1024:.1f} MiB (peak so far {hwm / 1024:.1f} MiB)", flush=True)
    with open(args.results, "a") as results:
        results.write(f"{args.name}\t{elapsed_ms:.1f}\t{ready_ms or -1:.1f}\t{rss / 1024:.1f}\t{hwm / 1024:.1f}\n")


# --- trickle -----------------------------------------------------------------

class Http:
    """A minimal HTTP/1.1 client with one keep-alive pool per port; enough
    for the edge's and writer's answers (Content-Length or chunked)."""

    def __init__(self):
        self.idle = {}

    async def request(self, port, method, path, headers=(), body=b""):
        pool = self.idle.setdefault(port, [])
        while True:
            fresh = not pool
            reader, writer = pool.pop() if pool else await asyncio.open_connection("127.0.0.1", port)
            head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
            head += [f"{name}: {value}" for name, value in headers]
            if body:
                head.append(f"Content-Length: {len(body)}")
            try:
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
                await writer.drain()
                status, answer, content, keep = await self._read(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                writer.close()
                if fresh:
                    raise
                continue  # a pooled connection the server had closed: retry on a new one
            if keep:
                pool.append((reader, writer))
            else:
                writer.close()
            return status, answer, content

    @staticmethod
    async def _read(reader):
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        answer = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                answer[name.strip().lower()] = value.strip()
        if "content-length" in answer:
            content = await reader.readexactly(int(answer["content-length"]))
        elif answer.get("transfer-encoding", "").lower() == "chunked":
            content = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers
                    break
                content += await reader.readexactly(size)
                await reader.readexactly(2)
        else:
            content = b""
        keep = answer.get("connection", "").lower() != "close"
        return status, answer, content, keep


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(values):
    return {"n": len(values), "p50": percentile(values, 0.5), "p99": percentile(values, 0.99),
            "max": max(values) if values else float("nan")}


async def trickle(args):
    ports = [int(p) for p in args.ports.split(",")]
    pids = [int(p) for p in args.pids.split(",")]
    cpu_pids = dict(item.split("=") for item in args.cpu_pids.split(",")) if args.cpu_pids else {}
    http = Http()
    auth = [("Authorization", f"Bearer {args.token}")] if args.token else []
    writes = []          # one dict per create
    rss_samples = {pid: [] for pid in pids}
    stop = asyncio.Event()

    async def served(edge, seq, index):
        """Time at which `edge` answers with write `index` (or a later one) first."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                status, answer, content = await http.request(
                    edge, "GET", "/api/v1/ad?limit=1", [("Adcast-Min-Seq", str(seq))])
            except OSError:
                await asyncio.sleep(0.01)
                continue
            now = time.monotonic()
            if status == 200 and int(answer.get("adcast-seq", 0)) >= seq:
                items = json.loads(content)["items"]
                match = re.fullmatch(r"scale trickle (\d+)", items[0]["title"]) if items else None
                if not match or int(match.group(1)) < index:
                    raise RuntimeError(f"edge :{edge} at seq {answer.get('adcast-seq')} does not "
                                       f"serve write {index} first: {content!r}")
                return now
            # 503: Adcast-Min-Seq not reached within --min-seq-wait-ms; ask again.
        return None

    async def create(index):
        end = datetime.datetime(2090, 1, 1, tzinfo=datetime.timezone.utc) - datetime.timedelta(seconds=index)
        body = json.dumps({"title": f"scale trickle {index}", "startAt": "2024-01-01T00:00:00Z",
                           "endAt": end.strftime("%Y-%m-%dT%H:%M:%SZ")}).encode()
        record = {"index": index}
        writes.append(record)
        sent = time.monotonic()
        record["sent_s"] = sent - started
        try:
            status, answer, _ = await http.request(
                args.forward_port, "POST", "/api/v1/ad",
                auth + [("Content-Type", "application/json")], body)
        except OSError as error:
            record["error"] = str(error)
            return
        acked = time.monotonic()
        record.update(status=status, latency_ms=(acked - sent) * 1000,
                      applied=answer.get("adcast-applied", "true") != "false")
        if status != 201:
            return
        seq = int(answer.get("adcast-write-seq") or answer["adcast-seq"])
        record["seq"] = seq
        times = await asyncio.gather(*(served(edge, seq, index) for edge in ports))
        record["served_ms"] = [None if t is None else round((t - acked) * 1000, 2) for t in times]
        if all(t is not None for t in times):
            record["ack_to_all_ms"] = (max(times) - acked) * 1000
            record["sent_to_all_ms"] = (max(times) - sent) * 1000
            # The forwarding edge answers the create only once it serves the
            # write; the others are what "all" waits for.
            others = [t for edge, t in zip(ports, times) if edge != args.forward_port]
            if others:
                record["ack_to_others_ms"] = (max(others) - acked) * 1000

    async def sample_rss():
        while not stop.is_set():
            for pid in pids:
                rss_samples[pid].append(proc_status_kib(pid, "VmRSS")[0])
            try:
                await asyncio.wait_for(stop.wait(), 0.25)
            except asyncio.TimeoutError:
                pass

    ticks_before = {name: proc_ticks(int(pid)) for name, pid in cpu_pids.items()}
    ticks_before["edges"] = sum(proc_ticks(pid) for pid in pids)
    ticks_before["this helper"] = proc_ticks(os.getpid())
    machine_before = machine_ticks()
    wrk = None
    if args.wrk:
        wrk_out = open(args.out + ".wrk.txt", "w")
        wrk = subprocess.Popen(args.wrk.split(), stdout=wrk_out, stderr=subprocess.STDOUT)
        ticks_before["wrk"] = 0
    sampler = asyncio.create_task(sample_rss())
    started = time.monotonic()
    tasks = []
    index = 0
    while True:
        slot = started + index / args.rate
        if slot >= started + args.duration:
            break
        await asyncio.sleep(max(0.0, slot - time.monotonic()))
        tasks.append(asyncio.create_task(create(index)))
        index += 1
    sending_s = time.monotonic() - started
    wrk_ticks = 0
    if wrk:
        wrk_ticks = proc_ticks(wrk.pid)  # before it exits and its counters go
        while wrk.poll() is None:
            await asyncio.sleep(0.05)
            try:
                wrk_ticks = proc_ticks(wrk.pid)
            except (FileNotFoundError, ProcessLookupError):
                break
    window_s = time.monotonic() - started
    machine_after = machine_ticks()
    ticks_after = {name: proc_ticks(int(pid)) for name, pid in cpu_pids.items()}
    ticks_after["edges"] = sum(proc_ticks(pid) for pid in pids)
    ticks_after["this helper"] = proc_ticks(os.getpid())
    if wrk:
        ticks_after["wrk"] = wrk_ticks
    await asyncio.gather(*tasks)
    stop.set()
    await sampler
    hwm = {pid: proc_status_kib(pid, "VmHWM")[0] for pid in pids}
    if wrk:
        wrk.wait()

    clk = os.sysconf("SC_CLK_TCK")
    cpu = {name: (ticks_after[name] - ticks_before[name]) / clk / window_s * 100 for name in ticks_after}
    busy = (machine_after[0] - machine_before[0]) / max(1, machine_after[1] - machine_before[1])
    ok = [w for w in writes if w.get("status") == 201]
    result = {
        "duration_s": args.duration, "rate": args.rate, "edges": len(ports),
        "sent": len(writes), "sending_s": sending_s,
        "created": len(ok),
        "not_201": sum(1 for w in writes if "status" in w and w["status"] != 201),
        "errors": sum(1 for w in writes if "error" in w),
        "applied_false": sum(1 for w in ok if not w["applied"]),
        "not_served_by_all": sum(1 for w in ok if "ack_to_all_ms" not in w),
        "create_ms": summary([w["latency_ms"] for w in ok]),
        "ack_to_all_ms": summary([w["ack_to_all_ms"] for w in ok if "ack_to_all_ms" in w]),
        "ack_to_others_ms": summary([w["ack_to_others_ms"] for w in ok if "ack_to_others_ms" in w]),
        "sent_to_all_ms": summary([w["sent_to_all_ms"] for w in ok if "sent_to_all_ms" in w]),
        "rss_mib": [{"port": port, "pid": pid,
                     "steady": statistics.median(rss_samples[pid]) / 1024,
                     "peak_sampled": max(rss_samples[pid]) / 1024,
                     "hwm": hwm[pid] / 1024} for port, pid in zip(ports, pids)],
        "cpu_percent_of_one_core": cpu,
        "machine_busy_percent": busy * 100,
        "last_seq": max((w["seq"] for w in ok), default=0),
        "timeline": timeline(writes, 10),
        "writes": writes,
    }
    if wrk:
        text = open(args.out + ".wrk.txt").read()
        result["wrk_raw"] = text

        def ms(value, unit):
            return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
        p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", text)
        p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
        requests = re.search(r"(\d+) requests in", text)
        result["wrk"] = {
            "requests": int(requests.group(1)) if requests else None,
            "rps": float(rps.group(1)) if rps else None,
            "p50_ms": ms(*p50.groups()) if p50 else None,
            "p99_ms": ms(*p99.groups()) if p99 else None,
            "non_2xx": int((re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text) or [0, 0])[1]),
            "socket_errors": sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text)),
        }
    with open(args.out, "w") as out:
        json.dump(result, out, indent=1)
    print_trickle(result)


def timeline(writes, step):
    """Per `step` seconds of sending: what happened to the creates sent then."""
    rows = []
    for start in range(0, int(max((w["sent_s"] for w in writes), default=0)) + 1, step):
        part = [w for w in writes if start <= w["sent_s"] < start + step]
        ok = [w for w in part if w.get("status") == 201]
        rows.append({"from_s": start, "sent": len(part), "created": len(ok),
                     "not_201": sum(1 for w in part if "status" in w and w["status"] != 201),
                     "applied_false": sum(1 for w in ok if not w["applied"]),
                     "create_p50_ms": percentile([w["latency_ms"] for w in ok], 0.5),
                     "create_max_ms": max([w["latency_ms"] for w in ok], default=float("nan")),
                     "ack_to_all_p50_ms": percentile([w["ack_to_all_ms"] for w in ok if "ack_to_all_ms" in w], 0.5)})
    return rows


def print_trickle(r):
    f = lambda s: f"p50 {s['p50']:.2f} ms, p99 {s['p99']:.2f} ms, max {s['max']:.2f} ms (n={s['n']})"
    print(f"writes: {r['sent']} sent at {r['rate']}/s over {r['sending_s']:.1f} s, {r['created']} created (201), "
          f"{r['not_201']} other statuses, {r['errors']} connection errors")
    print(f"forwarded create (POST through the edge → 201): {f(r['create_ms'])}")
    print(f"Adcast-Applied: false: {r['applied_false']} of {r['created']}")
    print(f"ack → served by all {r['edges']} edges: {f(r['ack_to_all_ms'])}; "
          f"not served by all within 10 s: {r['not_served_by_all']}")
    print(f"ack → served by the {r['edges'] - 1} other edges: {f(r['ack_to_others_ms'])}")
    print(f"sent → served by all {r['edges']} edges: {f(r['sent_to_all_ms'])}")
    for e in r["rss_mib"]:
        print(f"edge :{e['port']} RSS during the trickle: median {e['steady']:.1f} MiB, "
              f"max sampled {e['peak_sampled']:.1f} MiB, VmHWM (since start) {e['hwm']:.1f} MiB")
    print("CPU during the trickle, % of one core: " + ", ".join(
        f"{name} {value:.0f}" for name, value in r["cpu_percent_of_one_core"].items())
        + f"; whole machine busy {r['machine_busy_percent']:.0f} % of 2 cores")
    print("timeline (by time sent): from s | sent | 201 | other | Applied false | create p50 / max ms | ack → all p50 ms")
    for row in r["timeline"]:
        print(f"  {row['from_s']:>3} | {row['sent']} | {row['created']} | {row['not_201']} | {row['applied_false']} | "
              f"{row['create_p50_ms']:.1f} / {row['create_max_ms']:.1f} | {row['ack_to_all_p50_ms']:.1f}")
    if "wrk" in r:
        w = r["wrk"]
        print(f"wrk: {w['requests']} requests, {w['rps']:.0f} requests/s, p50 {w['p50_ms']:.2f} ms, "
              f"p99 {w['p99_ms']:.2f} ms, non-2xx {w['non_2xx']}, socket errors {w['socket_errors']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command_name", required=True)
    ads = sub.add_parser("ads")
    ads.add_argument("file")
    ads.add_argument("count", type=int)
    ex = sub.add_parser("expect")
    ex.add_argument("file")
    ex.add_argument("offset", type=int)
    ex.add_argument("before", type=int, nargs="?", default=0)
    ls = sub.add_parser("log-summary")
    ls.add_argument("specs", nargs="+")
    cs = sub.add_parser("cold-start")
    for name in ("--port", "--expected", "--deep-query", "--deep-expected", "--pid-file", "--log",
                 "--results", "--name"):
        cs.add_argument(name, required=True)
    cs.add_argument("command", nargs=argparse.REMAINDER)
    tr = sub.add_parser("trickle")
    tr.add_argument("--forward-port", type=int, required=True)
    tr.add_argument("--ports", required=True)
    tr.add_argument("--pids", required=True)
    tr.add_argument("--token", default="")
    tr.add_argument("--rate", type=float, default=50)
    tr.add_argument("--duration", type=float, default=60)
    tr.add_argument("--out", required=True)
    tr.add_argument("--wrk", default="")
    tr.add_argument("--cpu-pids", default="")
    args = parser.parse_args()
    if args.command_name == "ads":
        write_ads(args.file, args.count)
    elif args.command_name == "expect":
        print(expect(args.file, args.offset, args.before), end="")
    elif args.command_name == "log-summary":
        log_summary(args.specs)
    elif args.command_name == "cold-start":
        if args.command and args.command[0] == "--":
            args.command = args.command[1:]
        cold_start(args)
    else:
        asyncio.run(trickle(args))


if __name__ == "__main__":
    main()
