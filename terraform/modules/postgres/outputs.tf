output "address" {
  description = "DNS name of the database endpoint (follows a Multi-AZ failover)."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the database endpoint."
  value       = aws_db_instance.this.port
}

output "instance_arn" {
  description = "ARN of the RDS instance (source of the cross-region backup replication or read replica)."
  value       = aws_db_instance.this.arn
}

output "database_name" {
  description = "Name of adcast's database."
  value       = var.database_name
}

output "master_username" {
  description = "Master user name (schema owner)."
  value       = var.master_username
}

output "runtime_role" {
  description = "Name of the least-privilege role the writer serves with."
  value       = var.runtime_role
}

output "master_secret_arn" {
  description = "ARN of the secret {url, password} of the master user: migrations and role management only."
  value       = module.master_credentials.arn
}

output "runtime_secret_arn" {
  description = "ARN of the secret {url, password} of the runtime role: the writer's DATABASE_URL."
  value       = module.runtime_credentials.arn
}

output "master_password" {
  description = "Master password, for the recovery region's credentials (a restored instance or promoted replica keeps it)."
  value       = random_password.master.result
  sensitive   = true
}

output "runtime_password" {
  description = "Runtime role password, for the recovery region's credentials."
  value       = random_password.runtime.result
  sensitive   = true
}

output "security_group_id" {
  description = "Security group of the database."
  value       = aws_security_group.this.id
}
