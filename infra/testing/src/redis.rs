//! Redis for tests: unique stream keys that are deleted afterwards, private
//! `redis-server` processes a test may stop, and reading a stream.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adcast_shared::protocol::stream;

use crate::processes::free_port;

/// The server the tests use: `ADCAST_TEST_REDIS_URL`, default
/// `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("ADCAST_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A stream key of one test, `adcast:test:<pid>:<random>`, deleted (with any
/// key under it, `<key>:*`) from the test server when dropped.
#[derive(Debug)]
pub struct StreamKey {
    key: String,
    redis_url: String,
}

impl StreamKey {
    pub fn new() -> StreamKey {
        StreamKey {
            key: crate::unique("adcast:test").replace('_', ":"),
            redis_url: redis_url(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.key
    }
}

impl Default for StreamKey {
    fn default() -> Self {
        StreamKey::new()
    }
}

impl Drop for StreamKey {
    fn drop(&mut self) {
        let removed = (|| -> redis::RedisResult<()> {
            let client = redis::Client::open(self.redis_url.as_str())?;
            let mut connection = client.get_connection_with_timeout(Duration::from_secs(2))?;
            let mut keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}:*", self.key))
                .query(&mut connection)?;
            keys.push(self.key.clone());
            redis::cmd("DEL").arg(keys).query::<()>(&mut connection)
        })();
        if let Err(error) = removed {
            // The server may be one a test stopped on purpose.
            eprintln!("note: could not delete test key {}: {error}", self.key);
        }
    }
}

/// A private redis-server for one test, so stopping it disturbs no one else.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts one; `persistent` turns on the append-only file, so a restart
    /// keeps the data (otherwise a restart comes back empty).
    pub fn start(persistent: bool) -> RedisServer {
        Self::start_with(persistent, &[])
    }

    /// Starts one with extra `redis-server` arguments (e.g. `--replicaof`).
    pub fn start_with(persistent: bool, extra: &[&str]) -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(crate::unique("adcast-redis"));
        std::fs::create_dir_all(&dir).expect("creating the Redis directory");
        let mut server = RedisServer {
            port,
            dir,
            child: None,
            extra: extra.iter().map(|arg| arg.to_string()).collect(),
        };
        server.restart(persistent);
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self, persistent: bool) {
        let appendonly = if persistent { "yes" } else { "no" };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", appendonly])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for these tests (see README)");
        self.child = Some(child);
        // Redis listens before it has loaded its data (it answers LOADING
        // meanwhile): wait for a real PONG.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers_ping() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers_ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        client
            .get_connection_with_timeout(Duration::from_secs(1))
            .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection))
            .is_ok_and(|pong| pong == "PONG")
    }

    /// Sends `signal` (e.g. `"STOP"`: the server hangs, connections stay
    /// open and nothing answers; `"CONT"`: it carries on).
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(child.id().to_string())
                .status()
                .expect("running kill");
            assert!(status.success(), "kill -{signal} redis-server failed");
        }
    }

    /// SIGKILL: the server is gone at once, as in a crash.
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

/// `(entry id, event bytes)` for every entry of the stream `key`, in order.
pub async fn stream_entries(redis: &redis::Client, key: &str) -> Vec<(String, Vec<u8>)> {
    let mut connection = redis
        .get_multiplexed_async_connection()
        .await
        .expect("connecting to Redis");
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(&mut connection)
        .await
        .expect("XRANGE");
    reply
        .ids
        .into_iter()
        .map(|entry| {
            let payload: Vec<u8> = entry
                .get(stream::EVENT_FIELD)
                .expect("entry has an event field");
            (entry.id, payload)
        })
        .collect()
}

/// Waits (up to 15 s) until the stream holds `count` entries, and asserts
/// it holds exactly that many.
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
