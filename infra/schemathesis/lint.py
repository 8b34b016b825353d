"""Checks openapi.yaml before any request is sent.

    python lint.py openapi.yaml

1. The document is valid OpenAPI 3.1 (openapi-spec-validator).
2. Every `example` and `examples` value in it (parameters, headers, request
   bodies, responses, schemas) is valid for the schema it illustrates, so the
   examples readers copy cannot drift from the contract.
3. The value lists that mirror the Rust code still agree with it where they
   can be read from the source: the 249 ISO 3166-1 codes of
   shared/src/country.rs, the country pattern (exactly those codes, any case,
   plus the alias UK)
   and the error codes of shared/src/api_error.rs.

Exits 1 with a message per problem.
"""

from __future__ import annotations

import itertools
import re
import string
import sys
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def examples(node, where="#"):
    """Yields (pointer, schema, example) for every example next to a schema."""
    if isinstance(node, dict):
        schema = node.get("schema")
        if schema is None and ("type" in node or "$ref" in node or "enum" in node or "const" in node):
            schema = node
        if schema is not None:
            if "example" in node:
                yield f"{where}/example", schema, node["example"]
            listed = node.get("examples")
            if isinstance(listed, list):
                for i, value in enumerate(listed):
                    yield f"{where}/examples/{i}", schema, value
            elif isinstance(listed, dict):
                for name, value in listed.items():
                    if isinstance(value, dict) and "value" in value:
                        yield f"{where}/examples/{name}", schema, value["value"]
        for key, value in node.items():
            if key in ("example", "examples"):
                continue
            yield from examples(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from examples(value, f"{where}/{i}")


def main() -> int:
    path = Path(sys.argv[1])
    repo = path.resolve().parent
    problems: list[str] = []

    spec, _ = read_from_filename(str(path))
    try:
        validate(spec)
    except Exception as error:  # noqa: BLE001 - report whatever the validator says
        problems.append(f"not valid OpenAPI 3.1: {error}")

    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    registry = Registry().with_resource("urn:adcast", Resource(contents=document, specification=DRAFT202012))
    count = 0
    for where, schema, value in examples(document):
        if isinstance(value, str) and schema.get("type") == "integer":
            continue  # header examples are strings on the wire
        count += 1
        wrapped = {"$ref": "urn:adcast#" + schema["$ref"][1:]} if "$ref" in schema else schema
        wrapped = rewrite_refs(wrapped)
        validator = Draft202012Validator(wrapped, registry=registry, format_checker=FormatChecker())
        for error in validator.iter_errors(value):
            problems.append(f"{where}: example {value!r} does not match its schema: {error.message}")

    country_rs = repo / "shared" / "src" / "country.rs"
    if country_rs.exists():
        table = country_rs.read_text(encoding="utf-8").split('b"\\\n', 1)[1].split('";', 1)[0]
        codes = re.findall(r"\b[A-Z]{2}\b", table)
        schemas = document["components"]["schemas"]
        if schemas["CountryCode"]["enum"] != codes:
            problems.append("components.schemas.CountryCode.enum differs from shared/src/country.rs")
        pattern = re.compile(schemas["CountryCodeInput"]["pattern"])
        # Input also takes the aliases Country::parse accepts (UK for GB).
        accepted = set(codes) | {"UK"}
        for a, b in itertools.product(string.ascii_letters, repeat=2):
            if bool(pattern.search(a + b)) != ((a + b).upper() in accepted):
                problems.append(f"CountryCodeInput.pattern disagrees with shared/src/country.rs on {a + b!r}")
                break
    api_error_rs = repo / "shared" / "src" / "api_error.rs"
    if api_error_rs.exists():
        source = api_error_rs.read_text(encoding="utf-8")
        codes = re.findall(r'ErrorCode::\w+ => "([a-z_]+)"', source)
        documented = document["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
        if sorted(codes) != sorted(documented):
            problems.append(f"Error.code enum {documented} differs from shared/src/api_error.rs {codes}")

    for problem in problems:
        print(f"openapi lint: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"openapi lint: {path} is valid OpenAPI 3.1; {count} examples match their schemas", file=sys.stderr)
    return 0


def rewrite_refs(node):
    """Local `#/...` references, resolved against the whole document."""
    if isinstance(node, dict):
        return {
            key: ("urn:adcast" + value if key == "$ref" and isinstance(value, str) and value.startswith("#") else rewrite_refs(value))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [rewrite_refs(value) for value in node]
    return node


if __name__ == "__main__":
    sys.exit(main())
