variable "name" {
  description = "Name prefix of the writer service and its companions."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster the writer runs in (primary region)."
  type        = string
}

variable "cluster_name" {
  description = "Name of that cluster, for Container Insights alarms."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the primary region."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of that VPC: the writer's egress to PostgreSQL and Redis is limited to it."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the writer task."
  type        = list(string)
}

variable "edge_security_group_ids" {
  description = "Security groups of the primary region's edges, allowed to call the writer on 8081 (forwarding, snapshot downloads)."
  type        = list(string)
}

variable "edge_cidr_blocks" {
  description = "CIDRs of the peered edge-region VPCs, allowed to call the writer on 8081."
  type        = list(string)
  default     = []
}

variable "writer_image" {
  description = "Writer image (infra/Dockerfile, target writer), by immutable tag or digest, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/adcast-prod/writer:1.4.0."
  type        = string
}

variable "aws_cli_image" {
  description = "AWS CLI image for the snapshot-shipping sidecar and the volume-permission init container."
  type        = string
  default     = "public.ecr.aws/aws-cli/aws-cli:2.22.35"
}

variable "otel_collector_image" {
  description = "AWS Distro for OpenTelemetry collector image: scrapes the writer's /metrics and writes CloudWatch metrics (EMF)."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.1"
}

variable "cpu" {
  description = "Task CPU units (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "memory" {
  description = "Task memory in MiB."
  type        = number
  default     = 2048
}

variable "database_url_secret_arn" {
  description = "Secret holding DATABASE_URL (postgres module output)."
  type        = string
}

variable "redis_url_secret_arn" {
  description = "Secret holding REDIS_URL, the primary endpoint (redis-primary module output)."
  type        = string
}

variable "admin_tokens_secret_arn" {
  description = "Secret holding ADCAST_ADMIN_TOKENS: comma-separated bearer tokens (operators' and the edges')."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the region (secrets, log groups, snapshot bucket)."
  type        = string
}

variable "snapshot_bucket_name" {
  description = "Bucket the sidecar mirrors the writer's snapshot directory to (prefix snapshots/)."
  type        = string
}

variable "snapshot_bucket_arn" {
  description = "ARN of that bucket."
  type        = string
}

variable "snapshot_sync_interval_seconds" {
  description = "How often the sidecar mirrors new snapshot files to S3. The writer writes one after 1,000 changes or 60 s after a change (its defaults)."
  type        = number
  default     = 30
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
