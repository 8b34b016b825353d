variable "name" {
  description = "Identifier prefix of the secondary replication group (this edge region's)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of this edge region."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (at least two zones) for the cache subnet group."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect on 6379: this region's edges."
  type        = list(string)
}

variable "global_replication_group_id" {
  description = "Global Datastore to join as a read-only secondary (output of redis-primary)."
  type        = string
}

variable "auth_token" {
  description = "AUTH token of the Global Datastore (output of redis-primary), for this region's REDIS_URL secret."
  type        = string
  sensitive   = true
}

variable "writer_security_group_ids" {
  description = "Security groups of a recovery writer in this region, allowed on 6379 (it publishes here after a promotion)."
  type        = list(string)
  default     = []
}

variable "num_cache_clusters" {
  description = "Nodes in this secondary (2 or more: Multi-AZ with automatic failover; 1: a node failure leaves this region's edges serving their last state until ElastiCache replaces it)."
  type        = number
  default     = 2

  validation {
    condition     = var.num_cache_clusters >= 1 && var.num_cache_clusters <= 6
    error_message = "num_cache_clusters is 1 to 6."
  }
}

variable "kms_key_arn" {
  description = "This region's KMS key: encryption at rest of the secondary, and the REDIS_URL secrets."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
