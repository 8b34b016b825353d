output "address" {
  description = "DNS name of the database endpoint (follows a Multi-AZ failover)."
  value       = aws_db_instance.this.address
}

output "database_url_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the writer's DATABASE_URL."
  value       = module.database_url.arn
}

output "security_group_id" {
  description = "Security group of the database."
  value       = aws_security_group.this.id
}
