variable "domain_name" {
  description = "Name the certificate is for, e.g. \"ads.example.com\"."
  type        = string
}

variable "subject_alternative_names" {
  description = "Further names on the certificate (e.g. the CDN's origin name)."
  type        = list(string)
  default     = []
}

variable "validation_record_fqdns" {
  description = "FQDNs of the validation records, created once per name by the environment."
  type        = list(string)
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
