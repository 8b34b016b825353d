//! Test harness: a real writer on a random port, its own fresh PostgreSQL
//! database and its own Redis stream key, and a small HTTP client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adcast_writer::config::{LogFormat, Settings};
use adcast_writer::snapshots::SnapshotProducer;
use adcast_writer::startup::Application;
use adcast_writer::store::Store;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use rand::Rng;
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::oneshot;

pub fn postgres_base_url() -> String {
    std::env::var("ADCAST_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("ADCAST_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{:016x}", rand::thread_rng().gen::<u64>())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process that is killed when dropped, also when its test panics:
/// no process outlives its test (a survivor would keep the test runner's
/// output pipe open and hang whoever reads it).
pub struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    pub fn new(child: Child) -> KillOnDrop {
        KillOnDrop(Some(child))
    }

    /// SIGKILL now (no shutdown hook runs) and reap the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The exit status, if the process has already ended.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.0.as_mut()?.try_wait().ok().flatten()
    }

    /// SIGKILL now and collect whatever the process printed to piped outputs.
    pub fn kill_with_output(mut self) -> std::process::Output {
        let mut child = self.0.take().expect("the process is still owned");
        let _ = child.kill();
        child.wait_with_output().expect("reaping the process")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private redis-server for one test, so stopping it disturbs no one else.
pub struct RedisServer {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start(persistent: bool) -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("adcast-redis-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = RedisServer {
            port,
            dir,
            child: None,
        };
        server.restart(persistent);
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self, persistent: bool) {
        let appendonly = if persistent { "yes" } else { "no" };
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                appendonly,
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for these tests (see README)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates an empty database with a unique name; returns its URL.
pub async fn fresh_database() -> String {
    let name = unique("adcast_test");
    let mut admin = PgConnection::connect(&format!("{}/postgres", postgres_base_url()))
        .await
        .expect("PostgreSQL must be reachable for integration tests (see README)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("creating a test database");
    format!("{}/{name}", postgres_base_url())
}

pub fn settings(database_url: &str, redis_url: &str, stream_key: &str) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: Some(database_url.to_owned()),
        redis_url: Some(redis_url.to_owned()),
        stream_key: stream_key.to_owned(),
        snapshot_dir: std::env::temp_dir().join(unique("adcast-test-snapshots")),
        snapshot_keep: 5,
        snapshot_every_changes: 1_000,
        snapshot_interval_secs: 3_600,
        admin_tokens: Vec::new(),
        admin_tokens_file: None,
        allow_insecure_admin: false,
        request_timeout_ms: 10_000,
        header_read_timeout_ms: 5_000,
        max_connections: 1_024,
        db_acquire_timeout_ms: 3_000,
        db_max_connections: 20,
        relay_interval_ms: 200,
        log_format: LogFormat::Text,
        log: "warn".into(),
    }
}

pub struct TestApp {
    pub address: SocketAddr,
    pub database_url: String,
    pub stream_key: String,
    pub snapshot_dir: PathBuf,
    pub db: PgPool,
    pub redis: redis::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.snapshot_dir);
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with settings adjusted by `configure` (fresh DB and stream key).
    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
        let database_url = fresh_database().await;
        let stream_key = unique("adcast:test").replace('_', ":");
        let mut settings = settings(&database_url, &redis_url(), &stream_key);
        configure(&mut settings);
        Self::start(settings).await
    }

    pub async fn start(settings: Settings) -> TestApp {
        let database_url = settings.database_url.clone().unwrap();
        let stream_key = settings.stream_key.clone();
        let snapshot_dir = settings.snapshot_dir.clone();
        let redis = redis::Client::open(settings.redis_url.clone().unwrap()).unwrap();
        let app = Application::build(settings).await.expect("writer starts");
        let address = app.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        let db = PgPool::connect(&database_url).await.unwrap();
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
        TestApp {
            address,
            database_url,
            stream_key,
            snapshot_dir,
            db,
            redis,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Graceful stop, as on SIGTERM.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
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

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// A snapshot producer on this app's database, directory and stream.
    pub fn producer(&self, keep: usize) -> SnapshotProducer {
        SnapshotProducer {
            store: Store::new(self.db.clone()),
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

pub async fn stream_entries(redis: &redis::Client, key: &str) -> Vec<(String, Vec<u8>)> {
    let mut connection = redis.get_multiplexed_async_connection().await.unwrap();
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(&mut connection)
        .await
        .unwrap();
    reply
        .ids
        .into_iter()
        .map(|entry| {
            let payload: Vec<u8> = entry.get("event").expect("entry has an event field");
            (entry.id, payload)
        })
        .collect()
}

pub async fn wait_for_stream_len(
    redis: &redis::Client,
    key: &str,
    count: usize,
) -> Vec<(String, Vec<u8>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let entries = stream_entries(redis, key).await;
        if entries.len() >= count || tokio::time::Instant::now() > deadline {
            assert_eq!(
                entries.len(),
                count,
                "stream {key} should hold {count} entries"
            );
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "body is not JSON: {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn seq(&self) -> u64 {
        self.header("adcast-seq")
            .expect("Adcast-Seq header")
            .parse()
            .unwrap()
    }

    /// Asserts the SPEC.md error shape and returns `(code, field)`.
    pub fn error(&self) -> (String, Option<String>) {
        let json = self.json();
        let error = &json["error"];
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error needs a message: {json}"
        );
        (
            error["code"].as_str().expect("error code").to_owned(),
            error["field"].as_str().map(str::to_owned),
        )
    }
}

/// One HTTP/1.1 request on a new connection.
/// POSTs `size` bytes to `path` the way simple clients do: the whole body
/// first, then the answer. Returns the raw answer, or what went wrong
/// (a reset connection when the server answered without reading the body).
pub async fn post_whole_body_then_read(
    address: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    size: usize,
) -> Result<String, std::io::Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {size}\r\nconnection: close\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    // The body comes a little later, as over a real network: a server that
    // answers from the head alone has answered (and closed) by then.
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(&vec![b'x'; size]).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

pub async fn send(
    address: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Bytes>,
) -> TestResponse {
    try_send(address, method, path, headers, body)
        .await
        .unwrap_or_else(|error| panic!("request to {address} failed: {error}"))
}

/// Like [`send`], but a connection failure is an error, not a panic (for
/// tests that kill the server mid-request).
pub async fn try_send(
    address: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Bytes>,
) -> Result<TestResponse, Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", address.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.unwrap_or_default()))?;
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(TestResponse {
        status: parts.status,
        headers: parts.headers,
        body,
    })
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
