output "kms_key_arn" {
  description = "ARN of the region's customer-managed KMS key (rotation on)."
  value       = aws_kms_key.this.arn
}

output "alarm_topic_arn" {
  description = "ARN of the SNS topic the region's CloudWatch alarms publish to; subscribe the on-call endpoint to it."
  value       = aws_sns_topic.alarms.arn
}

output "log_bucket_name" {
  description = "Name of the bucket receiving ALB access logs (prefix alb/) and S3 server access logs (prefix s3/), available once its policy admits the log writers."
  value       = aws_s3_bucket.logs.id

  # A load balancer configured with access logs checks at creation that it
  # may write to the bucket: hand the name out only after the policy exists.
  depends_on = [aws_s3_bucket_policy.logs]
}
