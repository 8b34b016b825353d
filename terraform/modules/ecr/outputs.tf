output "repository_urls" {
  description = "Repository URLs in the home region, keyed by \"writer\" and \"edge\". In a replica region the host part names that region instead."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}
