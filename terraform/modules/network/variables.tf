variable "name" {
  description = "Name prefix for the VPC and its resources."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 CIDR of the VPC. Must not overlap the other regions' VPCs, which are peered with the primary region."
  type        = string
}

variable "availability_zones" {
  description = "Availability zones to use, by name (one public and one private subnet, and one NAT gateway, per zone). Pinned explicitly so that AWS adding or retiring a zone never reshuffles subnets."
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
  description = "Days CloudWatch keeps VPC flow logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
