# A read-only secondary of the Global Datastore in an edge region: edges there
# tail the stream locally, with cross-region replication lag (typically under
# a second) instead of a cross-region round trip per XREAD.

locals {
  id = "${var.name}-redis"
}

resource "aws_elasticache_subnet_group" "this" {
  name        = local.id
  description = "${var.name} Redis private subnets"
  subnet_ids  = var.subnet_ids
  tags        = var.tags
}

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-redis-"
  description = "adcast Redis secondary: 6379 from this region's edges"
  vpc_id      = var.vpc_id
  tags        = var.tags

  ingress {
    description     = "Redis (TLS) from adcast edges"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = var.client_security_group_ids
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_elasticache_replication_group" "this" {
  #checkov:skip=CKV_AWS_29:Encryption at rest is a property of the Global Datastore, inherited from the primary; AWS rejects the argument on a secondary.
  #checkov:skip=CKV_AWS_30:Encryption in transit is inherited from the primary (transit_encryption_mode = required there); AWS rejects the argument on a secondary.
  #checkov:skip=CKV_AWS_31:AUTH and TLS are inherited from the primary of the Global Datastore.
  #checkov:skip=CKV_AWS_191:The KMS key is chosen by the primary of the Global Datastore.
  replication_group_id        = local.id
  description                 = "adcast change stream (read-only Global Datastore secondary)"
  global_replication_group_id = var.global_replication_group_id

  num_cache_clusters         = var.num_cache_clusters
  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.this.id]
  maintenance_window         = "sun:05:30-sun:06:30"
  auto_minor_version_upgrade = true

  tags = var.tags
}

module "reader_url" {
  source = "../secret"

  name        = "${var.name}/edge/redis-url"
  description = "REDIS_URL of this region's edges: the secondary's reader endpoint (TLS, AUTH)"
  value       = "rediss://:${var.auth_token}@${aws_elasticache_replication_group.this.reader_endpoint_address}:6379"
  kms_key_arn = var.kms_key_arn
  tags        = var.tags
}
