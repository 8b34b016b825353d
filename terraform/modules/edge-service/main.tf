# The edges of one region on ECS Fargate: an internet-facing ALB (TLS, WAF,
# access logs) in front of an autoscaled service, and this region's
# latency-routed record.
#
# Health: the load balancer and the container health check ask /servingz
# ("a state is loaded": the edge can answer). Freshness is a metric
# (adcast_edge_staleness_seconds) with an alarm, never a reason to replace a
# task: during a Redis outage the edges keep serving their last state
# instead of being drained and replaced by tasks that cannot do better.
#
# Task layout (one network namespace, shared volumes):
#   volume-init     edge image as root, one-shot: hands the data volume to
#                   uid 10001
#   edge            adcast-edge, uid 10001, read-only root file system; boots
#                   from the newest valid snapshot of s3://<bucket>/snapshots
#                   (this region's copy), tails this region's Redis
#   otel-collector  scrapes localhost:8080/metrics into CloudWatch (EMF)

data "aws_region" "current" {}

data "aws_ec2_managed_prefix_list" "cloudfront" {
  count = var.cloudfront_only ? 1 : 0
  name  = "com.amazonaws.global.cloudfront.origin-facing"
}

locals {
  region        = data.aws_region.current.name
  service_label = "${var.name}-edge"
  data_dir      = "/var/lib/adcast/edge"
  metrics_group = "/adcast/${var.name}/edge-metrics"
  worker_count  = max(1, floor(var.cpu / 1024))
  listen_port   = 8080
  serving_path  = "/servingz"

  # Names, not patterns: infra/check-deploy.sh checks each against the
  # edge's live /metrics.
  exported_metrics = [
    "adcast_edge_ready",
    "adcast_edge_applied_seq",
    "adcast_edge_lag_events",
    "adcast_edge_staleness_seconds",
    "adcast_edge_stream_silence_seconds",
    "adcast_edge_snapshot_age_seconds",
    "adcast_edge_resyncs_total",
    "adcast_edge_stream_errors_total",
  ]

  otel_config = yamlencode({
    extensions = { health_check = {} }
    receivers = {
      prometheus = {
        config = {
          global = { scrape_interval = "30s", scrape_timeout = "10s" }
          scrape_configs = [{
            job_name       = "adcast-edge"
            static_configs = [{ targets = ["localhost:${local.listen_port}"], labels = { Service = local.service_label } }]
          }]
        }
      }
    }
    exporters = {
      awsemf = {
        namespace               = "adcast"
        log_group_name          = local.metrics_group
        log_stream_name         = "edge-{TaskId}"
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
    "awslogs-group"         = aws_cloudwatch_log_group.edge.name
    "awslogs-region"        = local.region
    "awslogs-stream-prefix" = "edge"
  }
}

resource "aws_cloudwatch_log_group" "edge" {
  name              = "/adcast/${var.name}/edge"
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

# --- security groups --------------------------------------------------------------

resource "aws_security_group" "alb" {
  name_prefix = "${var.name}-edge-alb-"
  description = "adcast edge load balancer: HTTPS from clients (or only the CDN), to the edge tasks"
  vpc_id      = var.vpc_id
  tags        = var.tags

  dynamic "ingress" {
    for_each = var.cloudfront_only ? [] : [1]
    content {
      description      = "HTTPS from clients"
      from_port        = 443
      to_port          = 443
      protocol         = "tcp"
      cidr_blocks      = ["0.0.0.0/0"]
      ipv6_cidr_blocks = ["::/0"]
    }
  }

  dynamic "ingress" {
    for_each = var.cloudfront_only ? [1] : []
    content {
      description     = "HTTPS from CloudFront's origin-facing addresses only"
      from_port       = 443
      to_port         = 443
      protocol        = "tcp"
      prefix_list_ids = [data.aws_ec2_managed_prefix_list.cloudfront[0].id]
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "edge" {
  name_prefix = "${var.name}-edge-"
  description = "adcast edge tasks: traffic from the load balancer; out to Redis, the writer and AWS APIs"
  vpc_id      = var.vpc_id
  tags        = var.tags

  egress {
    description = "Redis (TLS) in this VPC"
    from_port   = 6379
    to_port     = 6379
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr_block]
  }

  egress {
    description = "The writer (forwarded Admin API, snapshot downloads), here or over peering"
    from_port   = 8081
    to_port     = 8081
    protocol    = "tcp"
    cidr_blocks = var.writer_cidr_blocks
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

resource "aws_security_group_rule" "alb_to_edge" {
  description              = "Load balancer to the edge tasks"
  type                     = "egress"
  security_group_id        = aws_security_group.alb.id
  source_security_group_id = aws_security_group.edge.id
  from_port                = local.listen_port
  to_port                  = local.listen_port
  protocol                 = "tcp"
}

resource "aws_security_group_rule" "edge_from_alb" {
  description              = "Public API from the load balancer"
  type                     = "ingress"
  security_group_id        = aws_security_group.edge.id
  source_security_group_id = aws_security_group.alb.id
  from_port                = local.listen_port
  to_port                  = local.listen_port
  protocol                 = "tcp"
}

# --- load balancer ---------------------------------------------------------------------

resource "aws_lb" "this" {
  # At most 32 characters, not ending in a hyphen (unique per region).
  name                       = trimsuffix(substr("${var.name}-edge", 0, 32), "-")
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  idle_timeout               = 60

  access_logs {
    bucket  = var.log_bucket_name
    prefix  = "alb"
    enabled = true
  }

  tags = var.tags
}

resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; adcast-edge speaks plain HTTP, inside private subnets, reachable only from the load balancer's security group.
  name_prefix          = "edge-"
  port                 = local.listen_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  # "Can serve", not "fresh": an edge whose stream is silent still answers
  # from its last state, and must stay in service.
  health_check {
    path                = local.serving_path
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  # Behind the CDN, only requests carrying its secret header are forwarded.
  dynamic "default_action" {
    for_each = var.cloudfront_only ? [] : [1]
    content {
      type             = "forward"
      target_group_arn = aws_lb_target_group.this.arn
    }
  }

  dynamic "default_action" {
    for_each = var.cloudfront_only ? [1] : []
    content {
      type = "fixed-response"
      fixed_response {
        content_type = "application/json"
        message_body = "{\"error\":{\"code\":\"forbidden\",\"message\":\"use the public name\"}}"
        status_code  = "403"
      }
    }
  }

  tags = var.tags
}

resource "aws_lb_listener_rule" "origin_verified" {
  count        = var.cloudfront_only ? 1 : 0
  listener_arn = aws_lb_listener.https.arn
  priority     = 20

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  condition {
    http_header {
      http_header_name = "X-Origin-Verify"
      values           = [var.origin_verify_secret]
    }
  }

  tags = var.tags
}

# /metrics is for the collector next to each task, not for the internet.
resource "aws_lb_listener_rule" "hide_metrics" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 10

  action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      message_body = "{\"error\":{\"code\":\"not_found\",\"message\":\"not found\"}}"
      status_code  = "404"
    }
  }

  condition {
    path_pattern {
      values = ["/metrics"]
    }
  }

  tags = var.tags
}

# --- WAF ---------------------------------------------------------------------------------

module "web_acl" {
  source = "../web-acl"

  name               = "${var.name}-edge"
  scope              = "REGIONAL"
  rate_limit_per_ip  = var.waf_rate_limit_per_ip
  admin_rate_limit   = var.waf_admin_rate_limit_per_ip
  log_all_requests   = var.waf_log_all_requests
  log_retention_days = var.log_retention_days
  kms_key_arn        = var.kms_key_arn
  tags               = var.tags
}

resource "aws_wafv2_web_acl_association" "this" {
  count        = var.waf_enabled ? 1 : 0
  resource_arn = aws_lb.this.arn
  web_acl_arn  = module.web_acl.arn
}

# With a Shield Advanced subscription (account-wide, a one-year commitment:
# not something Terraform should sign up for), protecting the load balancer
# also covers the WAF's per-request charge for it: cheaper than the WAF
# alone from about 2,000 requests/s (DEPLOYING.md, Costs).
resource "aws_shield_protection" "alb" {
  count        = var.shield_advanced ? 1 : 0
  name         = "${var.name}-edge-alb"
  resource_arn = aws_lb.this.arn
  tags         = var.tags
}

# --- IAM -------------------------------------------------------------------------------------

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
  name_prefix        = "${substr(var.name, 0, 20)}-ed-exec-"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "ReadEdgeSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.redis_url_secret_arn, var.writer_token_secret_arn]
  }

  statement {
    sid       = "DecryptEdgeSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "PullThroughCache"
    actions   = ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
    resources = ["${var.public_mirror_repository_arn_prefix}*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "edge-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_iam_role" "task" {
  name_prefix        = "${substr(var.name, 0, 20)}-ed-task-"
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
    sid       = "ReadSnapshots"
    actions   = ["s3:GetObject"]
    resources = ["${var.snapshot_bucket_arn}/snapshots/*"]
  }

  statement {
    sid       = "SnapshotBucketKey"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "EmbeddedMetricFormat"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.metrics.arn}:*"]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "edge-task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# --- task and service ----------------------------------------------------------------

resource "aws_ecs_task_definition" "this" {
  family                   = "${var.name}-edge"
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
    name = "data"
  }

  volume {
    name = "scratch"
  }

  container_definitions = jsonencode([
    {
      name                   = "volume-init"
      image                  = var.edge_image
      essential              = false
      user                   = "0"
      readonlyRootFilesystem = true
      entryPoint             = ["/bin/sh", "-c"]
      command                = ["chown 10001:10001 ${local.data_dir} && chmod 0750 ${local.data_dir}"]
      mountPoints            = [{ sourceVolume = "data", containerPath = local.data_dir, readOnly = false }]
      logConfiguration       = { logDriver = "awslogs", options = local.log_options }
    },
    {
      name                   = "edge"
      image                  = var.edge_image
      essential              = true
      user                   = "10001:10001"
      readonlyRootFilesystem = true
      portMappings           = [{ containerPort = local.listen_port, protocol = "tcp" }]
      environment = [
        { name = "ADCAST_EDGE_LISTEN", value = "0.0.0.0:${local.listen_port}" },
        { name = "ADCAST_SYNC", value = "stream" },
        { name = "ADCAST_STREAM_KEY", value = var.stream_key },
        { name = "ADCAST_WRITER_URL", value = var.writer_url },
        { name = "ADCAST_SNAPSHOT", value = "s3://${var.snapshot_bucket_name}/snapshots" },
        { name = "ADCAST_DATA_DIR", value = local.data_dir },
        { name = "ADCAST_WORKER_THREADS", value = tostring(local.worker_count) },
        { name = "ADCAST_LOG_FORMAT", value = "json" },
        { name = "AWS_REGION", value = local.region },
      ]
      secrets = [
        { name = "REDIS_URL", valueFrom = var.redis_url_secret_arn },
        { name = "ADCAST_WRITER_TOKEN", valueFrom = var.writer_token_secret_arn },
      ]
      mountPoints = [{ sourceVolume = "data", containerPath = local.data_dir, readOnly = false }]
      dependsOn   = [{ containerName = "volume-init", condition = "SUCCESS" }]
      ulimits     = [{ name = "nofile", softLimit = 65536, hardLimit = 65536 }]
      healthCheck = {
        command     = ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:${local.listen_port}${local.serving_path}"]
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
  name             = "${var.name}-edge"
  cluster          = var.cluster_arn
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = var.min_capacity
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 60
  enable_execute_command             = false
  propagate_tags                     = "SERVICE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.edge.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = "edge"
    container_port   = local.listen_port
  }

  # Autoscaling owns the task count after creation.
  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.https]

  tags = var.tags
}

# --- autoscaling ---------------------------------------------------------------------

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  resource_id        = "service/${var.cluster_name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_capacity
  max_capacity       = var.max_capacity
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-edge-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "requests" {
  name               = "${var.name}-edge-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.requests_per_target_per_minute
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.this.arn_suffix}/${aws_lb_target_group.this.arn_suffix}"
    }
  }
}

# --- DNS: this region's share of the latency-routed name --------------------------------

resource "aws_route53_record" "latency" {
  zone_id        = var.route53_zone_id
  name           = var.dns_name
  type           = "A"
  set_identifier = local.region

  latency_routing_policy {
    region = local.region
  }

  # With no healthy edge behind the load balancer, Route 53 answers with the
  # next-closest region instead.
  alias {
    name                   = aws_lb.this.dns_name
    zone_id                = aws_lb.this.zone_id
    evaluate_target_health = true
  }
}

# --- alarms ------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "no_healthy_edges" {
  alarm_name          = "${var.name}-edge-no-healthy-targets"
  alarm_description   = "No edge in ${local.region} can serve (${local.serving_path}): Route 53 sends this region's users elsewhere."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HealthyHostCount"
  dimensions          = { LoadBalancer = aws_lb.this.arn_suffix, TargetGroup = aws_lb_target_group.this.arn_suffix }
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

resource "aws_cloudwatch_metric_alarm" "latency_p99" {
  alarm_name          = "${var.name}-edge-latency-p99"
  alarm_description   = "p99 response time of the edges in ${local.region} above ${var.latency_p99_alarm_seconds}s."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = { LoadBalancer = aws_lb.this.arn_suffix, TargetGroup = aws_lb_target_group.this.arn_suffix }
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.latency_p99_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "stale" {
  alarm_name          = "${var.name}-edge-stale"
  alarm_description   = "An edge in ${local.region} serves a state more than ${var.staleness_alarm_seconds}s behind the writer (adcast_edge_staleness_seconds) for 5 minutes: Redis or the writer is unreachable. The edges keep serving."
  namespace           = "adcast"
  metric_name         = "adcast_edge_staleness_seconds"
  dimensions          = { Service = local.service_label }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.staleness_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
  tags                = var.tags
}
