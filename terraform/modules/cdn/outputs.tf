output "distribution_domain_name" {
  description = "CloudFront domain of the distribution (the public name's alias target)."
  value       = aws_cloudfront_distribution.this.domain_name
}

output "distribution_id" {
  description = "ID of the distribution (invalidations, metrics)."
  value       = aws_cloudfront_distribution.this.id
}
