variable "name" {
  description = "Name of the ECS cluster."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for ECS Exec sessions and their log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps ECS Exec session logs."
  type        = number
  default     = 365
}

variable "alarm_topic_arn" {
  description = "SNS topic (this region) told about failed, rolled-back deployments."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
