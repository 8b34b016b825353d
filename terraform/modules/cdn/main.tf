# A CloudFront distribution in front of the whole API (create it with a
# us-east-1 provider: CloudFront's certificates and web ACLs live there).
#
# The edges' answers are cacheable by design: a Public API 200 carries
# Cache-Control: public, max-age=S (S never past the next moment an ad starts
# or ends, capped by --cache-max-age-secs); errors carry no-store. The cache
# policy of GET /api/v1/ad honours exactly that (default and minimum TTL 0:
# nothing without max-age is kept). Its key is the path, the full query
# string, and the two headers that change the answer: Authorization (so a
# token's request never shares an entry with another's) and Adcast-Min-Seq
# (an answer that satisfied N satisfies every later request for N). All other
# paths (admin calls, health) pass through uncached.
#
# The origin is one latency-routed name (origin_domain_name) whose records
# point at each region's load balancer or API, with health evaluation:
# CloudFront's points of presence resolve it to the nearest healthy region.
# Origin requests carry X-Origin-Verify; the load balancers admit only
# CloudFront's addresses and forward only requests with that header.
#
# The measured hit rate of the load benchmark's query mix is in DEPLOYING.md
# (infra/deploy/cdn-hit-rate.py).

locals {
  origin_id = "adcast-edges"
  # AWS managed policies.
  caching_disabled              = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
  all_viewer_except_host_header = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
}

resource "aws_cloudfront_response_headers_policy" "security" {
  name    = "${var.name}-security-headers"
  comment = "adcast API: HSTS, no sniffing, no framing"

  security_headers_config {
    strict_transport_security {
      access_control_max_age_sec = 31536000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
    content_type_options {
      override = true
    }
    frame_options {
      frame_option = "DENY"
      override     = true
    }
    referrer_policy {
      referrer_policy = "no-referrer"
      override        = true
    }
  }
}

module "web_acl" {
  source = "../web-acl"

  name               = "${var.name}-cdn"
  scope              = "CLOUDFRONT"
  rate_limit_per_ip  = var.waf_rate_limit_per_ip
  admin_rate_limit   = var.waf_admin_rate_limit_per_ip
  log_all_requests   = false
  log_retention_days = var.log_retention_days
  kms_key_arn        = var.kms_key_arn
  tags               = var.tags
}

resource "aws_cloudfront_cache_policy" "public_api" {
  name        = "${var.name}-public-api"
  comment     = "adcast Public API: honour the edges' max-age; key = query string, Authorization, Adcast-Min-Seq"
  min_ttl     = 0
  default_ttl = 0
  max_ttl     = var.max_ttl_seconds

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_gzip   = true
    enable_accept_encoding_brotli = true

    query_strings_config {
      query_string_behavior = "all"
    }

    headers_config {
      header_behavior = "whitelist"
      headers {
        items = ["Authorization", "Adcast-Min-Seq"]
      }
    }

    cookies_config {
      cookie_behavior = "none"
    }
  }
}

# What a POST /api/v1/ad (same path) needs besides the cache key.
resource "aws_cloudfront_origin_request_policy" "public_api" {
  name    = "${var.name}-public-api"
  comment = "adcast: the headers admin writes on /api/v1/ad need"

  headers_config {
    header_behavior = "whitelist"
    headers {
      items = ["Content-Type", "Idempotency-Key", "X-Request-Id"]
    }
  }

  query_strings_config {
    query_string_behavior = "none"
  }

  cookies_config {
    cookie_behavior = "none"
  }
}

# --- access logs ------------------------------------------------------------------

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:This bucket is the access-log destination; logging it into itself would loop.
  #checkov:skip=CKV_AWS_144:Operational logs; a cross-region copy has no consumer.
  #checkov:skip=CKV_AWS_145:CloudFront standard logs are delivered to SSE-S3 buckets.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to new log objects; they are read on demand.
  bucket_prefix = "${var.name}-cdn-logs-"
  tags          = var.tags
}

# CloudFront standard logging writes through the bucket ACL (its delivery
# account is granted there when logging is enabled); free apart from storage.
resource "aws_s3_bucket_ownership_controls" "logs" {
  #checkov:skip=CKV2_AWS_65:CloudFront standard logging needs ACLs enabled on its bucket.
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerPreferred"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "expire-logs"
    status = "Enabled"
    filter {}
    transition {
      days          = 30
      storage_class = "STANDARD_IA"
    }
    expiration {
      days = var.access_log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

data "aws_iam_policy_document" "logs_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket     = aws_s3_bucket.logs.id
  policy     = data.aws_iam_policy_document.logs_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.logs]
}

# --- distribution ---------------------------------------------------------------------

resource "aws_cloudfront_distribution" "this" {
  #checkov:skip=CKV_AWS_310:The single origin name is latency-routed across every region with health evaluation: failover happens in DNS, before CloudFront connects.
  #checkov:skip=CKV_AWS_305:An API, not a website: there is no root object.
  #checkov:skip=CKV_AWS_374:The API serves every country (country is a targeting parameter, not an access rule).
  #checkov:skip=CKV2_AWS_46:There is no S3 origin: the only origin is the edges' custom (HTTPS) origin; the S3 bucket is the log destination.
  enabled         = true
  is_ipv6_enabled = true
  comment         = "adcast API (${var.domain_name})"
  aliases         = [var.domain_name]
  price_class     = var.price_class
  http_version    = "http2and3"
  web_acl_id      = module.web_acl.arn

  origin {
    origin_id   = local.origin_id
    domain_name = var.origin_domain_name

    custom_origin_config {
      http_port                = 80
      https_port               = 443
      origin_protocol_policy   = "https-only"
      origin_ssl_protocols     = ["TLSv1.2"]
      origin_keepalive_timeout = 60
      origin_read_timeout      = 30
    }

    custom_header {
      name  = "X-Origin-Verify"
      value = var.origin_verify_secret
    }
  }

  # Everything but the Public API query: uncached, every header forwarded
  # (Authorization included; allowed because nothing is cached).
  default_cache_behavior {
    target_origin_id           = local.origin_id
    viewer_protocol_policy     = "https-only"
    allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = local.caching_disabled
    origin_request_policy_id   = local.all_viewer_except_host_header
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id
    compress                   = true
  }

  ordered_cache_behavior {
    path_pattern               = "/api/v1/ad"
    target_origin_id           = local.origin_id
    viewer_protocol_policy     = "https-only"
    allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = aws_cloudfront_cache_policy.public_api.id
    origin_request_policy_id   = aws_cloudfront_origin_request_policy.public_api.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id
    compress                   = true
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    acm_certificate_arn      = var.certificate_arn
    ssl_support_method       = "sni-only"
    minimum_protocol_version = "TLSv1.2_2021"
  }

  logging_config {
    bucket          = aws_s3_bucket.logs.bucket_domain_name
    prefix          = "cloudfront/"
    include_cookies = false
  }

  tags = var.tags

  depends_on = [aws_s3_bucket_ownership_controls.logs]
}

resource "aws_shield_protection" "distribution" {
  count        = var.shield_advanced ? 1 : 0
  name         = "${var.name}-cdn"
  resource_arn = aws_cloudfront_distribution.this.arn
  tags         = var.tags
}

resource "aws_route53_record" "alias" {
  for_each = toset(["A", "AAAA"])
  zone_id  = var.route53_zone_id
  name     = var.domain_name
  type     = each.key

  alias {
    name                   = aws_cloudfront_distribution.this.domain_name
    zone_id                = aws_cloudfront_distribution.this.hosted_zone_id
    evaluate_target_health = false
  }
}

resource "aws_cloudwatch_metric_alarm" "origin_errors" {
  alarm_name          = "${var.name}-cdn-5xx"
  alarm_description   = "More than ${var.error_rate_alarm_percent}% of CloudFront answers are 5xx for 5 minutes (origins failing or unreachable)."
  namespace           = "AWS/CloudFront"
  metric_name         = "5xxErrorRate"
  dimensions          = { DistributionId = aws_cloudfront_distribution.this.id, Region = "Global" }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.error_rate_alarm_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
  tags                = var.tags
}
