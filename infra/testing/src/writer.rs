//! A real writer in-process on a random port, with a database, a stream key
//! and a snapshot directory of its own, all removed afterwards.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use adcast_writer::config::{LogFormat, Settings};
use adcast_writer::snapshots::SnapshotProducer;
use adcast_writer::startup::Application;
use adcast_writer::store::Store;
use bytes::Bytes;
use http::Method;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::databases::TestDatabase;
use crate::http::{send, TestResponse};
use crate::redis::{redis_url, stream_entries, wait_for_stream_len, StreamKey};

/// Writer settings for a test: loopback on a random port, no tokens, a
/// fresh snapshot directory, a fast relay, snapshots only at start-up.
pub fn settings(database_url: &str, redis_url: &str, stream_key: &str) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().expect("a socket address"),
        database_url: Some(database_url.to_owned()),
        redis_url: Some(redis_url.to_owned()),
        stream_key: stream_key.to_owned(),
        snapshot_dir: std::env::temp_dir().join(crate::unique("adcast-test-snapshots")),
        snapshot_store: None,
        snapshot_keep: 5,
        snapshot_every_changes: 1_000,
        snapshot_interval_secs: 3_600,
        admin_tokens: Vec::new(),
        admin_tokens_file: None,
        read_tokens: Vec::new(),
        read_tokens_file: None,
        internal_tokens: Vec::new(),
        internal_tokens_file: None,
        allow_insecure_admin: false,
        request_timeout_ms: 10_000,
        header_read_timeout_ms: 5_000,
        max_connections: 1_024,
        db_acquire_timeout_ms: 3_000,
        db_max_connections: 20,
        relay_interval_ms: 200,
        skip_migrations: false,
        heartbeat_interval_ms: 1_000,
        log_format: LogFormat::Text,
        log: "warn".into(),
    }
}

/// A valid create body, ending in the future.
pub fn ad_body(title: &str) -> Value {
    serde_json::json!({
        "title": title,
        "startAt": "2024-01-01T00:00:00Z",
        "endAt": "2099-01-01T00:00:00Z",
        "conditions": {"ageStart": 20, "ageEnd": 30, "country": ["TW"], "platform": ["ios"]}
    })
}

pub struct TestWriter {
    pub address: SocketAddr,
    pub database_url: String,
    pub stream_key: String,
    pub snapshot_dir: PathBuf,
    /// A pool on the writer's database, for looking at rows.
    pub db: PgPool,
    pub redis: redis::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// What [`TestWriter::spawn`] created for this writer alone; `None` when
    /// the test passed its own (it then removes them).
    database: Option<TestDatabase>,
    key: Option<StreamKey>,
}

impl Drop for TestWriter {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
        let _ = std::fs::remove_dir_all(&self.snapshot_dir);
    }
}

impl TestWriter {
    /// A writer on a fresh database and stream key of its own.
    pub async fn spawn() -> TestWriter {
        Self::spawn_with(|_| {}).await
    }

    /// Like [`TestWriter::spawn`], with settings adjusted by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> TestWriter {
        let database = TestDatabase::create().await;
        let key = StreamKey::new();
        let mut settings = settings(&database.url(), &redis_url(), key.as_str());
        configure(&mut settings);
        let mut writer = Self::start(settings).await;
        writer.database = Some(database);
        writer.key = Some(key);
        writer
    }

    /// A writer with exactly these settings; the caller owns the database
    /// and the stream key named in them.
    pub async fn start(settings: Settings) -> TestWriter {
        let database_url = settings.database_url.clone().expect("a database URL");
        let stream_key = settings.stream_key.clone();
        let snapshot_dir = settings.snapshot_dir.clone();
        let redis = redis::Client::open(settings.redis_url.clone().expect("a Redis URL"))
            .expect("a valid Redis URL");
        let app = Application::build(settings).await.expect("writer starts");
        let address = app.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = stopped.await;
            })
            .await
            .expect("the writer runs until stopped");
        });
        let db = PgPool::connect(&database_url)
            .await
            .expect("connecting to the writer's database");
        // The writer snapshots at start-up; wait for it so that every test
        // starts from the same state (nothing trimmed behind later writes).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while adcast_shared::snapshot::list_files(&snapshot_dir)
            .map_or(true, |files| files.is_empty())
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no start-up snapshot"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        TestWriter {
            address,
            database_url,
            stream_key,
            snapshot_dir,
            db,
            redis,
            stop: Some(stop),
            server: Some(server),
            database: None,
            key: None,
        }
    }

    /// `http://<address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Graceful stop, as on SIGTERM.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("the writer stops cleanly");
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> TestResponse {
        send(
            self.address,
            method,
            path,
            headers,
            body.map(|b| Bytes::from(b.to_owned())),
        )
        .await
    }

    pub async fn post_ad(&self, body: &Value) -> TestResponse {
        self.request(
            Method::POST,
            "/api/v1/ad",
            &[("content-type", "application/json")],
            Some(&body.to_string()),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.request(Method::GET, path, &[], None).await
    }

    /// Rows in one of the writer's tables.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.db)
            .await
            .expect("counting rows")
    }

    /// A snapshot producer on this writer's database, directory and stream.
    pub fn producer(&self, keep: usize) -> SnapshotProducer {
        SnapshotProducer {
            store: Store::new(self.db.clone()),
            object_store: None,
            dir: self.snapshot_dir.clone(),
            keep,
            every_changes: u64::MAX,
            interval: Duration::from_secs(3_600),
            redis: self.redis.clone(),
            stream_key: self.stream_key.clone(),
            metrics: Default::default(),
        }
    }

    /// `(entry id, event bytes)` for every stream entry, in stream order.
    pub async fn stream_entries(&self) -> Vec<(String, Vec<u8>)> {
        stream_entries(&self.redis, &self.stream_key).await
    }

    /// Waits until the stream holds `count` entries (the relay is async).
    pub async fn wait_for_stream_len(&self, count: usize) -> Vec<(String, Vec<u8>)> {
        wait_for_stream_len(&self.redis, &self.stream_key, count).await
    }
}
