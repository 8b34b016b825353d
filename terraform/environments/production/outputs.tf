output "api_url" {
  description = "Public base URL of the whole API (Public API and forwarded Admin API), latency-routed across regions."
  value       = "https://${var.domain_name}"
}

output "writer_url" {
  description = "Private URL of the active writer, reachable from the three VPCs only."
  value       = local.writer_url
}

output "ecr_repository_urls" {
  description = "Where to push the images built from infra/Dockerfile (keys \"writer\", \"edge\", \"edge-function\"); deploy them by digest."
  value       = module.ecr.repository_urls
}

output "token_secret_names" {
  description = "Secrets Manager secrets (primary region) of the writer's tokens, label:token: admin (operators), read (viewers), internal (edges)."
  value = {
    admin    = module.admin_tokens.name
    read     = module.read_tokens.name
    internal = module.internal_tokens.name
  }
}

output "snapshot_bucket_names" {
  description = "Snapshot buckets by region: the writer uploads to the primary one (s3://<bucket>/snapshots), which replicates to the others."
  value = {
    (var.primary_region) = module.snapshots_primary.bucket_name
    (var.edge_region_a)  = module.snapshots_edge_a.bucket_name
    (var.edge_region_b)  = module.snapshots_edge_b.bucket_name
  }
}

output "regional_endpoints" {
  description = "Each region's edge entry point (load balancer, or HTTP API domain for function edges), for checks that bypass latency routing."
  value = {
    (var.primary_region) = one(concat(module.edge_primary[*].load_balancer_dns_name, module.edge_function_primary[*].api_domain_target))
    (var.edge_region_a)  = one(concat(module.edge_a[*].load_balancer_dns_name, module.edge_function_a[*].api_domain_target))
    (var.edge_region_b)  = one(concat(module.edge_b[*].load_balancer_dns_name, module.edge_function_b[*].api_domain_target))
  }
}

output "cdn_domain_name" {
  description = "CloudFront domain in front of the API (cdn_enabled), empty otherwise."
  value       = one(concat(module.cdn[*].distribution_domain_name, [""]))
}

output "alarm_topic_arns" {
  description = "SNS topics receiving each region's alarms; subscribe the on-call endpoint to all three."
  value = {
    (var.primary_region) = module.base_primary.alarm_topic_arn
    (var.edge_region_a)  = module.base_edge_a.alarm_topic_arn
    (var.edge_region_b)  = module.base_edge_b.alarm_topic_arn
  }
}

output "database_address" {
  description = "Endpoint of the RDS PostgreSQL instance (private)."
  value       = module.postgres.address
}

output "edge_service_names" {
  description = "ECS service (Fargate) or Lambda function names of the edges, by region (for redeploys)."
  value = {
    (var.primary_region) = one(concat(module.edge_primary[*].service_name, module.edge_function_primary[*].function_name))
    (var.edge_region_a)  = one(concat(module.edge_a[*].service_name, module.edge_function_a[*].function_name))
    (var.edge_region_b)  = one(concat(module.edge_b[*].service_name, module.edge_function_b[*].function_name))
  }
}

output "writer_service_names" {
  description = "ECS service names of the writer (primary region) and of the standby writer (recovery region)."
  value = {
    primary  = module.writer.service_name
    recovery = module.writer_recovery.service_name
  }
}

output "recovery" {
  description = "What the runbook \"The primary region is gone\" needs in the recovery region."
  value = {
    region                   = var.edge_region_a
    database_mode            = var.database_recovery_mode
    restore_subnet_group     = module.postgres_recovery.subnet_group_name
    restore_parameter_group  = module.postgres_recovery.parameter_group_name
    restore_security_group   = module.postgres_recovery.security_group_id
    replicated_backups_arn   = module.postgres_recovery.replicated_backups_arn
    redis_secondary_group_id = module.redis_edge_a.replication_group_id
    global_datastore_id      = module.redis_primary.global_replication_group_id
    snapshot_bucket          = module.snapshots_edge_a.bucket_name
  }
}
