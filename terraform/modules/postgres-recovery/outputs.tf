output "address" {
  description = "Host the recovery writer's credentials point at: the replica, the restored instance (recovery_database_address) or restore-pending.invalid."
  value       = local.address
}

output "subnet_group_name" {
  description = "DB subnet group to restore into (runbook)."
  value       = aws_db_subnet_group.this.name
}

output "parameter_group_name" {
  description = "DB parameter group to give a restored instance (runbook)."
  value       = aws_db_parameter_group.this.name
}

output "security_group_id" {
  description = "Security group a restored instance must carry: 5432 from the recovery writer."
  value       = aws_security_group.this.id
}

output "master_secret_arn" {
  description = "ARN of the recovery region's master credentials secret {url, password}."
  value       = module.master_credentials.arn
}

output "runtime_secret_arn" {
  description = "ARN of the recovery region's runtime role credentials secret {url, password}."
  value       = module.runtime_credentials.arn
}

output "replicated_backups_arn" {
  description = "ARN of the replicated automated backups to restore from (mode backups), empty otherwise."
  value       = var.mode == "backups" ? aws_db_instance_automated_backups_replication.this[0].id : ""
}
