output "bucket_name" {
  description = "Name of the snapshot bucket; snapshots and the pointer to the newest live under snapshots/."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the snapshot bucket, available once versioning is on (S3 replication requires it on the destination)."
  value       = aws_s3_bucket.this.arn

  depends_on = [aws_s3_bucket_versioning.this]
}
