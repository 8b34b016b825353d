# One provider configuration per region. Every module call names the one it
# uses; the default provider is the primary region.

provider "aws" {
  region = var.primary_region
  default_tags {
    tags = local.tags
  }
}

provider "aws" {
  alias  = "primary"
  region = var.primary_region
  default_tags {
    tags = local.tags
  }
}

provider "aws" {
  alias  = "edge_a"
  region = var.edge_region_a
  default_tags {
    tags = local.tags
  }
}

provider "aws" {
  alias  = "edge_b"
  region = var.edge_region_b
  default_tags {
    tags = local.tags
  }
}

# CloudFront's certificate and web ACL must live in us-east-1 (cdn_enabled).
provider "aws" {
  alias  = "global"
  region = "us-east-1"
  default_tags {
    tags = local.tags
  }
}
