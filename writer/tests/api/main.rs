//! Writer integration tests: a real writer per test, a fresh PostgreSQL
//! database per test, a unique Redis stream key per test, real sockets.

mod auth;
mod cli;
mod console;
mod crud;
mod errors;
mod idempotency;
mod least_privilege;
mod leniency;
mod metrics;
mod operations;
mod ordering;
mod outage;
mod publishing;
mod scopes;
mod snapshot_store;
mod snapshots;
mod transfer;
mod validation;
