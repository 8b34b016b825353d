variable "name" {
  description = "Name prefix for the VPC and its resources."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 CIDR of the VPC. Must not overlap the other regions' VPCs, which are peered with the primary region."
  type        = string
}

variable "availability_zones" {
  description = "Availability zones to use, by name (one public and one private subnet per zone). Pinned explicitly so that AWS adding or retiring a zone never reshuffles subnets."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 6
    error_message = "Use 2 to 6 zones: Multi-AZ databases and load balancers need at least two."
  }
}

variable "kms_key_arn" {
  description = "KMS key encrypting the VPC flow log group."
  type        = string
}

variable "flow_log_retention_days" {
  description = "Days CloudWatch keeps VPC flow logs (rejected flows only by default: a small volume)."
  type        = number
  default     = 365
}

variable "flow_log_traffic_type" {
  description = "Which flows are logged: REJECT (default: denied connections only), ACCEPT or ALL. ALL records every client connection to the load balancer."
  type        = string
  default     = "REJECT"

  validation {
    condition     = contains(["REJECT", "ACCEPT", "ALL"], var.flow_log_traffic_type)
    error_message = "flow_log_traffic_type is REJECT, ACCEPT or ALL."
  }
}

variable "nat_gateways" {
  description = "NAT gateways for internet egress from the private subnets: none (default; AWS APIs through VPC endpoints), one, or per_zone."
  type        = string
  default     = "none"

  validation {
    condition     = contains(["none", "one", "per_zone"], var.nat_gateways)
    error_message = "nat_gateways is none, one or per_zone."
  }
}

variable "interface_endpoints" {
  description = "AWS services reached through interface endpoints in every private subnet (S3 always has a gateway endpoint). The default is what ECS tasks need: image pulls, logs and secrets."
  type        = list(string)
  default     = ["ecr.api", "ecr.dkr", "logs", "secretsmanager"]
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
