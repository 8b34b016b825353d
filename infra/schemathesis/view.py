"""Writes one service's view of openapi.yaml, for schemathesis.

    python view.py OPENAPI_YAML OUT_JSON --tags admin,operations,internal [--drop-path /openapi.yaml]

openapi.yaml describes both services, and they share a path with different
methods: on `/api/v1/ad` the edge answers GET and HEAD (and POST when it
forwards to a writer), the writer only POST. Schemathesis judges a `405` and
its `Allow` header (checks unsupported_method and allow_header_conformance)
against every method the document lists for the path, so each service is
tested against a copy that keeps only the operations carrying one of its
tags. `--drop-path` removes a route the service under test does not serve
yet (the caller decides, from a probe). Everything else, components
included, is copied unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys

import yaml

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--tags", required=True, help="comma-separated tags to keep")
    parser.add_argument("--drop-path", action="append", default=[])
    args = parser.parse_args()

    with open(args.source, encoding="utf-8") as file:
        document = yaml.safe_load(file)
    keep = {tag.strip() for tag in args.tags.split(",") if tag.strip()}
    paths = {}
    kept_operations = []
    for path, item in document.get("paths", {}).items():
        if path in args.drop_path:
            continue
        operations = {
            method: operation
            for method, operation in item.items()
            if method in METHODS and keep & set(operation.get("tags", []))
        }
        if not operations:
            continue
        others = {key: value for key, value in item.items() if key not in METHODS}
        paths[path] = {**others, **operations}
        kept_operations += [operation.get("operationId") for operation in operations.values()]
    # Links may only name operations that are still there.
    for item in paths.values():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            for response in operation.get("responses", {}).values():
                links = response.get("links") if isinstance(response, dict) else None
                if links:
                    for name in [name for name, link in links.items() if link.get("operationId") not in kept_operations]:
                        del links[name]
    document["paths"] = paths
    with open(args.out, "w", encoding="utf-8") as file:
        json.dump(document, file, indent=1)
    print(f"{len(kept_operations)} operations: {' '.join(sorted(filter(None, kept_operations)))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
