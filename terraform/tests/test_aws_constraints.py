"""Known AWS constraints the Terraform must satisfy, checked offline.

`terraform validate` knows the provider schemas but not most of AWS's own
limits, and neither runs here (no provider registry). This test evaluates
the configuration (terraform/tests/hcl_eval.py) the way a plan would from
the variables alone, for each module instance the production environment
creates, under several sets of variables:

- "example":         defaults with terraform.tfvars.example;
- "functions + CDN": every region on function edges, the CDN, a database
                     replica (so that the optional modules are evaluated);
- "longest names":   the longest project and environment names the
                     variables' validations allow, and 14-character region
                     names (the longest AWS has), with the options above.

and checks every value against the table below: name lengths and
characters, Fargate CPU/memory pairs, Lambda limits, ECS container health
checks and start order, ALB and WAF ranges, arguments AWS rejects on a
Global Datastore secondary, CloudFront's us-east-1 requirement, and the
variables' own validations and the resources' preconditions. A value the evaluator cannot compute from
variables where the table needs it is a failure too, so that the table never
silently checks nothing.

Run with `python3 terraform/tests/test_aws_constraints.py` (one line per
check, closing "N passed, N failed") or with pytest.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hcl_eval import UNKNOWN, EvalError, Scope, evaluate, is_known  # noqa: E402
from test_wiring import TERRAFORM_ROOT, _blocks, _clean_keys, _parse, _unquote  # noqa: E402

ENVIRONMENT = TERRAFORM_ROOT / "environments" / "production"

# --- the table -----------------------------------------------------------------------

# (resource type, attribute, maximum length, pattern the value must match)
# Prefixes (name_prefix, bucket_prefix) leave room for the 26 characters
# Terraform appends, hence 229 where a name may have 255.
NAMES = [
    ("aws_lb", "name", 32, r"^(?!internal-)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$"),
    ("aws_lb_target_group", "name_prefix", 6, r"^[A-Za-z0-9-]+$"),
    ("aws_iam_role", "name_prefix", 38, r"^[\w+=,.@-]+$"),
    ("aws_iam_role_policy", "name", 128, r"^[\w+=,.@-]+$"),
    ("aws_elasticache_replication_group", "replication_group_id", 40, r"^[a-z](?!.*--)[a-z0-9-]*[a-z0-9]$"),
    ("aws_elasticache_subnet_group", "name", 255, r"^[a-z0-9-]+$"),
    ("aws_elasticache_parameter_group", "name", 255, r"^[a-z](?!.*--)[a-z0-9-]*[a-z0-9]$"),
    ("aws_db_instance", "identifier", 63, r"^[a-z](?!.*--)[a-z0-9-]*[a-z0-9]$"),
    ("aws_db_subnet_group", "name_prefix", 229, r"^[a-z0-9 ._-]+$"),
    ("aws_db_parameter_group", "name_prefix", 229, r"^[a-z][a-z0-9-]*$"),
    ("aws_s3_bucket", "bucket_prefix", 37, r"^[a-z0-9][a-z0-9.-]*$"),
    ("aws_security_group", "name_prefix", 229, r"^[ -~]+$"),
    ("aws_wafv2_web_acl", "name", 128, r"^[\w-]+$"),
    ("aws_cloudwatch_log_group", "name", 512, r"^[.\-_/#A-Za-z0-9]+$"),
    ("aws_cloudwatch_log_resource_policy", "policy_name", 255, None),
    ("aws_cloudwatch_metric_alarm", "alarm_name", 255, None),
    ("aws_cloudwatch_event_rule", "name", 64, r"^[.\-_A-Za-z0-9]+$"),
    ("aws_lambda_function", "function_name", 64, r"^[A-Za-z0-9_-]+$"),
    ("aws_apigatewayv2_api", "name", 128, None),
    ("aws_ecs_cluster", "name", 255, r"^[A-Za-z0-9_-]+$"),
    ("aws_ecs_service", "name", 255, r"^[A-Za-z0-9_-]+$"),
    ("aws_ecs_task_definition", "family", 255, r"^[A-Za-z0-9_-]+$"),
    ("aws_appautoscaling_policy", "name", 256, None),
    ("aws_sns_topic", "name", 256, r"^[A-Za-z0-9_-]+$"),
    ("aws_kms_alias", "name", 256, r"^alias/(?!aws/)[A-Za-z0-9/_-]+$"),
    ("aws_secretsmanager_secret", "name", 512, r"^[A-Za-z0-9/_+=.@-]+$"),
    ("aws_ecr_repository", "name", 256, r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$"),
    ("aws_ecr_pull_through_cache_rule", "ecr_repository_prefix", 30, r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"),
    ("aws_ecr_repository_creation_template", "prefix", 256, r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$"),
]

# Fargate (Linux) task sizes: CPU units -> allowed memory in MiB.
FARGATE = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4097, 1024)),
    1024: list(range(2048, 8193, 1024)),
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
    8192: list(range(16384, 61441, 4096)),
    16384: list(range(32768, 122881, 8192)),
}

# AWS takes these from the Global Datastore's primary and rejects them on a
# secondary (CreateReplicationGroup with GlobalReplicationGroupId); the
# provider refuses some of them itself.
GLOBAL_SECONDARY_FORBIDDEN = [
    "engine", "engine_version", "node_type", "parameter_group_name", "num_node_groups",
    "at_rest_encryption_enabled", "transit_encryption_enabled", "transit_encryption_mode",
    "auth_token", "auth_token_update_strategy",
]
GLOBAL_DATASTORE_NODE_FAMILIES = r"^cache\.(m5|m6g|m7g|r5|r6g|r6gd|r7g)\.(?!micro|small|medium)"

RANGES = {
    # (resource type, attribute path): (min, max)
    ("aws_lambda_function", ("memory_size",)): (128, 10240),
    ("aws_lambda_function", ("timeout",)): (1, 900),
    ("aws_lambda_function", ("ephemeral_storage", "size")): (512, 10240),
    ("aws_lambda_function", ("reserved_concurrent_executions",)): (-1, 10**9),
    ("aws_lambda_provisioned_concurrency_config", ("provisioned_concurrent_executions",)): (1, 10**9),
    ("aws_apigatewayv2_integration", ("timeout_milliseconds",)): (50, 30000),
    ("aws_db_instance_automated_backups_replication", ("retention_period",)): (1, 35),
    ("aws_db_instance", ("backup_retention_period",)): (1, 35),
    ("aws_elasticache_replication_group", ("num_cache_clusters",)): (1, 6),
    ("aws_lb_target_group", ("health_check", "interval")): (5, 300),
    ("aws_lb_target_group", ("health_check", "timeout")): (2, 120),
    ("aws_lb_target_group", ("health_check", "healthy_threshold")): (2, 10),
    ("aws_lb_target_group", ("health_check", "unhealthy_threshold")): (2, 10),
    ("aws_lb_target_group", ("deregistration_delay",)): (0, 3600),
    ("aws_appautoscaling_target", ("min_capacity",)): (0, 10**6),
    ("aws_cloudwatch_log_group", ("retention_in_days",)): (1, 3653),
}
LOG_RETENTION_DAYS = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
CONTAINER_HEALTH = {"interval": (5, 300), "timeout": (2, 120), "retries": (1, 10), "startPeriod": (0, 300)}
DEPENDS_ON_CONDITIONS = {"START", "COMPLETE", "SUCCESS", "HEALTHY"}
WAF_WINDOWS = {60, 120, 300, 600}
CLOUDFRONT_REGION = "us-east-1"

LONGEST_REGIONS = ("ap-southeast-5", "ap-northeast-2", "ap-southeast-7")
FUNCTION_DIGEST = "sha256:" + "2" * 64
VARIABLE_SETS = {
    "example": {},
    "functions + CDN": {
        "edge_platforms": {"primary": "function", "edge_a": "function", "edge_b": "function"},
        "edge_function_image_digest": FUNCTION_DIGEST,
        "cdn_enabled": True,
        "database_recovery_mode": "replica",
    },
    "longest names": {
        "project": "abcdefgh",
        "environment": "abcdefg",
        "primary_region": LONGEST_REGIONS[0],
        "edge_region_a": LONGEST_REGIONS[1],
        "edge_region_b": LONGEST_REGIONS[2],
        "primary_azs": [LONGEST_REGIONS[0] + z for z in "abc"],
        "edge_a_azs": [LONGEST_REGIONS[1] + z for z in "abc"],
        "edge_b_azs": [LONGEST_REGIONS[2] + z for z in "abc"],
        "edge_platforms": {"primary": "fargate", "edge_a": "function", "edge_b": "fargate"},
        "edge_function_image_digest": FUNCTION_DIGEST,
        "cdn_enabled": True,
        "database_recovery_mode": "replica",
    },
}


# --- loading -----------------------------------------------------------------------------


@dataclass
class Module:
    path: Path
    defaults: dict = field(default_factory=dict)  # name -> raw default (absent: required)
    validations: dict = field(default_factory=dict)  # name -> [(condition, message)]
    locals: dict = field(default_factory=dict)
    resources: list = field(default_factory=list)  # (type, name, body)
    calls: dict = field(default_factory=dict)  # name -> body
    providers: dict = field(default_factory=dict)  # alias ("" default) -> body

    @property
    def rel(self) -> str:
        return str(self.path.relative_to(TERRAFORM_ROOT))


def load(directory: Path) -> Module:
    module = Module(path=directory)
    for tf in sorted(directory.glob("*.tf")):
        with tf.open() as handle:
            parsed = _parse(handle)
        for name, spec in _blocks(parsed, "variable"):
            spec = _clean_keys(spec)
            if "default" in spec:
                module.defaults[name] = spec["default"]
            module.validations[name] = [
                (v["condition"], v.get("error_message", "")) for v in spec.get("validation", []) or []
            ]
        for block in parsed.get("locals", []) or []:
            module.locals.update(_clean_keys(block))
        for block in parsed.get("resource", []) or []:
            for rtype, named in block.items():
                for rname, body in named.items():
                    module.resources.append((_unquote(rtype), _unquote(rname), _clean_keys(body)))
        for name, spec in _blocks(parsed, "module"):
            module.calls[name] = _clean_keys(spec)
        for block in parsed.get("provider", []) or []:
            for _kind, body in block.items():
                body = _clean_keys(body)
                module.providers[_unquote(body.get("alias", ""))] = body
    return module


def load_tfvars(path: Path) -> dict:
    with path.open() as handle:
        parsed = _parse(handle)
    empty = Scope({}, {})
    return {k: evaluate(v, empty) for k, v in _clean_keys(parsed).items()}


MODULES: dict[Path, Module] = {}


def module_at(path: Path) -> Module:
    path = path.resolve()
    if path not in MODULES:
        MODULES[path] = load(path)
    return MODULES[path]


# --- instances ------------------------------------------------------------------------


@dataclass
class Resource:
    label: str  # where: variable set, module path, resource address
    rtype: str
    body: dict
    scope: Scope
    region: object  # the provider's region, or UNKNOWN

    def get(self, *path):
        """The evaluated attribute at path (nested blocks: first block)."""
        node = self.body
        for key in path[:-1]:
            node = node.get(key)
            if isinstance(node, list):
                node = node[0] if node else None
            if not isinstance(node, dict):
                return None
        if path[-1] not in node:
            return None
        return evaluate(node[path[-1]], self.scope)


PROBLEMS: list[tuple[str, str]] = []  # (check title, problem)


def problem(check: str, text: str):
    PROBLEMS.append((check, text))


def _bool_block(body, key):
    value = body.get(key)
    return value if not isinstance(value, list) else value


def instantiate(module: Module, values: dict, label: str, region, resources: list, calls: list):
    scope = Scope(values, module.locals)
    for name, checks in module.validations.items():
        for condition, message in checks:
            try:
                ok = evaluate(condition, scope)
            except EvalError as error:
                problem("variable validations hold", f"{label}: var.{name}: cannot evaluate ({error})")
                continue
            if ok is False:
                problem("variable validations hold", f"{label}: var.{name} = {values.get(name)!r} fails its validation: {message}")

    for rtype, rname, body in module.resources:
        for index_scope, suffix in _expand(body, scope, f"{label} {rtype}.{rname}"):
            resources.append(Resource(f"{label} {rtype}.{rname}{suffix}", rtype, body, index_scope, region))

    for call_name, body in module.calls.items():
        call_label = f"{label} module.{call_name}"
        count = evaluate(body.get("count", 1), scope)
        if count == 0:
            continue
        target = module_at(module.path / _unquote(body["source"]))
        child_region = region
        mapping = body.get("providers")
        if isinstance(mapping, list):
            mapping = mapping[0] if mapping else None
        if isinstance(mapping, dict):
            ref = re.sub(r"^\$\{(.*)\}$", r"\1", str(mapping.get("aws", "")))
            if ref.startswith("aws."):
                provider = _root_providers().get(ref.split(".", 1)[1])
                child_region = evaluate(provider.get("region"), _root_scope[0]) if provider else UNKNOWN
        arguments = {k: v for k, v in body.items() if k not in ("source", "providers", "count", "for_each", "depends_on")}
        child_values = {}
        for name, raw in target.defaults.items():
            child_values[name] = evaluate(raw, Scope({}, {}))
        for name, raw in arguments.items():
            try:
                child_values[name] = evaluate(raw, scope)
            except EvalError as error:
                problem("every value the table needs is computable", f"{call_label}: argument {name}: {error}")
                child_values[name] = UNKNOWN
        calls.append((call_label, call_name, body, scope, child_region))
        instantiate(target, child_values, f"{label} module.{call_name}" if label else f"module.{call_name}", child_region, resources, calls)


_root_scope: list[Scope] = []


def _root_providers():
    return module_at(ENVIRONMENT).providers


def _expand(body, scope: Scope, label: str):
    if "count" in body:
        count = evaluate(body["count"], scope)
        if count is UNKNOWN:
            return [(scope.child(count={"index": UNKNOWN}), "[?]")]
        return [(scope.child(count={"index": i}), f"[{i}]") for i in range(int(count))]
    if "for_each" in body:
        items = evaluate(body["for_each"], scope)
        if items is UNKNOWN:
            return [(scope.child(each={"key": UNKNOWN, "value": UNKNOWN}), "[?]")]
        pairs = items.items() if isinstance(items, dict) else [(v, v) for v in items]
        return [(scope.child(each={"key": k, "value": v}), f"[{k!r}]") for k, v in pairs]
    return [(scope, "")]


def environment_instances(set_name: str, overrides: dict):
    env = module_at(ENVIRONMENT)
    values = {name: evaluate(raw, Scope({}, {})) for name, raw in env.defaults.items()}
    values.update(load_tfvars(ENVIRONMENT / "terraform.tfvars.example"))
    values.update(overrides)
    for required in set(env.validations) - set(values):
        problem("every value the table needs is computable", f"[{set_name}] var.{required} has no value")
    scope = Scope(values, env.locals)
    _root_scope[:] = [scope]
    resources, calls = [], []
    region = evaluate(env.providers[""].get("region"), scope)
    instantiate(env, values, f"[{set_name}]", region, resources, calls)
    return values, resources, calls


# --- checks ----------------------------------------------------------------------------------


def known(check: str, resource: Resource, path: tuple, value):
    if value is None:
        return False
    if not is_known(value):
        problem("every value the table needs is computable", f"{resource.label}: {'.'.join(path)} is not computable from variables ({check})")
        return False
    return True


def check_names(resources):
    title = "names fit AWS's length and character rules"
    for r in resources:
        for rtype, attribute, limit, pattern in NAMES:
            if r.rtype != rtype:
                continue
            value = r.get(attribute)
            if not known(title, r, (attribute,), value):
                continue
            if len(value) > limit:
                problem(title, f"{r.label}: {attribute} {value!r} is {len(value)} characters, AWS allows {limit}")
            if pattern and not re.match(pattern, value):
                problem(title, f"{r.label}: {attribute} {value!r} does not match {pattern}")


def check_fargate(resources):
    title = "Fargate tasks use a valid CPU/memory pair"
    for r in resources:
        if r.rtype != "aws_ecs_task_definition":
            continue
        cpu, memory = r.get("cpu"), r.get("memory")
        if not (known(title, r, ("cpu",), cpu) and known(title, r, ("memory",), memory)):
            continue
        if int(memory) not in FARGATE.get(int(cpu), []):
            problem(title, f"{r.label}: cpu {cpu} with memory {memory} is not a Fargate size (allowed for {cpu}: {FARGATE.get(int(cpu))})")


def check_ranges(resources):
    title = "numbers are within AWS's ranges"
    for r in resources:
        for (rtype, path), (low, high) in RANGES.items():
            if r.rtype != rtype:
                continue
            value = r.get(*path)
            if value is None or not known(title, r, path, value):
                continue
            if not low <= value <= high:
                problem(title, f"{r.label}: {'.'.join(path)} = {value} outside {low}..{high}")
        if r.rtype == "aws_cloudwatch_log_group":
            days = r.get("retention_in_days")
            if is_known(days) and days is not None and days not in LOG_RETENTION_DAYS:
                problem(title, f"{r.label}: retention_in_days {days} is not one CloudWatch accepts")
        if r.rtype == "aws_lb_target_group":
            interval, timeout = r.get("health_check", "interval"), r.get("health_check", "timeout")
            if is_known(interval) and is_known(timeout) and interval is not None and timeout >= interval:
                problem(title, f"{r.label}: health check timeout {timeout} must be below its interval {interval}")
        if r.rtype == "aws_lambda_provisioned_concurrency_config":
            pass
        if r.rtype == "aws_cloudfront_cache_policy":
            low, default, high = r.get("min_ttl"), r.get("default_ttl"), r.get("max_ttl")
            if all(is_known(v) for v in (low, default, high)) and not low <= default <= high:
                problem(title, f"{r.label}: TTLs must satisfy min {low} <= default {default} <= max {high}")


def _rate_statements(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "rate_based_statement":
                yield from (value if isinstance(value, list) else [value])
            else:
                yield from _rate_statements(value)
    elif isinstance(node, list):
        for item in node:
            yield from _rate_statements(item)


def check_waf(resources):
    title = "WAF rate-based rules are within AWS's limits"
    for r in resources:
        if r.rtype != "aws_wafv2_web_acl":
            continue
        for statement in _rate_statements(r.body.get("rule", [])):
            limit = evaluate(statement.get("limit"), r.scope)
            window = evaluate(statement.get("evaluation_window_sec", 300), r.scope)
            if not (is_known(limit) and is_known(window)):
                problem("every value the table needs is computable", f"{r.label}: a rate-based limit is not computable")
                continue
            if not 10 <= limit <= 2_000_000_000:
                problem(title, f"{r.label}: rate limit {limit} outside 10..2,000,000,000")
            if window not in WAF_WINDOWS:
                problem(title, f"{r.label}: evaluation window {window} s is not one of {sorted(WAF_WINDOWS)}")


def check_containers(resources):
    title = "ECS containers: health checks, start order and essentials are valid"
    for r in resources:
        if r.rtype != "aws_ecs_task_definition":
            continue
        containers = r.get("container_definitions")
        if not isinstance(containers, list):
            problem("every value the table needs is computable", f"{r.label}: container_definitions are not computable")
            continue
        names = [c.get("name") for c in containers]
        if len(set(names)) != len(names):
            problem(title, f"{r.label}: container names repeat: {names}")
        by_name = {c.get("name"): c for c in containers}
        if not any(c.get("essential", True) is True for c in containers):
            problem(title, f"{r.label}: no essential container")
        for c in containers:
            check = c.get("healthCheck")
            if isinstance(check, dict):
                for key, (low, high) in CONTAINER_HEALTH.items():
                    value = check.get(key)
                    if value is not None and is_known(value) and not low <= value <= high:
                        problem(title, f"{r.label}: container {c.get('name')} healthCheck.{key} = {value} outside {low}..{high}")
            for dep in c.get("dependsOn") or []:
                target, condition = dep.get("containerName"), dep.get("condition")
                if target not in by_name:
                    problem(title, f"{r.label}: {c.get('name')} depends on unknown container {target}")
                    continue
                if condition not in DEPENDS_ON_CONDITIONS:
                    problem(title, f"{r.label}: {c.get('name')} waits for condition {condition} (allowed {sorted(DEPENDS_ON_CONDITIONS)})")
                if condition in ("SUCCESS", "COMPLETE") and by_name[target].get("essential", True) is not False:
                    problem(title, f"{r.label}: {c.get('name')} waits for {target} to {condition}, so {target} must be non-essential")
                if condition == "HEALTHY" and not isinstance(by_name[target].get("healthCheck"), dict):
                    problem(title, f"{r.label}: {c.get('name')} waits for {target} HEALTHY, which has no health check")


def check_global_datastore(resources):
    title = "Global Datastore: no forbidden arguments on a secondary, a supported node type on the primary"
    for r in resources:
        if r.rtype != "aws_elasticache_replication_group":
            continue
        if "global_replication_group_id" in r.body:
            for argument in GLOBAL_SECONDARY_FORBIDDEN:
                if argument in r.body:
                    problem(title, f"{r.label}: {argument} is set on a Global Datastore secondary (AWS takes it from the primary)")
            continue
        node_type = r.get("node_type")
        if known(title, r, ("node_type",), node_type) and not re.match(GLOBAL_DATASTORE_NODE_FAMILIES, node_type):
            problem(title, f"{r.label}: node type {node_type} cannot join a Global Datastore")
        clusters, multi_az = r.get("num_cache_clusters"), r.get("multi_az_enabled")
        if multi_az is True and is_known(clusters) and clusters is not None and clusters < 2:
            problem(title, f"{r.label}: Multi-AZ with {clusters} node")


def check_cloudfront_region(resources, calls):
    title = "CloudFront's distribution, certificate and web ACL are in us-east-1"
    for r in resources:
        global_scope = r.rtype == "aws_cloudfront_distribution" or (
            r.rtype == "aws_wafv2_web_acl" and r.get("scope") == "CLOUDFRONT"
        )
        if global_scope and r.region != CLOUDFRONT_REGION:
            problem(title, f"{r.label}: created in {r.region}, CloudFront needs {CLOUDFRONT_REGION}")
    regions = {label: region for label, _name, _body, _scope, region in calls}
    for label, _name, body, _scope, _region in calls:
        raw = str(body.get("certificate_arn", ""))
        if "aws_cloudfront" not in " ".join(r.rtype for r in resources if r.label.startswith(label + " ")):
            continue
        m = re.search(r"module\.([A-Za-z0-9_-]+)", raw)
        if not m:
            continue
        prefix = label.rsplit(" module.", 1)[0]
        cert = regions.get(f"{prefix} module.{m.group(1)}")
        if cert != CLOUDFRONT_REGION:
            problem(title, f"{label}: its certificate (module.{m.group(1)}) is in {cert}, CloudFront needs {CLOUDFRONT_REGION}")


def check_preconditions(resources):
    title = "resource preconditions hold"
    for r in resources:
        for lifecycle in r.body.get("lifecycle", []) or []:
            for pre in lifecycle.get("precondition", []) or []:
                try:
                    ok = evaluate(pre["condition"], r.scope)
                except EvalError as error:
                    problem("every value the table needs is computable", f"{r.label}: precondition: {error}")
                    continue
                if ok is False:
                    problem(title, f"{r.label}: {pre.get('error_message', pre['condition'])}")


def check_regions(values, set_name):
    title = "the three regions are distinct"
    regions = [values.get("primary_region"), values.get("edge_region_a"), values.get("edge_region_b")]
    if len(set(regions)) != 3:
        problem(title, f"[{set_name}] regions {regions} repeat (secret replicas, peering and the Global Datastore need three)")


CHECK_TITLES = [
    "variable validations hold",
    "resource preconditions hold",
    "every value the table needs is computable",
    "names fit AWS's length and character rules",
    "Fargate tasks use a valid CPU/memory pair",
    "numbers are within AWS's ranges",
    "WAF rate-based rules are within AWS's limits",
    "ECS containers: health checks, start order and essentials are valid",
    "Global Datastore: no forbidden arguments on a secondary, a supported node type on the primary",
    "CloudFront's distribution, certificate and web ACL are in us-east-1",
    "the three regions are distinct",
]


def run_all() -> dict[str, list[str]]:
    PROBLEMS.clear()
    counts = {}
    for set_name, overrides in VARIABLE_SETS.items():
        values, resources, calls = environment_instances(set_name, overrides)
        counts[set_name] = len(resources)
        check_regions(values, set_name)
        check_preconditions(resources)
        check_names(resources)
        check_fargate(resources)
        check_ranges(resources)
        check_waf(resources)
        check_containers(resources)
        check_global_datastore(resources)
        check_cloudfront_region(resources, calls)
    out = {title: [] for title in CHECK_TITLES}
    for title, text in PROBLEMS:
        out.setdefault(title, []).append(text)
    out["__counts__"] = [f"{n} resource instances ({s})" for s, n in counts.items()]
    return out


def _make_test(title):
    def test():
        problems = run_all()[title]
        assert not problems, "\n".join(problems)

    return test


for _i, _title in enumerate(CHECK_TITLES):
    globals()[f"test_constraint_{_i:02d}"] = _make_test(_title)


def main() -> int:
    results = run_all()
    print("constraints: evaluated " + ", ".join(results.pop("__counts__")))
    passed = failed = 0
    for title in CHECK_TITLES:
        problems = results.get(title, [])
        if problems:
            failed += 1
            print(f"FAIL {title}")
            for text in sorted(set(problems)):
                print(f"     {text}")
        else:
            passed += 1
            print(f"ok   {title}")
    print(f"constraints: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
