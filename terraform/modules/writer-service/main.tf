# The central writer on ECS Fargate: one task (the Admin API, outbox relay and
# snapshot producer), registered in Cloud Map as writer.<namespace> so edges
# in every region reach it over the peered VPCs.
#
# Task layout (one network namespace, shared volumes):
#   volume-init      root, one-shot: hands the snapshot volume to uid 10001
#   writer           adcast-writer, uid 10001, read-only root file system
#   snapshot-shipper aws s3 sync of ADCAST_SNAPSHOT_DIR to s3://bucket/snapshots/
#                    every snapshot_sync_interval_seconds (mirror: --delete)
#   otel-collector   scrapes localhost:8081/metrics into CloudWatch (EMF)
#
# Deployments start the new task before stopping the old one: two writers
# for a moment are safe by design (advisory lock, idempotent XADD ids).

data "aws_region" "current" {}

locals {
  region        = data.aws_region.current.name
  service_label = "${var.name}-writer"
  snapshot_dir  = "/var/lib/adcast/snapshots"
  metrics_group = "/adcast/${var.name}/writer-metrics"

  shipper_script = <<-SH
    set -u
    sync_once() {
      aws s3 sync "${local.snapshot_dir}" "s3://${var.snapshot_bucket_name}/snapshots/" \
        --delete --exclude '*' --include 'snapshot-*.adsnap' --only-show-errors \
        || echo "snapshot sync to S3 failed; retrying" >&2
    }
    trap 'sync_once; exit 0' TERM INT
    while true; do
      sync_once
      sleep ${var.snapshot_sync_interval_seconds} & wait $!
    done
  SH

  otel_config = yamlencode({
    extensions = { health_check = {} }
    receivers = {
      prometheus = {
        config = {
          global = { scrape_interval = "30s", scrape_timeout = "10s" }
          scrape_configs = [{
            job_name       = "adcast-writer"
            static_configs = [{ targets = ["localhost:8081"], labels = { Service = local.service_label } }]
          }]
        }
      }
    }
    exporters = {
      awsemf = {
        namespace               = "adcast"
        log_group_name          = local.metrics_group
        log_stream_name         = "writer-{TaskId}"
        dimension_rollup_option = "NoDimensionRollup"
        metric_declarations = [{
          dimensions            = [["Service"]]
          metric_name_selectors = ["^adcast_(outbox_backlog|last_committed_seq|last_published_seq|snapshot_last_seq|publish_failures_total)"]
        }]
      }
    }
    service = {
      extensions = ["health_check"]
      pipelines  = { metrics = { receivers = ["prometheus"], exporters = ["awsemf"] } }
    }
  })

  log_options = {
    "awslogs-group"         = aws_cloudwatch_log_group.writer.name
    "awslogs-region"        = local.region
    "awslogs-stream-prefix" = "writer"
  }
}

resource "aws_cloudwatch_log_group" "writer" {
  name              = "/adcast/${var.name}/writer"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "metrics" {
  name              = local.metrics_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# --- network ----------------------------------------------------------------------

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-writer-"
  description = "adcast writer: Admin API from the edges; out to PostgreSQL, Redis and AWS APIs"
  vpc_id      = var.vpc_id
  tags        = var.tags

  ingress {
    description     = "Admin API and snapshot downloads from this region's edges"
    from_port       = 8081
    to_port         = 8081
    protocol        = "tcp"
    security_groups = var.edge_security_group_ids
  }

  dynamic "ingress" {
    for_each = length(var.edge_cidr_blocks) > 0 ? [1] : []
    content {
      description = "Admin API and snapshot downloads from peered edge regions"
      from_port   = 8081
      to_port     = 8081
      protocol    = "tcp"
      cidr_blocks = var.edge_cidr_blocks
    }
  }

  egress {
    description = "PostgreSQL in this VPC"
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr_block]
  }

  egress {
    description = "Redis (TLS) in this VPC"
    from_port   = 6379
    to_port     = 6379
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr_block]
  }

  egress {
    description = "HTTPS to AWS APIs (S3, Secrets Manager, CloudWatch, ECR) through NAT and endpoints"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_service_discovery_private_dns_namespace" "this" {
  name        = var.private_dns_namespace
  description = "adcast internal names (writer)"
  vpc         = var.vpc_id
  tags        = var.tags
}

resource "aws_service_discovery_service" "writer" {
  name = "writer"

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.this.id
    routing_policy = "MULTIVALUE"
    dns_records {
      type = "A"
      ttl  = 10
    }
  }

  tags = var.tags
}

# --- IAM -------------------------------------------------------------------------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name_prefix        = "${substr(var.name, 0, 20)}-wr-exec-"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid     = "ReadWriterSecrets"
    actions = ["secretsmanager:GetSecretValue"]
    resources = [
      var.database_url_secret_arn,
      var.redis_url_secret_arn,
      var.admin_tokens_secret_arn,
    ]
  }

  statement {
    sid       = "DecryptWriterSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "writer-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_iam_role" "task" {
  name_prefix        = "${substr(var.name, 0, 20)}-wr-task-"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "ListSnapshots"
    actions   = ["s3:ListBucket"]
    resources = [var.snapshot_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["snapshots/*", "snapshots/"]
    }
  }

  statement {
    sid       = "MirrorSnapshots"
    actions   = ["s3:PutObject", "s3:DeleteObject", "s3:GetObject"]
    resources = ["${var.snapshot_bucket_arn}/snapshots/*"]
  }

  statement {
    sid       = "SnapshotBucketKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "EmbeddedMetricFormat"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.metrics.arn}:*"]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "writer-task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# --- task and service ----------------------------------------------------------

resource "aws_ecs_task_definition" "this" {
  family                   = "${var.name}-writer"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "snapshots"
  }

  volume {
    name = "scratch"
  }

  container_definitions = jsonencode([
    {
      name                   = "volume-init"
      image                  = var.aws_cli_image
      essential              = false
      user                   = "0"
      readonlyRootFilesystem = true
      entryPoint             = ["/bin/sh", "-c"]
      command                = ["chown 10001:10001 ${local.snapshot_dir} && chmod 0750 ${local.snapshot_dir}"]
      mountPoints            = [{ sourceVolume = "snapshots", containerPath = local.snapshot_dir, readOnly = false }]
      logConfiguration       = { logDriver = "awslogs", options = local.log_options }
    },
    {
      name                   = "writer"
      image                  = var.writer_image
      essential              = true
      user                   = "10001:10001"
      readonlyRootFilesystem = true
      portMappings           = [{ containerPort = 8081, protocol = "tcp" }]
      environment = [
        { name = "ADCAST_WRITER_LISTEN", value = "0.0.0.0:8081" },
        { name = "ADCAST_SNAPSHOT_DIR", value = local.snapshot_dir },
        { name = "ADCAST_LOG_FORMAT", value = "json" },
      ]
      secrets = [
        { name = "DATABASE_URL", valueFrom = var.database_url_secret_arn },
        { name = "REDIS_URL", valueFrom = var.redis_url_secret_arn },
        { name = "ADCAST_ADMIN_TOKENS", valueFrom = var.admin_tokens_secret_arn },
      ]
      mountPoints = [{ sourceVolume = "snapshots", containerPath = local.snapshot_dir, readOnly = false }]
      dependsOn   = [{ containerName = "volume-init", condition = "SUCCESS" }]
      healthCheck = {
        # Liveness only: a PostgreSQL outage makes /readyz fail, and
        # replacing the writer would not fix that.
        command     = ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8081/healthz"]
        interval    = 10
        timeout     = 3
        retries     = 3
        startPeriod = 60
      }
      stopTimeout      = 30
      logConfiguration = { logDriver = "awslogs", options = local.log_options }
    },
    {
      name                   = "snapshot-shipper"
      image                  = var.aws_cli_image
      essential              = false
      user                   = "10001:10001"
      readonlyRootFilesystem = true
      entryPoint             = ["/bin/sh", "-c"]
      command                = [local.shipper_script]
      environment            = [{ name = "HOME", value = "/scratch" }]
      mountPoints = [
        { sourceVolume = "snapshots", containerPath = local.snapshot_dir, readOnly = true },
        { sourceVolume = "scratch", containerPath = "/scratch", readOnly = false },
      ]
      dependsOn        = [{ containerName = "writer", condition = "START" }]
      stopTimeout      = 30
      logConfiguration = { logDriver = "awslogs", options = local.log_options }
    },
    {
      name                   = "otel-collector"
      image                  = var.otel_collector_image
      essential              = false
      readonlyRootFilesystem = true
      environment            = [{ name = "AOT_CONFIG_CONTENT", value = local.otel_config }]
      mountPoints            = [{ sourceVolume = "scratch", containerPath = "/tmp", readOnly = false }]
      logConfiguration       = { logDriver = "awslogs", options = local.log_options }
    },
  ])

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  name             = "${var.name}-writer"
  cluster          = var.cluster_arn
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = 1
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  enable_execute_command             = false
  propagate_tags                     = "SERVICE"
  wait_for_steady_state              = false

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.this.id]
    assign_public_ip = false
  }

  service_registries {
    registry_arn = aws_service_discovery_service.writer.arn
  }

  tags = var.tags
}

# --- alarms ----------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "not_running" {
  alarm_name          = "${var.name}-writer-not-running"
  alarm_description   = "No writer task running: admin writes fail and edges stop receiving changes (they keep serving)."
  namespace           = "ECS/ContainerInsights"
  metric_name         = "RunningTaskCount"
  dimensions          = { ClusterName = var.cluster_name, ServiceName = aws_ecs_service.this.name }
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 3
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "outbox_backlog" {
  alarm_name          = "${var.name}-writer-outbox-backlog"
  alarm_description   = "Committed changes are not reaching the Redis stream (Redis down or unreachable from the writer)."
  namespace           = "adcast"
  metric_name         = "adcast_outbox_backlog"
  dimensions          = { Service = local.service_label }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.outbox_backlog_alarm_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
  tags                = var.tags
}
