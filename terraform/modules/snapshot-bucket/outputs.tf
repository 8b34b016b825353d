output "bucket_name" {
  description = "Name of the snapshot bucket; snapshot files live under snapshots/."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the snapshot bucket."
  value       = aws_s3_bucket.this.arn
}
