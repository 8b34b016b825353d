# PostgreSQL for the writer: RDS Multi-AZ, encrypted, TLS enforced, automated
# backups, deletion protection.
#
# Two credentials, each a Secrets Manager secret holding JSON
# {"url": DATABASE_URL, "password": ...}:
#   master   the RDS master user: owns the schema. Only the writer task's
#            one-shot steps use it (creating the runtime role, then
#            `adcast-writer migrate --grant-to <runtime role>`).
#   runtime  the least-privilege role the writer serves with
#            (--skip-migrations): DML on adcast's tables and its sequences,
#            nothing else. Its password is set by the role step at every task
#            start, so replacing it here and redeploying rotates it.

locals {
  identifier = "${var.name}-postgres"
  family     = "postgres${split(".", var.engine_version)[0]}"
}

resource "random_password" "master" {
  # Letters and digits only: the password sits inside a URL unescaped.
  length  = 40
  special = false
}

resource "random_password" "runtime" {
  length  = 40
  special = false
}

resource "aws_db_subnet_group" "this" {
  name_prefix = "${var.name}-"
  description = "${var.name} PostgreSQL private subnets"
  subnet_ids  = var.subnet_ids
  tags        = var.tags
}

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-postgres-"
  description = "adcast PostgreSQL: 5432 from the writer only"
  vpc_id      = var.vpc_id
  tags        = var.tags

  ingress {
    description     = "PostgreSQL from the writer tasks"
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = var.client_security_group_ids
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.name}-"
  family      = local.family
  description = "adcast: TLS required, DDL and slow statements logged"
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

resource "aws_cloudwatch_log_group" "this" {
  for_each          = toset(["postgresql", "upgrade"])
  name              = "/aws/rds/instance/${local.identifier}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

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
  name_prefix        = "${substr(var.name, 0, 24)}-rdsmon-"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  identifier     = local.identifier
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class

  db_name  = var.database_name
  username = var.master_username
  password = random_password.master.result
  port     = 5432

  allocated_storage     = var.allocated_storage_gb
  max_allocated_storage = var.max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  multi_az               = true
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.this.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.this.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  iam_database_authentication_enabled = true

  backup_retention_period   = var.backup_retention_days
  backup_window             = "03:00-04:00"
  maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = true
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.identifier}-final"
  delete_automated_backups  = false

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = false
  apply_immediately           = false

  monitoring_interval                   = var.monitoring_interval_seconds
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = 7
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.this]
}

locals {
  endpoint = "${aws_db_instance.this.address}:${aws_db_instance.this.port}"
}

module "master_credentials" {
  source = "../secret"

  name        = "${var.name}/writer/database-master"
  description = "adcast PostgreSQL master user (schema owner): {url, password}; migrations and the runtime role only"
  value = jsonencode({
    url      = "postgres://${var.master_username}:${random_password.master.result}@${local.endpoint}/${var.database_name}?sslmode=require"
    password = random_password.master.result
  })
  kms_key_arn = var.kms_key_arn
  tags        = var.tags
}

module "runtime_credentials" {
  source = "../secret"

  name        = "${var.name}/writer/database-runtime"
  description = "adcast PostgreSQL runtime role ${var.runtime_role} (DML only): {url, password}; the writer's DATABASE_URL"
  value = jsonencode({
    url      = "postgres://${var.runtime_role}:${random_password.runtime.result}@${local.endpoint}/${var.database_name}?sslmode=require"
    password = random_password.runtime.result
  })
  kms_key_arn = var.kms_key_arn
  tags        = var.tags
}

resource "aws_cloudwatch_metric_alarm" "cpu" {
  alarm_name          = "${local.identifier}-cpu-high"
  alarm_description   = "PostgreSQL CPU above 80% for 15 minutes"
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.this.identifier }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = 80
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "free_storage" {
  alarm_name          = "${local.identifier}-storage-low"
  alarm_description   = "PostgreSQL free storage under 10 GiB"
  namespace           = "AWS/RDS"
  metric_name         = "FreeStorageSpace"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.this.identifier }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 10737418240
  comparison_operator = "LessThanThreshold"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
  tags                = var.tags
}
