variable "name" {
  description = "Name of the web ACL (and of its log group, aws-waf-logs-<name>)."
  type        = string
}

variable "scope" {
  description = "REGIONAL (load balancers, in their region) or CLOUDFRONT (distributions; the provider must be us-east-1)."
  type        = string

  validation {
    condition     = contains(["REGIONAL", "CLOUDFRONT"], var.scope)
    error_message = "scope is REGIONAL or CLOUDFRONT."
  }
}

variable "rate_limit_per_ip" {
  description = "Requests one client IP may make in 5 minutes before WAF blocks it."
  type        = number
  default     = 300000
}

variable "admin_rate_limit" {
  description = "Admin calls (writes, /api/v1/admin/*, /api/v1/ad/*) one client IP may make in 5 minutes before WAF blocks it."
  type        = number
  default     = 300
}

variable "log_all_requests" {
  description = "Log every request the WAF sees, not only blocked ones (CloudWatch ingestion then costs about as much as the WAF itself)."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the WAF's logs."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "KMS key encrypting the log group (in the web ACL's region)."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
