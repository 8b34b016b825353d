# The Redis that carries the change stream: an ElastiCache replication group
# in the primary region (writer publishes, local edges read a replica), Multi-AZ
# with automatic failover, encrypted at rest and in transit, AUTH required,
# and a Global Datastore whose secondaries serve the edge regions.

locals {
  id     = "${var.name}-redis"
  family = "redis${split(".", var.engine_version)[0]}"
}

resource "random_password" "auth" {
  # ElastiCache AUTH: 16-128 printable characters; letters and digits keep
  # it usable unescaped inside a rediss:// URL.
  length  = 64
  special = false
}

resource "aws_elasticache_subnet_group" "this" {
  name        = local.id
  description = "${var.name} Redis private subnets"
  subnet_ids  = var.subnet_ids
  tags        = var.tags
}

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-redis-"
  description = "adcast Redis: 6379 from the writer and the edges"
  vpc_id      = var.vpc_id
  tags        = var.tags

  ingress {
    description     = "Redis (TLS) from adcast tasks"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = var.client_security_group_ids
  }

  lifecycle {
    create_before_destroy = true
  }
}

# The stream must never be evicted: a full Redis refuses writes instead (the
# writer keeps them in the outbox and retries), it never drops events.
resource "aws_elasticache_parameter_group" "this" {
  name        = "${local.id}-${local.family}"
  family      = local.family
  description = "adcast: noeviction"
  tags        = var.tags

  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }
}

resource "aws_cloudwatch_log_group" "slow" {
  name              = "/adcast/${var.name}/redis-slow-log"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = local.id
  description          = "adcast change stream (primary)"
  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = 6379
  parameter_group_name = aws_elasticache_parameter_group.this.name

  num_cache_clusters         = var.num_cache_clusters
  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.this.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auth_token                 = random_password.auth.result
  # Rotation is two applies (DEPLOYING.md, "Tokens and passwords"): a new
  # token with ROTATE (old and new both valid while clients move over),
  # then SET (only the new one stays valid).
  auth_token_update_strategy = var.auth_token_update_strategy

  snapshot_retention_limit   = var.snapshot_retention_days
  snapshot_window            = "02:00-03:00"
  maintenance_window         = "sun:05:30-sun:06:30"
  auto_minor_version_upgrade = true
  apply_immediately          = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.slow.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }

  tags = var.tags
}

resource "aws_elasticache_global_replication_group" "this" {
  global_replication_group_id_suffix   = local.id
  global_replication_group_description = "adcast change stream, read in every edge region"
  primary_replication_group_id         = aws_elasticache_replication_group.this.id
}

module "writer_url" {
  source = "../secret"

  name        = "${var.name}/writer/redis-url"
  description = "REDIS_URL of the adcast writer: the primary endpoint (TLS, AUTH)"
  value       = "rediss://:${random_password.auth.result}@${aws_elasticache_replication_group.this.primary_endpoint_address}:6379"
  kms_key_arn = var.kms_key_arn
  tags        = var.tags
}

module "reader_url" {
  source = "../secret"

  name        = "${var.name}/edge/redis-url"
  description = "REDIS_URL of the primary region's edges: the reader endpoint (TLS, AUTH)"
  value       = "rediss://:${random_password.auth.result}@${aws_elasticache_replication_group.this.reader_endpoint_address}:6379"
  kms_key_arn = var.kms_key_arn
  tags        = var.tags
}
