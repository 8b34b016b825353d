variable "name" {
  description = "Name prefix of this region's edge service and its companions, e.g. \"adcast-prod-euw1\"."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster of this region."
  type        = string
}

variable "cluster_name" {
  description = "Name of that cluster, for the autoscaling resource ID."
  type        = string
}

variable "vpc_id" {
  description = "VPC of this region."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of this region's VPC: edges reach Redis inside it."
  type        = string
}

variable "writer_cidr_blocks" {
  description = "CIDRs of the VPCs where a writer listens on 8081: the primary's and the recovery region's (this VPC's own where the writer runs here)."
  type        = list(string)
}

variable "https_egress_cidr_blocks" {
  description = "Where tasks may send HTTPS besides S3 (network module output: the VPC's interface endpoints, or anywhere with NAT)."
  type        = list(string)
}

variable "s3_prefix_list_id" {
  description = "Managed prefix list of S3 in this region (network module output), for the snapshot store."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets for the edge tasks."
  type        = list(string)
}

variable "public_subnet_ids" {
  description = "Public subnets for the internet-facing load balancer."
  type        = list(string)
}

variable "edge_image" {
  description = "Edge image (infra/Dockerfile, target edge) in this region's registry, by digest (ecr module output image_uris)."
  type        = string
}

variable "otel_collector_image" {
  description = "AWS Distro for OpenTelemetry collector image (through this region's ECR Public pull-through cache): scrapes each edge's /metrics into CloudWatch (EMF)."
  type        = string
}

variable "public_mirror_repository_arn_prefix" {
  description = "ARN prefix of the pull-through cache repositories the public images come from (ecr module output)."
  type        = string
}

variable "stream_key" {
  description = "ADCAST_STREAM_KEY: the Redis Stream the writer publishes to."
  type        = string
  default     = "adcast:events"
}

variable "cpu" {
  description = "Task CPU units (1024 = 1 vCPU). The edge serves from memory and scales with cores; ADCAST_WORKER_THREADS follows this."
  type        = number
  default     = 2048
}

variable "memory" {
  description = "Task memory in MiB (the index of 100,000 ads takes well under 1 GiB)."
  type        = number
  default     = 4096
}

variable "min_capacity" {
  description = "Fewest edge tasks in this region (at least 2: one survives a zone loss)."
  type        = number
  default     = 2
}

variable "max_capacity" {
  description = "Most edge tasks autoscaling may run in this region."
  type        = number
  default     = 20
}

variable "cpu_target_percent" {
  description = "Target average CPU utilisation for target-tracking scaling."
  type        = number
  default     = 50
}

variable "requests_per_target_per_minute" {
  description = "Target ALBRequestCountPerTarget (requests per task per minute) for target-tracking scaling; derive it from the measured per-edge throughput with headroom (DEPLOYING.md, Sizing)."
  type        = number
  default     = 600000
}

variable "redis_url_secret_arn" {
  description = "Secret (in this region) holding REDIS_URL: this region's Redis reader endpoint."
  type        = string
}

variable "writer_token_secret_arn" {
  description = "Secret (in this region; a replica outside the primary) holding ADCAST_WRITER_TOKEN."
  type        = string
}

variable "writer_url" {
  description = "ADCAST_WRITER_URL: the writer's private base URL (writer-service output), reached over VPC peering from edge regions."
  type        = string
}

variable "snapshot_bucket_name" {
  description = "Snapshot bucket in this region (the primary bucket or its replica): edges boot from the newest valid snapshot under s3://<bucket>/snapshots (ADCAST_SNAPSHOT)."
  type        = string
}

variable "snapshot_bucket_arn" {
  description = "ARN of that bucket."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of this region (secrets, log groups, snapshot bucket)."
  type        = string
}

variable "log_bucket_name" {
  description = "This region's access-log bucket (region-base output) for the load balancer's access logs."
  type        = string
}

variable "dns_name" {
  description = "Name of this region's latency record: the API's public name, or the CDN's origin name when a CDN is in front."
  type        = string
}

variable "certificate_arn" {
  description = "Validated ACM certificate in this region covering dns_name (certificate module output)."
  type        = string
}

variable "route53_zone_id" {
  description = "Public Route 53 hosted zone that holds dns_name."
  type        = string
}

variable "cloudfront_only" {
  description = "A CDN is in front: admit HTTPS only from CloudFront's origin-facing addresses, and forward only requests whose X-Origin-Verify header equals origin_verify_secret (403 otherwise)."
  type        = bool
  default     = false
}

variable "origin_verify_secret" {
  description = "Value of the X-Origin-Verify header the CDN adds to origin requests (cloudfront_only)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "waf_enabled" {
  description = "Associate this region's web ACL with the load balancer. Off when the CDN's web ACL inspects every request already (DEPLOYING.md, Costs)."
  type        = bool
  default     = true
}

variable "shield_advanced" {
  description = "Protect the load balancer with AWS Shield Advanced (the account must already subscribe); the subscription then covers this web ACL's per-request charge."
  type        = bool
  default     = false
}

variable "waf_log_all_requests" {
  description = "Log every request the WAF sees (not only blocked ones). CloudWatch ingestion then costs about as much as the WAF itself."
  type        = bool
  default     = false
}

variable "waf_rate_limit_per_ip" {
  description = "Requests one client IP may make in 5 minutes before WAF blocks it."
  type        = number
  default     = 300000
}

variable "waf_admin_rate_limit_per_ip" {
  description = "Admin calls (writes, /api/v1/admin/*, /api/v1/ad/*) one client IP may make in 5 minutes before WAF blocks it."
  type        = number
  default     = 300
}

variable "staleness_alarm_seconds" {
  description = "Alarm when an edge's adcast_edge_staleness_seconds stays above this for 5 minutes."
  type        = number
  default     = 60
}

variable "latency_p99_alarm_seconds" {
  description = "Alarm when the load balancer's p99 target response time exceeds this for 5 minutes."
  type        = number
  default     = 0.05
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the edges' and WAF's logs."
  type        = number
  default     = 365
}

variable "alarm_topic_arn" {
  description = "SNS topic (this region) for the edge alarms."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
