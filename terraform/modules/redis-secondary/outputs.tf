output "reader_redis_url_secret_arn" {
  description = "ARN of the secret holding this region's edges' REDIS_URL."
  value       = module.reader_url.arn
}

output "security_group_id" {
  description = "Security group of the secondary replication group."
  value       = aws_security_group.this.id
}
