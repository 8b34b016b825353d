# A DNS-validated ACM certificate in one region. ACM asks for the same
# validation record for a name in every region of an account, so the record
# is not created here: the environment creates each name's record once and
# passes its FQDNs to every region's certificate. (Per-region copies of one
# record would overwrite each other, and destroying one region would delete
# the record the others renew with.)

resource "aws_acm_certificate" "this" {
  domain_name               = var.domain_name
  subject_alternative_names = var.subject_alternative_names
  validation_method         = "DNS"
  tags                      = var.tags

  options {
    certificate_transparency_logging_preference = "ENABLED"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_acm_certificate_validation" "this" {
  certificate_arn         = aws_acm_certificate.this.arn
  validation_record_fqdns = var.validation_record_fqdns
}
