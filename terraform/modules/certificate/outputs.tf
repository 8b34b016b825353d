output "arn" {
  description = "ARN of the certificate, available once it is validated."
  value       = aws_acm_certificate_validation.this.certificate_arn
}

output "validation_records" {
  description = "The DNS records ACM validates with, by domain name: {name, type, value}."
  value = {
    for o in aws_acm_certificate.this.domain_validation_options : o.domain_name => {
      name  = o.resource_record_name
      type  = o.resource_record_type
      value = o.resource_record_value
    }
  }
}
