output "arn" {
  description = "ARN of the secret in its home region. A replica's ARN is the same with the region replaced."
  value       = aws_secretsmanager_secret.this.arn
}

output "name" {
  description = "Name of the secret (identical in every replica region)."
  value       = aws_secretsmanager_secret.this.name
}
