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

/// The writer binary set up as an operator would start it, through its
/// environment: database, Redis, stream key, listen port and snapshot
/// directory. Tests add their own tokens, log level and output handling.
fn writer_command(
    database_url: &str,
    redis_url: &str,
    stream_key: &str,
    port: u16,
    snapshot_dir: &std::path::Path,
) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_adcast-writer"));
    command
        .env("DATABASE_URL", database_url)
        .env("REDIS_URL", redis_url)
        .env("ADCAST_STREAM_KEY", stream_key)
        .env("ADCAST_WRITER_LISTEN", format!("127.0.0.1:{port}"))
        .env("ADCAST_SNAPSHOT_DIR", snapshot_dir);
    command
}
