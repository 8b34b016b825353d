# PostgreSQL in the recovery region: what a writer there needs when the
# primary region is gone (DEPLOYING.md, "The primary region is gone").
#
#   mode = "backups"  (default) the primary's automated backups and
#                     transaction logs are replicated here; recovery restores
#                     a new instance from them to a point in time, into the
#                     subnet group and security group made here.
#   mode = "replica"  a cross-region read replica runs here; recovery promotes
#                     it (minutes, RPO = replica lag, typically seconds) at the
#                     price of a second instance.
#
# The recovery writer's credentials (same roles and passwords as the
# primary's; a restore or a promotion keeps both) are secrets in this region
# whose host is the replica, or recovery_database_address once a restored
# instance exists.

locals {
  identifier = "${var.name}-postgres"
  family     = "postgres${split(".", var.engine_version)[0]}"
  address = (
    var.recovery_database_address != "" ? var.recovery_database_address :
    var.mode == "replica" ? aws_db_instance.replica[0].address :
    "restore-pending.invalid"
  )
  endpoint = "${local.address}:${var.port}"
}

resource "aws_db_subnet_group" "this" {
  name_prefix = "${var.name}-"
  description = "${var.name} PostgreSQL (recovery) private subnets"
  subnet_ids  = var.subnet_ids
  tags        = var.tags
}

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-postgres-"
  description = "adcast PostgreSQL (recovery region): 5432 from the recovery writer only"
  vpc_id      = var.vpc_id
  tags        = var.tags

  ingress {
    description     = "PostgreSQL from the recovery writer tasks"
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = var.client_security_group_ids
  }

  lifecycle {
    create_before_destroy = true
  }
}

# Same settings as the primary's parameter group: a restored or promoted
# instance gets it (`--db-parameter-group-name` in the runbook).
resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.name}-"
  family      = local.family
  description = "adcast (recovery): TLS required, DDL and slow statements logged"
  tags        = var.tags

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

# --- mode "backups" -------------------------------------------------------------

resource "aws_db_instance_automated_backups_replication" "this" {
  count                  = var.mode == "backups" ? 1 : 0
  source_db_instance_arn = var.source_db_instance_arn
  kms_key_id             = var.kms_key_arn
  retention_period       = var.backup_retention_days
}

# --- mode "replica" ---------------------------------------------------------------

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  count              = var.mode == "replica" ? 1 : 0
  name_prefix        = "${substr(var.name, 0, 24)}-rdsmon-"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  count      = var.mode == "replica" ? 1 : 0
  role       = aws_iam_role.monitoring[0].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_cloudwatch_log_group" "replica" {
  for_each          = var.mode == "replica" ? toset(["postgresql", "upgrade"]) : toset([])
  name              = "/aws/rds/instance/${local.identifier}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_db_instance" "replica" {
  #checkov:skip=CKV_AWS_157:A single-zone standby of a Multi-AZ primary: it becomes the primary only in a regional disaster, and can be made Multi-AZ after promotion (runbook).
  count               = var.mode == "replica" ? 1 : 0
  identifier          = local.identifier
  replicate_source_db = var.source_db_instance_arn
  instance_class      = var.instance_class

  storage_type      = "gp3"
  storage_encrypted = true
  kms_key_id        = var.kms_key_arn

  multi_az               = false
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.this.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.this.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  iam_database_authentication_enabled = true

  # Backups on the replica, so the promoted instance has point-in-time
  # recovery from its first minute.
  backup_retention_period   = var.backup_retention_days
  backup_window             = "03:00-04:00"
  maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = true
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.identifier}-final"

  auto_minor_version_upgrade = true
  apply_immediately          = false

  monitoring_interval                   = 30
  monitoring_role_arn                   = aws_iam_role.monitoring[0].arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = 7
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.replica]
}

resource "aws_cloudwatch_metric_alarm" "replica_lag" {
  count               = var.mode == "replica" ? 1 : 0
  alarm_name          = "${local.identifier}-replica-lag"
  alarm_description   = "The cross-region replica is more than ${var.replica_lag_alarm_seconds}s behind: the recovery point of a regional failover is that far back."
  namespace           = "AWS/RDS"
  metric_name         = "ReplicaLag"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.replica[0].identifier }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.replica_lag_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
  tags                = var.tags
}

# --- the recovery writer's credentials ---------------------------------------------

module "master_credentials" {
  source = "../secret"

  name        = "${var.name}/writer/database-master"
  description = "adcast PostgreSQL master user in the recovery region: {url, password}"
  value = jsonencode({
    url      = "postgres://${var.master_username}:${var.master_password}@${local.endpoint}/${var.database_name}?sslmode=require"
    password = var.master_password
  })
  kms_key_arn = var.kms_key_arn
  tags        = var.tags
}

module "runtime_credentials" {
  source = "../secret"

  name        = "${var.name}/writer/database-runtime"
  description = "adcast PostgreSQL runtime role ${var.runtime_role} in the recovery region: {url, password}"
  value = jsonencode({
    url      = "postgres://${var.runtime_role}:${var.runtime_password}@${local.endpoint}/${var.database_name}?sslmode=require"
    password = var.runtime_password
  })
  kms_key_arn = var.kms_key_arn
  tags        = var.tags
}
