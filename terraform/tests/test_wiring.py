"""Parse-and-wire test of the Terraform tree, without providers or a cloud.

`terraform validate` needs the AWS provider, which cannot be downloaded
everywhere this runs. This test parses every configuration under terraform/
with python-hcl2 and checks what validate would, for the wiring between
modules, plus the project's own rules:

- every module call points at an existing local module directory;
- every module call provides every required input of that module (variables
  without a default) and passes no input the module does not declare;
- every module that declares provider configuration_aliases receives them;
- every `module.NAME.OUTPUT` reference names a module call in the same
  configuration and an output that module declares;
- every `var.NAME` reference names a declared variable;
- every declared variable is used in its module (outside its own block);
- every variable and every output has a non-empty description;
- every module under terraform/modules is called somewhere.

Run with `python3 terraform/tests/test_wiring.py` (prints one line per check
and a closing "N passed, N failed") or with pytest.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import hcl2

TERRAFORM_ROOT = Path(__file__).resolve().parent.parent
META_ARGUMENTS = {"source", "version", "providers", "count", "for_each", "depends_on"}


def _value(raw):
    """Older python-hcl2 releases wrap attribute values in one-element lists."""
    if isinstance(raw, list) and len(raw) == 1:
        return raw[0]
    return raw


def _clean_keys(block: dict) -> dict:
    return {_unquote(k): v for k, v in block.items() if not k.startswith("__")}


def _unquote(text) -> str:
    text = str(text)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def _reference(text) -> str:
    """`${aws.primary}` or `aws.primary` -> `aws.primary`."""
    text = _unquote(text)
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1]
    return text


def _parse(handle) -> dict:
    """Parse one .tf file, across python-hcl2 versions.

    python-hcl2 8 quotes strings unless asked not to (SerializationOptions);
    older releases, and checkov's fork bc-python-hcl2, strip quotes already
    and wrap attribute values in lists (see _value).
    """
    try:
        from hcl2.utils import SerializationOptions

        return hcl2.load(handle, serialization_options=SerializationOptions(strip_string_quotes=True))
    except (ImportError, TypeError):
        handle.seek(0)
        return hcl2.load(handle)


VARIABLE_BLOCK = re.compile(r'^variable\s+"[^"]+"\s*\{', re.MULTILINE)


def _strip_variable_blocks(text: str) -> str:
    """The text without its `variable` blocks, so a variable's own validation
    block does not count as a use of it. Braces inside strings are skipped."""
    out, pos = [], 0
    for match in VARIABLE_BLOCK.finditer(text):
        if match.start() < pos:
            continue
        out.append(text[pos : match.start()])
        depth, i, in_string = 0, match.end() - 1, False
        while i < len(text):
            ch = text[i]
            if in_string:
                if ch == "\\":
                    i += 1
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        pos = i + 1
    out.append(text[pos:])
    return "".join(out)


def _blocks(parsed: dict, kind: str):
    """Yield (label, body) for every block of one kind, e.g. every variable."""
    for block in parsed.get(kind, []) or []:
        for label, body in block.items():
            if not label.startswith("__"):
                yield _unquote(label), body


@dataclass
class Variable:
    name: str
    file: Path
    has_default: bool
    description: str


@dataclass
class ModuleCall:
    name: str
    file: Path
    source: str
    arguments: set[str]
    providers: set[str]


@dataclass
class Config:
    """One Terraform configuration: a directory of .tf files."""

    path: Path
    variables: dict[str, Variable] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    calls: dict[str, ModuleCall] = field(default_factory=dict)
    configuration_aliases: set[str] = field(default_factory=set)
    # Source text without its `variable` blocks, for the use check.
    body_text: str = ""
    full_text: str = ""

    @property
    def rel(self) -> str:
        return str(self.path.relative_to(TERRAFORM_ROOT))


def _parse_aliases(required_providers) -> set[str]:
    aliases = set()
    blocks = required_providers if isinstance(required_providers, list) else [required_providers]
    for block in blocks:
        if not isinstance(block, dict):
            continue
        for _provider, spec in _clean_keys(block).items():
            spec = _value(spec)
            if not isinstance(spec, dict):
                continue
            for alias in _value(spec.get("configuration_aliases", [])) or []:
                aliases.add(_reference(alias))
    return aliases


def load_config(directory: Path) -> Config:
    config = Config(path=directory)
    body_parts, full_parts = [], []
    for tf in sorted(directory.glob("*.tf")):
        text = tf.read_text()
        with tf.open() as handle:
            parsed = _parse(handle)
        for name, spec in _blocks(parsed, "variable"):
            spec = _clean_keys(spec)
            config.variables[name] = Variable(
                name=name,
                file=tf,
                has_default="default" in spec,
                description=_unquote(_value(spec.get("description", "")) or "").strip(),
            )
        for name, spec in _blocks(parsed, "output"):
            config.outputs[name] = _unquote(_value(_clean_keys(spec).get("description", "")) or "").strip()
        for name, spec in _blocks(parsed, "module"):
            spec = _clean_keys(spec)
            providers = set()
            mappings = spec.get("providers") or []
            for mapping in mappings if isinstance(mappings, list) else [mappings]:
                if isinstance(mapping, dict):
                    providers.update(_reference(key) for key in _clean_keys(mapping))
            config.calls[name] = ModuleCall(
                name=name,
                file=tf,
                source=_unquote(_value(spec.get("source", ""))),
                arguments=set(spec) - META_ARGUMENTS,
                providers=providers,
            )
        for block in parsed.get("terraform", []) or []:
            config.configuration_aliases |= _parse_aliases(block.get("required_providers") or [])
        body_parts.append(_strip_variable_blocks(text))
        full_parts.append(text)
    config.body_text = "\n".join(body_parts)
    config.full_text = "\n".join(full_parts)
    return config


def all_configs() -> dict[Path, Config]:
    directories = sorted({tf.parent for tf in TERRAFORM_ROOT.rglob("*.tf") if ".terraform" not in tf.parts})
    return {d: load_config(d) for d in directories}


CONFIGS = all_configs()


def _target(config: Config, call: ModuleCall) -> Config | None:
    if not call.source.startswith("."):
        return None
    return CONFIGS.get((config.path / call.source).resolve())


# --- checks: each returns a list of problems -----------------------------------------


def problems_module_sources() -> list[str]:
    out = []
    for config in CONFIGS.values():
        for call in config.calls.values():
            if not call.source.startswith("."):
                out.append(f"{config.rel}: module {call.name}: source {call.source!r} is not a local module")
            elif _target(config, call) is None:
                out.append(f"{config.rel}: module {call.name}: no module at {call.source}")
    return out


def problems_required_inputs() -> list[str]:
    out = []
    for config in CONFIGS.values():
        for call in config.calls.values():
            target = _target(config, call)
            if target is None:
                continue
            required = {n for n, v in target.variables.items() if not v.has_default}
            for missing in sorted(required - call.arguments):
                out.append(f"{config.rel}: module {call.name} ({target.rel}) lacks required input {missing}")
    return out


def problems_unknown_inputs() -> list[str]:
    out = []
    for config in CONFIGS.values():
        for call in config.calls.values():
            target = _target(config, call)
            if target is None:
                continue
            for unknown in sorted(call.arguments - set(target.variables)):
                out.append(f"{config.rel}: module {call.name} passes {unknown}, which {target.rel} does not declare")
    return out


def problems_provider_aliases() -> list[str]:
    out = []
    for config in CONFIGS.values():
        for call in config.calls.values():
            target = _target(config, call)
            if target is None or not target.configuration_aliases:
                continue
            for alias in sorted(target.configuration_aliases - call.providers):
                out.append(f"{config.rel}: module {call.name} does not pass provider {alias} to {target.rel}")
    return out


# module.NAME.OUTPUT, also through an index: module.NAME[0].OUTPUT, module.NAME[*].OUTPUT.
MODULE_REF = re.compile(r"\bmodule\.([A-Za-z0-9_-]+)(?:\[[^\]]*\])?\.([A-Za-z0-9_-]+)")
VAR_REF = re.compile(r"\bvar\.([A-Za-z0-9_-]+)")


def problems_module_output_references() -> list[str]:
    out = []
    for config in CONFIGS.values():
        for module_name, output in sorted(set(MODULE_REF.findall(config.full_text))):
            call = config.calls.get(module_name)
            if call is None:
                out.append(f"{config.rel}: module.{module_name}.{output}: no module call {module_name}")
                continue
            target = _target(config, call)
            if target is not None and output not in target.outputs:
                out.append(f"{config.rel}: module.{module_name}.{output}: {target.rel} has no output {output}")
    return out


def problems_undeclared_variables() -> list[str]:
    out = []
    for config in CONFIGS.values():
        for name in sorted(set(VAR_REF.findall(config.full_text)) - set(config.variables)):
            out.append(f"{config.rel}: var.{name} is referenced but not declared")
    return out


def problems_unused_variables() -> list[str]:
    out = []
    for config in CONFIGS.values():
        used = set(VAR_REF.findall(config.body_text))
        for name in sorted(set(config.variables) - used):
            out.append(f"{config.rel}: variable {name} is declared but never used")
    return out


def problems_variable_descriptions() -> list[str]:
    return [
        f"{config.rel}: variable {v.name} has no description"
        for config in CONFIGS.values()
        for v in config.variables.values()
        if not v.description
    ]


def problems_output_descriptions() -> list[str]:
    return [
        f"{config.rel}: output {name} has no description"
        for config in CONFIGS.values()
        for name, description in config.outputs.items()
        if not description
    ]


def problems_unused_modules() -> list[str]:
    called = {
        _target(config, call).path
        for config in CONFIGS.values()
        for call in config.calls.values()
        if _target(config, call) is not None
    }
    modules_dir = TERRAFORM_ROOT / "modules"
    return [
        f"{config.rel}: module is never called"
        for path, config in CONFIGS.items()
        if modules_dir in path.parents and path not in called
    ]


def problems_something_parsed() -> list[str]:
    out = []
    if not any(c.calls for c in CONFIGS.values()):
        out.append("no module call found at all: is the tree there?")
    if not any(c.variables for c in CONFIGS.values()):
        out.append("no variable found at all")
    return out


CHECKS = [
    ("the tree parses and has modules", problems_something_parsed),
    ("module sources resolve to local modules", problems_module_sources),
    ("every required module input is provided", problems_required_inputs),
    ("no module call passes an unknown input", problems_unknown_inputs),
    ("provider configuration_aliases are passed", problems_provider_aliases),
    ("module.X.Y references name real outputs", problems_module_output_references),
    ("var.X references name declared variables", problems_undeclared_variables),
    ("every declared variable is used", problems_unused_variables),
    ("every variable has a description", problems_variable_descriptions),
    ("every output has a description", problems_output_descriptions),
    ("every module is called", problems_unused_modules),
]


# pytest entry points: one test per check.
def _make_test(check):
    def test():
        problems = check()
        assert not problems, "\n".join(problems)

    return test


for _title, _check in CHECKS:
    globals()["test_" + _check.__name__.removeprefix("problems_")] = _make_test(_check)


def main() -> int:
    passed = failed = 0
    print(f"wiring: {len(CONFIGS)} configurations under {TERRAFORM_ROOT}")
    for title, check in CHECKS:
        problems = check()
        if problems:
            failed += 1
            print(f"FAIL {title}")
            for problem in problems:
                print(f"     {problem}")
        else:
            passed += 1
            print(f"ok   {title}")
    print(f"wiring: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
