//! System tests: a real writer (fresh PostgreSQL database, Redis stream key
//! of its own) and real edges on real sockets, in one process.

mod forwarding;
mod openapi;
mod operations;
mod preview;
mod public_api;
mod resilience;
mod shutdown;
