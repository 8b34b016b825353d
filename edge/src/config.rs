//! Command-line flags and environment variables: every setting of the edge.
//! `adcast-edge --help` prints this file's doc comments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use adcast_shared::snapshot_store::StoreUrl;
use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "adcast-edge",
    version,
    about = "adcast edge node: serves the Public API from memory, kept current from the Redis Stream"
)]
pub struct Settings {
    /// Address the Public API listens on.
    #[arg(long, env = "ADCAST_EDGE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Redis URL (required), e.g. redis://127.0.0.1:6379; TLS via `rediss://`.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: String,

    /// Redis Stream key the writer publishes change events to.
    #[arg(long, env = "ADCAST_STREAM_KEY", default_value = "adcast:events")]
    pub stream_key: String,

    /// How the state is kept current: `stream`, a long-running tailer
    /// (`XREAD BLOCK` on a connection of its own); or `poll`, for platforms
    /// that freeze the process between requests: no background work, a
    /// request that finds the state synced longer than --max-staleness-ms
    /// ago first catches up with one bounded, non-blocking read.
    #[arg(long, env = "ADCAST_SYNC", value_enum, default_value_t = SyncMode::Stream)]
    pub sync: SyncMode,

    /// Poll mode: how long ago the state may have been synced before a
    /// request first catches up with the stream.
    #[arg(long, env = "ADCAST_MAX_STALENESS_MS", default_value_t = 250)]
    pub max_staleness_ms: u64,

    /// Poll mode: the longest a catch-up may make a request wait (connecting
    /// to Redis and reading); beyond it the request is answered from the
    /// state the edge has, with its Adcast-Seq.
    #[arg(long, env = "ADCAST_CATCH_UP_TIMEOUT_MS", default_value_t = 200)]
    pub catch_up_timeout_ms: u64,

    /// Writer base URL (http://host:port). Enables forwarding of admin calls
    /// and downloading snapshots; without it the edge serves only the Public API.
    #[arg(long, env = "ADCAST_WRITER_URL")]
    pub writer_url: Option<String>,

    /// Bearer token the edge presents to the writer's internal routes
    /// (snapshot downloads): give it one of the writer's internal tokens.
    /// Forwarded admin calls carry the client's own token, never this one.
    #[arg(long, env = "ADCAST_WRITER_TOKEN", hide_env_values = true)]
    pub writer_token: Option<String>,

    /// File holding the writer token (first line), instead of --writer-token.
    #[arg(long, env = "ADCAST_WRITER_TOKEN_FILE")]
    pub writer_token_file: Option<PathBuf>,

    /// Snapshot to start from: a file, a directory whose newest valid
    /// snapshot file is used, or an object store `s3://bucket/prefix` (the
    /// writer's --snapshot-store; credentials, region and endpoint from the
    /// standard AWS environment, e.g. AWS_REGION, AWS_ENDPOINT_URL) whose
    /// newest valid snapshot is used, also after a gap in the stream.
    #[arg(long, env = "ADCAST_SNAPSHOT")]
    pub snapshot: Option<PathBuf>,

    /// Directory for this edge's own snapshot files (downloaded and persisted).
    #[arg(long, env = "ADCAST_DATA_DIR", default_value = "./data/edge")]
    pub data_dir: PathBuf,

    /// Keep an index image in --data-dir beside the snapshot files (the
    /// state in the form queries read it, saved with each snapshot), so
    /// that a restart maps it instead of decoding and indexing every ad.
    /// About twice the size of the ads' text; `false` keeps none.
    #[arg(long, env = "ADCAST_INDEX_IMAGE", default_value_t = true, action = clap::ArgAction::Set)]
    pub index_image: bool,

    /// Tokio worker threads serving requests (default: number of CPUs).
    #[arg(long, env = "ADCAST_WORKER_THREADS")]
    pub worker_threads: Option<usize>,

    /// Longest wait for `Adcast-Min-Seq`, and for a forwarded write to be
    /// applied here, before answering anyway (503 for Adcast-Min-Seq).
    #[arg(long, env = "ADCAST_MIN_SEQ_WAIT_MS", default_value_t = 1_000)]
    pub min_seq_wait_ms: u64,

    /// Upper bound of `Cache-Control: max-age` on Public API answers.
    #[arg(long, env = "ADCAST_CACHE_MAX_AGE_SECS", default_value_t = 5)]
    pub cache_max_age_secs: u64,

    /// Slots of the in-memory answer cache (recent Public API answers by
    /// query string, reused only while exactly right: same state, before
    /// the next start or end of any ad); 0 turns it off.
    #[arg(long, env = "ADCAST_ANSWER_CACHE_ENTRIES", default_value_t = crate::answer_cache::DEFAULT_ENTRIES)]
    pub answer_cache_entries: usize,

    /// /readyz fails when the last contact with the stream is older than
    /// this, or the state is staler than this by the writer's heartbeat
    /// (then answers also carry `Adcast-Staleness-Ms`).
    #[arg(long, env = "ADCAST_READY_MAX_LAG_MS", default_value_t = 15_000)]
    pub ready_max_lag_ms: u64,

    /// How long one XREAD blocks waiting for new events.
    #[arg(long, env = "ADCAST_XREAD_BLOCK_MS", default_value_t = 5_000)]
    pub xread_block_ms: u64,

    /// How often the current state is saved to --data-dir (when it changed).
    #[arg(long, env = "ADCAST_PERSIST_INTERVAL_SECS", default_value_t = 30)]
    pub persist_interval_secs: u64,

    /// Most client connections served at once; further ones wait to be accepted.
    #[arg(long, env = "ADCAST_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Longest time a client may take to send its request headers.
    #[arg(long, env = "ADCAST_HEADER_READ_TIMEOUT_MS", default_value_t = 5_000)]
    pub header_read_timeout_ms: u64,

    /// Log format.
    #[arg(long, env = "ADCAST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter in `tracing` syntax, e.g. `info` or `adcast_edge=debug`.
    #[arg(long, env = "ADCAST_LOG", default_value = "info")]
    pub log: String,
}

/// `--sync`: how the edge keeps current with the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncMode {
    /// A dedicated tailer blocks on the stream and applies changes as they
    /// arrive.
    Stream,
    /// Requests catch up with the stream when the state is older than
    /// --max-staleness-ms; nothing runs between requests.
    Poll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What `--snapshot` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotLocation {
    /// A file or a directory of snapshot files.
    Path(PathBuf),
    /// `s3://bucket/prefix`.
    Store(StoreUrl),
}

impl Settings {
    /// `--snapshot`, told apart: an `s3://` URL names an object store.
    pub fn snapshot_location(&self) -> anyhow::Result<Option<SnapshotLocation>> {
        let Some(path) = &self.snapshot else {
            return Ok(None);
        };
        match path.to_str() {
            Some(text) if StoreUrl::is_store_url(text) => Ok(Some(SnapshotLocation::Store(
                text.parse()
                    .map_err(|error| anyhow::anyhow!("--snapshot: {error}"))?,
            ))),
            _ => Ok(Some(SnapshotLocation::Path(path.clone()))),
        }
    }

    /// The writer token from the flag, the variable or the file.
    pub fn load_writer_token(&self) -> anyhow::Result<Option<String>> {
        if let Some(path) = &self.writer_token_file {
            let text = std::fs::read_to_string(path).map_err(|error| {
                anyhow::anyhow!("reading writer token file {}: {error}", path.display())
            })?;
            return Ok(text
                .lines()
                .next()
                .map(|line| line.trim().to_owned())
                .filter(|t| !t.is_empty()));
        }
        Ok(self.writer_token.clone().filter(|token| !token.is_empty()))
    }

    pub fn min_seq_wait(&self) -> Duration {
        Duration::from_millis(self.min_seq_wait_ms)
    }

    pub fn ready_max_lag(&self) -> Duration {
        Duration::from_millis(self.ready_max_lag_ms)
    }

    pub fn max_staleness(&self) -> Duration {
        Duration::from_millis(self.max_staleness_ms)
    }

    pub fn catch_up_timeout(&self) -> Duration {
        Duration::from_millis(self.catch_up_timeout_ms.max(1))
    }

    pub fn xread_block(&self) -> Duration {
        Duration::from_millis(self.xread_block_ms)
    }

    pub fn persist_interval(&self) -> Duration {
        Duration::from_secs(self.persist_interval_secs.max(1))
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_the_default_and_poll_has_its_bounds() {
        let stream = Settings::try_parse_from(["adcast-edge", "--redis-url", "redis://r"]).unwrap();
        assert_eq!(stream.sync, SyncMode::Stream);
        assert_eq!(stream.max_staleness(), Duration::from_millis(250));
        let poll = Settings::try_parse_from([
            "adcast-edge",
            "--redis-url",
            "redis://r",
            "--sync",
            "poll",
            "--max-staleness-ms",
            "1000",
        ])
        .unwrap();
        assert_eq!(poll.sync, SyncMode::Poll);
        assert_eq!(poll.max_staleness(), Duration::from_secs(1));
        assert_eq!(poll.catch_up_timeout(), Duration::from_millis(200));
        assert!(
            Settings::try_parse_from(["adcast-edge", "--redis-url", "r", "--sync", "pull"])
                .is_err()
        );
    }
}
