output "arn" {
  description = "ARN of the web ACL, to associate with a load balancer or give a CloudFront distribution."
  value       = aws_wafv2_web_acl.this.arn
}
