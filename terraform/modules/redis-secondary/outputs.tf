output "reader_redis_url_secret_arn" {
  description = "ARN of the secret holding this region's edges' REDIS_URL."
  value       = module.reader_url.arn
}

output "security_group_id" {
  description = "Security group of the secondary replication group."
  value       = aws_security_group.this.id
}

output "writer_redis_url_secret_arn" {
  description = "ARN of the secret holding a recovery writer's REDIS_URL (this secondary's primary endpoint)."
  value       = module.writer_url.arn
}

output "reader_redis_url" {
  description = "REDIS_URL of this region's function edges (reader endpoint, TLS, AUTH)."
  value       = "rediss://:${var.auth_token}@${aws_elasticache_replication_group.this.reader_endpoint_address}:6379"
  sensitive   = true
}

output "replication_group_id" {
  description = "ID of the secondary replication group (promotion and detaching in the runbook)."
  value       = aws_elasticache_replication_group.this.id
}
