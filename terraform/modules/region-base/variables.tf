variable "name" {
  description = "Name prefix for every resource of this region (for example \"adcast-prod-euw1\"); also the log bucket's name prefix, so keep it short, lowercase and globally distinctive."
  type        = string
}

variable "log_retention_days" {
  description = "Days the log bucket keeps ALB and S3 access logs before they expire (ALB access logs grow with the request rate: DEPLOYING.md, Costs)."
  type        = number
  default     = 90
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
