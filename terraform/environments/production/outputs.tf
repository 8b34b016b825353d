output "api_url" {
  description = "Public base URL of the whole API (Public API and forwarded Admin API), latency-routed across regions."
  value       = "https://${var.domain_name}"
}

output "writer_url" {
  description = "Private URL of the writer, reachable from the three VPCs only."
  value       = module.writer.writer_url
}

output "ecr_repository_urls" {
  description = "Where to push the images built from infra/Dockerfile (keys \"writer\" and \"edge\"), tagged with image_tag."
  value       = module.ecr.repository_urls
}

output "admin_tokens_secret_name" {
  description = "Secrets Manager secret (primary region) holding the writer's admin tokens; the first is the operators' token."
  value       = module.admin_tokens.name
}

output "snapshot_bucket_names" {
  description = "Snapshot buckets by region: the writer's sidecar uploads to the primary one, which replicates to the others."
  value = {
    (var.primary_region) = module.snapshots_primary.bucket_name
    (var.edge_region_a)  = module.snapshots_edge_a.bucket_name
    (var.edge_region_b)  = module.snapshots_edge_b.bucket_name
  }
}

output "load_balancer_dns_names" {
  description = "Each region's edge load balancer, for checks that bypass latency routing."
  value = {
    (var.primary_region) = module.edge_primary.load_balancer_dns_name
    (var.edge_region_a)  = module.edge_a.load_balancer_dns_name
    (var.edge_region_b)  = module.edge_b.load_balancer_dns_name
  }
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
  description = "ECS service names of the edge fleets, by region (for `aws ecs update-service --force-new-deployment`)."
  value = {
    (var.primary_region) = module.edge_primary.service_name
    (var.edge_region_a)  = module.edge_a.service_name
    (var.edge_region_b)  = module.edge_b.service_name
  }
}

output "writer_service_name" {
  description = "ECS service name of the writer."
  value       = module.writer.service_name
}
