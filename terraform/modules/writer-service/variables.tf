variable "name" {
  description = "Name prefix of the writer service and its companions."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster the writer runs in."
  type        = string
}

variable "cluster_name" {
  description = "Name of that cluster, for Container Insights alarms."
  type        = string
}

variable "desired_count" {
  description = "Writer tasks: 1 where the writer is active, 0 for the standby in the recovery region (set to 1 in a regional failover)."
  type        = number
  default     = 1

  validation {
    condition     = contains([0, 1], var.desired_count)
    error_message = "desired_count is 0 (standby) or 1: one active writer."
  }
}

variable "vpc_id" {
  description = "VPC of this region."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of that VPC: the writer's egress to PostgreSQL and Redis is limited to it (in the recovery region that holds the promoted Redis secondary and the restored database)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the writer task."
  type        = list(string)
}

variable "https_egress_cidr_blocks" {
  description = "Where the task may send HTTPS besides S3 (network module output: the VPC's interface endpoints, or anywhere with NAT)."
  type        = list(string)
}

variable "s3_prefix_list_id" {
  description = "Managed prefix list of S3 in this region (network module output), for the snapshot store."
  type        = string
}

variable "edge_security_group_ids" {
  description = "Security groups of this region's edges (tasks or functions), allowed to call the writer on 8081 (forwarding, snapshot downloads)."
  type        = list(string)
  default     = []
}

variable "edge_cidr_blocks" {
  description = "CIDRs of the peered edge-region VPCs, allowed to call the writer on 8081."
  type        = list(string)
  default     = []
}

variable "writer_image" {
  description = "Writer image (infra/Dockerfile, target writer) by digest, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/adcast-prod/writer@sha256:...; also runs the volume and migrate steps."
  type        = string
}

variable "psql_image" {
  description = "Image with psql 15 or later for the database-role step (ECR Public's postgres image through the registry's pull-through cache)."
  type        = string
}

variable "otel_collector_image" {
  description = "AWS Distro for OpenTelemetry collector image: scrapes the writer's /metrics and writes CloudWatch metrics (EMF)."
  type        = string
}

variable "public_mirror_repository_arn_prefix" {
  description = "ARN prefix of the pull-through cache repositories the public images come from (ecr module output)."
  type        = string
}

variable "cpu" {
  description = "Task CPU units (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "memory" {
  description = "Task memory in MiB (a valid Fargate pair with cpu)."
  type        = number
  default     = 2048
}

variable "stream_key" {
  description = "ADCAST_STREAM_KEY: the Redis Stream the writer publishes to (every edge must use the same)."
  type        = string
  default     = "adcast:events"
}

variable "database_address" {
  description = "PostgreSQL host, for the database-role step."
  type        = string
}

variable "database_port" {
  description = "PostgreSQL port."
  type        = number
  default     = 5432
}

variable "database_name" {
  description = "adcast's database."
  type        = string
}

variable "database_master_username" {
  description = "Master user name (schema owner), for the database-role step."
  type        = string
}

variable "database_runtime_role" {
  description = "Least-privilege role the writer serves with; the role and migrate steps create and grant it."
  type        = string
}

variable "database_master_secret_arn" {
  description = "Secret {url, password} of the master user (postgres module output): used by the role and migrate steps only."
  type        = string
}

variable "database_runtime_secret_arn" {
  description = "Secret {url, password} of the runtime role (postgres module output): the writer's DATABASE_URL."
  type        = string
}

variable "redis_url_secret_arn" {
  description = "Secret holding REDIS_URL, the primary endpoint (redis-primary module output; in the recovery region the promoted secondary's)."
  type        = string
}

variable "admin_tokens_secret_arn" {
  description = "Secret holding ADCAST_ADMIN_TOKENS (label:token, comma-separated): operators who change ads."
  type        = string
}

variable "read_tokens_secret_arn" {
  description = "Secret holding ADCAST_READ_TOKENS: people and tools that only look."
  type        = string
}

variable "internal_tokens_secret_arn" {
  description = "Secret holding ADCAST_INTERNAL_TOKENS: the edges' token for /internal/v1/* only."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the region (secrets, log groups, snapshot bucket)."
  type        = string
}

variable "snapshot_bucket_name" {
  description = "Bucket of the snapshot store: the writer uploads snapshots and the pointer to the newest under snapshots/ (ADCAST_SNAPSHOT_STORE)."
  type        = string
}

variable "snapshot_bucket_arn" {
  description = "ARN of that bucket."
  type        = string
}

variable "private_dns_namespace" {
  description = "Private DNS namespace (Cloud Map) in which the writer registers as writer.<namespace>; edges use http://writer.<namespace>:8081."
  type        = string
  default     = "adcast.internal"
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the writer's logs."
  type        = number
  default     = 365
}

variable "outbox_backlog_alarm_threshold" {
  description = "Alarm when adcast_outbox_backlog (changes committed but not on the stream) stays above this for 5 minutes."
  type        = number
  default     = 100
}

variable "alarm_topic_arn" {
  description = "SNS topic for the writer's alarms."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
