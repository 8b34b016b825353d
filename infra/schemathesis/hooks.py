"""Schemathesis hooks for adcast (loaded by infra/schemathesis.sh through SCHEMATHESIS_HOOKS).

openapi.yaml states every rule of docs/api.md that JSON Schema can state. A few
rules of an ad body relate two values, or a value and the clock, and cannot be
written as a schema:

- `endAt` must be after `startAt`, and in the future when written;
- both instants must lie in the years 0000-9999 once converted to UTC (an
  offset can push `9999-12-31T23:30:00-01:00` past the end);
- `ageStart <= ageEnd` within one condition group;
- an age is written as a JSON integer: JSON Schema's `integer` also admits
  `20.0`, which the server refuses.

So a body generated as *valid* for the schema is sometimes invalid for the
server, and the `positive_data_acceptance` check would report the server's
(correct) 400 as a failure. This hook repairs exactly those rules in bodies
generated as valid, and nothing else: the repaired body is still valid for
the schema, invalid (negative) bodies are left alone, and every other part of
the generated input (title, conditions, formats, offsets, precision) is kept.
"""

from __future__ import annotations

import datetime as dt
import sys

import schemathesis
from schemathesis.core.parameters import ParameterLocation

AD_BODY_OPERATIONS = {("POST", "/api/v1/ad"), ("PUT", "/api/v1/ad/{id}")}
# The import's body is a list of ad bodies, each repaired like one.
IMPORT_OPERATION = ("POST", "/api/v1/admin/ad/import")
# Operations taking `at`, an instant that must lie in the years 0000-9999 once
# converted to UTC (an offset can push a generated one out).
AT_OPERATIONS = {("GET", "/api/v1/admin/preview"), ("HEAD", "/api/v1/admin/preview"),
                 ("GET", "/api/v1/admin/ad/{id}/explain"), ("HEAD", "/api/v1/admin/ad/{id}/explain")}

UTC = dt.timezone.utc
# The server's Timestamp range, in milliseconds since the epoch (years 0000-9999).
MIN_MILLIS = -62_167_219_200_000
MAX_MILLIS = 253_402_300_799_999
# A repaired endAt lies this far in the future; an endAt kept as generated must
# still be in the future when the request arrives, MARGIN_MILLIS from now.
FUTURE = dt.timedelta(days=30)
MARGIN_MILLIS = 60_000
SAFE_START = "2000-01-01T00:00:00Z"


def _millis(text: object) -> int | None:
    """The instant as the server stores it (UTC milliseconds, truncated), or None."""
    if not isinstance(text, str):
        return None
    try:
        # Python's parser takes Z, offsets and any number of fractional digits,
        # but not years before 0001: such a value is simply replaced below.
        parsed = dt.datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)
    try:
        delta = parsed - epoch
    except OverflowError:
        return None
    millis = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return millis if MIN_MILLIS <= millis <= MAX_MILLIS else None


def _format(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _repair_times(body: dict) -> None:
    now = dt.datetime.now(UTC)
    soon = int(now.timestamp() * 1000) + MARGIN_MILLIS
    start = _millis(body.get("startAt"))
    end = _millis(body.get("endAt"))
    if end is not None and start is not None and start < end and end > soon:
        return
    if start is None or start > soon:
        # A start in the future would need an end further out still; keep it
        # simple and start in the past.
        body["startAt"] = SAFE_START
    body["endAt"] = _format(now + FUTURE)


def _repair_group(group: object) -> None:
    if not isinstance(group, dict):
        return
    for key in ("ageStart", "ageEnd"):
        # JSON Schema counts 20.0 as an integer; the server wants it written
        # as one (`20`), like the rest of the API.
        value = group.get(key)
        if isinstance(value, float) and value.is_integer():
            group[key] = int(value)
    start, end = group.get("ageStart"), group.get("ageEnd")
    if isinstance(start, int) and isinstance(end, int) and start > end:
        group["ageStart"], group["ageEnd"] = end, start


def _repair_ad(body: object) -> object:
    if not isinstance(body, dict):
        return body
    body = dict(body)
    _repair_times(body)
    conditions = body.get("conditions")
    if isinstance(conditions, dict):
        conditions = dict(conditions)
        _repair_group(conditions)
        body["conditions"] = conditions
    elif isinstance(conditions, list):
        conditions = [dict(group) if isinstance(group, dict) else group for group in conditions]
        for group in conditions:
            _repair_group(group)
        body["conditions"] = conditions
    return body


@schemathesis.hook
def map_case(context, case):
    operation = context.operation
    if operation is None:
        return case
    key = (operation.method.upper(), operation.path)
    meta = case.meta
    if key in AT_OPERATIONS:
        if meta is not None and meta.is_negative_at(ParameterLocation.QUERY):
            return case
        query = dict(case.query or {})
        if "at" in query and _millis(query["at"]) is None:
            query["at"] = SAFE_START
            case.query = query
        return case
    if key not in AD_BODY_OPERATIONS and key != IMPORT_OPERATION:
        return case
    if meta is not None and meta.is_negative_at(ParameterLocation.BODY):
        return case
    if key == IMPORT_OPERATION:
        if isinstance(case.body, list):
            case.body = [_repair_ad(ad) for ad in case.body]
        return case
    if isinstance(case.body, dict):
        case.body = _repair_ad(case.body)
    return case


# NDJSON, in and out: the import takes one ad per line, the export answers
# one ad per line. The document describes both as an array of the lines.
@schemathesis.serializer("application/x-ndjson")
def serialize_ndjson(ctx, value):
    import json

    if not isinstance(value, list):
        # A body that is not a list of ads (a negative case) has no NDJSON
        # form; one line holding it as an array is equally not a list of ads.
        return (json.dumps([value]) + "\n").encode("utf-8")
    return "".join(json.dumps(item) + "\n" for item in value).encode("utf-8")


@schemathesis.deserializer("application/x-ndjson")
def deserialize_ndjson(ctx, response):
    import json

    text = (response.content or b"").decode("utf-8")
    if text and not text.endswith("\n"):
        raise ValueError("an NDJSON answer must end with a newline")
    return [json.loads(line) for line in text.splitlines()]


# The snapshot file (`GET /internal/v1/snapshot/latest`) is binary; its byte
# layout is documented in shared/src/snapshot.rs. Schemathesis cannot read it
# by itself, so this reads the fixed 56-byte header, refuses anything that is
# not a whole snapshot file, and checks it against the response headers.
SNAPSHOT_MAGIC = b"ADCSNAP\0"
SNAPSHOT_HEADER_LEN = 56


@schemathesis.deserializer("application/octet-stream")
def deserialize_snapshot(ctx, response):
    content = response.content or b""
    if len(content) < SNAPSHOT_HEADER_LEN or content[:8] != SNAPSHOT_MAGIC:
        raise ValueError(f"not a snapshot file: {len(content)} bytes starting {content[:8]!r}")
    version = int.from_bytes(content[8:10], "little")
    seq = int.from_bytes(content[16:24], "little")
    body_len = int.from_bytes(content[40:48], "little")
    if version != 1:
        raise ValueError(f"snapshot format version {version}, expected 1")
    if len(content) != SNAPSHOT_HEADER_LEN + body_len:
        raise ValueError(f"snapshot of {len(content)} bytes, its header says {SNAPSHOT_HEADER_LEN + body_len}")
    for name, expected in (("adcast-snapshot-seq", str(seq)), ("etag", f'"{seq}"')):
        values = response.headers.get(name) or [None]
        if values[0] != expected:
            raise ValueError(f"snapshot of change {seq} served with {name}: {values[0]!r}, expected {expected!r}")
    # The document gives the body no schema beyond its media type; hand the
    # bytes on as text so that schemathesis has a value to validate.
    return content.decode("latin-1")


# A create retried with the same Idempotency-Key and body answers the first
# answer again (docs/api.md), `Idempotent-Replayed: true` included: the ad in it
# may have been replaced or deleted since, by the sequence that first created
# it. Generated keys are short and repeat, and schemathesis replays a sequence
# while it shrinks one, so such replays happen. The ad named by a replayed
# create is therefore not "just created", and a 404 for it is right:
# ensure_resource_availability (ST302) is not told that by schemathesis, so
# its failures about those ads are dropped here, and said so.
_replayed_ids: set[str] = set()
_reported_ids: set[str] = set()


@schemathesis.hook
def after_call(context, case, response):
    if (response.headers.get("idempotent-replayed") or [None])[0] != "true":
        return
    try:
        _replayed_ids.add(str(response.json()["id"]))
    except Exception:  # noqa: BLE001 - not an ad: nothing to remember
        pass


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if getattr(failure, "code", None) != "ST302":
        return True
    ad_id = str((case.path_parameters or {}).get("id"))
    if ad_id not in _replayed_ids:
        return True
    if ad_id not in _reported_ids:
        _reported_ids.add(ad_id)
        print(f"hooks.py: ignoring ST302 for ad {ad_id}: the create that named it was an idempotent replay",
              file=sys.stderr)
    return False
