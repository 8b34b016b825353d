output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Public subnet IDs, one per zone: load balancers and NAT gateways only."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnet IDs, one per zone: ECS tasks, RDS and ElastiCache."
  value       = aws_subnet.private[*].id
}

output "private_route_table_ids" {
  description = "Route tables of the private subnets (peering routes are added to these)."
  value       = aws_route_table.private[*].id
}

output "s3_prefix_list_id" {
  description = "Managed prefix list of S3 in this region (the gateway endpoint's), for security group egress rules."
  value       = aws_vpc_endpoint.s3.prefix_list_id
}

output "https_egress_cidr_blocks" {
  description = "Where tasks may send HTTPS besides S3: the VPC (interface endpoints) without NAT, anywhere with NAT."
  value       = var.nat_gateways == "none" ? [var.cidr_block] : ["0.0.0.0/0"]
}
