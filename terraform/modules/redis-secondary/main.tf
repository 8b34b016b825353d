# A read-only secondary of the Global Datastore in an edge region: edges there
# tail the stream locally, with cross-region replication lag (typically under
# a second) instead of a cross-region round trip per XREAD.
#
# In the recovery region it is also where a recovery writer publishes once
# the secondary has been promoted (failover) or detached (primary region
# gone): its security group admits writer_security_group_ids, and
# writer_redis_url_secret_arn points at its primary endpoint.
#
# AWS takes engine, version, node type, parameter group, encryption switches
# and AUTH from the Global Datastore's primary and rejects them here; the
# customer-managed key is per region and is given here.

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

  dynamic "ingress" {
    for_each = length(var.writer_security_group_ids) > 0 ? [1] : []
    content {
      description     = "Redis (TLS) from the recovery writer, after promotion"
      from_port       = 6379
      to_port         = 6379
      protocol        = "tcp"
      security_groups = var.writer_security_group_ids
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_elasticache_replication_group" "this" {
  #checkov:skip=CKV_AWS_29:Encryption at rest is a property of the Global Datastore, inherited from the primary; AWS rejects the argument on a secondary.
  #checkov:skip=CKV_AWS_30:Encryption in transit is inherited from the primary (transit_encryption_mode = required there); AWS rejects the argument on a secondary.
  #checkov:skip=CKV_AWS_31:AUTH and TLS are inherited from the primary of the Global Datastore.
  #checkov:skip=CKV2_AWS_50:Automatic failover follows num_cache_clusters: on with two or more nodes (the recovery region's default); a one-node secondary is a deliberate saving, its edges serve their last state while ElastiCache replaces the node.
  replication_group_id        = local.id
  description                 = "adcast change stream (read-only Global Datastore secondary)"
  global_replication_group_id = var.global_replication_group_id
  kms_key_id                  = var.kms_key_arn

  num_cache_clusters         = var.num_cache_clusters
  automatic_failover_enabled = var.num_cache_clusters >= 2
  multi_az_enabled           = var.num_cache_clusters >= 2
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.this.id]
  maintenance_window         = "sun:05:30-sun:06:30"
  auto_minor_version_upgrade = true

  tags = var.tags
}

module "writer_url" {
  source = "../secret"

  name        = "${var.name}/writer/redis-url"
  description = "REDIS_URL of a recovery writer in this region: the secondary's primary endpoint, writable once promoted or detached (TLS, AUTH)"
  value       = "rediss://:${var.auth_token}@${aws_elasticache_replication_group.this.primary_endpoint_address}:6379"
  kms_key_arn = var.kms_key_arn
  tags        = var.tags
}

module "reader_url" {
  source = "../secret"

  name        = "${var.name}/edge/redis-url"
  description = "REDIS_URL of this region's edges: the secondary's reader endpoint (TLS, AUTH)"
  value       = "rediss://:${var.auth_token}@${aws_elasticache_replication_group.this.reader_endpoint_address}:6379"
  kms_key_arn = var.kms_key_arn
  tags        = var.tags
}
