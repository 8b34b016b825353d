variable "name" {
  description = "Identifier prefix of the RDS instance and its companions."
  type        = string
}

variable "vpc_id" {
  description = "VPC the database lives in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (at least two zones) for the DB subnet group."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect on 5432 (the writer's). Sensitive topology: nothing else reaches the database."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights, log groups and the DATABASE_URL secret."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL major version (minor versions are upgraded automatically in the maintenance window)."
  type        = string
  default     = "16"
}

variable "instance_class" {
  description = "RDS instance class. The write load is small (at most thousands of ads a day); size for connections and snapshot reads."
  type        = string
  default     = "db.m7g.large"
}

variable "allocated_storage_gb" {
  description = "Initial gp3 storage in GiB."
  type        = number
  default     = 50
}

variable "max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 500
}

variable "backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
  default     = 14
}

variable "database_name" {
  description = "Database created for adcast; the writer task's migrate step applies the migrations as the master user."
  type        = string
  default     = "adcast"
}

variable "master_username" {
  description = "Master user name: owns the schema; used only by the migrate and role steps, never by the serving writer."
  type        = string
  default     = "adcast"
}

variable "runtime_role" {
  description = "Least-privilege role the writer serves with (created and granted by the writer task's one-shot steps)."
  type        = string
  default     = "adcast_writer"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.runtime_role))
    error_message = "runtime_role is a plain lower-case PostgreSQL identifier (it must differ from master_username)."
  }
}

variable "monitoring_interval_seconds" {
  description = "Enhanced Monitoring interval in seconds (1, 5, 10, 15, 30 or 60)."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the PostgreSQL and upgrade logs."
  type        = number
  default     = 365
}

variable "alarm_topic_arn" {
  description = "SNS topic for the database's CloudWatch alarms."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
