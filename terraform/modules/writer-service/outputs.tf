output "writer_url" {
  description = "Base URL of the writer inside the VPCs (ADCAST_WRITER_URL of every edge)."
  value       = "http://${aws_service_discovery_service.writer.name}.${aws_service_discovery_private_dns_namespace.this.name}:8081"
}

output "private_zone_id" {
  description = "Route 53 private hosted zone of the Cloud Map namespace; associate it with the edge regions' VPCs."
  value       = aws_service_discovery_private_dns_namespace.this.hosted_zone
}

output "security_group_id" {
  description = "Security group of the writer task (PostgreSQL and Redis allow it in)."
  value       = aws_security_group.this.id
}

output "service_name" {
  description = "Name of the writer's ECS service."
  value       = aws_ecs_service.this.name
}
