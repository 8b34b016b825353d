# The edges of one region on AWS Lambda: the same adcast-edge binary, in the
# image built by infra/Dockerfile's `edge-function` target (the edge image
# plus the AWS Lambda Web Adapter as an extension, which turns each
# invocation into an HTTP request to the edge on 127.0.0.1:8080).
#
#   client ─HTTPS─▶ API Gateway HTTP API (custom domain, latency record)
#                     └─▶ Lambda alias "live" ─▶ Web Adapter ─▶ adcast-edge
#
# A function instance is frozen between invocations, so the edge runs with
# --sync poll: no background tailer; a request that finds the state older
# than --max-staleness-ms first catches up with one bounded read of this
# region's Redis (the function is in the VPC for that), then answers. A
# cold instance boots from the newest valid snapshot in this region's bucket.
#
# The Web Adapter waits for /servingz before passing the first request
# (a state is loaded). Freshness has no scraper here: the Adcast-Seq header
# of every answer and the Lambda/API metrics and alarms below are what there
# is (DEPLOYING.md, "Health checks").

data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  region        = data.aws_region.current.name
  function_name = "${var.name}-edge"
  listen_port   = 8080
  serving_path  = "/servingz"

  environment = {
    ADCAST_EDGE_LISTEN      = "127.0.0.1:${local.listen_port}"
    ADCAST_SYNC             = "poll"
    ADCAST_MAX_STALENESS_MS = tostring(var.max_staleness_ms)
    ADCAST_STREAM_KEY       = var.stream_key
    ADCAST_WRITER_URL       = var.writer_url
    ADCAST_WRITER_TOKEN     = var.writer_token
    ADCAST_SNAPSHOT         = "s3://${var.snapshot_bucket_name}/snapshots"
    ADCAST_DATA_DIR         = "/tmp/adcast-edge"
    # A function instance is never restarted on its own /tmp: an index
    # image would be written for no later boot, into 512 MB of storage.
    ADCAST_INDEX_IMAGE    = "false"
    ADCAST_WORKER_THREADS = "1"
    ADCAST_LOG_FORMAT     = "json"
    REDIS_URL             = var.redis_url
    # AWS Lambda Web Adapter
    AWS_LWA_PORT                 = tostring(local.listen_port)
    AWS_LWA_READINESS_CHECK_PATH = local.serving_path
  }
}

resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "api" {
  name              = "/adcast/${var.name}/edge-api-access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# --- network ----------------------------------------------------------------------

resource "aws_security_group" "function" {
  name_prefix = "${var.name}-edge-fn-"
  description = "adcast function edges: out to Redis, the writer and S3 only"
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
    description     = "HTTPS to S3 (snapshot store) through the gateway endpoint"
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    prefix_list_ids = [var.s3_prefix_list_id]
  }

  lifecycle {
    create_before_destroy = true
  }
}

# --- IAM -----------------------------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  name_prefix        = "${substr(var.name, 0, 20)}-ed-fn-"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

# Network interfaces in the VPC and CloudWatch Logs.
resource "aws_iam_role_policy_attachment" "vpc" {
  role       = aws_iam_role.function.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

data "aws_iam_policy_document" "function" {
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
    sid       = "RegionKey"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "function" {
  name   = "edge-function"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}

# --- function ------------------------------------------------------------------------

resource "aws_lambda_function" "edge" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by API Gateway only; a failed request is answered to its client, there is no event to keep.
  #checkov:skip=CKV_AWS_272:Code signing applies to .zip packages; this is a container image pinned by digest from the region's own registry.
  function_name = local.function_name
  description   = "adcast edge (--sync poll) behind the AWS Lambda Web Adapter"
  role          = aws_iam_role.function.arn
  package_type  = "Image"
  image_uri     = var.function_image
  architectures = ["x86_64"]
  memory_size   = var.memory_mb
  timeout       = var.timeout_seconds
  publish       = true

  reserved_concurrent_executions = var.reserved_concurrency

  ephemeral_storage {
    size = 512
  }

  vpc_config {
    subnet_ids         = var.private_subnet_ids
    security_group_ids = [aws_security_group.function.id]
  }

  # The Redis URL and writer token are in the environment, encrypted with the
  # region's key (and in Terraform state, like every generated secret).
  kms_key_arn = var.kms_key_arn
  environment {
    variables = local.environment
  }

  tracing_config {
    mode = "PassThrough"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function.name
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy_attachment.vpc, aws_iam_role_policy.function]

  lifecycle {
    precondition {
      condition     = var.provisioned_concurrency == 0 || var.reserved_concurrency < 0 || var.provisioned_concurrency <= var.reserved_concurrency
      error_message = "provisioned_concurrency cannot exceed reserved_concurrency."
    }
  }
}

resource "aws_lambda_alias" "live" {
  name             = "live"
  description      = "The version the API invokes"
  function_name    = aws_lambda_function.edge.function_name
  function_version = aws_lambda_function.edge.version
}

# Warm instances that never cold-start (paid by the hour whether used or not).
resource "aws_lambda_provisioned_concurrency_config" "live" {
  count                             = var.provisioned_concurrency > 0 ? 1 : 0
  function_name                     = aws_lambda_function.edge.function_name
  qualifier                         = aws_lambda_alias.live.name
  provisioned_concurrent_executions = var.provisioned_concurrency
}

# Optional direct URL, e.g. as a CDN origin; public by nature.
resource "aws_lambda_function_url" "live" {
  #checkov:skip=CKV_AWS_258:The Public API is public; admin calls carry their own bearer tokens, which the writer checks.
  count              = var.function_url_enabled ? 1 : 0
  function_name      = aws_lambda_function.edge.function_name
  qualifier          = aws_lambda_alias.live.name
  authorization_type = "NONE"
}

# --- HTTP API --------------------------------------------------------------------------

resource "aws_apigatewayv2_api" "this" {
  name                         = "${var.name}-edge"
  description                  = "adcast API (function edges of ${local.region})"
  protocol_type                = "HTTP"
  disable_execute_api_endpoint = true
  tags                         = var.tags
}

resource "aws_apigatewayv2_integration" "edge" {
  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_alias.live.invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = var.timeout_seconds * 1000
}

resource "aws_apigatewayv2_route" "default" {
  #checkov:skip=CKV_AWS_309:The Public API is public; admin calls carry their own bearer tokens, which the writer checks.
  api_id    = aws_apigatewayv2_api.this.id
  route_key = "$default"
  target    = "integrations/${aws_apigatewayv2_integration.edge.id}"
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true

  # HTTP APIs take no WAF: the stage's throttle is this platform's rate limit.
  default_route_settings {
    throttling_rate_limit  = var.throttle_rate_per_second
    throttling_burst_limit = var.throttle_burst
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api.arn
    format = jsonencode({
      requestId = "$context.requestId"
      ip        = "$context.identity.sourceIp"
      method    = "$context.httpMethod"
      path      = "$context.path"
      status    = "$context.status"
      latencyMs = "$context.responseLatency"
      error     = "$context.integrationErrorMessage"
    })
  }

  tags = var.tags
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.edge.function_name
  qualifier     = aws_lambda_alias.live.name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/*/*"
}

resource "aws_apigatewayv2_domain_name" "this" {
  domain_name = var.dns_name

  domain_name_configuration {
    certificate_arn = var.certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }

  tags = var.tags
}

resource "aws_apigatewayv2_api_mapping" "this" {
  api_id      = aws_apigatewayv2_api.this.id
  domain_name = aws_apigatewayv2_domain_name.this.id
  stage       = aws_apigatewayv2_stage.default.id
}

resource "aws_route53_record" "latency" {
  zone_id        = var.route53_zone_id
  name           = var.dns_name
  type           = "A"
  set_identifier = local.region

  latency_routing_policy {
    region = local.region
  }

  alias {
    name                   = aws_apigatewayv2_domain_name.this.domain_name_configuration[0].target_domain_name
    zone_id                = aws_apigatewayv2_domain_name.this.domain_name_configuration[0].hosted_zone_id
    evaluate_target_health = true
  }
}

# --- alarms ------------------------------------------------------------------------------

locals {
  # The Lambda metrics of the alias that serves (not of every version).
  live_alias_dimensions = {
    FunctionName = aws_lambda_function.edge.function_name
    Resource     = "${aws_lambda_function.edge.function_name}:${aws_lambda_alias.live.name}"
  }
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "${local.function_name}-errors"
  alarm_description   = "Function edges in ${local.region} fail invocations (crashes, timeouts, the adapter never ready)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = local.live_alias_dimensions
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.errors_alarm_per_minute
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "throttles" {
  alarm_name          = "${local.function_name}-throttles"
  alarm_description   = "Function edges in ${local.region} are throttled: raise reserved_concurrency (or the account limit)."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = local.live_alias_dimensions
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "duration_p99" {
  alarm_name          = "${local.function_name}-duration-p99"
  alarm_description   = "p99 invocation time of the function edges in ${local.region} above ${var.duration_p99_alarm_ms} ms (cold starts, slow catch-up reads)."
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  dimensions          = local.live_alias_dimensions
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.duration_p99_alarm_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${var.name}-edge-api-5xx"
  alarm_description   = "The HTTP API of the function edges in ${local.region} answers 5xx."
  namespace           = "AWS/ApiGateway"
  metric_name         = "5xx"
  dimensions          = { ApiId = aws_apigatewayv2_api.this.id, Stage = aws_apigatewayv2_stage.default.name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.errors_alarm_per_minute
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
  tags                = var.tags
}
