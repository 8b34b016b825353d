output "repository_urls" {
  description = "Repository URLs in this region, keyed by \"writer\", \"edge\" and \"edge-function\": push here in the home region."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "image_uris" {
  description = "Image references by digest (repository@sha256:...) for every entry of image_digests, checked to exist in this region's registry."
  value       = { for k, image in data.aws_ecr_image.required : k => "${aws_ecr_repository.this[k].repository_url}@${image.image_digest}" }
}

output "public_mirror" {
  description = "Prefix under which this registry mirrors ECR Public: public.ecr.aws/X/Y:tag is pulled as <public_mirror>/X/Y:tag."
  value       = "${local.registry}/${aws_ecr_pull_through_cache_rule.public.ecr_repository_prefix}"
}

output "public_mirror_repository_arn_prefix" {
  description = "ARN prefix of the pull-through cache repositories, for the task execution roles that may create and import them on first pull."
  value       = "arn:${data.aws_partition.current.partition}:ecr:${local.region}:${local.account_id}:repository/${local.public_prefix}/"
}
