variable "name" {
  description = "Identifier prefix of the replication group and its companions."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the primary region."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (at least two zones) for the cache subnet group."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect on 6379: the writer (publishes) and the primary region's edges (read the stream)."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key for encryption at rest, the slow-log group and the REDIS_URL secrets."
  type        = string
}

variable "engine_version" {
  description = "Redis OSS engine version (Global Datastore needs 5.0.6 or later; streams need 5+)."
  type        = string
  default     = "7.1"
}

variable "node_type" {
  description = "Node type. Global Datastore requires M5/M6g/M7g/R5/R6g/R7g families (large or bigger). The stream holds at most a few snapshots' worth of events, a few MiB, so the smallest general-purpose type serves."
  type        = string
  default     = "cache.m7g.large"
}

variable "num_cache_clusters" {
  description = "Nodes in the group: one primary and the rest read replicas across zones (at least 2 for automatic failover). Edges serve from memory through a Redis outage, so two are enough."
  type        = number
  default     = 2

  validation {
    condition     = var.num_cache_clusters >= 2
    error_message = "Automatic failover and Multi-AZ need at least two nodes."
  }
}

variable "auth_token_update_strategy" {
  description = "How a changed AUTH token is applied: ROTATE (the new token is added, the old one stays valid) or SET (only the current token is valid). Rotate with ROTATE, redeploy the clients, then apply once more with SET."
  type        = string
  default     = "ROTATE"

  validation {
    condition     = contains(["ROTATE", "SET"], var.auth_token_update_strategy)
    error_message = "auth_token_update_strategy is ROTATE or SET."
  }
}

variable "snapshot_retention_days" {
  description = "Days of automatic ElastiCache backups. The writer can always republish the stream from PostgreSQL, so this is a convenience, not the source of truth."
  type        = number
  default     = 3
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the Redis slow log."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
