#!/usr/bin/env python3
"""Contract test between the deployment and the binaries it deploys.

Every name the deployment relies on must exist in the binaries that are
built from this tree:

- environment variables (ADCAST_*, DATABASE_URL, REDIS_URL) set or named in
  Terraform, the compose file, the Dockerfile and DEPLOYING.md: in the
  `--help` of the binary that reads them;
- command-line flags and subcommands in container commands: in that
  binary's (subcommand's) `--help`;
- ports: every port the deployment expects a binary on (listen addresses,
  container ports, health-check and scrape URLs, security-group rules,
  upstreams) is the binary's default listen port;
- health-check paths (/healthz, /readyz, /servingz, /metrics) in load balancer
  and container health checks, the Lambda adapter and scrape configs: a live
  binary answers them (anything but 404/405);
- metric names in CloudWatch exports and alarms, Prometheus rules and the
  Grafana dashboard: on a live binary's /metrics.

The live part starts a writer (fresh database, own stream key) and an edge
on free loopback ports, writes one ad, reads it back through the edge, then
probes and scrapes both.

usage: contract.py --writer BIN --edge BIN --database-url postgres://... --redis-url redis://...
Exit status 1 when any name is missing; each is printed with where it is used.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BINARIES = ("writer", "edge")

ENV_NAME = re.compile(r"\b(ADCAST_[A-Z0-9_]+|DATABASE_URL|REDIS_URL)\b")
HELP_ENV = re.compile(r"\[env: ([A-Z0-9_]+)")
HELP_FLAG = re.compile(r"(?:^|\s)(--[a-z][a-z0-9-]*)")
HELP_DEFAULT_LISTEN = re.compile(r"--listen <[A-Z_]+>\s+.*?\[default: [0-9.]+:(\d+)\]", re.DOTALL)
HEALTH_PATH = re.compile(r"(/(?:healthz|readyz|servingz|metrics))\b")
METRIC = re.compile(r"\badcast_[a-z0-9_]+")

# Variables that are not the binaries': read by `docker compose` itself, the
# one-shot secrets-init script, or the deployment checks.
COMPOSE_VARIABLES = {
    "ADCAST_ADMIN_TOKEN": "secrets-init writes it into the writer's admin token file",
    "ADCAST_HTTP_PORT": "host port of the lb service",
    "ADCAST_CONTRACT_BINARIES": "infra/check-deploy.sh: prebuilt binaries for this test",
    "ADCAST_DEPLOY_TOOLS": "infra/check-deploy.sh: where its tools are installed",
}

TERRAFORM_BINARY = {
    "writer-service": "writer",
    "edge-service": "edge",
    "edge-function": "edge",
}
COMPOSE_BINARY = {"writer": "writer", "migrate": "writer", "edge": "edge"}
DOCKER_STAGE_BINARY = {"writer": "writer", "edge": "edge", "edge-function": "edge", "runtime": None}


class Expect:
    """What the deployment expects, with where each expectation comes from."""

    def __init__(self):
        self.env = {b: defaultdict(set) for b in BINARIES}
        self.env_any = defaultdict(set)  # named where no binary is implied
        self.flags = {b: defaultdict(set) for b in BINARIES}  # (subcommand, flag)
        self.ports = {b: defaultdict(set) for b in BINARIES}
        self.paths = {b: defaultdict(set) for b in BINARIES}
        self.metrics = defaultdict(set)


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def command_words(text: str, expect: Expect, binary: str, where: str):
    """Flags after `adcast-writer` / `adcast-edge` in a shell command."""
    for match in re.finditer(r"adcast-(writer|edge)\b([^;&|\n\"']*)", text):
        words = match.group(2).split()
        sub = words[0] if words and not words[0].startswith("-") else ""
        for word in words:
            if word.startswith("--"):
                expect.flags[match.group(1)][(sub, word.split("=")[0])].add(where)


def collect_terraform(expect: Expect):
    for tf in sorted((ROOT / "terraform").rglob("*.tf")):
        text = tf.read_text()
        module = tf.parent.name
        binary = TERRAFORM_BINARY.get(module)
        where = rel(tf)
        # Set for a binary: container environment and secrets entries
        # ({ name = "X", ... }) and the function's environment map (X = ...).
        passed = set(re.findall(r'\bname\s*=\s*"(ADCAST_[A-Z0-9_]+|DATABASE_URL|REDIS_URL)"', text))
        passed |= set(re.findall(r"^\s*(ADCAST_[A-Z0-9_]+|DATABASE_URL|REDIS_URL)\s*=", text, re.MULTILINE))
        for name in set(ENV_NAME.findall(text)):
            if binary and name in passed:
                expect.env[binary][name].add(where)
            else:
                expect.env_any[name].add(where)
        if binary:
            # Container commands: ["sub", "--flag", ...] of the binary's image
            # (not health-check commands, not shell scripts).
            for listing in re.findall(r"\bcommand\s*=\s*\[([^\]]*)\]", text):
                items = re.findall(r'"((?:[^"\\]|\\.)*)"', listing)
                if not items or items[0] in ("CMD", "CMD-SHELL") or "/bin/sh" in listing or " " in items[0]:
                    continue
                sub = items[0] if not items[0].startswith("-") else ""
                for item in items:
                    if item.startswith("--"):
                        expect.flags[binary][(sub, item.split("=")[0])].add(where)
                if sub:
                    expect.flags[binary][(sub, "")].add(where)
            for port in re.findall(r"\blisten_port\s*=\s*(\d+)", text):
                expect.ports[binary][int(port)].add(f"{where} (local.listen_port)")
            for path in re.findall(r'\b(?:serving_path\s*=\s*|path\s*=\s*)"(/[a-z]+)"', text):
                expect.paths[binary][path].add(f"{where} (health check)")
            for path in HEALTH_PATH.findall(" ".join(re.findall(r"curl[^\]]*", text))):
                expect.paths[binary][path].add(f"{where} (container health check)")
        # The writer's port as its clients see it.
        for port in re.findall(r'description\s*=\s*"The writer[^"]*"\s*\n\s*from_port\s*=\s*(\d+)', text):
            expect.ports["writer"][int(port)].add(f"{where} (egress to the writer)")
        for port in re.findall(r'writer[^"\n]*\}:(\d+)"', text):
            expect.ports["writer"][int(port)].add(f"{where} (writer URL)")
        # Metrics: exported lists and alarm metric names.
        for block in re.findall(r"exported_metrics\s*=\s*\[(.*?)\]", text, re.DOTALL):
            for name in METRIC.findall(block):
                expect.metrics[name].add(f"{where} (CloudWatch export)")
        for name in re.findall(r'metric_name\s*=\s*"(adcast_[a-z0-9_]+)"', text):
            expect.metrics[name].add(f"{where} (CloudWatch alarm)")


def collect_compose(expect: Expect):
    path = ROOT / "infra" / "docker-compose.yml"
    where = rel(path)
    services = yaml.safe_load(path.read_text())["services"]
    for service, spec in services.items():
        binary = COMPOSE_BINARY.get(service)
        env = spec.get("environment") or {}
        names = set(env) if isinstance(env, dict) else {e.split("=")[0] for e in env}
        command = spec.get("command") or []
        command_text = " ".join(command) if isinstance(command, list) else str(command)
        names |= set(ENV_NAME.findall(command_text))
        for name in names:
            if not ENV_NAME.fullmatch(name):
                continue
            if name in COMPOSE_VARIABLES and not binary:
                continue
            target = expect.env[binary] if binary else expect.env_any
            target[name].add(f"{where} service {service}")
        if binary:
            command_words(command_text, expect, binary, f"{where} service {service}")
            listen = env.get("ADCAST_WRITER_LISTEN") or env.get("ADCAST_EDGE_LISTEN") if isinstance(env, dict) else None
            if listen:
                expect.ports[binary][int(str(listen).rsplit(":", 1)[1])].add(f"{where} service {service} (listen)")
            test = " ".join((spec.get("healthcheck") or {}).get("test") or [])
            for port, hpath in re.findall(r"127\.0\.0\.1:(\d+)(/[a-z]+)", test):
                expect.ports[binary][int(port)].add(f"{where} service {service} (healthcheck)")
                expect.paths[binary][hpath].add(f"{where} service {service} (healthcheck)")
            for mapping in spec.get("ports") or []:
                expect.ports[binary][int(str(mapping).rsplit(":", 1)[1])].add(f"{where} service {service} (published port)")
            for port in spec.get("expose") or []:
                expect.ports[binary][int(port)].add(f"{where} service {service} (expose)")
        for name, value in (env.items() if isinstance(env, dict) else []):
            for m in re.finditer(r"http://(writer|edge):(\d+)", str(value)):
                expect.ports[m.group(1)][int(m.group(2))].add(f"{where} service {service} ({name})")

    prom = ROOT / "infra" / "prometheus" / "prometheus.yml"
    config = yaml.safe_load(prom.read_text())
    for job in config.get("scrape_configs", []):
        binary = "writer" if "writer" in job["job_name"] else "edge" if "edge" in job["job_name"] else None
        if not binary:
            continue
        expect.paths[binary][job.get("metrics_path", "/metrics")].add(f"{rel(prom)} job {job['job_name']}")
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                expect.ports[binary][int(target.rsplit(":", 1)[1])].add(f"{rel(prom)} job {job['job_name']}")
        for sd in job.get("dns_sd_configs", []):
            expect.ports[binary][int(sd["port"])].add(f"{rel(prom)} job {job['job_name']}")

    nginx = ROOT / "infra" / "nginx" / "nginx.conf"
    for port in re.findall(r"http://edge:(\d+)", nginx.read_text()):
        expect.ports["edge"][int(port)].add(f"{rel(nginx)} (upstream)")


def collect_dockerfile(expect: Expect):
    path = ROOT / "infra" / "Dockerfile"
    where = rel(path)
    stage = None
    # Join continuation lines so that one ENV instruction is one line.
    text = re.sub(r"\\\n", " ", path.read_text())
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            continue
        m = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if m:
            stage = m.group(1)
            continue
        if stage not in DOCKER_STAGE_BINARY:
            continue
        binary = DOCKER_STAGE_BINARY[stage]
        targets = [binary] if binary else list(BINARIES)
        where_stage = f"{where} stage {stage}"
        if line.startswith("ENV "):
            for name, value in re.findall(r"([A-Z][A-Z0-9_]*)=(\S+)", line):
                if ENV_NAME.fullmatch(name):
                    for b in targets:
                        expect.env[b][name].add(where_stage)
                if name.endswith("_LISTEN") or name == "AWS_LWA_PORT":
                    expect.ports[binary][int(value.rsplit(":", 1)[-1])].add(f"{where_stage} ({name})")
                if name == "AWS_LWA_READINESS_CHECK_PATH":
                    expect.paths[binary][value].add(f"{where_stage} (Lambda adapter readiness)")
        elif line.startswith("EXPOSE ") and binary:
            for port in line.split()[1:]:
                expect.ports[binary][int(port)].add(f"{where_stage} (EXPOSE)")
        elif line.startswith("HEALTHCHECK") and binary:
            for hpath in HEALTH_PATH.findall(line):
                expect.paths[binary][hpath].add(f"{where_stage} (HEALTHCHECK)")
        elif line.startswith(("ENTRYPOINT", "CMD")) and binary:
            command_words(line, expect, binary, where_stage)


def collect_monitoring(expect: Expect):
    rules = ROOT / "infra" / "prometheus" / "rules.yml"
    for group in yaml.safe_load(rules.read_text())["groups"]:
        for rule in group["rules"]:
            for name in METRIC.findall(rule["expr"]):
                expect.metrics[name].add(f"{rel(rules)} {rule.get('alert') or rule.get('record')}")
    dashboard = ROOT / "infra" / "grafana" / "adcast-dashboard.json"

    def walk(node, title=""):
        if isinstance(node, dict):
            title = node.get("title", title)
            for key, value in node.items():
                if key in ("expr", "query", "definition") and isinstance(value, str):
                    for name in METRIC.findall(value):
                        expect.metrics[name].add(f"{rel(dashboard)} panel {title!r}")
                else:
                    walk(value, title)
        elif isinstance(node, list):
            for item in node:
                walk(item, title)

    walk(json.loads(dashboard.read_text()))


def collect_docs(expect: Expect):
    path = ROOT / "DEPLOYING.md"
    for name in set(ENV_NAME.findall(path.read_text())):
        if name not in COMPOSE_VARIABLES:
            expect.env_any[name].add(rel(path))


# --- the binaries ----------------------------------------------------------------------


def run_help(binary: str, *args: str) -> str | None:
    result = subprocess.run([binary, *args, "--help"], capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 5):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_alive(url: str, process: subprocess.Popen, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            if http("GET", url, timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answers {url}")


def metric_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            names.add(parts[2])
            if parts[3] == "histogram":
                names |= {parts[2] + s for s in ("_bucket", "_sum", "_count")}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def live(args) -> dict:
    """Start both binaries, return what they answer."""
    work = Path(tempfile.mkdtemp(prefix="adcast-contract-"))
    db = f"adcast_deploy_contract_{os.getpid()}"
    stream = f"adcast:deploy-contract:{os.getpid()}"
    admin = args.database_url.rstrip("/") + "/postgres"
    subprocess.run(["psql", admin, "-qc", f"create database {db}"], check=True, capture_output=True)
    processes = []
    found = {"paths": {b: {} for b in BINARIES}, "metrics": {b: set() for b in BINARIES}}
    try:
        writer_port, edge_port = free_port(), free_port()
        env = dict(os.environ, ADCAST_LOG="warn", ADCAST_STREAM_KEY=stream, REDIS_URL=args.redis_url)
        writer = subprocess.Popen(
            [args.writer, "--listen", f"127.0.0.1:{writer_port}", "--snapshot-dir", str(work / "snapshots")],
            env=dict(env, DATABASE_URL=f"{args.database_url.rstrip('/')}/{db}"),
        )
        processes.append(writer)
        wait_alive(f"http://127.0.0.1:{writer_port}/healthz", writer)
        ad = json.dumps({"title": "contract", "startAt": "2024-01-01T00:00:00Z", "endAt": "2099-01-01T00:00:00Z"}).encode()
        status, body = http("POST", f"http://127.0.0.1:{writer_port}/api/v1/ad", ad, {"content-type": "application/json"})
        if status != 201:
            raise RuntimeError(f"creating an ad answered {status}: {body[:200]}")
        edge = subprocess.Popen(
            [args.edge, "--listen", f"127.0.0.1:{edge_port}", "--data-dir", str(work / "edge"),
             "--writer-url", f"http://127.0.0.1:{writer_port}", "--snapshot", str(work / "snapshots")],
            env=env,
        )
        processes.append(edge)
        wait_alive(f"http://127.0.0.1:{edge_port}/healthz", edge)
        http("GET", f"http://127.0.0.1:{edge_port}/api/v1/ad?limit=1", headers={"Adcast-Min-Seq": "1"})
        http("GET", f"http://127.0.0.1:{edge_port}/api/v1/ad?age=0")
        ports = {"writer": writer_port, "edge": edge_port}
        for binary, port in ports.items():
            for path in ("/healthz", "/readyz", "/servingz", "/metrics"):
                found["paths"][binary][path] = http("GET", f"http://127.0.0.1:{port}{path}")[0]
            found["metrics"][binary] = metric_names(http("GET", f"http://127.0.0.1:{port}/metrics")[1])
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        subprocess.run(["redis-cli", "-u", args.redis_url, "del", stream], capture_output=True)
        subprocess.run(["psql", admin, "-qc", f"drop database if exists {db}"], capture_output=True)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writer", required=True)
    parser.add_argument("--edge", required=True)
    parser.add_argument("--database-url", required=True, help="server URL without a database name")
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()

    expect = Expect()
    collect_terraform(expect)
    collect_compose(expect)
    collect_dockerfile(expect)
    collect_monitoring(expect)
    collect_docs(expect)

    paths = {"writer": args.writer, "edge": args.edge}
    helps = {b: run_help(paths[b]) or "" for b in BINARIES}
    env = {b: set(HELP_ENV.findall(helps[b])) for b in BINARIES}
    default_port = {}
    for b in BINARIES:
        m = HELP_DEFAULT_LISTEN.search(helps[b])
        default_port[b] = int(m.group(1)) if m else None

    problems: list[str] = []
    checked = 0

    reported = set()
    for b in BINARIES:
        for name, where in sorted(expect.env[b].items()):
            checked += 1
            if name not in env[b]:
                reported.add(name)
                problems.append(f"env {name}: not in `adcast-{b} --help`; used in {', '.join(sorted(where))}")
    for name, where in sorted(expect.env_any.items()):
        checked += 1
        if name not in env["writer"] | env["edge"] and name not in reported:
            problems.append(f"env {name}: in neither binary's --help; named in {', '.join(sorted(where))}")

    for b in BINARIES:
        sub_helps: dict[str, str | None] = {"": helps[b]}
        for (sub, flag), where in sorted(expect.flags[b].items()):
            checked += 1
            if sub not in sub_helps:
                sub_helps[sub] = run_help(paths[b], sub)
            text = sub_helps[sub]
            label = f"adcast-{b} {sub}".strip()
            if text is None:
                problems.append(f"subcommand `{label}`: does not exist (its --help fails); used in {', '.join(sorted(where))}")
            elif flag and flag not in HELP_FLAG.findall(text):
                problems.append(f"flag `{label} {flag}`: not in its --help; used in {', '.join(sorted(where))}")

    for b in BINARIES:
        for port, where in sorted(expect.ports[b].items()):
            checked += 1
            if port != default_port[b]:
                problems.append(f"port {port} for adcast-{b}: its default listen port is {default_port[b]}; used in {', '.join(sorted(where))}")

    found = live(args)
    for b in BINARIES:
        for path, where in sorted(expect.paths[b].items()):
            checked += 1
            status = found["paths"][b].get(path)
            if status is None:
                problems.append(f"path {path} on adcast-{b}: not probed (unknown health path); used in {', '.join(sorted(where))}")
            elif status in (404, 405):
                problems.append(f"path {path} on adcast-{b}: answers {status}; used in {', '.join(sorted(where))}")
    for name, where in sorted(expect.metrics.items()):
        checked += 1
        b = "edge" if name.startswith("adcast_edge_") else "writer"
        if name not in found["metrics"][b]:
            problems.append(f"metric {name}: not on adcast-{b}'s /metrics; used in {', '.join(sorted(where))}")

    for problem in problems:
        print("MISSING", problem)
    kinds = {
        "environment variables": sum(len(expect.env[b]) for b in BINARIES) + len(expect.env_any),
        "flags and subcommands": sum(len(expect.flags[b]) for b in BINARIES),
        "port uses": sum(len(w) for b in BINARIES for w in expect.ports[b].values()),
        "health and scrape paths": sum(len(expect.paths[b]) for b in BINARIES),
        "metric names": len(expect.metrics),
    }
    print("contract: checked " + ", ".join(f"{n} {k}" for k, n in kinds.items()))
    print(f"contract: {checked} names checked against the binaries, {len(problems)} missing")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
