# adcast production: the writer, PostgreSQL and the Redis primary in
# primary_region; edge fleets in primary_region, edge_region_a and
# edge_region_b behind one latency-routed name (optionally behind a CDN).
# edge_region_a is also the recovery region: a standby writer, replicated
# database backups (or a replica) and the Redis secondary it would promote.
#
#                 (CloudFront + WAF, cdn_enabled)  ads.example.com
#              Route 53 latency record  ads.example.com | origin.ads.example.com
#           ┌──────────────┼─────────────────┐
#        ALB+WAF        ALB+WAF           ALB+WAF    (or API Gateway + Lambda
#        edges          edges             edges       per region: edge_platforms)
#          │  Redis reader  │ Redis secondary │ Redis secondary   (Global Datastore)
#          │                │                 │
#        writer ◀─── VPC peering (forwarding, snapshot downloads) ───┘
#        RDS Multi-AZ     standby writer, replicated RDS backups (edge_region_a)
#        S3 snapshots ──CRR──▶ S3 per region

locals {
  name = "${var.project}-${var.environment}"
  tags = merge(var.tags, { project = var.project, environment = var.environment })

  primary_name = "${local.name}-${var.primary_region}"
  edge_a_name  = "${local.name}-${var.edge_region_a}"
  edge_b_name  = "${local.name}-${var.edge_region_b}"

  # edge_region_a doubles as the recovery region (DEPLOYING.md, "The primary
  # region is gone").
  recovery_active = var.writer_active_region == "recovery"
  writer_url      = local.recovery_active ? module.writer_recovery.writer_url : module.writer.writer_url

  fargate = { for k, v in var.edge_platforms : k => v == "fargate" }

  # With a CDN in front, the regional records are the CDN's origin name and
  # the public name is the distribution's.
  origin_name   = "origin.${var.domain_name}"
  edge_dns_name = var.cdn_enabled ? local.origin_name : var.domain_name

  # Images by digest, looked up in each region's registry (ecr module).
  function_digest = var.edge_function_image_digest
  digests_primary = {
    writer          = var.writer_image_digest
    edge            = local.fargate.primary ? var.edge_image_digest : null
    "edge-function" = local.fargate.primary ? null : local.function_digest
  }
  digests_edge_a = {
    writer          = var.writer_image_digest
    edge            = local.fargate.edge_a ? var.edge_image_digest : null
    "edge-function" = local.fargate.edge_a ? null : local.function_digest
  }
  digests_edge_b = {
    edge            = local.fargate.edge_b ? var.edge_image_digest : null
    "edge-function" = local.fargate.edge_b ? null : local.function_digest
  }

  # Public images, through each region's pull-through cache of ECR Public.
  otel_image_path = "aws-observability/aws-otel-collector:v0.43.1"
  psql_image_path = "docker/library/postgres:16-alpine"
}

# Plan-time checks of choices that span several variables.
resource "terraform_data" "choices" {
  lifecycle {
    precondition {
      condition     = var.writer_image_digest != null
      error_message = "writer_image_digest is required (DEPLOYING.md, step 3)."
    }
    precondition {
      condition     = var.edge_image_digest != null || !anytrue(values(local.fargate))
      error_message = "edge_image_digest is required when a region runs Fargate edges."
    }
    precondition {
      condition     = var.edge_function_image_digest != null || alltrue(values(local.fargate))
      error_message = "edge_function_image_digest is required when a region runs function edges."
    }
    precondition {
      condition     = !(local.recovery_active && var.database_recovery_mode == "backups" && var.recovery_database_address == "")
      error_message = "A recovery writer in backups mode needs recovery_database_address (the restored instance): DEPLOYING.md, runbook step 3."
    }
  }
}

# --- per-region foundations ---------------------------------------------------------

module "base_primary" {
  source    = "../../modules/region-base"
  providers = { aws = aws.primary }
  name      = local.primary_name
  tags      = local.tags
}

module "base_edge_a" {
  source    = "../../modules/region-base"
  providers = { aws = aws.edge_a }
  name      = local.edge_a_name
  tags      = local.tags
}

module "base_edge_b" {
  source    = "../../modules/region-base"
  providers = { aws = aws.edge_b }
  name      = local.edge_b_name
  tags      = local.tags
}

# us-east-1, for the CDN's web ACL logs and alarm.
module "base_global" {
  source    = "../../modules/region-base"
  count     = var.cdn_enabled ? 1 : 0
  providers = { aws = aws.global }
  name      = "${local.name}-global"
  tags      = local.tags
}

module "network_primary" {
  source             = "../../modules/network"
  providers          = { aws = aws.primary }
  name               = local.primary_name
  cidr_block         = var.primary_vpc_cidr
  availability_zones = var.primary_azs
  nat_gateways       = var.nat_gateways
  kms_key_arn        = module.base_primary.kms_key_arn
  tags               = local.tags
}

module "network_edge_a" {
  source             = "../../modules/network"
  providers          = { aws = aws.edge_a }
  name               = local.edge_a_name
  cidr_block         = var.edge_a_vpc_cidr
  availability_zones = var.edge_a_azs
  nat_gateways       = var.nat_gateways
  kms_key_arn        = module.base_edge_a.kms_key_arn
  tags               = local.tags
}

module "network_edge_b" {
  source             = "../../modules/network"
  providers          = { aws = aws.edge_b }
  name               = local.edge_b_name
  cidr_block         = var.edge_b_vpc_cidr
  availability_zones = var.edge_b_azs
  nat_gateways       = var.nat_gateways
  kms_key_arn        = module.base_edge_b.kms_key_arn
  tags               = local.tags
}

# Full mesh: edges reach the writer wherever it runs (primary, or the
# recovery region after a failover).
module "peering_edge_a" {
  source = "../../modules/vpc-peering"
  providers = {
    aws.requester = aws.primary
    aws.accepter  = aws.edge_a
  }
  name                      = "${local.name}-${var.primary_region}-to-${var.edge_region_a}"
  requester_vpc_id          = module.network_primary.vpc_id
  requester_cidr_block      = module.network_primary.vpc_cidr_block
  requester_route_table_ids = module.network_primary.private_route_table_ids
  accepter_vpc_id           = module.network_edge_a.vpc_id
  accepter_region           = var.edge_region_a
  accepter_cidr_block       = module.network_edge_a.vpc_cidr_block
  accepter_route_table_ids  = module.network_edge_a.private_route_table_ids
  private_zone_ids          = [module.writer.private_zone_id]
  tags                      = local.tags
}

module "peering_edge_b" {
  source = "../../modules/vpc-peering"
  providers = {
    aws.requester = aws.primary
    aws.accepter  = aws.edge_b
  }
  name                      = "${local.name}-${var.primary_region}-to-${var.edge_region_b}"
  requester_vpc_id          = module.network_primary.vpc_id
  requester_cidr_block      = module.network_primary.vpc_cidr_block
  requester_route_table_ids = module.network_primary.private_route_table_ids
  accepter_vpc_id           = module.network_edge_b.vpc_id
  accepter_region           = var.edge_region_b
  accepter_cidr_block       = module.network_edge_b.vpc_cidr_block
  accepter_route_table_ids  = module.network_edge_b.private_route_table_ids
  private_zone_ids          = [module.writer.private_zone_id]
  tags                      = local.tags
}

module "peering_a_b" {
  source = "../../modules/vpc-peering"
  providers = {
    aws.requester = aws.edge_a
    aws.accepter  = aws.edge_b
  }
  name                      = "${local.name}-${var.edge_region_a}-to-${var.edge_region_b}"
  requester_vpc_id          = module.network_edge_a.vpc_id
  requester_cidr_block      = module.network_edge_a.vpc_cidr_block
  requester_route_table_ids = module.network_edge_a.private_route_table_ids
  accepter_vpc_id           = module.network_edge_b.vpc_id
  accepter_region           = var.edge_region_b
  accepter_cidr_block       = module.network_edge_b.vpc_cidr_block
  accepter_route_table_ids  = module.network_edge_b.private_route_table_ids
  private_zone_ids          = [module.writer_recovery.private_zone_id]
  tags                      = local.tags
}

# Registries: the home one replicates into the others, which exist first.
module "ecr_edge_a" {
  source        = "../../modules/ecr"
  providers     = { aws = aws.edge_a }
  name          = local.name
  kms_key_arn   = module.base_edge_a.kms_key_arn
  image_digests = local.digests_edge_a
  tags          = local.tags
}

module "ecr_edge_b" {
  source        = "../../modules/ecr"
  providers     = { aws = aws.edge_b }
  name          = local.name
  kms_key_arn   = module.base_edge_b.kms_key_arn
  image_digests = local.digests_edge_b
  tags          = local.tags
}

module "ecr" {
  source              = "../../modules/ecr"
  providers           = { aws = aws.primary }
  name                = local.name
  kms_key_arn         = module.base_primary.kms_key_arn
  replication_regions = [var.edge_region_a, var.edge_region_b]
  image_digests       = local.digests_primary
  tags                = local.tags

  depends_on = [module.ecr_edge_a, module.ecr_edge_b]
}

module "cluster_primary" {
  source          = "../../modules/ecs-cluster"
  providers       = { aws = aws.primary }
  name            = local.primary_name
  kms_key_arn     = module.base_primary.kms_key_arn
  alarm_topic_arn = module.base_primary.alarm_topic_arn
  tags            = local.tags
}

module "cluster_edge_a" {
  source          = "../../modules/ecs-cluster"
  providers       = { aws = aws.edge_a }
  name            = local.edge_a_name
  kms_key_arn     = module.base_edge_a.kms_key_arn
  alarm_topic_arn = module.base_edge_a.alarm_topic_arn
  tags            = local.tags
}

module "cluster_edge_b" {
  source          = "../../modules/ecs-cluster"
  providers       = { aws = aws.edge_b }
  name            = local.edge_b_name
  kms_key_arn     = module.base_edge_b.kms_key_arn
  alarm_topic_arn = module.base_edge_b.alarm_topic_arn
  tags            = local.tags
}

# --- tokens --------------------------------------------------------------------------

# Three scopes (DEPLOYING.md, "Tokens"): operators change ads (admin),
# viewers only look (read), edges fetch snapshots (internal). Each is
# labelled, so every change records who made it. Edges hold only the
# internal token. The writer's secrets are replicated to the recovery region.
resource "random_password" "operator_token" {
  length  = 48
  special = false
}

resource "random_password" "viewer_token" {
  length  = 48
  special = false
}

resource "random_password" "edge_token" {
  length  = 48
  special = false
}

locals {
  recovery_replica = [{ region = var.edge_region_a, kms_key_arn = module.base_edge_a.kms_key_arn }]
}

module "admin_tokens" {
  source      = "../../modules/secret"
  providers   = { aws = aws.primary }
  name        = "${local.name}/writer/admin-tokens"
  description = "ADCAST_ADMIN_TOKENS of the writer (label:token): operators who change ads"
  value       = "operator:${random_password.operator_token.result}"
  kms_key_arn = module.base_primary.kms_key_arn
  replicas    = local.recovery_replica
  tags        = local.tags
}

module "read_tokens" {
  source      = "../../modules/secret"
  providers   = { aws = aws.primary }
  name        = "${local.name}/writer/read-tokens"
  description = "ADCAST_READ_TOKENS of the writer (label:token): people and tools that only look"
  value       = "viewer:${random_password.viewer_token.result}"
  kms_key_arn = module.base_primary.kms_key_arn
  replicas    = local.recovery_replica
  tags        = local.tags
}

module "internal_tokens" {
  source      = "../../modules/secret"
  providers   = { aws = aws.primary }
  name        = "${local.name}/writer/internal-tokens"
  description = "ADCAST_INTERNAL_TOKENS of the writer (label:token): the edges, /internal/v1/* only"
  value       = "edge:${random_password.edge_token.result}"
  kms_key_arn = module.base_primary.kms_key_arn
  replicas    = local.recovery_replica
  tags        = local.tags
}

module "edge_token" {
  source      = "../../modules/secret"
  providers   = { aws = aws.primary }
  name        = "${local.name}/edge/writer-token"
  description = "ADCAST_WRITER_TOKEN of every edge: the internal-scope token (replicated to the edge regions)"
  value       = random_password.edge_token.result
  kms_key_arn = module.base_primary.kms_key_arn
  replicas = [
    { region = var.edge_region_a, kms_key_arn = module.base_edge_a.kms_key_arn },
    { region = var.edge_region_b, kms_key_arn = module.base_edge_b.kms_key_arn },
  ]
  tags = local.tags
}

locals {
  # A replica secret's ARN is the home one with the region replaced.
  in_edge_a = { from = ":${var.primary_region}:", to = ":${var.edge_region_a}:" }
  in_edge_b = { from = ":${var.primary_region}:", to = ":${var.edge_region_b}:" }
}

# --- data stores -------------------------------------------------------------------

module "postgres" {
  source                    = "../../modules/postgres"
  providers                 = { aws = aws.primary }
  name                      = local.primary_name
  vpc_id                    = module.network_primary.vpc_id
  subnet_ids                = module.network_primary.private_subnet_ids
  client_security_group_ids = [module.writer.security_group_id]
  kms_key_arn               = module.base_primary.kms_key_arn
  instance_class            = var.db_instance_class
  alarm_topic_arn           = module.base_primary.alarm_topic_arn
  tags                      = local.tags
}

module "postgres_recovery" {
  source                    = "../../modules/postgres-recovery"
  providers                 = { aws = aws.edge_a }
  name                      = local.edge_a_name
  mode                      = var.database_recovery_mode
  source_db_instance_arn    = module.postgres.instance_arn
  vpc_id                    = module.network_edge_a.vpc_id
  subnet_ids                = module.network_edge_a.private_subnet_ids
  client_security_group_ids = [module.writer_recovery.security_group_id]
  kms_key_arn               = module.base_edge_a.kms_key_arn
  instance_class            = var.db_instance_class
  port                      = module.postgres.port
  database_name             = module.postgres.database_name
  master_username           = module.postgres.master_username
  master_password           = module.postgres.master_password
  runtime_role              = module.postgres.runtime_role
  runtime_password          = module.postgres.runtime_password
  recovery_database_address = var.recovery_database_address
  alarm_topic_arn           = module.base_edge_a.alarm_topic_arn
  tags                      = local.tags
}

module "redis_primary" {
  source     = "../../modules/redis-primary"
  providers  = { aws = aws.primary }
  name       = local.primary_name
  vpc_id     = module.network_primary.vpc_id
  subnet_ids = module.network_primary.private_subnet_ids
  client_security_group_ids = concat(
    [module.writer.security_group_id],
    module.edge_primary[*].security_group_id,
    module.edge_function_primary[*].security_group_id,
  )
  kms_key_arn                = module.base_primary.kms_key_arn
  node_type                  = var.redis_node_type
  num_cache_clusters         = var.redis_primary_nodes
  auth_token_update_strategy = var.redis_auth_token_update_strategy
  tags                       = local.tags
}

module "redis_edge_a" {
  source     = "../../modules/redis-secondary"
  providers  = { aws = aws.edge_a }
  name       = local.edge_a_name
  vpc_id     = module.network_edge_a.vpc_id
  subnet_ids = module.network_edge_a.private_subnet_ids
  client_security_group_ids = concat(
    module.edge_a[*].security_group_id,
    module.edge_function_a[*].security_group_id,
  )
  writer_security_group_ids   = [module.writer_recovery.security_group_id]
  global_replication_group_id = module.redis_primary.global_replication_group_id
  auth_token                  = module.redis_primary.auth_token
  num_cache_clusters          = var.redis_recovery_nodes
  kms_key_arn                 = module.base_edge_a.kms_key_arn
  tags                        = local.tags
}

module "redis_edge_b" {
  source     = "../../modules/redis-secondary"
  providers  = { aws = aws.edge_b }
  name       = local.edge_b_name
  vpc_id     = module.network_edge_b.vpc_id
  subnet_ids = module.network_edge_b.private_subnet_ids
  client_security_group_ids = concat(
    module.edge_b[*].security_group_id,
    module.edge_function_b[*].security_group_id,
  )
  global_replication_group_id = module.redis_primary.global_replication_group_id
  auth_token                  = module.redis_primary.auth_token
  num_cache_clusters          = var.redis_edge_b_nodes
  kms_key_arn                 = module.base_edge_b.kms_key_arn
  tags                        = local.tags
}

# --- snapshot distribution -----------------------------------------------------------

module "snapshots_edge_b" {
  source          = "../../modules/snapshot-bucket"
  providers       = { aws = aws.edge_b }
  name            = "${local.edge_b_name}-snap"
  kms_key_arn     = module.base_edge_b.kms_key_arn
  log_bucket_name = module.base_edge_b.log_bucket_name
  tags            = local.tags
}

# Receives the primary's snapshots; what a recovery writer uploads here goes
# on to edge_region_b.
module "snapshots_edge_a" {
  source          = "../../modules/snapshot-bucket"
  providers       = { aws = aws.edge_a }
  name            = "${local.edge_a_name}-snap"
  kms_key_arn     = module.base_edge_a.kms_key_arn
  log_bucket_name = module.base_edge_a.log_bucket_name
  replication_destinations = [
    { bucket_arn = module.snapshots_edge_b.bucket_arn, kms_key_arn = module.base_edge_b.kms_key_arn },
  ]
  tags = local.tags
}

module "snapshots_primary" {
  source          = "../../modules/snapshot-bucket"
  providers       = { aws = aws.primary }
  name            = "${local.primary_name}-snap"
  kms_key_arn     = module.base_primary.kms_key_arn
  log_bucket_name = module.base_primary.log_bucket_name
  replication_destinations = [
    { bucket_arn = module.snapshots_edge_a.bucket_arn, kms_key_arn = module.base_edge_a.kms_key_arn },
    { bucket_arn = module.snapshots_edge_b.bucket_arn, kms_key_arn = module.base_edge_b.kms_key_arn },
  ]
  tags = local.tags
}

# --- certificates ----------------------------------------------------------------------

module "cert_primary" {
  source                  = "../../modules/certificate"
  providers               = { aws = aws.primary }
  domain_name             = local.edge_dns_name
  validation_record_fqdns = [aws_route53_record.certificate_validation[local.edge_dns_name].fqdn]
  tags                    = local.tags
}

module "cert_edge_a" {
  source                  = "../../modules/certificate"
  providers               = { aws = aws.edge_a }
  domain_name             = local.edge_dns_name
  validation_record_fqdns = [aws_route53_record.certificate_validation[local.edge_dns_name].fqdn]
  tags                    = local.tags
}

module "cert_edge_b" {
  source                  = "../../modules/certificate"
  providers               = { aws = aws.edge_b }
  domain_name             = local.edge_dns_name
  validation_record_fqdns = [aws_route53_record.certificate_validation[local.edge_dns_name].fqdn]
  tags                    = local.tags
}

module "cert_global" {
  source                  = "../../modules/certificate"
  count                   = var.cdn_enabled ? 1 : 0
  providers               = { aws = aws.global }
  domain_name             = var.domain_name
  validation_record_fqdns = [aws_route53_record.certificate_validation[var.domain_name].fqdn]
  tags                    = local.tags
}

# One validation record per name, shared by every region's certificate
# (ACM asks the same record of all of them).
resource "aws_route53_record" "certificate_validation" {
  for_each = toset(compact([local.edge_dns_name, var.cdn_enabled ? var.domain_name : ""]))
  zone_id  = var.route53_zone_id
  name     = local.validation_records[each.key].name
  type     = local.validation_records[each.key].type
  records  = [local.validation_records[each.key].value]
  ttl      = 300
}

locals {
  validation_records = merge(
    module.cert_primary.validation_records,
    var.cdn_enabled ? module.cert_global[0].validation_records : {},
  )
}

# --- writers ----------------------------------------------------------------------------

module "writer" {
  source                              = "../../modules/writer-service"
  providers                           = { aws = aws.primary }
  name                                = local.primary_name
  desired_count                       = local.recovery_active ? 0 : 1
  cluster_arn                         = module.cluster_primary.cluster_arn
  cluster_name                        = module.cluster_primary.cluster_name
  vpc_id                              = module.network_primary.vpc_id
  vpc_cidr_block                      = module.network_primary.vpc_cidr_block
  subnet_ids                          = module.network_primary.private_subnet_ids
  https_egress_cidr_blocks            = module.network_primary.https_egress_cidr_blocks
  s3_prefix_list_id                   = module.network_primary.s3_prefix_list_id
  edge_security_group_ids             = concat(module.edge_primary[*].security_group_id, module.edge_function_primary[*].security_group_id)
  edge_cidr_blocks                    = [module.network_edge_a.vpc_cidr_block, module.network_edge_b.vpc_cidr_block]
  writer_image                        = module.ecr.image_uris["writer"]
  psql_image                          = "${module.ecr.public_mirror}/${local.psql_image_path}"
  otel_collector_image                = "${module.ecr.public_mirror}/${local.otel_image_path}"
  public_mirror_repository_arn_prefix = module.ecr.public_mirror_repository_arn_prefix
  stream_key                          = var.stream_key
  database_address                    = module.postgres.address
  database_port                       = module.postgres.port
  database_name                       = module.postgres.database_name
  database_master_username            = module.postgres.master_username
  database_runtime_role               = module.postgres.runtime_role
  database_master_secret_arn          = module.postgres.master_secret_arn
  database_runtime_secret_arn         = module.postgres.runtime_secret_arn
  redis_url_secret_arn                = module.redis_primary.writer_redis_url_secret_arn
  admin_tokens_secret_arn             = module.admin_tokens.arn
  read_tokens_secret_arn              = module.read_tokens.arn
  internal_tokens_secret_arn          = module.internal_tokens.arn
  kms_key_arn                         = module.base_primary.kms_key_arn
  snapshot_bucket_name                = module.snapshots_primary.bucket_name
  snapshot_bucket_arn                 = module.snapshots_primary.bucket_arn
  alarm_topic_arn                     = module.base_primary.alarm_topic_arn
  tags                                = local.tags
}

# The standby: complete, with no task until writer_active_region = "recovery".
module "writer_recovery" {
  source                              = "../../modules/writer-service"
  providers                           = { aws = aws.edge_a }
  name                                = local.edge_a_name
  desired_count                       = local.recovery_active ? 1 : 0
  cluster_arn                         = module.cluster_edge_a.cluster_arn
  cluster_name                        = module.cluster_edge_a.cluster_name
  vpc_id                              = module.network_edge_a.vpc_id
  vpc_cidr_block                      = module.network_edge_a.vpc_cidr_block
  subnet_ids                          = module.network_edge_a.private_subnet_ids
  https_egress_cidr_blocks            = module.network_edge_a.https_egress_cidr_blocks
  s3_prefix_list_id                   = module.network_edge_a.s3_prefix_list_id
  edge_security_group_ids             = concat(module.edge_a[*].security_group_id, module.edge_function_a[*].security_group_id)
  edge_cidr_blocks                    = [module.network_primary.vpc_cidr_block, module.network_edge_b.vpc_cidr_block]
  writer_image                        = module.ecr_edge_a.image_uris["writer"]
  psql_image                          = "${module.ecr_edge_a.public_mirror}/${local.psql_image_path}"
  otel_collector_image                = "${module.ecr_edge_a.public_mirror}/${local.otel_image_path}"
  public_mirror_repository_arn_prefix = module.ecr_edge_a.public_mirror_repository_arn_prefix
  stream_key                          = var.stream_key
  private_dns_namespace               = "recovery.adcast.internal"
  database_address                    = module.postgres_recovery.address
  database_port                       = module.postgres.port
  database_name                       = module.postgres.database_name
  database_master_username            = module.postgres.master_username
  database_runtime_role               = module.postgres.runtime_role
  database_master_secret_arn          = module.postgres_recovery.master_secret_arn
  database_runtime_secret_arn         = module.postgres_recovery.runtime_secret_arn
  redis_url_secret_arn                = module.redis_edge_a.writer_redis_url_secret_arn
  admin_tokens_secret_arn             = replace(module.admin_tokens.arn, local.in_edge_a.from, local.in_edge_a.to)
  read_tokens_secret_arn              = replace(module.read_tokens.arn, local.in_edge_a.from, local.in_edge_a.to)
  internal_tokens_secret_arn          = replace(module.internal_tokens.arn, local.in_edge_a.from, local.in_edge_a.to)
  kms_key_arn                         = module.base_edge_a.kms_key_arn
  snapshot_bucket_name                = module.snapshots_edge_a.bucket_name
  snapshot_bucket_arn                 = module.snapshots_edge_a.bucket_arn
  alarm_topic_arn                     = module.base_edge_a.alarm_topic_arn
  tags                                = local.tags
}

# --- edges: Fargate or function per region (edge_platforms) --------------------------

module "edge_primary" {
  source                              = "../../modules/edge-service"
  count                               = local.fargate.primary ? 1 : 0
  providers                           = { aws = aws.primary }
  name                                = local.primary_name
  cluster_arn                         = module.cluster_primary.cluster_arn
  cluster_name                        = module.cluster_primary.cluster_name
  vpc_id                              = module.network_primary.vpc_id
  vpc_cidr_block                      = module.network_primary.vpc_cidr_block
  writer_cidr_blocks                  = [module.network_primary.vpc_cidr_block, module.network_edge_a.vpc_cidr_block]
  https_egress_cidr_blocks            = module.network_primary.https_egress_cidr_blocks
  s3_prefix_list_id                   = module.network_primary.s3_prefix_list_id
  private_subnet_ids                  = module.network_primary.private_subnet_ids
  public_subnet_ids                   = module.network_primary.public_subnet_ids
  edge_image                          = module.ecr.image_uris["edge"]
  otel_collector_image                = "${module.ecr.public_mirror}/${local.otel_image_path}"
  public_mirror_repository_arn_prefix = module.ecr.public_mirror_repository_arn_prefix
  stream_key                          = var.stream_key
  cpu                                 = var.edge_cpu
  memory                              = var.edge_memory
  min_capacity                        = var.edge_min_capacity
  max_capacity                        = var.edge_max_capacity
  requests_per_target_per_minute      = var.edge_requests_per_target_per_minute
  redis_url_secret_arn                = module.redis_primary.reader_redis_url_secret_arn
  writer_token_secret_arn             = module.edge_token.arn
  writer_url                          = local.writer_url
  snapshot_bucket_name                = module.snapshots_primary.bucket_name
  snapshot_bucket_arn                 = module.snapshots_primary.bucket_arn
  kms_key_arn                         = module.base_primary.kms_key_arn
  log_bucket_name                     = module.base_primary.log_bucket_name
  dns_name                            = local.edge_dns_name
  certificate_arn                     = module.cert_primary.arn
  route53_zone_id                     = var.route53_zone_id
  cloudfront_only                     = var.cdn_enabled
  origin_verify_secret                = random_password.origin_verify.result
  waf_enabled                         = !var.cdn_enabled
  shield_advanced                     = var.shield_advanced && !var.cdn_enabled
  alarm_topic_arn                     = module.base_primary.alarm_topic_arn
  tags                                = local.tags
}

module "edge_function_primary" {
  source                  = "../../modules/edge-function"
  count                   = local.fargate.primary ? 0 : 1
  providers               = { aws = aws.primary }
  name                    = local.primary_name
  function_image          = module.ecr.image_uris["edge-function"]
  vpc_id                  = module.network_primary.vpc_id
  vpc_cidr_block          = module.network_primary.vpc_cidr_block
  private_subnet_ids      = module.network_primary.private_subnet_ids
  writer_cidr_blocks      = [module.network_primary.vpc_cidr_block, module.network_edge_a.vpc_cidr_block]
  s3_prefix_list_id       = module.network_primary.s3_prefix_list_id
  redis_url               = module.redis_primary.reader_redis_url
  writer_token            = random_password.edge_token.result
  writer_url              = local.writer_url
  stream_key              = var.stream_key
  snapshot_bucket_name    = module.snapshots_primary.bucket_name
  snapshot_bucket_arn     = module.snapshots_primary.bucket_arn
  memory_mb               = var.function_memory_mb
  reserved_concurrency    = var.function_reserved_concurrency
  provisioned_concurrency = var.function_provisioned_concurrency
  dns_name                = local.edge_dns_name
  certificate_arn         = module.cert_primary.arn
  route53_zone_id         = var.route53_zone_id
  kms_key_arn             = module.base_primary.kms_key_arn
  alarm_topic_arn         = module.base_primary.alarm_topic_arn
  tags                    = local.tags
}

module "edge_a" {
  source                              = "../../modules/edge-service"
  count                               = local.fargate.edge_a ? 1 : 0
  providers                           = { aws = aws.edge_a }
  name                                = local.edge_a_name
  cluster_arn                         = module.cluster_edge_a.cluster_arn
  cluster_name                        = module.cluster_edge_a.cluster_name
  vpc_id                              = module.network_edge_a.vpc_id
  vpc_cidr_block                      = module.network_edge_a.vpc_cidr_block
  writer_cidr_blocks                  = [module.network_primary.vpc_cidr_block, module.network_edge_a.vpc_cidr_block]
  https_egress_cidr_blocks            = module.network_edge_a.https_egress_cidr_blocks
  s3_prefix_list_id                   = module.network_edge_a.s3_prefix_list_id
  private_subnet_ids                  = module.network_edge_a.private_subnet_ids
  public_subnet_ids                   = module.network_edge_a.public_subnet_ids
  edge_image                          = module.ecr_edge_a.image_uris["edge"]
  otel_collector_image                = "${module.ecr_edge_a.public_mirror}/${local.otel_image_path}"
  public_mirror_repository_arn_prefix = module.ecr_edge_a.public_mirror_repository_arn_prefix
  stream_key                          = var.stream_key
  cpu                                 = var.edge_cpu
  memory                              = var.edge_memory
  min_capacity                        = var.edge_min_capacity
  max_capacity                        = var.edge_max_capacity
  requests_per_target_per_minute      = var.edge_requests_per_target_per_minute
  redis_url_secret_arn                = module.redis_edge_a.reader_redis_url_secret_arn
  writer_token_secret_arn             = replace(module.edge_token.arn, local.in_edge_a.from, local.in_edge_a.to)
  writer_url                          = local.writer_url
  snapshot_bucket_name                = module.snapshots_edge_a.bucket_name
  snapshot_bucket_arn                 = module.snapshots_edge_a.bucket_arn
  kms_key_arn                         = module.base_edge_a.kms_key_arn
  log_bucket_name                     = module.base_edge_a.log_bucket_name
  dns_name                            = local.edge_dns_name
  certificate_arn                     = module.cert_edge_a.arn
  route53_zone_id                     = var.route53_zone_id
  cloudfront_only                     = var.cdn_enabled
  origin_verify_secret                = random_password.origin_verify.result
  waf_enabled                         = !var.cdn_enabled
  shield_advanced                     = var.shield_advanced && !var.cdn_enabled
  alarm_topic_arn                     = module.base_edge_a.alarm_topic_arn
  tags                                = local.tags
}

module "edge_function_a" {
  source                  = "../../modules/edge-function"
  count                   = local.fargate.edge_a ? 0 : 1
  providers               = { aws = aws.edge_a }
  name                    = local.edge_a_name
  function_image          = module.ecr_edge_a.image_uris["edge-function"]
  vpc_id                  = module.network_edge_a.vpc_id
  vpc_cidr_block          = module.network_edge_a.vpc_cidr_block
  private_subnet_ids      = module.network_edge_a.private_subnet_ids
  writer_cidr_blocks      = [module.network_primary.vpc_cidr_block, module.network_edge_a.vpc_cidr_block]
  s3_prefix_list_id       = module.network_edge_a.s3_prefix_list_id
  redis_url               = module.redis_edge_a.reader_redis_url
  writer_token            = random_password.edge_token.result
  writer_url              = local.writer_url
  stream_key              = var.stream_key
  snapshot_bucket_name    = module.snapshots_edge_a.bucket_name
  snapshot_bucket_arn     = module.snapshots_edge_a.bucket_arn
  memory_mb               = var.function_memory_mb
  reserved_concurrency    = var.function_reserved_concurrency
  provisioned_concurrency = var.function_provisioned_concurrency
  dns_name                = local.edge_dns_name
  certificate_arn         = module.cert_edge_a.arn
  route53_zone_id         = var.route53_zone_id
  kms_key_arn             = module.base_edge_a.kms_key_arn
  alarm_topic_arn         = module.base_edge_a.alarm_topic_arn
  tags                    = local.tags
}

module "edge_b" {
  source                              = "../../modules/edge-service"
  count                               = local.fargate.edge_b ? 1 : 0
  providers                           = { aws = aws.edge_b }
  name                                = local.edge_b_name
  cluster_arn                         = module.cluster_edge_b.cluster_arn
  cluster_name                        = module.cluster_edge_b.cluster_name
  vpc_id                              = module.network_edge_b.vpc_id
  vpc_cidr_block                      = module.network_edge_b.vpc_cidr_block
  writer_cidr_blocks                  = [module.network_primary.vpc_cidr_block, module.network_edge_a.vpc_cidr_block]
  https_egress_cidr_blocks            = module.network_edge_b.https_egress_cidr_blocks
  s3_prefix_list_id                   = module.network_edge_b.s3_prefix_list_id
  private_subnet_ids                  = module.network_edge_b.private_subnet_ids
  public_subnet_ids                   = module.network_edge_b.public_subnet_ids
  edge_image                          = module.ecr_edge_b.image_uris["edge"]
  otel_collector_image                = "${module.ecr_edge_b.public_mirror}/${local.otel_image_path}"
  public_mirror_repository_arn_prefix = module.ecr_edge_b.public_mirror_repository_arn_prefix
  stream_key                          = var.stream_key
  cpu                                 = var.edge_cpu
  memory                              = var.edge_memory
  min_capacity                        = var.edge_min_capacity
  max_capacity                        = var.edge_max_capacity
  requests_per_target_per_minute      = var.edge_requests_per_target_per_minute
  redis_url_secret_arn                = module.redis_edge_b.reader_redis_url_secret_arn
  writer_token_secret_arn             = replace(module.edge_token.arn, local.in_edge_b.from, local.in_edge_b.to)
  writer_url                          = local.writer_url
  snapshot_bucket_name                = module.snapshots_edge_b.bucket_name
  snapshot_bucket_arn                 = module.snapshots_edge_b.bucket_arn
  kms_key_arn                         = module.base_edge_b.kms_key_arn
  log_bucket_name                     = module.base_edge_b.log_bucket_name
  dns_name                            = local.edge_dns_name
  certificate_arn                     = module.cert_edge_b.arn
  route53_zone_id                     = var.route53_zone_id
  cloudfront_only                     = var.cdn_enabled
  origin_verify_secret                = random_password.origin_verify.result
  waf_enabled                         = !var.cdn_enabled
  shield_advanced                     = var.shield_advanced && !var.cdn_enabled
  alarm_topic_arn                     = module.base_edge_b.alarm_topic_arn
  tags                                = local.tags
}

module "edge_function_b" {
  source                  = "../../modules/edge-function"
  count                   = local.fargate.edge_b ? 0 : 1
  providers               = { aws = aws.edge_b }
  name                    = local.edge_b_name
  function_image          = module.ecr_edge_b.image_uris["edge-function"]
  vpc_id                  = module.network_edge_b.vpc_id
  vpc_cidr_block          = module.network_edge_b.vpc_cidr_block
  private_subnet_ids      = module.network_edge_b.private_subnet_ids
  writer_cidr_blocks      = [module.network_primary.vpc_cidr_block, module.network_edge_a.vpc_cidr_block]
  s3_prefix_list_id       = module.network_edge_b.s3_prefix_list_id
  redis_url               = module.redis_edge_b.reader_redis_url
  writer_token            = random_password.edge_token.result
  writer_url              = local.writer_url
  stream_key              = var.stream_key
  snapshot_bucket_name    = module.snapshots_edge_b.bucket_name
  snapshot_bucket_arn     = module.snapshots_edge_b.bucket_arn
  memory_mb               = var.function_memory_mb
  reserved_concurrency    = var.function_reserved_concurrency
  provisioned_concurrency = var.function_provisioned_concurrency
  dns_name                = local.edge_dns_name
  certificate_arn         = module.cert_edge_b.arn
  route53_zone_id         = var.route53_zone_id
  kms_key_arn             = module.base_edge_b.kms_key_arn
  alarm_topic_arn         = module.base_edge_b.alarm_topic_arn
  tags                    = local.tags
}

# --- CDN (cdn_enabled) --------------------------------------------------------------------

# Added by CloudFront to every origin request; the load balancers forward
# only requests that carry it.
resource "random_password" "origin_verify" {
  length  = 40
  special = false
}

module "cdn" {
  source               = "../../modules/cdn"
  count                = var.cdn_enabled ? 1 : 0
  providers            = { aws = aws.global }
  name                 = local.name
  domain_name          = var.domain_name
  origin_domain_name   = local.origin_name
  origin_verify_secret = random_password.origin_verify.result
  shield_advanced      = var.shield_advanced
  certificate_arn      = module.cert_global[0].arn
  route53_zone_id      = var.route53_zone_id
  kms_key_arn          = module.base_global[0].kms_key_arn
  alarm_topic_arn      = module.base_global[0].alarm_topic_arn
  tags                 = local.tags
}
