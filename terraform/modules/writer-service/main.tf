# The central writer on ECS Fargate: one task (the Admin API, outbox relay and
# snapshot producer), registered in Cloud Map as writer.<namespace> so edges
# in every region reach it over the peered VPCs.
#
# Task layout (one network namespace, shared volumes):
#   volume-init     writer image as root, one-shot: hands the snapshot volume
#                   to uid 10001
#   db-role         psql, one-shot, master user: creates the runtime role if
#                   missing and sets its password from the runtime secret
#   migrate         `adcast-writer migrate --grant-to <runtime role>`, one-shot,
#                   master user: applies the migrations, grants the runtime
#                   role exactly what the writer needs
#   writer          adcast-writer as the runtime role (--skip-migrations:
#                   it only checks that the schema is current), uid 10001,
#                   read-only root file system; snapshots to its directory and
#                   to s3://<bucket>/snapshots (ADCAST_SNAPSHOT_STORE)
#   otel-collector  scrapes localhost:8081/metrics into CloudWatch (EMF)
#
# The writer starts only after both one-shot database steps succeeded.
# Deployments start the new task before stopping the old one: two writers
# for a moment are safe by design (advisory lock, idempotent XADD ids; each
# uploads its own snapshot objects, never deleting what it did not write).
#
# desired_count = 0 keeps a complete standby writer (in the recovery region)
# that a regional failover starts by setting it to 1.

data "aws_region" "current" {}

locals {
  region        = data.aws_region.current.name
  service_label = "${var.name}-writer"
  snapshot_dir  = "/var/lib/adcast/snapshots"
  metrics_group = "/adcast/${var.name}/writer-metrics"
  listen_port   = 8081

  # Runs in the psql image with the master user's PG* environment. The role's
  # name and password travel as session settings into a DO block, so that
  # neither appears in a statement that log_statement = ddl would log.
  db_role_script = <<-SH
    set -eu
    psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 <<'SQL'
    \getenv role RUNTIME_ROLE
    \getenv password RUNTIME_PASSWORD
    SELECT set_config('adcast.runtime_role', :'role', false), set_config('adcast.runtime_password', :'password', false) \g /dev/null
    DO $$
    DECLARE
      role_name text := current_setting('adcast.runtime_role');
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
        EXECUTE format('CREATE ROLE %I LOGIN', role_name);
      END IF;
      EXECUTE format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L',
        role_name, current_setting('adcast.runtime_password'));
    END
    $$;
    SQL
    echo "runtime role $RUNTIME_ROLE is ready"
  SH

  # Names, not patterns: infra/check-deploy.sh checks each against the
  # writer's live /metrics.
  exported_metrics = [
    "adcast_outbox_backlog",
    "adcast_last_committed_seq",
    "adcast_last_published_seq",
    "adcast_publish_failures_total",
    "adcast_snapshot_last_seq",
    "adcast_snapshot_failures_total",
  ]

  otel_config = yamlencode({
    extensions = { health_check = {} }
    receivers = {
      prometheus = {
        config = {
          global = { scrape_interval = "30s", scrape_timeout = "10s" }
          scrape_configs = [{
            job_name       = "adcast-writer"
            static_configs = [{ targets = ["localhost:${local.listen_port}"], labels = { Service = local.service_label } }]
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
          metric_name_selectors = [for m in local.exported_metrics : "^${m}$"]
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

  dynamic "ingress" {
    for_each = length(var.edge_security_group_ids) > 0 ? [1] : []
    content {
      description     = "Admin API and snapshot downloads from this region's edges"
      from_port       = local.listen_port
      to_port         = local.listen_port
      protocol        = "tcp"
      security_groups = var.edge_security_group_ids
    }
  }

  dynamic "ingress" {
    for_each = length(var.edge_cidr_blocks) > 0 ? [1] : []
    content {
      description = "Admin API and snapshot downloads from peered edge regions"
      from_port   = local.listen_port
      to_port     = local.listen_port
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
    description = "HTTPS to AWS APIs through the VPC's interface endpoints (or NAT)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.https_egress_cidr_blocks
  }

  egress {
    description     = "HTTPS to S3 (snapshot store, image layers) through the gateway endpoint"
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    prefix_list_ids = [var.s3_prefix_list_id]
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
      var.database_master_secret_arn,
      var.database_runtime_secret_arn,
      var.redis_url_secret_arn,
      var.admin_tokens_secret_arn,
      var.read_tokens_secret_arn,
      var.internal_tokens_secret_arn,
    ]
  }

  statement {
    sid       = "DecryptWriterSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }

  # First pull of a public image through the registry's pull-through cache.
  statement {
    sid       = "PullThroughCache"
    actions   = ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
    resources = ["${var.public_mirror_repository_arn_prefix}*"]
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

  # Upload snapshots and the pointer to the newest; delete those past
  # retention; read them back (verification, newest-valid fallback).
  statement {
    sid       = "SnapshotStore"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]
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
      image                  = var.writer_image
      essential              = false
      user                   = "0"
      readonlyRootFilesystem = true
      entryPoint             = ["/bin/sh", "-c"]
      command                = ["chown 10001:10001 ${local.snapshot_dir} && chmod 0750 ${local.snapshot_dir}"]
      mountPoints            = [{ sourceVolume = "snapshots", containerPath = local.snapshot_dir, readOnly = false }]
      logConfiguration       = { logDriver = "awslogs", options = local.log_options }
    },
    {
      name                   = "db-role"
      image                  = var.psql_image
      essential              = false
      user                   = "70:70"
      readonlyRootFilesystem = true
      entryPoint             = ["/bin/sh", "-c"]
      command                = [local.db_role_script]
      environment = [
        { name = "PGHOST", value = var.database_address },
        { name = "PGPORT", value = tostring(var.database_port) },
        { name = "PGDATABASE", value = var.database_name },
        { name = "PGUSER", value = var.database_master_username },
        { name = "PGSSLMODE", value = "require" },
        { name = "PGCONNECT_TIMEOUT", value = "10" },
        { name = "RUNTIME_ROLE", value = var.database_runtime_role },
      ]
      secrets = [
        { name = "PGPASSWORD", valueFrom = "${var.database_master_secret_arn}:password::" },
        { name = "RUNTIME_PASSWORD", valueFrom = "${var.database_runtime_secret_arn}:password::" },
      ]
      logConfiguration = { logDriver = "awslogs", options = local.log_options }
    },
    {
      name                   = "migrate"
      image                  = var.writer_image
      essential              = false
      user                   = "10001:10001"
      readonlyRootFilesystem = true
      command                = ["migrate", "--grant-to", var.database_runtime_role]
      environment            = [{ name = "ADCAST_LOG_FORMAT", value = "json" }]
      secrets                = [{ name = "DATABASE_URL", valueFrom = "${var.database_master_secret_arn}:url::" }]
      dependsOn              = [{ containerName = "db-role", condition = "SUCCESS" }]
      logConfiguration       = { logDriver = "awslogs", options = local.log_options }
    },
    {
      name                   = "writer"
      image                  = var.writer_image
      essential              = true
      user                   = "10001:10001"
      readonlyRootFilesystem = true
      portMappings           = [{ containerPort = local.listen_port, protocol = "tcp" }]
      environment = [
        { name = "ADCAST_WRITER_LISTEN", value = "0.0.0.0:${local.listen_port}" },
        { name = "ADCAST_STREAM_KEY", value = var.stream_key },
        { name = "ADCAST_SNAPSHOT_DIR", value = local.snapshot_dir },
        { name = "ADCAST_SNAPSHOT_STORE", value = "s3://${var.snapshot_bucket_name}/snapshots" },
        { name = "ADCAST_SKIP_MIGRATIONS", value = "true" },
        { name = "ADCAST_LOG_FORMAT", value = "json" },
        { name = "AWS_REGION", value = local.region },
      ]
      secrets = [
        { name = "DATABASE_URL", valueFrom = "${var.database_runtime_secret_arn}:url::" },
        { name = "REDIS_URL", valueFrom = var.redis_url_secret_arn },
        { name = "ADCAST_ADMIN_TOKENS", valueFrom = var.admin_tokens_secret_arn },
        { name = "ADCAST_READ_TOKENS", valueFrom = var.read_tokens_secret_arn },
        { name = "ADCAST_INTERNAL_TOKENS", valueFrom = var.internal_tokens_secret_arn },
      ]
      mountPoints = [{ sourceVolume = "snapshots", containerPath = local.snapshot_dir, readOnly = false }]
      dependsOn = [
        { containerName = "volume-init", condition = "SUCCESS" },
        { containerName = "migrate", condition = "SUCCESS" },
      ]
      healthCheck = {
        # Liveness only: a PostgreSQL outage makes /readyz fail, and
        # replacing the writer would not fix that.
        command     = ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:${local.listen_port}/healthz"]
        interval    = 10
        timeout     = 3
        retries     = 3
        startPeriod = 60
      }
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

  lifecycle {
    precondition {
      condition     = contains(lookup(local.fargate_memory_by_cpu, tostring(var.cpu), []), var.memory)
      error_message = "cpu/memory is not a Fargate size (see local.fargate_memory_by_cpu)."
    }
  }
}

resource "aws_ecs_service" "this" {
  name             = "${var.name}-writer"
  cluster          = var.cluster_arn
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = var.desired_count
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
  count               = var.desired_count > 0 ? 1 : 0
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

resource "aws_cloudwatch_metric_alarm" "snapshot_failures" {
  alarm_name          = "${var.name}-writer-snapshot-failures"
  alarm_description   = "The writer failed to write or upload snapshots for 15 minutes: cold starts use older ones and the stream is not trimmed."
  namespace           = "adcast"
  metric_name         = "adcast_snapshot_failures_total"
  dimensions          = { Service = local.service_label }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
  tags                = var.tags
}
