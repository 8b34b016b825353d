variable "name" {
  description = "Secret name, for example \"adcast-prod/writer/database-url\"."
  type        = string
}

variable "description" {
  description = "What the secret holds and who reads it."
  type        = string
}

variable "value" {
  description = "The secret value. It is stored in Terraform state too: keep the state bucket encrypted and access-controlled."
  type        = string
  sensitive   = true
}

variable "kms_key_arn" {
  description = "KMS key encrypting the secret in its home region."
  type        = string
}

variable "replicas" {
  description = "Other regions to replicate the secret to, each with the KMS key to encrypt the replica there. ECS tasks in those regions read the replica."
  type = list(object({
    region      = string
    kms_key_arn = string
  }))
  default = []
}

variable "recovery_window_in_days" {
  description = "Days a deleted secret can still be restored."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
