variable "name" {
  description = "Repository name prefix: repositories are <name>/writer, <name>/edge and <name>/edge-function; the ECR Public mirror is <name>-public/."
  type        = string
}

variable "kms_key_arn" {
  description = "This region's KMS key encrypting the repositories."
  type        = string
}

variable "replication_regions" {
  description = "Regions the images are replicated to (home region only; empty in the others). Each of them must call this module too, so its repositories exist with the right settings."
  type        = list(string)
  default     = []
}

variable "image_digests" {
  description = "Digests (sha256:...) of the images to deploy, by repository key (\"writer\", \"edge\", \"edge-function\"); null for one not deployed. Each is looked up in this region's registry."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.image_digests : contains(["writer", "edge", "edge-function"], k) && (v == null || can(regex("^sha256:[0-9a-f]{64}$", v)))])
    error_message = "image_digests maps writer, edge or edge-function to a digest sha256:<64 hex digits> (or null)."
  }
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
