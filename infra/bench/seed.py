#!/usr/bin/env python3
"""Seeds N active ads with a realistic condition mix through the Admin API.

usage: seed.py BASE_URL COUNT [TOKEN]
Prints the mean answer body size of a typical Public API query afterwards is
left to the caller; this only creates ads (one keep-alive connection).
"""
import datetime
import http.client
import json
import random
import sys
import urllib.parse

base, count = sys.argv[1], int(sys.argv[2])
token = sys.argv[3] if len(sys.argv) > 3 else None
url = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
rng = random.Random(7)
now = datetime.datetime.now(datetime.timezone.utc)
countries = ["TW", "JP", "US", "FR", "BR", "IN", "DE", "GB", "KR", "CA", "MX", "ES"]


def group():
    g = {}
    if rng.random() < 0.5:
        start = rng.randint(13, 50)
        g["ageStart"], g["ageEnd"] = start, min(100, start + rng.randint(5, 35))
    if rng.random() < 0.33:
        g["gender"] = [rng.choice(["M", "F"])]
    if rng.random() < 0.7:
        g["country"] = sorted(set(rng.choice(countries) for _ in range(rng.randint(1, 3))))
    platforms = [p for p in ["android", "ios", "web"] if rng.random() < 0.4]
    if platforms:
        g["platform"] = platforms
    return g


headers = {"content-type": "application/json"}
if token:
    headers["authorization"] = "Bearer " + token
for i in range(count):
    start = now - datetime.timedelta(minutes=rng.randint(1, 60 * 24 * 30))
    end = now + datetime.timedelta(minutes=rng.randint(60, 60 * 24 * 60))
    kind = rng.random()
    conditions = None if kind < 0.1 else ([group() for _ in range(rng.randint(2, 3))] if kind < 0.2 else group())
    body = {
        "title": "Ad %d %s" % (i, "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(rng.randint(8, 40)))),
        "startAt": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endAt": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conditions": conditions,
    }
    conn.request("POST", "/api/v1/ad", json.dumps(body), headers)
    response = conn.getresponse()
    answer = response.read()
    if response.status != 201:
        sys.exit("seeding failed: %d %s" % (response.status, answer[:200]))
print("seeded %d ads" % count, file=sys.stderr)
