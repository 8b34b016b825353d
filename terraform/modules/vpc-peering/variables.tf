variable "name" {
  description = "Name tag of the peering connection."
  type        = string
}

variable "requester_vpc_id" {
  description = "VPC in the primary region (writer, PostgreSQL, primary Redis); the aws.requester provider's region."
  type        = string
}

variable "requester_cidr_block" {
  description = "IPv4 CIDR of the requester VPC, routed from the accepter side."
  type        = string
}

variable "requester_route_table_ids" {
  description = "Requester route tables that get a route to the accepter VPC."
  type        = list(string)
}

variable "accepter_vpc_id" {
  description = "VPC in an edge region; the aws.accepter provider's region."
  type        = string
}

variable "accepter_region" {
  description = "AWS region of the accepter VPC."
  type        = string
}

variable "accepter_cidr_block" {
  description = "IPv4 CIDR of the accepter VPC, routed from the requester side."
  type        = string
}

variable "accepter_route_table_ids" {
  description = "Accepter route tables that get a route to the requester VPC."
  type        = list(string)
}

variable "private_zone_ids" {
  description = "Private Route 53 zones of the primary region (the writer's service-discovery zone) to associate with the accepter VPC, so edges there resolve the writer's name."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
