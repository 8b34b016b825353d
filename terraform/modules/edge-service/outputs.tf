output "security_group_id" {
  description = "Security group of the edge tasks (Redis and the writer allow it in)."
  value       = aws_security_group.edge.id
}

output "load_balancer_dns_name" {
  description = "DNS name of this region's load balancer (for tests that bypass latency routing)."
  value       = aws_lb.this.dns_name
}

output "service_name" {
  description = "Name of this region's edge ECS service."
  value       = aws_ecs_service.this.name
}
