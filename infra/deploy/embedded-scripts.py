#!/usr/bin/env python3
"""Extracts the shell scripts embedded in the deployment definitions, so that
shellcheck can read them (infra/check-deploy.sh):

- Terraform heredocs whose delimiter is SH (`<<-SH ... SH`), e.g. the writer
  task's database-role step, and single-string commands of containers whose
  entryPoint is ["/bin/sh", "-c"];
- compose services whose entrypoint is /bin/sh -c (their command), and
  CMD-SHELL health checks.

Terraform interpolations (`${var.x}`, `${local.y}`) become a placeholder
word; `$${` and compose's `$$` become `$`. Each script is written as
OUTDIR/<source>-<name>.sh with a `#!/bin/sh` line, and its origin is printed.

usage: embedded-scripts.py OUTDIR
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
HEREDOC = re.compile(r"^\s*([A-Za-z0-9_]+)\s*=\s*<<-?SH\n(.*?)^\s*SH\s*$", re.MULTILINE | re.DOTALL)
SH_COMMAND = re.compile(
    r'entryPoint\s*=\s*\["/bin/sh",\s*"-c"\]\s*\n\s*command\s*=\s*\[\s*("(?:[^"\\]|\\.)*")\s*\]'
)
TF_INTERPOLATION = re.compile(r"(?<!\$)\$\{[^}]*\}")


def terraform_text(text: str) -> str:
    """A Terraform template as the shell will see it, near enough for lint."""
    text = text.replace("$${", "\0")
    text = TF_INTERPOLATION.sub("TFVALUE", text)
    return text.replace("\0", "${")


def dedent(text: str) -> str:
    lines = text.split("\n")
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(indents) if indents else 0
    return "\n".join(line[cut:] for line in lines)


def scripts():
    for tf in sorted((ROOT / "terraform").rglob("*.tf")):
        text = tf.read_text()
        rel = tf.relative_to(ROOT)
        for match in HEREDOC.finditer(text):
            yield f"{rel}: local {match.group(1)}", terraform_text(dedent(match.group(2)))
        for n, match in enumerate(SH_COMMAND.finditer(text)):
            literal = match.group(1)[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            yield f"{rel}: container command {n + 1}", terraform_text(literal) + "\n"

    compose = ROOT / "infra" / "docker-compose.yml"
    services = yaml.safe_load(compose.read_text())["services"]
    for name, service in services.items():
        entrypoint = service.get("entrypoint") or []
        if entrypoint[:2] == ["/bin/sh", "-c"]:
            command = service.get("command")
            body = command[0] if isinstance(command, list) else command
            yield f"infra/docker-compose.yml: service {name} command", body.replace("$$", "$") + "\n"
        test = (service.get("healthcheck") or {}).get("test") or []
        if test[:1] == ["CMD-SHELL"]:
            yield f"infra/docker-compose.yml: service {name} healthcheck", test[1].replace("$$", "$") + "\n"


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for origin, body in scripts():
        count += 1
        slug = re.sub(r"[^A-Za-z0-9]+", "-", origin).strip("-")
        path = out / f"{slug}.sh"
        path.write_text(f"#!/bin/sh\n# from {origin}\n{body}")
        print(f"{path}\t{origin}")
    if count == 0:
        print("no embedded scripts found: has the extraction broken?", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
