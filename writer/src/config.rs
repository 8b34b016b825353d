//! Command-line flags and environment variables: the one place that lists
//! every setting. `adcast-writer --help` prints this file's doc comments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use adcast_shared::snapshot_store::StoreUrl;
use anyhow::{anyhow, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::auth::{Scope, TokenEntry, Tokens};
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
        /// migrations table, SELECT and INSERT alone on the audit trail),
        /// nothing else. Safe to repeat.
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

    /// Admin token: every admin and internal route. Repeat for several
    /// (rotation); the variable takes a comma-separated list. `label:token`
    /// gives it a label, recorded with every change it makes.
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

    /// Read token: admin routes that change nothing (GET of ads and lists,
    /// explain, preview, export, history, whoami). Repeatable;
    /// comma-separated in the variable; `label:token` labels it.
    #[arg(
        long = "read-token",
        env = "ADCAST_READ_TOKENS",
        value_delimiter = ',',
        hide_env_values = true,
        global = true
    )]
    pub read_tokens: Vec<String>,

    /// File holding read tokens, one per line (blank lines and `#` comments ignored).
    #[arg(long, env = "ADCAST_READ_TOKENS_FILE", global = true)]
    pub read_tokens_file: Option<PathBuf>,

    /// Internal token: `/internal/v1/*` only, what an edge needs (give
    /// edges this, never an admin token). Repeatable; comma-separated in
    /// the variable; `label:token` labels it.
    #[arg(
        long = "internal-token",
        env = "ADCAST_INTERNAL_TOKENS",
        value_delimiter = ',',
        hide_env_values = true,
        global = true
    )]
    pub internal_tokens: Vec<String>,

    /// File holding internal tokens, one per line (blank lines and `#` comments ignored).
    #[arg(long, env = "ADCAST_INTERNAL_TOKENS_FILE", global = true)]
    pub internal_tokens_file: Option<PathBuf>,

    /// Allow listening on a non-loopback address with no tokens configured.
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

    /// Every configured token of every scope: flags, variables and files
    /// together. An entry that is not a valid `token` or `label:token`, or
    /// a token given two scopes or two labels, is an error that names where
    /// it came from (never the token).
    pub fn load_tokens(&self) -> anyhow::Result<Tokens> {
        let sources = [
            (
                Scope::Admin,
                &self.admin_tokens,
                "--admin-token / ADCAST_ADMIN_TOKENS",
                &self.admin_tokens_file,
            ),
            (
                Scope::Read,
                &self.read_tokens,
                "--read-token / ADCAST_READ_TOKENS",
                &self.read_tokens_file,
            ),
            (
                Scope::Internal,
                &self.internal_tokens,
                "--internal-token / ADCAST_INTERNAL_TOKENS",
                &self.internal_tokens_file,
            ),
        ];
        let mut entries = Vec::new();
        for (scope, listed, names, file) in sources {
            let listed = listed
                .iter()
                .map(|token| token.trim())
                .filter(|token| !token.is_empty());
            for (index, text) in listed.enumerate() {
                let entry = TokenEntry::parse(text).map_err(|error| {
                    anyhow!("{} token {} of {names}: {error}", scope.as_str(), index + 1)
                })?;
                entries.push((scope, entry));
            }
            if let Some(path) = file {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("reading {} tokens file {}", scope.as_str(), path.display())
                })?;
                for (number, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let entry = TokenEntry::parse(line).map_err(|error| {
                        anyhow!(
                            "line {} of {} tokens file {}: {error}",
                            number + 1,
                            scope.as_str(),
                            path.display()
                        )
                    })?;
                    entries.push((scope, entry));
                }
            }
        }
        Ok(Tokens::new(entries)?)
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::auth::Authentication;

    /// Parsing reads the environment; tests that set variables hold this.
    static ENVIRONMENT: Mutex<()> = Mutex::new(());

    fn settings(args: &[&str]) -> Settings {
        let _environment = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
        Cli::try_parse_from(std::iter::once("adcast-writer").chain(args.iter().copied()))
            .expect("valid arguments")
            .settings
    }

    fn who(tokens: &Tokens, token: &str) -> Option<(&'static str, Option<String>)> {
        let header = format!("Bearer {token}");
        match tokens.authenticate(Some(header.as_bytes())) {
            Authentication::Caller(caller) => {
                Some((caller.scope_name(), caller.label().map(str::to_owned)))
            }
            Authentication::Refused => None,
        }
    }

    #[test]
    fn flags_of_every_scope_are_read_with_their_labels() {
        let tokens = settings(&[
            "--admin-token",
            "alice:a1",
            "--admin-token",
            "a2",
            "--read-token",
            "viewer:r1",
            "--internal-token",
            "edge-eu-1:i1",
        ])
        .load_tokens()
        .unwrap();
        assert_eq!(who(&tokens, "a1"), Some(("admin", Some("alice".into()))));
        assert_eq!(who(&tokens, "a2"), Some(("admin", None)));
        assert_eq!(who(&tokens, "r1"), Some(("read", Some("viewer".into()))));
        assert_eq!(
            who(&tokens, "i1"),
            Some(("internal", Some("edge-eu-1".into())))
        );
        assert_eq!(who(&tokens, "viewer:r1"), None);
    }

    #[test]
    fn no_tokens_at_all_is_tokens_off() {
        assert!(settings(&[]).load_tokens().unwrap().is_empty());
        // Blank entries are ignored.
        assert!(settings(&["--read-token", " "])
            .load_tokens()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_variables_take_comma_separated_lists() {
        let _environment = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
        std::env::set_var("ADCAST_READ_TOKENS", "ann:r1, r2 ,bob:r3");
        std::env::set_var("ADCAST_INTERNAL_TOKENS", "edge:i1,i2");
        let parsed = Cli::try_parse_from(["adcast-writer"]);
        std::env::remove_var("ADCAST_READ_TOKENS");
        std::env::remove_var("ADCAST_INTERNAL_TOKENS");
        let tokens = parsed.unwrap().settings.load_tokens().unwrap();
        assert_eq!(who(&tokens, "r1"), Some(("read", Some("ann".into()))));
        assert_eq!(who(&tokens, "r2"), Some(("read", None)));
        assert_eq!(who(&tokens, "r3"), Some(("read", Some("bob".into()))));
        assert_eq!(who(&tokens, "i1"), Some(("internal", Some("edge".into()))));
        assert_eq!(who(&tokens, "i2"), Some(("internal", None)));
        assert_eq!(tokens.count(Scope::Admin), 0);
    }

    #[test]
    fn files_hold_one_token_per_line_with_comments_and_labels() {
        let dir = std::env::temp_dir().join(format!("adcast-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("read-tokens");
        std::fs::write(&file, "# viewers\n\nann:r-file-1\n  r-file-2  \n").unwrap();
        let mut settings = settings(&[]);
        settings.read_tokens_file = Some(file.clone());
        let tokens = settings.load_tokens();
        std::fs::write(&file, "ok-token\nbad label:secret\n").unwrap();
        let refused = settings.load_tokens().err().map(|error| error.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        let tokens = tokens.unwrap();
        assert_eq!(who(&tokens, "r-file-1"), Some(("read", Some("ann".into()))));
        assert_eq!(who(&tokens, "r-file-2"), Some(("read", None)));
        let refused = refused.expect("an invalid label is refused");
        assert!(refused.contains("line 2 of read tokens file"), "{refused}");
        assert!(!refused.contains("bad label"), "{refused}");
    }

    #[test]
    fn an_invalid_label_is_an_error_naming_the_source_not_the_token() {
        for (args, expected) in [
            (
                ["--admin-token", "ok", "--admin-token", "bad/label:s3cret"],
                "admin token 2 of --admin-token",
            ),
            (
                ["--read-token", "ok", "--read-token", "alice:"],
                "read token 2 of --read-token",
            ),
            (
                ["--internal-token", "x", "--internal-token", ":s3cret"],
                "internal token 2 of --internal-token",
            ),
        ] {
            let error = settings(&args)
                .load_tokens()
                .err()
                .expect("refused")
                .to_string();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("s3cret"), "{error}");
        }
        let long = format!("{}:s3cret", "x".repeat(65));
        assert!(settings(&["--read-token", &long]).load_tokens().is_err());
    }

    #[test]
    fn a_token_in_two_scopes_is_an_error() {
        let error = settings(&["--admin-token", "dup-tok-9", "--read-token", "dup-tok-9"])
            .load_tokens()
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains("admin") && error.contains("read"), "{error}");
        assert!(!error.contains("dup-tok-9"), "{error}");
    }
}
