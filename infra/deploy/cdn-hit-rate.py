#!/usr/bin/env python3
"""Replays the load benchmark's query mix through a model of a shared HTTP
cache and reports the hit rate a CDN in front of the edges would reach.

The cache is keyed by the full URL (path and raw query string), as the CDN's
cache policy keys GET /api/v1/ad. A miss fetches the URL from a real edge and
keeps the answer for the max-age of its Cache-Control header (nothing is kept
without one, or with no-store, or for a non-200). Time is simulated: request
i of a run at R requests/s happens at i/R seconds; only the answers (and so
the max-ages) are real.

Two ways to draw the requests, both from the generator of
infra/bench/queries.lua (same parameters, probabilities and value sets):
  cycle  the benchmark exactly: 2,000 queries generated once, then repeated
         in order (what wrk sends)
  draw   every request a fresh draw from the same generator: the same mix
         without the benchmark's 2,000-query repetition, closer to many
         independent clients

--caches K splits the traffic uniformly over K independent caches (a CDN's
points of presence each cache for themselves; K = 1 is one shared cache such
as an origin shield). --normalize keys by a canonical form of the query
(parameters sorted, values lower-cased), what a viewer-request function could
do, since the edges treat `TW` and `tw` alike.

usage: cdn-hit-rate.py EDGE_URL [--rates 1000,10000] [--duration 60]
                       [--warmup 10] [--modes cycle,draw] [--caches 1,10]
                       [--normalize]
Prints one Markdown table row per (mode, caches, normalize, rate).
"""

from __future__ import annotations

import argparse
import http.client
import random
import re
import sys
import time
import urllib.parse

COUNTRIES = ["TW", "JP", "US", "FR", "BR", "IN", "DE", "GB", "tw", "jp", "KR", "CA"]
GENDERS = ["M", "F", "m", "f"]
PLATFORMS = ["android", "ios", "web", "iOS"]
LIMITS = [5, 5, 10, 20]
MAX_AGE = re.compile(r"(?:^|,)\s*max-age=(\d+)")


def query(rng: random.Random) -> str:
    """One query of queries.lua's generator, parameter for parameter."""
    q = []
    if rng.random() < 0.6:
        q.append("age=%d" % rng.randint(13, 72))
    if rng.random() < 0.6:
        q.append("gender=" + rng.choice(GENDERS))
    if rng.random() < 0.7:
        q.append("country=" + rng.choice(COUNTRIES))
    if rng.random() < 0.7:
        q.append("platform=" + rng.choice(PLATFORMS))
    limit = rng.choice(LIMITS)
    q.append("limit=%d" % limit)
    if rng.random() < 0.2:
        q.append("offset=%d" % (limit * rng.randint(1, 5)))
    return "/api/v1/ad?" + "&".join(q)


def normalized(path: str) -> str:
    base, _, qs = path.partition("?")
    pairs = sorted((k, v.lower()) for k, v in urllib.parse.parse_qsl(qs))
    return base + "?" + urllib.parse.urlencode(pairs)


class Edge:
    """A keep-alive connection to the edge; returns (status, max-age)."""

    def __init__(self, url: str):
        parsed = urllib.parse.urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        self.fetches = 0

    def fetch(self, path: str) -> tuple[int, int]:
        self.fetches += 1
        for attempt in range(2):
            try:
                self.conn.request("GET", path)
                response = self.conn.getresponse()
                response.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                if attempt:
                    raise
        control = (response.getheader("cache-control") or "").lower()
        match = MAX_AGE.search(control)
        if response.status != 200 or "no-store" in control or not match:
            return response.status, 0
        return response.status, int(match.group(1))


def run(edge: Edge, mode: str, rate: int, duration: float, warmup: float, caches: int, normalize: bool, seed: int):
    rng = random.Random(seed)
    pick = random.Random(seed + 1)
    pool = [query(rng) for _ in range(2000)] if mode == "cycle" else None
    stores: list[dict[str, float]] = [{} for _ in range(caches)]
    total = int(rate * duration)
    counted = hits = 0
    max_ages: dict[int, int] = {}
    for i in range(total):
        now = i / rate
        path = pool[(i + 1) % len(pool)] if pool is not None else query(rng)
        key = normalized(path) if normalize else path
        store = stores[pick.randrange(caches)] if caches > 1 else stores[0]
        expiry = store.get(key)
        hit = expiry is not None and expiry > now
        if not hit:
            status, max_age = edge.fetch(path)
            if status >= 500:
                sys.exit(f"the edge answered {status} to {path}")
            max_ages[max_age] = max_ages.get(max_age, 0) + 1
            if max_age > 0:
                store[key] = now + max_age
            else:
                store.pop(key, None)
        if now >= warmup:
            counted += 1
            hits += hit
    return hits / counted if counted else 0.0, counted, max_ages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("edge")
    parser.add_argument("--rates", default="1000,10000,100000")
    parser.add_argument("--duration", type=float, default=60.0, help="simulated seconds per run")
    parser.add_argument("--warmup", type=float, default=10.0, help="simulated seconds not counted (cache filling)")
    parser.add_argument("--modes", default="cycle,draw")
    parser.add_argument("--caches", default="1")
    parser.add_argument("--normalize", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    edge = Edge(args.edge)
    print("| query mix | caches | key | requests/s | hit rate | requests counted | origin fetches | max-age seen (s: fetches) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for mode in args.modes.split(","):
        for caches in (int(c) for c in args.caches.split(",")):
            for rate in (int(r) for r in args.rates.split(",")):
                before, started = edge.fetches, time.monotonic()
                hit_rate, counted, max_ages = run(edge, mode, rate, args.duration, args.warmup, caches, args.normalize, args.seed)
                ages = ", ".join(f"{a}: {n}" for a, n in sorted(max_ages.items()))
                print(f"| {mode} | {caches} | {'normalized' if args.normalize else 'raw URL'} | {rate:,} | "
                      f"{hit_rate:.1%} | {counted:,} | {edge.fetches - before:,} | {ages} |", flush=True)
                print(f"  ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
