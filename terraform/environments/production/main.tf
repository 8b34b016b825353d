# adcast production: the writer, PostgreSQL and the Redis primary in
# primary_region; edge fleets in primary_region, edge_region_a and
# edge_region_b behind one latency-routed name.
#
#              Route 53 latency record  ads.example.com
#           ┌──────────────┼─────────────────┐
#        ALB+WAF        ALB+WAF           ALB+WAF
#        edges          edges             edges           (ECS Fargate, autoscaled)
#          │  Redis reader  │ Redis secondary │ Redis secondary   (Global Datastore)
#          │                │                 │
#        writer ◀─── VPC peering (forwarding, snapshot downloads) ───┘
#        RDS PostgreSQL Multi-AZ, Redis primary, S3 snapshots ──CRR──▶ S3 replicas

locals {
  name = "${var.project}-${var.environment}"
  tags = merge(var.tags, { project = var.project, environment = var.environment })

  primary_name = "${local.name}-${var.primary_region}"
  edge_a_name  = "${local.name}-${var.edge_region_a}"
  edge_b_name  = "${local.name}-${var.edge_region_b}"

  writer_image = "${module.ecr.repository_urls["writer"]}:${var.image_tag}"
  edge_image   = "${module.ecr.repository_urls["edge"]}:${var.image_tag}"
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

module "network_primary" {
  source             = "../../modules/network"
  providers          = { aws = aws.primary }
  name               = local.primary_name
  cidr_block         = var.primary_vpc_cidr
  availability_zones = var.primary_azs
  kms_key_arn        = module.base_primary.kms_key_arn
  tags               = local.tags
}

module "network_edge_a" {
  source             = "../../modules/network"
  providers          = { aws = aws.edge_a }
  name               = local.edge_a_name
  cidr_block         = var.edge_a_vpc_cidr
  availability_zones = var.edge_a_azs
  kms_key_arn        = module.base_edge_a.kms_key_arn
  tags               = local.tags
}

module "network_edge_b" {
  source             = "../../modules/network"
  providers          = { aws = aws.edge_b }
  name               = local.edge_b_name
  cidr_block         = var.edge_b_vpc_cidr
  availability_zones = var.edge_b_azs
  kms_key_arn        = module.base_edge_b.kms_key_arn
  tags               = local.tags
}

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

module "ecr" {
  source              = "../../modules/ecr"
  providers           = { aws = aws.primary }
  name                = local.name
  kms_key_arn         = module.base_primary.kms_key_arn
  replication_regions = [var.edge_region_a, var.edge_region_b]
  tags                = local.tags
}

module "cluster_primary" {
  source      = "../../modules/ecs-cluster"
  providers   = { aws = aws.primary }
  name        = local.primary_name
  kms_key_arn = module.base_primary.kms_key_arn
  tags        = local.tags
}

module "cluster_edge_a" {
  source      = "../../modules/ecs-cluster"
  providers   = { aws = aws.edge_a }
  name        = local.edge_a_name
  kms_key_arn = module.base_edge_a.kms_key_arn
  tags        = local.tags
}

module "cluster_edge_b" {
  source      = "../../modules/ecs-cluster"
  providers   = { aws = aws.edge_b }
  name        = local.edge_b_name
  kms_key_arn = module.base_edge_b.kms_key_arn
  tags        = local.tags
}

# --- tokens --------------------------------------------------------------------------

# The operators' admin token and the edges' own token (for /internal/v1/*).
# Both are in the writer's ADCAST_ADMIN_TOKENS; operators read theirs from
# the admin-tokens secret (the first entry). Rotate: DEPLOYING.md.
resource "random_password" "operator_token" {
  length  = 48
  special = false
}

resource "random_password" "edge_token" {
  length  = 48
  special = false
}

module "admin_tokens" {
  source      = "../../modules/secret"
  providers   = { aws = aws.primary }
  name        = "${local.name}/writer/admin-tokens"
  description = "ADCAST_ADMIN_TOKENS of the writer: the operators' token, then the edges' token"
  value       = join(",", [random_password.operator_token.result, random_password.edge_token.result])
  kms_key_arn = module.base_primary.kms_key_arn
  tags        = local.tags
}

module "edge_token" {
  source      = "../../modules/secret"
  providers   = { aws = aws.primary }
  name        = "${local.name}/edge/writer-token"
  description = "ADCAST_WRITER_TOKEN of every edge (replicated to the edge regions)"
  value       = random_password.edge_token.result
  kms_key_arn = module.base_primary.kms_key_arn
  replicas = [
    { region = var.edge_region_a, kms_key_arn = module.base_edge_a.kms_key_arn },
    { region = var.edge_region_b, kms_key_arn = module.base_edge_b.kms_key_arn },
  ]
  tags = local.tags
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

module "redis_primary" {
  source                    = "../../modules/redis-primary"
  providers                 = { aws = aws.primary }
  name                      = local.primary_name
  vpc_id                    = module.network_primary.vpc_id
  subnet_ids                = module.network_primary.private_subnet_ids
  client_security_group_ids = [module.writer.security_group_id, module.edge_primary.security_group_id]
  kms_key_arn               = module.base_primary.kms_key_arn
  node_type                 = var.redis_node_type
  tags                      = local.tags
}

module "redis_edge_a" {
  source                      = "../../modules/redis-secondary"
  providers                   = { aws = aws.edge_a }
  name                        = local.edge_a_name
  vpc_id                      = module.network_edge_a.vpc_id
  subnet_ids                  = module.network_edge_a.private_subnet_ids
  client_security_group_ids   = [module.edge_a.security_group_id]
  global_replication_group_id = module.redis_primary.global_replication_group_id
  auth_token                  = module.redis_primary.auth_token
  kms_key_arn                 = module.base_edge_a.kms_key_arn
  tags                        = local.tags
}

module "redis_edge_b" {
  source                      = "../../modules/redis-secondary"
  providers                   = { aws = aws.edge_b }
  name                        = local.edge_b_name
  vpc_id                      = module.network_edge_b.vpc_id
  subnet_ids                  = module.network_edge_b.private_subnet_ids
  client_security_group_ids   = [module.edge_b.security_group_id]
  global_replication_group_id = module.redis_primary.global_replication_group_id
  auth_token                  = module.redis_primary.auth_token
  kms_key_arn                 = module.base_edge_b.kms_key_arn
  tags                        = local.tags
}

# --- snapshot distribution -----------------------------------------------------------

module "snapshots_edge_a" {
  source          = "../../modules/snapshot-bucket"
  providers       = { aws = aws.edge_a }
  name            = "${local.edge_a_name}-snap"
  kms_key_arn     = module.base_edge_a.kms_key_arn
  log_bucket_name = module.base_edge_a.log_bucket_name
  tags            = local.tags
}

module "snapshots_edge_b" {
  source          = "../../modules/snapshot-bucket"
  providers       = { aws = aws.edge_b }
  name            = "${local.edge_b_name}-snap"
  kms_key_arn     = module.base_edge_b.kms_key_arn
  log_bucket_name = module.base_edge_b.log_bucket_name
  tags            = local.tags
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

# --- services ----------------------------------------------------------------------

module "writer" {
  source                  = "../../modules/writer-service"
  providers               = { aws = aws.primary }
  name                    = local.primary_name
  cluster_arn             = module.cluster_primary.cluster_arn
  cluster_name            = module.cluster_primary.cluster_name
  vpc_id                  = module.network_primary.vpc_id
  vpc_cidr_block          = module.network_primary.vpc_cidr_block
  subnet_ids              = module.network_primary.private_subnet_ids
  edge_security_group_ids = [module.edge_primary.security_group_id]
  edge_cidr_blocks        = [module.network_edge_a.vpc_cidr_block, module.network_edge_b.vpc_cidr_block]
  writer_image            = local.writer_image
  database_url_secret_arn = module.postgres.database_url_secret_arn
  redis_url_secret_arn    = module.redis_primary.writer_redis_url_secret_arn
  admin_tokens_secret_arn = module.admin_tokens.arn
  kms_key_arn             = module.base_primary.kms_key_arn
  snapshot_bucket_name    = module.snapshots_primary.bucket_name
  snapshot_bucket_arn     = module.snapshots_primary.bucket_arn
  alarm_topic_arn         = module.base_primary.alarm_topic_arn
  tags                    = local.tags
}

module "edge_primary" {
  source                         = "../../modules/edge-service"
  providers                      = { aws = aws.primary }
  name                           = local.primary_name
  cluster_arn                    = module.cluster_primary.cluster_arn
  cluster_name                   = module.cluster_primary.cluster_name
  vpc_id                         = module.network_primary.vpc_id
  vpc_cidr_block                 = module.network_primary.vpc_cidr_block
  writer_cidr_block              = module.network_primary.vpc_cidr_block
  private_subnet_ids             = module.network_primary.private_subnet_ids
  public_subnet_ids              = module.network_primary.public_subnet_ids
  edge_image                     = local.edge_image
  cpu                            = var.edge_cpu
  memory                         = var.edge_memory
  min_capacity                   = var.edge_min_capacity
  max_capacity                   = var.edge_max_capacity
  requests_per_target_per_minute = var.edge_requests_per_target_per_minute
  redis_url_secret_arn           = module.redis_primary.reader_redis_url_secret_arn
  writer_token_secret_arn        = module.edge_token.arn
  writer_url                     = module.writer.writer_url
  snapshot_bucket_name           = module.snapshots_primary.bucket_name
  snapshot_bucket_arn            = module.snapshots_primary.bucket_arn
  kms_key_arn                    = module.base_primary.kms_key_arn
  log_bucket_name                = module.base_primary.log_bucket_name
  domain_name                    = var.domain_name
  route53_zone_id                = var.route53_zone_id
  alarm_topic_arn                = module.base_primary.alarm_topic_arn
  tags                           = local.tags
}

module "edge_a" {
  source                         = "../../modules/edge-service"
  providers                      = { aws = aws.edge_a }
  name                           = local.edge_a_name
  cluster_arn                    = module.cluster_edge_a.cluster_arn
  cluster_name                   = module.cluster_edge_a.cluster_name
  vpc_id                         = module.network_edge_a.vpc_id
  vpc_cidr_block                 = module.network_edge_a.vpc_cidr_block
  writer_cidr_block              = module.network_primary.vpc_cidr_block
  private_subnet_ids             = module.network_edge_a.private_subnet_ids
  public_subnet_ids              = module.network_edge_a.public_subnet_ids
  edge_image                     = replace(local.edge_image, ".${var.primary_region}.", ".${var.edge_region_a}.")
  cpu                            = var.edge_cpu
  memory                         = var.edge_memory
  min_capacity                   = var.edge_min_capacity
  max_capacity                   = var.edge_max_capacity
  requests_per_target_per_minute = var.edge_requests_per_target_per_minute
  redis_url_secret_arn           = module.redis_edge_a.reader_redis_url_secret_arn
  writer_token_secret_arn        = replace(module.edge_token.arn, ":${var.primary_region}:", ":${var.edge_region_a}:")
  writer_url                     = module.writer.writer_url
  snapshot_bucket_name           = module.snapshots_edge_a.bucket_name
  snapshot_bucket_arn            = module.snapshots_edge_a.bucket_arn
  kms_key_arn                    = module.base_edge_a.kms_key_arn
  log_bucket_name                = module.base_edge_a.log_bucket_name
  domain_name                    = var.domain_name
  route53_zone_id                = var.route53_zone_id
  alarm_topic_arn                = module.base_edge_a.alarm_topic_arn
  tags                           = local.tags
}

module "edge_b" {
  source                         = "../../modules/edge-service"
  providers                      = { aws = aws.edge_b }
  name                           = local.edge_b_name
  cluster_arn                    = module.cluster_edge_b.cluster_arn
  cluster_name                   = module.cluster_edge_b.cluster_name
  vpc_id                         = module.network_edge_b.vpc_id
  vpc_cidr_block                 = module.network_edge_b.vpc_cidr_block
  writer_cidr_block              = module.network_primary.vpc_cidr_block
  private_subnet_ids             = module.network_edge_b.private_subnet_ids
  public_subnet_ids              = module.network_edge_b.public_subnet_ids
  edge_image                     = replace(local.edge_image, ".${var.primary_region}.", ".${var.edge_region_b}.")
  cpu                            = var.edge_cpu
  memory                         = var.edge_memory
  min_capacity                   = var.edge_min_capacity
  max_capacity                   = var.edge_max_capacity
  requests_per_target_per_minute = var.edge_requests_per_target_per_minute
  redis_url_secret_arn           = module.redis_edge_b.reader_redis_url_secret_arn
  writer_token_secret_arn        = replace(module.edge_token.arn, ":${var.primary_region}:", ":${var.edge_region_b}:")
  writer_url                     = module.writer.writer_url
  snapshot_bucket_name           = module.snapshots_edge_b.bucket_name
  snapshot_bucket_arn            = module.snapshots_edge_b.bucket_arn
  kms_key_arn                    = module.base_edge_b.kms_key_arn
  log_bucket_name                = module.base_edge_b.log_bucket_name
  domain_name                    = var.domain_name
  route53_zone_id                = var.route53_zone_id
  alarm_topic_arn                = module.base_edge_b.alarm_topic_arn
  tags                           = local.tags
}
