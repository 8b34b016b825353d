variable "project" {
  description = "Project name, the first part of every resource name."
  type        = string
  default     = "adcast"
}

variable "environment" {
  description = "Environment name (\"prod\", \"staging\"), the second part of every resource name."
  type        = string
  default     = "prod"
}

variable "primary_region" {
  description = "Region of the writer, PostgreSQL, the Redis primary and the first edge fleet."
  type        = string
  default     = "us-east-1"
}

variable "edge_region_a" {
  description = "First additional edge region (a Global Datastore secondary and an edge fleet)."
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

variable "image_tag" {
  description = "Tag of the writer and edge images in ECR (pushed before apply; tags are immutable)."
  type        = string
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
  description = "ElastiCache node type of the Global Datastore (primary and secondaries)."
  type        = string
  default     = "cache.r7g.large"
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

variable "tags" {
  description = "Extra tags on every resource (added to project and environment)."
  type        = map(string)
  default     = {}
}
