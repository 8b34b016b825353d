variable "name" {
  description = "Identifier prefix in the recovery region."
  type        = string
}

variable "mode" {
  description = "\"backups\": replicate automated backups here (restore on failover; RPO minutes, RTO tens of minutes). \"replica\": a cross-region read replica (promote on failover; RPO seconds, RTO minutes; a second instance to pay for)."
  type        = string
  default     = "backups"

  validation {
    condition     = contains(["backups", "replica"], var.mode)
    error_message = "mode is backups or replica."
  }
}

variable "source_db_instance_arn" {
  description = "ARN of the primary RDS instance (postgres module output)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the recovery region."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (at least two zones) of the recovery region."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect on 5432: the recovery writer's."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "The recovery region's KMS key (replicated backups, replica storage, secrets, logs)."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL major version, as the primary's."
  type        = string
  default     = "16"
}

variable "instance_class" {
  description = "Instance class of the read replica (mode replica)."
  type        = string
  default     = "db.m7g.large"
}

variable "backup_retention_days" {
  description = "Days of replicated backups kept here (at most 35), and the replica's own backup retention."
  type        = number
  default     = 7
}

variable "port" {
  description = "PostgreSQL port of the primary (and so of a restored instance or promoted replica)."
  type        = number
  default     = 5432
}

variable "database_name" {
  description = "adcast's database name (postgres module output)."
  type        = string
}

variable "master_username" {
  description = "Master user name (postgres module output)."
  type        = string
}

variable "master_password" {
  description = "Master password (postgres module output); a restore or promotion keeps it."
  type        = string
  sensitive   = true
}

variable "runtime_role" {
  description = "Least-privilege role of the writer (postgres module output)."
  type        = string
}

variable "runtime_password" {
  description = "Password of the runtime role (postgres module output)."
  type        = string
  sensitive   = true
}

variable "recovery_database_address" {
  description = "Address of the instance restored during a recovery (mode backups), once it exists; the recovery writer's credentials then point at it. Empty otherwise."
  type        = string
  default     = ""
}

variable "replica_lag_alarm_seconds" {
  description = "Alarm when the cross-region replica (mode replica) lags more than this for 5 minutes."
  type        = number
  default     = 300
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the replica's PostgreSQL logs."
  type        = number
  default     = 365
}

variable "alarm_topic_arn" {
  description = "SNS topic of the recovery region for the replica's alarms."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
