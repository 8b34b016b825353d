# Container registries of one region for the images built from
# infra/Dockerfile: `writer`, `edge` and `edge-function` (the edge with the
# AWS Lambda Web Adapter), with customer-managed encryption, immutable tags,
# scanning and a lifecycle.
#
# The module is called once per region. In the home region it also
# replicates every image to the other regions. The repositories there are
# created by this module's own call in that region, before anything is
# replicated into them, so they carry the same key, tag immutability,
# scanning and lifecycle as the home ones (a repository that ECR creates on
# the fly for a replica would have none of these). A creation template
# covers the same settings for any repository ECR creates anyway.
#
# Images are deployed by digest: `image_uris` resolves each required digest
# in this region's registry, so a plan fails loudly while an image has not
# replicated yet, instead of a service rolling back to its previous image.
#
# Public images the tasks use (the OpenTelemetry collector, PostgreSQL's psql
# for the database-role step) come through a pull-through cache of ECR Public
# under `<name>-public/`, so tasks need no internet access.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id    = data.aws_caller_identity.current.account_id
  region        = data.aws_region.current.name
  registry      = "${local.account_id}.dkr.ecr.${local.region}.amazonaws.com"
  public_prefix = "${var.name}-public"
  keep_policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the newest ${var.keep_images} images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.keep_images
      }
      action = { type = "expire" }
    }]
  })
}

resource "aws_ecr_repository" "this" {
  for_each             = toset(["writer", "edge", "edge-function"])
  name                 = "${var.name}/${each.key}"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each   = aws_ecr_repository.this
  repository = each.value.name
  policy     = local.keep_policy
}

# Lambda pulls the function image with the service's own identity.
data "aws_iam_policy_document" "lambda_pull" {
  statement {
    sid     = "LambdaPull"
    actions = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "aws:sourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:lambda:${local.region}:${local.account_id}:function:*"]
    }
  }
}

resource "aws_ecr_repository_policy" "edge_function" {
  repository = aws_ecr_repository.this["edge-function"].name
  policy     = data.aws_iam_policy_document.lambda_pull.json
}

# Basic scanning of every image in this registry when it arrives, whether
# pushed or replicated.
resource "aws_ecr_registry_scanning_configuration" "this" {
  scan_type = "BASIC"

  rule {
    scan_frequency = "SCAN_ON_PUSH"
    repository_filter {
      filter      = "*"
      filter_type = "WILDCARD"
    }
  }
}

resource "aws_ecr_replication_configuration" "this" {
  count = length(var.replication_regions) > 0 ? 1 : 0

  replication_configuration {
    rule {
      dynamic "destination" {
        for_each = var.replication_regions
        content {
          region      = destination.value
          registry_id = local.account_id
        }
      }

      repository_filter {
        filter      = "${var.name}/"
        filter_type = "PREFIX_MATCH"
      }
    }
  }
}

# --- repositories ECR creates itself (replication races, pull-through cache) ---

data "aws_iam_policy_document" "templates_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecr.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "templates" {
  name_prefix        = "${substr(var.name, 0, 24)}-ecrtpl-"
  assume_role_policy = data.aws_iam_policy_document.templates_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "templates" {
  statement {
    sid     = "CreateRepositories"
    actions = ["ecr:CreateRepository", "ecr:ReplicateImage", "ecr:TagResource"]
    resources = [
      "arn:${data.aws_partition.current.partition}:ecr:${local.region}:${local.account_id}:repository/${var.name}/*",
      "arn:${data.aws_partition.current.partition}:ecr:${local.region}:${local.account_id}:repository/${local.public_prefix}/*",
    ]
  }

  statement {
    sid       = "EncryptWithTheRegionKey"
    actions   = ["kms:CreateGrant", "kms:RetireGrant", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "templates" {
  name   = "ecr-creation-templates"
  role   = aws_iam_role.templates.id
  policy = data.aws_iam_policy_document.templates.json
}

resource "aws_ecr_repository_creation_template" "replicas" {
  prefix               = var.name
  description          = "adcast images replicated into this region before their repository existed"
  applied_for          = ["REPLICATION"]
  custom_role_arn      = aws_iam_role.templates.arn
  image_tag_mutability = "IMMUTABLE"
  lifecycle_policy     = local.keep_policy

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

resource "aws_ecr_pull_through_cache_rule" "public" {
  ecr_repository_prefix = local.public_prefix
  upstream_registry_url = "public.ecr.aws"
}

resource "aws_ecr_repository_creation_template" "public" {
  prefix          = local.public_prefix
  description     = "Pull-through cache of ECR Public (collector, psql)"
  applied_for     = ["PULL_THROUGH_CACHE"]
  custom_role_arn = aws_iam_role.templates.arn
  # The cache refreshes a tag when upstream moves it.
  image_tag_mutability = "MUTABLE"
  lifecycle_policy     = local.keep_policy

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

# --- images by digest ---------------------------------------------------------

data "aws_ecr_image" "required" {
  for_each        = { for k, v in var.image_digests : k => v if v != null }
  repository_name = aws_ecr_repository.this[each.key].name
  image_digest    = each.value
}
