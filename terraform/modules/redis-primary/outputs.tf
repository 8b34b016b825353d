output "global_replication_group_id" {
  description = "ID of the Global Datastore; pass it to each edge region's redis-secondary module."
  value       = aws_elasticache_global_replication_group.this.global_replication_group_id
}

output "auth_token" {
  description = "The AUTH token, shared by the Global Datastore's secondaries; used to build their REDIS_URL secrets."
  value       = random_password.auth.result
  sensitive   = true
}

output "writer_redis_url_secret_arn" {
  description = "ARN of the secret holding the writer's REDIS_URL (primary endpoint)."
  value       = module.writer_url.arn
}

output "reader_redis_url_secret_arn" {
  description = "ARN of the secret holding the primary region edges' REDIS_URL (reader endpoint)."
  value       = module.reader_url.arn
}

output "security_group_id" {
  description = "Security group of the replication group."
  value       = aws_security_group.this.id
}

output "reader_redis_url" {
  description = "REDIS_URL of this region's function edges (reader endpoint, TLS, AUTH): Lambda takes it as an encrypted environment variable."
  value       = "rediss://:${random_password.auth.result}@${aws_elasticache_replication_group.this.reader_endpoint_address}:6379"
  sensitive   = true
}
