variable "name" {
  description = "Name prefix of the distribution's policies, web ACL and log bucket."
  type        = string
}

variable "domain_name" {
  description = "The API's public name, served by the distribution."
  type        = string
}

variable "origin_domain_name" {
  description = "Latency-routed name of the regional edges (load balancers or HTTP APIs), e.g. \"origin.ads.example.com\"."
  type        = string
}

variable "origin_verify_secret" {
  description = "Value of the X-Origin-Verify header added to every origin request; the load balancers forward only requests carrying it."
  type        = string
  sensitive   = true
}

variable "certificate_arn" {
  description = "Validated ACM certificate for domain_name in us-east-1."
  type        = string
}

variable "route53_zone_id" {
  description = "Public Route 53 hosted zone that holds domain_name."
  type        = string
}

variable "max_ttl_seconds" {
  description = "Longest time CloudFront keeps an answer, whatever its max-age says (the edges cap max-age at --cache-max-age-secs, 5 s by default)."
  type        = number
  default     = 60
}

variable "price_class" {
  description = "CloudFront price class: PriceClass_100 (North America, Europe), PriceClass_200 (and Asia, Middle East, Africa), PriceClass_All."
  type        = string
  default     = "PriceClass_200"
}

variable "waf_rate_limit_per_ip" {
  description = "Requests one client IP may make in 5 minutes before the CDN's WAF blocks it."
  type        = number
  default     = 300000
}

variable "waf_admin_rate_limit_per_ip" {
  description = "Admin calls one client IP may make in 5 minutes before the CDN's WAF blocks it."
  type        = number
  default     = 300
}

variable "shield_advanced" {
  description = "Protect the distribution with AWS Shield Advanced (the account must already subscribe); covers the web ACL's per-request charge."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "KMS key in us-east-1 for the WAF log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the WAF's logs."
  type        = number
  default     = 365
}

variable "access_log_retention_days" {
  description = "Days the CloudFront access logs are kept."
  type        = number
  default     = 90
}

variable "error_rate_alarm_percent" {
  description = "Alarm when the share of 5xx answers exceeds this percentage for 5 minutes."
  type        = number
  default     = 1
}

variable "alarm_topic_arn" {
  description = "SNS topic in us-east-1 for the distribution's alarm."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
