# Snapshot distribution. The writer uploads every snapshot it keeps, and a
# pointer to the newest, under snapshots/ of its region's bucket
# (ADCAST_SNAPSHOT_STORE=s3://<bucket>/snapshots); that bucket replicates
# them to the other regions' buckets, and edges everywhere boot from their
# own region's copy (ADCAST_SNAPSHOT=s3://<bucket>/snapshots).
#
# The primary bucket replicates to every edge region; the recovery region's
# bucket replicates to the remaining one, which copies only what a recovery
# writer uploads there (S3 never replicates a replica onward).
#
# Current objects never expire by age: if nothing changes for months the
# newest snapshot must still be there. Old snapshots disappear because the
# writer deletes those past its retention; their versions expire after
# noncurrent_version_days.

data "aws_caller_identity" "current" {}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_144:Replication is configured below whenever replication_destinations is non-empty (the primary and recovery buckets); the last region's bucket is only a destination.
  bucket_prefix = "${var.name}-"
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "this" {
  bucket        = aws_s3_bucket.this.id
  target_bucket = var.log_bucket_name
  target_prefix = "s3/${aws_s3_bucket.this.id}/"
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-replaced-snapshots"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    expiration {
      expired_object_delete_marker = true
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# New snapshots are published to EventBridge, for whoever wants to react
# (alerting on a stalled writer, warming a new region).
resource "aws_s3_bucket_notification" "this" {
  bucket      = aws_s3_bucket.this.id
  eventbridge = true
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
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

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.bucket.json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

# --- cross-region replication (primary bucket only) ---------------------------

data "aws_iam_policy_document" "replication_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "replication" {
  count              = length(var.replication_destinations) > 0 ? 1 : 0
  name_prefix        = "${substr(var.name, 0, 24)}-crr-"
  assume_role_policy = data.aws_iam_policy_document.replication_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "replication" {
  statement {
    actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]
  }

  statement {
    actions = [
      "s3:GetObjectVersionForReplication",
      "s3:GetObjectVersionAcl",
      "s3:GetObjectVersionTagging",
    ]
    resources = ["${aws_s3_bucket.this.arn}/*"]
  }

  statement {
    actions   = ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"]
    resources = length(var.replication_destinations) > 0 ? [for d in var.replication_destinations : "${d.bucket_arn}/*"] : ["${aws_s3_bucket.this.arn}/*"]
  }

  statement {
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }

  statement {
    actions   = ["kms:Encrypt", "kms:GenerateDataKey"]
    resources = length(var.replication_destinations) > 0 ? [for d in var.replication_destinations : d.kms_key_arn] : [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "replication" {
  count  = length(var.replication_destinations) > 0 ? 1 : 0
  name   = "replicate-snapshots"
  role   = aws_iam_role.replication[0].id
  policy = data.aws_iam_policy_document.replication.json
}

resource "aws_s3_bucket_replication_configuration" "this" {
  count  = length(var.replication_destinations) > 0 ? 1 : 0
  bucket = aws_s3_bucket.this.id
  role   = aws_iam_role.replication[0].arn

  dynamic "rule" {
    for_each = var.replication_destinations
    content {
      id       = "to-${element(split(":::", rule.value.bucket_arn), 1)}"
      priority = rule.key
      status   = "Enabled"

      filter {
        prefix = "snapshots/"
      }

      delete_marker_replication {
        status = "Enabled"
      }

      source_selection_criteria {
        sse_kms_encrypted_objects {
          status = "Enabled"
        }
      }

      destination {
        bucket = rule.value.bucket_arn
        encryption_configuration {
          replica_kms_key_id = rule.value.kms_key_arn
        }
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}
