# The edges of one region: an internet-facing ALB (TLS, WAF, access logs,
# health checks on /readyz) in front of an autoscaled ECS Fargate service,
# and this region's latency-routed record for the API's public name.
#
# Task layout (one network namespace, shared volumes):
#   snapshot-seed   root, one-shot: copies the newest snapshots/ file of this
#                   region's bucket into the seed volume (ADCAST_SNAPSHOT) and
#                   hands the volumes to uid 10001. A failure here is not
#                   fatal: the edge then downloads from the writer.
#   edge            adcast-edge, uid 10001, read-only root file system
#   otel-collector  scrapes localhost:8080/metrics into CloudWatch (EMF)

data "aws_region" "current" {}

locals {
  region        = data.aws_region.current.name
  service_label = "${var.name}-edge"
  seed_dir      = "/var/lib/adcast/seed"
  data_dir      = "/var/lib/adcast/edge"
  metrics_group = "/adcast/${var.name}/edge-metrics"
  worker_count  = max(1, floor(var.cpu / 1024))

  seed_script = <<-SH
    set -u
    latest=$(aws s3 ls "s3://${var.snapshot_bucket_name}/snapshots/" 2>/dev/null \
      | awk '{print $4}' | grep -E '^snapshot-[0-9]{20}\.adsnap$' | sort | tail -n 1)
    if [ -n "$latest" ]; then
      aws s3 cp "s3://${var.snapshot_bucket_name}/snapshots/$latest" "${local.seed_dir}/.$latest.part" --only-show-errors \
        && mv "${local.seed_dir}/.$latest.part" "${local.seed_dir}/$latest" \
        && echo "seeded ${local.seed_dir}/$latest" \
        || echo "snapshot download failed; the edge will ask the writer" >&2
    else
      echo "no snapshot in s3://${var.snapshot_bucket_name}/snapshots/; the edge will ask the writer" >&2
    fi
    chown -R 10001:10001 "${local.seed_dir}" "${local.data_dir}"
  SH

  otel_config = yamlencode({
    extensions = { health_check = {} }
    receivers = {
      prometheus = {
        config = {
          global = { scrape_interval = "30s", scrape_timeout = "10s" }
          scrape_configs = [{
            job_name       = "adcast-edge"
            static_configs = [{ targets = ["localhost:8080"], labels = { Service = local.service_label } }]
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
          metric_name_selectors = ["^adcast_edge_(ready|lag_events|stream_silence_seconds|applied_seq|snapshot_age_seconds|resyncs_total)"]
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
  description = "adcast edge load balancer: HTTPS from anywhere, to the edge tasks"
  vpc_id      = var.vpc_id
  tags        = var.tags

  ingress {
    description      = "HTTPS from clients"
    from_port        = 443
    to_port          = 443
    protocol         = "tcp"
    cidr_blocks      = ["0.0.0.0/0"]
    ipv6_cidr_blocks = ["::/0"]
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
    description = "The writer (forwarded Admin API, snapshot downloads) in the primary VPC"
    from_port   = 8081
    to_port     = 8081
    protocol    = "tcp"
    cidr_blocks = [var.writer_cidr_block]
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

resource "aws_security_group_rule" "alb_to_edge" {
  description              = "Load balancer to the edge tasks"
  type                     = "egress"
  security_group_id        = aws_security_group.alb.id
  source_security_group_id = aws_security_group.edge.id
  from_port                = 8080
  to_port                  = 8080
  protocol                 = "tcp"
}

resource "aws_security_group_rule" "edge_from_alb" {
  description              = "Public API from the load balancer"
  type                     = "ingress"
  security_group_id        = aws_security_group.edge.id
  source_security_group_id = aws_security_group.alb.id
  from_port                = 8080
  to_port                  = 8080
  protocol                 = "tcp"
}

# --- TLS certificate -----------------------------------------------------------------

resource "aws_acm_certificate" "this" {
  domain_name       = var.domain_name
  validation_method = "DNS"
  tags              = var.tags

  options {
    certificate_transparency_logging_preference = "ENABLED"
  }

  lifecycle {
    create_before_destroy = true
  }
}

# The validation record is the same in every region for one name, hence
# allow_overwrite: each region's module may write it.
resource "aws_route53_record" "validation" {
  for_each = {
    for o in aws_acm_certificate.this.domain_validation_options : o.domain_name => o
  }
  zone_id         = var.route53_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "this" {
  certificate_arn         = aws_acm_certificate.this.arn
  validation_record_fqdns = [for r in aws_route53_record.validation : r.fqdn]
}

# --- load balancer ---------------------------------------------------------------------

resource "aws_lb" "this" {
  name                       = substr("${var.name}-edge", 0, 32)
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
  port                 = 8080
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    path                = "/readyz"
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
  certificate_arn   = aws_acm_certificate_validation.this.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = var.tags
}

# --- WAF ---------------------------------------------------------------------------------

resource "aws_wafv2_web_acl" "this" {
  name        = "${var.name}-edge"
  description = "adcast public API: AWS managed rules, anonymous-IP blocking and a per-IP rate limit"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "known-bad-inputs"
    priority = 1
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  # Anonymising services (VPNs, Tor, proxies) are invalid ad traffic and
  # blocked; hosting-provider addresses are only counted, because publishers'
  # servers legitimately call the API from clouds.
  rule {
    name     = "anonymous-ip"
    priority = 2
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAnonymousIpList"
        rule_action_override {
          name = "HostingProviderIPList"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "common"
    priority = 3
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"
        # Admin bodies may be up to 64 KiB (the writer enforces that limit);
        # the managed 8 KiB body rule only counts.
        rule_action_override {
          name = "SizeRestrictions_BODY"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "rate-limit-per-ip"
    priority = 4
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit_per_ip
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "rate-limit-per-ip"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name}-edge"
    sampled_requests_enabled   = true
  }

  tags = var.tags
}

resource "aws_wafv2_web_acl_association" "this" {
  resource_arn = aws_lb.this.arn
  web_acl_arn  = aws_wafv2_web_acl.this.arn
}

resource "aws_cloudwatch_log_group" "waf" {
  # WAF requires the aws-waf-logs- prefix.
  name              = "aws-waf-logs-${var.name}-edge"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "waf_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.waf.arn}:*"]
    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "waf" {
  policy_name     = "${var.name}-edge-waf-logs"
  policy_document = data.aws_iam_policy_document.waf_logs.json
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  # Never log the Authorization header (admin bearer tokens).
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }

  depends_on = [aws_cloudwatch_log_resource_policy.waf]
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
    name = "seed"
  }

  volume {
    name = "data"
  }

  volume {
    name = "scratch"
  }

  container_definitions = jsonencode([
    {
      name                   = "snapshot-seed"
      image                  = var.aws_cli_image
      essential              = false
      user                   = "0"
      readonlyRootFilesystem = true
      entryPoint             = ["/bin/sh", "-c"]
      command                = [local.seed_script]
      environment            = [{ name = "HOME", value = "/scratch" }]
      mountPoints = [
        { sourceVolume = "seed", containerPath = local.seed_dir, readOnly = false },
        { sourceVolume = "data", containerPath = local.data_dir, readOnly = false },
        { sourceVolume = "scratch", containerPath = "/scratch", readOnly = false },
      ]
      logConfiguration = { logDriver = "awslogs", options = local.log_options }
    },
    {
      name                   = "edge"
      image                  = var.edge_image
      essential              = true
      user                   = "10001:10001"
      readonlyRootFilesystem = true
      portMappings           = [{ containerPort = 8080, protocol = "tcp" }]
      environment = [
        { name = "ADCAST_EDGE_LISTEN", value = "0.0.0.0:8080" },
        { name = "ADCAST_WRITER_URL", value = var.writer_url },
        { name = "ADCAST_SNAPSHOT", value = local.seed_dir },
        { name = "ADCAST_DATA_DIR", value = local.data_dir },
        { name = "ADCAST_WORKER_THREADS", value = tostring(local.worker_count) },
        { name = "ADCAST_LOG_FORMAT", value = "json" },
      ]
      secrets = [
        { name = "REDIS_URL", valueFrom = var.redis_url_secret_arn },
        { name = "ADCAST_WRITER_TOKEN", valueFrom = var.writer_token_secret_arn },
      ]
      mountPoints = [
        { sourceVolume = "seed", containerPath = local.seed_dir, readOnly = true },
        { sourceVolume = "data", containerPath = local.data_dir, readOnly = false },
      ]
      dependsOn = [{ containerName = "snapshot-seed", condition = "COMPLETE" }]
      ulimits   = [{ name = "nofile", softLimit = 65536, hardLimit = 65536 }]
      healthCheck = {
        command     = ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/healthz"]
        interval    = 10
        timeout     = 3
        retries     = 3
        startPeriod = 30
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
    container_port   = 8080
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
  name           = var.domain_name
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
  alarm_description   = "No edge in ${local.region} passes /readyz: Route 53 sends this region's users elsewhere."
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

resource "aws_cloudwatch_metric_alarm" "edge_not_ready" {
  alarm_name          = "${var.name}-edge-not-ready"
  alarm_description   = "An edge in ${local.region} reports adcast_edge_ready = 0 (stream silent, gap pending or nothing loaded) for 5 minutes."
  namespace           = "adcast"
  metric_name         = "adcast_edge_ready"
  dimensions          = { Service = local.service_label }
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 5
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
  tags                = var.tags
}
