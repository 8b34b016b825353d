variable "project" {
  description = "Project name, the first part of every resource name (lower case, at most 8 characters: AWS name-length limits, see terraform/tests/test_aws_constraints.py)."
  type        = string
  default     = "adcast"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,7}$", var.project))
    error_message = "project is 1 to 8 lower-case letters and digits, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name (\"prod\", \"staging\"), the second part of every resource name (lower case, at most 7 characters)."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,6}$", var.environment))
    error_message = "environment is 1 to 7 lower-case letters and digits, starting with a letter."
  }
}

variable "primary_region" {
  description = "Region of the writer, PostgreSQL, the Redis primary and the first edge fleet."
  type        = string
  default     = "us-east-1"
}

variable "edge_region_a" {
  description = "First additional edge region (a Global Datastore secondary and an edge fleet), and the recovery region: standby writer, replicated database backups or replica."
  type        = string
  default     = "eu-west-1"
}

variable "edge_region_b" {
  description = "Second additional edge region (Global Datastore allows two secondaries)."
  type        = string
  default     = "ap-northeast-1"
}

variable "primary_vpc_cidr" {
  description = "VPC CIDR in the primary region; the three VPCs are peered, so their CIDRs must not overlap."
  type        = string
  default     = "10.10.0.0/16"
}

variable "edge_a_vpc_cidr" {
  description = "VPC CIDR in edge_region_a."
  type        = string
  default     = "10.20.0.0/16"
}

variable "edge_b_vpc_cidr" {
  description = "VPC CIDR in edge_region_b."
  type        = string
  default     = "10.30.0.0/16"
}

variable "primary_azs" {
  description = "Availability zones used in primary_region (2 to 6, by name)."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b", "us-east-1c"]
}

variable "edge_a_azs" {
  description = "Availability zones used in edge_region_a (2 to 6, by name)."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
}

variable "edge_b_azs" {
  description = "Availability zones used in edge_region_b (2 to 6, by name; ap-northeast-1b is closed to new accounts)."
  type        = list(string)
  default     = ["ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d"]
}

variable "writer_image_digest" {
  description = "Digest (sha256:...) of the writer image pushed to ECR (DEPLOYING.md, step 3); required except while only the registries are applied. Every region's task definitions use the image by this digest, and the plan fails while it has not replicated."
  type        = string
  default     = null
}

variable "edge_image_digest" {
  description = "Digest of the edge image (infra/Dockerfile --target edge); required when a region runs Fargate edges."
  type        = string
  default     = null
}

variable "edge_function_image_digest" {
  description = "Digest of the function edge image (infra/Dockerfile --target edge-function); required when a region runs function edges."
  type        = string
  default     = null
}

variable "edge_platforms" {
  description = "Where each region's edges run: \"fargate\" (long-lived tasks behind a load balancer, --sync stream) or \"function\" (AWS Lambda behind an HTTP API, --sync poll). Keys primary, edge_a, edge_b. DEPLOYING.md, \"Fargate or functions\"."
  type        = map(string)
  default     = { primary = "fargate", edge_a = "fargate", edge_b = "fargate" }

  validation {
    condition     = length(setsubtract(["primary", "edge_a", "edge_b"], keys(var.edge_platforms))) == 0 && alltrue([for v in values(var.edge_platforms) : contains(["fargate", "function"], v)])
    error_message = "edge_platforms maps primary, edge_a and edge_b each to \"fargate\" or \"function\"."
  }
}

variable "writer_active_region" {
  description = "Where the one active writer runs: \"primary\", or \"recovery\" (edge_region_a) after the primary region is lost (DEPLOYING.md, runbook)."
  type        = string
  default     = "primary"

  validation {
    condition     = contains(["primary", "recovery"], var.writer_active_region)
    error_message = "writer_active_region is primary or recovery."
  }
}

variable "database_recovery_mode" {
  description = "PostgreSQL in the recovery region: \"backups\" (automated backups replicated there; restore on failover) or \"replica\" (a cross-region read replica; promote on failover)."
  type        = string
  default     = "backups"
}

variable "recovery_database_address" {
  description = "Address of the instance restored in the recovery region during a failover (backups mode); empty otherwise."
  type        = string
  default     = ""
}

variable "stream_key" {
  description = "ADCAST_STREAM_KEY of the writers and every edge. A recovery that loses database history the stream still holds starts a fresh key (runbook)."
  type        = string
  default     = "adcast:events"
}

variable "cdn_enabled" {
  description = "Put a CloudFront distribution in front of the whole API (its cache honours the edges' Cache-Control). DEPLOYING.md, Costs: at list prices it adds more per request than it saves."
  type        = bool
  default     = false
}

variable "shield_advanced" {
  description = "Protect the load balancers (and the CDN) with AWS Shield Advanced. Needs an existing subscription ($3,000 a month, one year); from about 2,000 requests/s it costs less than the WAF's per-request charge it then covers (DEPLOYING.md, Costs)."
  type        = bool
  default     = false
}

variable "nat_gateways" {
  description = "NAT gateways per region: none (default; AWS APIs through VPC endpoints), one, or per_zone."
  type        = string
  default     = "none"
}

variable "domain_name" {
  description = "Public name of the API, latency-routed to the nearest healthy region, e.g. \"ads.example.com\"."
  type        = string
}

variable "route53_zone_id" {
  description = "ID of the public Route 53 hosted zone containing domain_name."
  type        = string
}

variable "db_instance_class" {
  description = "RDS instance class of PostgreSQL."
  type        = string
  default     = "db.m7g.large"
}

variable "redis_node_type" {
  description = "ElastiCache node type of the Global Datastore (primary and secondaries; the smallest type it supports serves: the stream is a few MiB)."
  type        = string
  default     = "cache.m7g.large"
}

variable "redis_primary_nodes" {
  description = "Nodes of the Redis primary (2: Multi-AZ with automatic failover)."
  type        = number
  default     = 2
}

variable "redis_recovery_nodes" {
  description = "Nodes of the Redis secondary in the recovery region (2: it becomes the primary in a regional failover)."
  type        = number
  default     = 2
}

variable "redis_edge_b_nodes" {
  description = "Nodes of the Redis secondary in edge_region_b (1: a node failure leaves those edges serving their last state until it is replaced)."
  type        = number
  default     = 1
}

variable "redis_auth_token_update_strategy" {
  description = "ROTATE while a new Redis AUTH token is rolled out (old and new valid), then SET to retire the old one (DEPLOYING.md, Tokens and passwords)."
  type        = string
  default     = "ROTATE"
}

variable "edge_min_capacity" {
  description = "Fewest edge tasks per region."
  type        = number
  default     = 2
}

variable "edge_max_capacity" {
  description = "Most edge tasks per region."
  type        = number
  default     = 20
}

variable "edge_cpu" {
  description = "CPU units per edge task (1024 = 1 vCPU)."
  type        = number
  default     = 2048
}

variable "edge_memory" {
  description = "Memory per edge task in MiB."
  type        = number
  default     = 4096
}

variable "edge_requests_per_target_per_minute" {
  description = "Autoscaling target of requests per edge task per minute (ALBRequestCountPerTarget); see DEPLOYING.md, Sizing."
  type        = number
  default     = 600000
}

variable "function_memory_mb" {
  description = "Memory of the function edges in MB (CPU grows with it)."
  type        = number
  default     = 1024
}

variable "function_reserved_concurrency" {
  description = "Reserved (and maximum) concurrent instances of each region's function edge; -1 for none."
  type        = number
  default     = 200
}

variable "function_provisioned_concurrency" {
  description = "Always-initialised instances of each region's function edge (no cold starts for them); 0 for none."
  type        = number
  default     = 0
}

variable "tags" {
  description = "Extra tags on every resource (added to project and environment)."
  type        = map(string)
  default     = {}
}
