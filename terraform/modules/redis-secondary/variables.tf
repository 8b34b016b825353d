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

variable "num_cache_clusters" {
  description = "Nodes in this secondary, spread over zones (at least 2 for Multi-AZ)."
  type        = number
  default     = 2
}

variable "kms_key_arn" {
  description = "This region's KMS key, for the REDIS_URL secret."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
