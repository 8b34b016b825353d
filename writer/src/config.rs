//! Command-line flags and environment variables: the one place that lists
//! every setting. `adcast-writer --help` prints this file's doc comments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use adcast_shared::snapshot_store::StoreUrl;
use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::schema::RoleName;

#[derive(Debug, Parser)]
#[command(
    name = "adcast-writer",
    version,
    about = "adcast central writer: the Admin API on PostgreSQL, publishing every change in order to a Redis Stream"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write one snapshot file of the current state and exit (needs only the
    /// database): for baking a file into an image or seeding a new region.
    Snapshot {
        /// The file to write (atomically).
        #[arg(long)]
        out: PathBuf,
    },
    /// Apply the database migrations and exit (needs only the database).
    ///
    /// Run it with a DATABASE_URL whose role may change the schema; the
    /// writer itself can then run as a role without that right, with
    /// --skip-migrations.
    Migrate {
        /// Also grant this existing role exactly what a running writer
        /// needs: SELECT, INSERT, UPDATE, DELETE on adcast's tables and
        /// USAGE, SELECT, UPDATE on its sequences (SELECT alone on the
        /// migrations table), nothing else. Safe to repeat.
        #[arg(long, value_name = "ROLE")]
        grant_to: Option<RoleName>,
    },
    /// Create the ads of a JSON array or NDJSON file through a running
    /// writer's import route, in chunks, with progress; running it again on
    /// the same file creates nothing twice.
    #[command(after_help = crate::cli::EXIT_STATUS_HELP)]
    Import(crate::cli::import::ImportArgs),
    /// Write every ad of a running writer, as NDJSON (one canonical ad per
    /// line, by id), to standard output or a file; it imports again as it is.
    #[command(after_help = crate::cli::EXIT_STATUS_HELP)]
    Export(crate::cli::export::ExportArgs),
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address the Admin API listens on.
    #[arg(
        long,
        env = "ADCAST_WRITER_LISTEN",
        default_value = "127.0.0.1:8081",
        global = true
    )]
    pub listen: SocketAddr,

    /// PostgreSQL URL (required), e.g. postgres://user@host:5432/adcast; TLS via `sslmode=`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,

    /// Redis URL (required), e.g. redis://127.0.0.1:6379; TLS via `rediss://`.
    #[arg(long, env = "REDIS_URL", hide_env_values = true, global = true)]
    pub redis_url: Option<String>,

    /// Redis Stream key the change events are published to.
    #[arg(
        long,
        env = "ADCAST_STREAM_KEY",
        default_value = "adcast:events",
        global = true
    )]
    pub stream_key: String,

    /// Directory the snapshot files are written to.
    #[arg(
        long,
        env = "ADCAST_SNAPSHOT_DIR",
        default_value = "./data/snapshots",
        global = true
    )]
    pub snapshot_dir: PathBuf,

    /// Object store every kept snapshot is also uploaded to, with a pointer
    /// to the newest: `s3://bucket/prefix` (AWS S3 or S3-compatible;
    /// credentials, region and endpoint from the standard AWS environment,
    /// e.g. AWS_REGION, AWS_ENDPOINT_URL). The stream is trimmed only behind
    /// snapshots the store holds; the same retention (--snapshot-keep)
    /// applies there.
    #[arg(long, env = "ADCAST_SNAPSHOT_STORE", global = true)]
    pub snapshot_store: Option<StoreUrl>,

    /// Snapshot files kept in the snapshot directory (and in the store);
    /// the stream and the outbox are trimmed only behind the oldest kept one.
    #[arg(long, env = "ADCAST_SNAPSHOT_KEEP", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub snapshot_keep: u64,

    /// Write a snapshot once this many changes accumulated since the last one.
    #[arg(long, env = "ADCAST_SNAPSHOT_EVERY_CHANGES", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub snapshot_every_changes: u64,

    /// Write a snapshot when anything changed and this many seconds passed
    /// since the last one.
    #[arg(
        long,
        env = "ADCAST_SNAPSHOT_INTERVAL_SECS",
        default_value_t = 60,
        global = true
    )]
    pub snapshot_interval_secs: u64,

    /// Bearer token accepted on admin and internal routes; repeat for several
    /// (rotation). The variable takes a comma-separated list.
    #[arg(
        long = "admin-token",
        env = "ADCAST_ADMIN_TOKENS",
        value_delimiter = ',',
        hide_env_values = true,
        global = true
    )]
    pub admin_tokens: Vec<String>,

    /// File holding admin tokens, one per line (blank lines and `#` comments ignored).
    #[arg(long, env = "ADCAST_ADMIN_TOKENS_FILE", global = true)]
    pub admin_tokens_file: Option<PathBuf>,

    /// Allow listening on a non-loopback address with no admin tokens configured.
    #[arg(long, env = "ADCAST_ALLOW_INSECURE_ADMIN", global = true)]
    pub allow_insecure_admin: bool,

    /// Longest time a request may take before it is answered 503.
    #[arg(
        long,
        env = "ADCAST_REQUEST_TIMEOUT_MS",
        default_value_t = 10_000,
        global = true
    )]
    pub request_timeout_ms: u64,

    /// Most client connections served at once; further ones wait to be accepted.
    #[arg(
        long,
        env = "ADCAST_MAX_CONNECTIONS",
        default_value_t = 1_024,
        global = true
    )]
    pub max_connections: usize,

    /// Longest time a client may take to send its request headers.
    #[arg(
        long,
        env = "ADCAST_HEADER_READ_TIMEOUT_MS",
        default_value_t = 5_000,
        global = true
    )]
    pub header_read_timeout_ms: u64,

    /// Longest wait for a PostgreSQL connection before answering 503.
    #[arg(
        long,
        env = "ADCAST_DB_ACQUIRE_TIMEOUT_MS",
        default_value_t = 3_000,
        global = true
    )]
    pub db_acquire_timeout_ms: u64,

    /// Size of the PostgreSQL connection pool.
    #[arg(
        long,
        env = "ADCAST_DB_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub db_max_connections: u32,

    /// How often the relay checks the stream for missing events even when
    /// nothing new was written (covers Redis restarts and other writers).
    #[arg(
        long,
        env = "ADCAST_RELAY_INTERVAL_MS",
        default_value_t = 1_000,
        global = true
    )]
    pub relay_interval_ms: u64,

    /// Do not apply migrations at start-up: check that every one is applied
    /// and refuse to start if not. For a writer whose database role may not
    /// change the schema; run `adcast-writer migrate` before it.
    #[arg(long, env = "ADCAST_SKIP_MIGRATIONS", global = true)]
    pub skip_migrations: bool,

    /// How often the writer publishes its heartbeat (its clock and the last
    /// change the stream holds, next to the stream), from which every edge
    /// measures its staleness end to end; 0 turns it off.
    #[arg(
        long,
        env = "ADCAST_HEARTBEAT_INTERVAL_MS",
        default_value_t = 1_000,
        global = true
    )]
    pub heartbeat_interval_ms: u64,

    /// Log format.
    #[arg(long, env = "ADCAST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Log filter in `tracing` syntax, e.g. `info` or `adcast_writer=debug`.
    #[arg(long, env = "ADCAST_LOG", default_value = "info", global = true)]
    pub log: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Settings {
    pub fn database_url(&self) -> anyhow::Result<&str> {
        self.database_url
            .as_deref()
            .context("a PostgreSQL URL is required: --database-url or DATABASE_URL")
    }

    pub fn redis_url(&self) -> anyhow::Result<&str> {
        self.redis_url
            .as_deref()
            .context("a Redis URL is required: --redis-url or REDIS_URL")
    }

    /// Every configured admin token: flags, variable and file together.
    pub fn load_admin_tokens(&self) -> anyhow::Result<Vec<String>> {
        let mut tokens: Vec<String> = self
            .admin_tokens
            .iter()
            .map(|token| token.trim().to_owned())
            .filter(|token| !token.is_empty())
            .collect();
        if let Some(path) = &self.admin_tokens_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading admin tokens file {}", path.display()))?;
            tokens.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty() && !line.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        Ok(tokens)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn db_acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.db_acquire_timeout_ms)
    }

    pub fn snapshot_interval(&self) -> Duration {
        Duration::from_secs(self.snapshot_interval_secs)
    }

    pub fn relay_interval(&self) -> Duration {
        Duration::from_millis(self.relay_interval_ms)
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }
}
