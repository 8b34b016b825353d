variable "name" {
  description = "Bucket name prefix (a random suffix is added); for example \"adcast-prod-snapshots-use1\"."
  type        = string
}

variable "kms_key_arn" {
  description = "This region's KMS key: default encryption of the bucket (SSE-KMS with a bucket key)."
  type        = string
}

variable "log_bucket_name" {
  description = "This region's access-log bucket (region-base output); server access logs go under s3/."
  type        = string
}

variable "replication_destinations" {
  description = "Buckets in other regions that every snapshot written here is copied to (cross-region replication), each with the KMS key encrypting it there."
  type = list(object({
    bucket_arn  = string
    kms_key_arn = string
  }))
  default = []
}

variable "noncurrent_version_days" {
  description = "Days a replaced or deleted snapshot version is kept before it expires (the writer deletes snapshots past its retention)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
