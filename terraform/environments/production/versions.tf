terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
    }
  }

  # Remote state in S3, configured at init time:
  #   terraform init -backend-config=backend.hcl
  # (see backend.hcl.example and DEPLOYING.md). The state holds generated
  # passwords and tokens: the bucket must be encrypted and access-controlled.
  backend "s3" {}
}
