variable "name" {
  description = "Name prefix of this region's function edge and its companions."
  type        = string
}

variable "function_image" {
  description = "Image of infra/Dockerfile's edge-function target in this region's registry, by digest (ecr module output image_uris)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of this region."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of this region's VPC: the function reaches Redis inside it."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets the function's network interfaces live in."
  type        = list(string)
}

variable "writer_cidr_blocks" {
  description = "CIDRs of the VPCs where a writer listens on 8081."
  type        = list(string)
}

variable "s3_prefix_list_id" {
  description = "Managed prefix list of S3 in this region (network module output)."
  type        = string
}

variable "redis_url" {
  description = "REDIS_URL of this region's Redis reader endpoint (TLS, AUTH)."
  type        = string
  sensitive   = true
}

variable "writer_token" {
  description = "ADCAST_WRITER_TOKEN: the edges' internal-scope token."
  type        = string
  sensitive   = true
}

variable "writer_url" {
  description = "ADCAST_WRITER_URL: the active writer's private base URL."
  type        = string
}

variable "stream_key" {
  description = "ADCAST_STREAM_KEY: the Redis Stream the writer publishes to."
  type        = string
  default     = "adcast:events"
}

variable "max_staleness_ms" {
  description = "ADCAST_MAX_STALENESS_MS: a request finding the state older than this catches up from the stream first."
  type        = number
  default     = 250
}

variable "snapshot_bucket_name" {
  description = "Snapshot bucket in this region: cold starts boot from s3://<bucket>/snapshots."
  type        = string
}

variable "snapshot_bucket_arn" {
  description = "ARN of that bucket."
  type        = string
}

variable "memory_mb" {
  description = "Function memory in MB (128 to 10,240). CPU grows with it (1,769 MB = one vCPU); cold starts are CPU-bound."
  type        = number
  default     = 1024
}

variable "timeout_seconds" {
  description = "Invocation timeout in seconds (at most 29: the HTTP API's integration limit); above the edge's own waits (Adcast-Min-Seq, forwarded writes)."
  type        = number
  default     = 15
}

variable "reserved_concurrency" {
  description = "Concurrent instances reserved for (and capping) this function; -1 for no reservation (the account's unreserved pool)."
  type        = number
  default     = 200
}

variable "provisioned_concurrency" {
  description = "Instances kept initialised (no cold starts for them; billed per hour); 0 for none."
  type        = number
  default     = 0
}

variable "function_url_enabled" {
  description = "Also create a public function URL (for example as a CDN origin)."
  type        = bool
  default     = false
}

variable "throttle_rate_per_second" {
  description = "Steady requests per second the HTTP API admits (all clients together)."
  type        = number
  default     = 10000
}

variable "throttle_burst" {
  description = "Burst of requests the HTTP API admits above the steady rate."
  type        = number
  default     = 5000
}

variable "dns_name" {
  description = "Name of this region's latency record and the API's custom domain: the public name, or the CDN's origin name."
  type        = string
}

variable "certificate_arn" {
  description = "Validated ACM certificate in this region covering dns_name."
  type        = string
}

variable "route53_zone_id" {
  description = "Public Route 53 hosted zone that holds dns_name."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of this region (environment variables, logs, snapshot bucket)."
  type        = string
}

variable "errors_alarm_per_minute" {
  description = "Alarm when failed invocations (or API 5xx) exceed this per minute for 5 minutes."
  type        = number
  default     = 10
}

variable "duration_p99_alarm_ms" {
  description = "Alarm when the p99 invocation duration exceeds this for 5 minutes."
  type        = number
  default     = 250
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the function's and the API's logs."
  type        = number
  default     = 365
}

variable "alarm_topic_arn" {
  description = "SNS topic (this region) for the function edges' alarms."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
