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

variable "writer_cidr_block" {
  description = "CIDR of the primary region's VPC, where the writer listens on 8081 (same as vpc_cidr_block in the primary region)."
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
  description = "Edge image (infra/Dockerfile, target edge) in this region's registry, by immutable tag or digest."
  type        = string
}

variable "aws_cli_image" {
  description = "AWS CLI image of the snapshot-seeding init container."
  type        = string
  default     = "public.ecr.aws/aws-cli/aws-cli:2.22.35"
}

variable "otel_collector_image" {
  description = "AWS Distro for OpenTelemetry collector image: scrapes each edge's /metrics into CloudWatch (EMF)."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.1"
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
  description = "Fewest edge tasks in this region (at least 2: one per zone survives a zone loss)."
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
  description = "Snapshot bucket in this region (the primary bucket or its replica); the init container copies the newest snapshots/ file into ADCAST_SNAPSHOT."
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

variable "domain_name" {
  description = "Public name of the API, e.g. \"ads.example.com\": one latency-routed record per region, and the TLS certificate's name."
  type        = string
}

variable "route53_zone_id" {
  description = "Public Route 53 hosted zone that holds domain_name (certificate validation and latency records)."
  type        = string
}

variable "waf_rate_limit_per_ip" {
  description = "Requests one client IP may make in 5 minutes before WAF blocks it."
  type        = number
  default     = 300000
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
