variable "name" {
  description = "Repository name prefix: repositories are <name>/writer and <name>/edge."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the repositories."
  type        = string
}

variable "replication_regions" {
  description = "Edge regions the images are replicated to, so tasks there pull from their own region."
  type        = list(string)
  default     = []
}

variable "keep_images" {
  description = "Images kept per repository; older ones expire."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
