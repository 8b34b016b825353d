output "security_group_id" {
  description = "Security group of the function's network interfaces (Redis and the writer allow it in)."
  value       = aws_security_group.function.id
}

output "function_name" {
  description = "Name of the Lambda function."
  value       = aws_lambda_function.edge.function_name
}

output "api_domain_target" {
  description = "Regional API Gateway domain the latency record points at (for checks that bypass latency routing)."
  value       = aws_apigatewayv2_domain_name.this.domain_name_configuration[0].target_domain_name
}

output "function_url" {
  description = "The function URL of alias live, if enabled; empty otherwise."
  value       = var.function_url_enabled ? aws_lambda_function_url.live[0].function_url : ""
}
