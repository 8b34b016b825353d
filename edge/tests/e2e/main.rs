//! Edge end-to-end tests: a real writer (fresh PostgreSQL database, Redis
//! stream key of its own) and real edges on real sockets, in one process.

// The writer's test harness: fresh database, writer on a random port, HTTP
// client, private redis-server processes.
#[allow(dead_code)]
#[path = "../../../writer/tests/api/helpers.rs"]
mod writer_helpers;

mod harness;

mod forwarding;
mod public_api;
mod resilience;
