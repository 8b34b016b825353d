# Valid Fargate task sizes (Linux): memory in MiB allowed for each CPU value.
# terraform/tests/test_aws_constraints.py checks the defaults against AWS's
# table independently; this precondition catches a bad pair at plan time.
locals {
  fargate_memory_by_cpu = {
    "256"   = [512, 1024, 2048]
    "512"   = range(1024, 4097, 1024)
    "1024"  = range(2048, 8193, 1024)
    "2048"  = range(4096, 16385, 1024)
    "4096"  = range(8192, 30721, 1024)
    "8192"  = range(16384, 61441, 4096)
    "16384" = range(32768, 122881, 8192)
  }
}
