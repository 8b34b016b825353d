#!/usr/bin/env python3
"""Monthly AWS cost of the Terraform deployment, per component, at a given
Public API request rate. DEPLOYING.md ("Costs") prints its output.

Every price is an on-demand list price in US dollars for us-east-1 (the edge
regions cost up to about 20 % more for compute and transfer), as published
by AWS when this was written: PRICES below, each with what it is. They
change: check them, or put your own (committed-use discounts, private
pricing, Savings Plans) in PRICES and rerun:

    python3 infra/deploy/cost-model.py                # 10k, 100k, 1M requests/s
    python3 infra/deploy/cost-model.py 2500 40000     # other rates

The traffic model (TRAFFIC) is the load benchmark's: a mean answer of 780
bytes of JSON plus about 220 of headers, requests of about 300 bytes, spread
evenly over the three regions; per-edge throughput T = 40,000 requests/s per
vCPU with 50 % headroom (DEPLOYING.md, "Sizing").

Designs compared:
  before     the defaults before this change: every request logged by WAF,
             7 x cache.r7g.large, 9 NAT gateways, flow logs of all traffic
  default    the current defaults: WAF logs blocked requests only,
             5 x cache.m7g.large, VPC endpoints instead of NAT, flow logs of
             rejected traffic only
  shield     default + AWS Shield Advanced, whose subscription covers the
             WAF's per-request charge on protected resources
  cdn        default + CloudFront in front (cdn_enabled), WAF on CloudFront
             instead of the load balancers, origin load reduced by the
             measured hit rate
  functions  every region on function edges (API Gateway HTTP API + Lambda)
"""

from __future__ import annotations

import math
import sys

HOURS = 730  # per month
SECONDS = HOURS * 3600
GB = 1024**3
TB = 1024  # GB

PRICES = {
    "waf_per_million": 0.60,  # AWS WAF, per million requests inspected
    "waf_acl": 5.0,  # per web ACL per month
    "waf_rule": 1.0,  # per rule (or rule group) per month
    "vended_log_tiers": [(10 * TB, 0.50), (20 * TB, 0.25), (20 * TB, 0.10), (math.inf, 0.05)],  # CloudWatch vended logs ingestion, per GB
    "log_storage_gb": 0.03,  # CloudWatch Logs storage per GB-month (compressed)
    "alb_hour": 0.0225,
    "lcu_hour": 0.008,  # 1 LCU = 1 GB/h processed for IP targets (the binding dimension here)
    "nat_hour": 0.045,
    "nat_gb": 0.045,
    "endpoint_hour": 0.01,  # interface endpoint, per AZ
    "endpoint_gb": 0.01,
    "cache_m7g_large_hour": 0.158,
    "cache_r7g_large_hour": 0.219,
    "dto_tiers": [(10 * TB, 0.09), (40 * TB, 0.085), (100 * TB, 0.07), (math.inf, 0.05)],  # EC2/ALB to internet, per GB
    "cf_https_per_10k": 0.0100,  # CloudFront HTTPS requests, US/Europe
    "cf_dto_tiers": [(10 * TB, 0.085), (40 * TB, 0.080), (100 * TB, 0.060), (350 * TB, 0.040), (524 * TB, 0.030), (4096 * TB, 0.025), (math.inf, 0.020)],
    "fargate_vcpu_hour": 0.04048,
    "fargate_gb_hour": 0.004445,
    "lambda_per_million": 0.20,
    "lambda_gb_second": 0.0000166667,
    "http_api_per_million": [(300e6, 1.00), (math.inf, 0.90)],
    "shield_month": 3000.0,  # Shield Advanced subscription (organisation, 1-year commitment)
    "shield_dto_tiers": [(100 * TB, 0.05), (400 * TB, 0.04), (500 * TB, 0.03), (math.inf, 0.02)],  # usage fee on load balancer transfer out, per GB (approximate)
    "rds_m7g_large_multi_az_hour": 0.336,
    "rds_storage_gb_month": 0.23,  # gp3, Multi-AZ (2 x 0.115)
    "s3_standard_gb": 0.023,
    "s3_ia_gb": 0.0125,
    "secret_month": 0.40,
    "kms_key_month": 1.0,
    "custom_metric_month": 0.30,
    "alarm_month": 0.10,
}

TRAFFIC = {
    "response_bytes": 1000,
    "request_bytes": 300,
    "regions": 3,
    "zones": 3,
    "per_vcpu": 40_000,
    "headroom": 0.5,
    "edge_vcpu": 2,
    "edge_gb": 4,
    "min_tasks": 2,
    "waf_log_bytes": 1500,  # one WAF log record (JSON, headers included)
    "blocked_share": 0.005,  # share of requests WAF blocks in normal operation
    "flow_records_per_request": 0.04,  # accepted-flow records per request (keep-alive clients)
    "flow_record_bytes": 130,
    "rejected_flow_gb": 2,  # per region per month: probes and scans
    "alb_log_bytes": 350,  # one access-log line, before compression
    "log_compression": 8,
    "lambda_gb": 1.0,  # function memory
    "lambda_ms": 2,  # billed duration per request, poll catch-ups included
    # Measured with infra/deploy/cdn-hit-rate.sh (one shared cache, the
    # benchmark's generator drawn afresh per request; DEPLOYING.md). 1M/s was
    # not replayed: the 100k/s figure is a lower bound there.
    "cdn_hit_rate": {10_000: 0.541, 100_000: 0.817, 1_000_000: 0.817},
}


def tiered(amount, tiers):
    cost, left = 0.0, amount
    for size, price in tiers:
        used = min(left, size)
        cost += used * price
        left -= used
        if left <= 0:
            break
    return cost


def edge_tasks(rate):
    per_region = rate / TRAFFIC["regions"]
    needed = math.ceil(per_region / (TRAFFIC["per_vcpu"] * TRAFFIC["edge_vcpu"] * TRAFFIC["headroom"]))
    zones = TRAFFIC["zones"]
    per_region_tasks = max(TRAFFIC["min_tasks"], math.ceil(needed * zones / (zones - 1)))
    return per_region_tasks * TRAFFIC["regions"]


def fargate_month(tasks, vcpu, gb):
    return tasks * HOURS * (vcpu * PRICES["fargate_vcpu_hour"] + gb * PRICES["fargate_gb_hour"])


def hit_rate(rate):
    rates = sorted(TRAFFIC["cdn_hit_rate"])
    best = min(rates, key=lambda r: abs(math.log(r / rate)))
    return TRAFFIC["cdn_hit_rate"][best]


def components(design: str, rate: float) -> dict[str, float]:
    p, t = PRICES, TRAFFIC
    requests = rate * SECONDS
    millions = requests / 1e6
    out_gb = requests * t["response_bytes"] / GB
    processed_gb = requests * (t["response_bytes"] + t["request_bytes"]) / GB
    c: dict[str, float] = {}

    cdn = design == "cdn"
    functions = design == "functions"
    origin_share = (1 - hit_rate(rate)) if cdn else 1.0

    # WAF: regional ACLs on the load balancers, or one on CloudFront.
    acls = 1 if cdn else (0 if functions else t["regions"])
    if not functions:
        c["WAF web ACLs and rules"] = acls * (p["waf_acl"] + 5 * p["waf_rule"])
        c["WAF requests"] = 0.0 if design == "shield" else millions * p["waf_per_million"]
        logged = requests if design == "before" else requests * t["blocked_share"]
        c["WAF logs (CloudWatch ingestion)"] = tiered(logged * t["waf_log_bytes"] / GB, p["vended_log_tiers"])
    if design == "shield":
        c["Shield Advanced (subscription + transfer fee)"] = p["shield_month"] + tiered(out_gb, p["shield_dto_tiers"])

    # Load balancers and edge compute.
    if functions:
        c["API Gateway HTTP API"] = tiered(requests, [(n, price / 1e6) for n, price in p["http_api_per_million"]])
        c["Lambda (requests + duration)"] = millions * p["lambda_per_million"] + requests * (t["lambda_ms"] / 1000) * t["lambda_gb"] * p["lambda_gb_second"]
    else:
        c["ALB hours"] = t["regions"] * HOURS * p["alb_hour"]
        c["ALB LCUs"] = processed_gb * origin_share / HOURS * p["lcu_hour"] * HOURS
        c["Fargate edges"] = fargate_month(edge_tasks(rate * origin_share), t["edge_vcpu"], t["edge_gb"])
        alb_log_gb = requests * origin_share * t["alb_log_bytes"] / t["log_compression"] / GB
        c["ALB access logs (S3, 90 days)"] = alb_log_gb * (p["s3_standard_gb"] + 2 * p["s3_ia_gb"])

    # Transfer to the internet.
    if cdn:
        c["CloudFront requests"] = requests / 1e4 * p["cf_https_per_10k"]
        c["CloudFront transfer out"] = tiered(out_gb, p["cf_dto_tiers"])
        c["CloudFront access logs (S3, 90 days)"] = requests * t["alb_log_bytes"] / t["log_compression"] / GB * (p["s3_standard_gb"] + 2 * p["s3_ia_gb"])
    else:
        c["Data transfer out"] = tiered(out_gb, p["dto_tiers"])

    # Network plumbing.
    if design == "before":
        c["NAT gateways (9)"] = 9 * HOURS * p["nat_hour"] + 50 * p["nat_gb"]
        flow_gb = requests * t["flow_records_per_request"] * t["flow_record_bytes"] / GB
        c["VPC flow logs (all traffic)"] = tiered(flow_gb, p["vended_log_tiers"])
    else:
        c["VPC interface endpoints (4 x 3 zones x 3 regions)"] = 36 * HOURS * p["endpoint_hour"] + 50 * p["endpoint_gb"]
        c["VPC flow logs (rejected only)"] = tiered(t["rejected_flow_gb"] * t["regions"], p["vended_log_tiers"])

    # The write side: independent of the request rate.
    if design == "before":
        c["ElastiCache (7 x cache.r7g.large)"] = 7 * HOURS * p["cache_r7g_large_hour"]
    else:
        c["ElastiCache (5 x cache.m7g.large)"] = 5 * HOURS * p["cache_m7g_large_hour"]
    c["RDS PostgreSQL (db.m7g.large Multi-AZ, 50 GB)"] = HOURS * p["rds_m7g_large_multi_az_hour"] + 50 * p["rds_storage_gb_month"]
    c["Writer (1 vCPU, 2 GiB)"] = fargate_month(1, 1, 2)
    c["Secrets, KMS, metrics, alarms"] = 20 * p["secret_month"] + 4 * p["kms_key_month"] + 40 * p["custom_metric_month"] + 40 * p["alarm_month"]
    return c


def money(x: float) -> str:
    return f"${x:,.0f}"


def main() -> int:
    rates = [float(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000]
    designs = ["before", "default", "shield", "cdn", "functions"]
    for design in designs:
        table = {rate: components(design, rate) for rate in rates}
        names = list(dict.fromkeys(n for r in rates for n in table[r]))
        print(f"\n**{design}**\n")
        print("| component | " + " | ".join(f"{r:,.0f}/s" for r in rates) + " |")
        print("| --- |" + " --- |" * len(rates))
        for name in names:
            print(f"| {name} | " + " | ".join(money(table[r].get(name, 0.0)) for r in rates) + " |")
        print("| **total per month** | " + " | ".join(f"**{money(sum(table[r].values()))}**" for r in rates) + " |")
    print("\n| design | " + " | ".join(f"{r:,.0f}/s" for r in rates) + " |")
    print("| --- |" + " --- |" * len(rates))
    for design in designs:
        print(f"| {design} | " + " | ".join(money(sum(components(design, r).values())) for r in rates) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
