//! The edge binary as a real process, frozen with `SIGSTOP` and thawed with
//! `SIGCONT` the way a function platform freezes it between requests, next
//! to a real writer, PostgreSQL and Redis.
//!
//! Poll mode (`--sync poll`): the first request after a freeze includes the
//! writes made during it; with Redis unreachable answers stay `200` with
//! the last `Adcast-Seq`, within the catch-up bound; concurrent requests
//! share one read; a gap recovers from a snapshot; forwarded writes are
//! read back. Stream mode: the tailer recovers from a freeze longer than
//! its timeouts.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use adcast_shared::protocol::headers;
use adcast_shared::snapshot::{self, Snapshot};
use adcast_shared::timestamp::Timestamp;
use adcast_testing::http::{send, TestResponse};
use adcast_testing::processes::{start_listening, KillOnDrop};
use adcast_testing::redis::{redis_url, RedisServer};
use adcast_testing::writer::{ad_body, TestWriter};
use adcast_testing::TempDir;
use http::{Method, StatusCode};

/// `--catch-up-timeout-ms` of these edges unless a test sets another.
const BOUND_MS: u64 = 200;
/// `--max-staleness-ms` of these edges.
const MAX_STALENESS_MS: u64 = 250;

/// One edge process with a data directory of its own.
struct EdgeProcess {
    process: KillOnDrop,
    address: SocketAddr,
    _data_dir: TempDir,
}

impl EdgeProcess {
    /// Starts `adcast-edge` on `redis_url`/`stream_key` with `env` on top of
    /// the test defaults, and returns once it listens.
    async fn start(redis_url: &str, stream_key: &str, env: &[(&str, &str)]) -> EdgeProcess {
        let data_dir = TempDir::new("adcast-test-edge");
        let (process, address) = start_listening(
            |port| {
                let mut command = Command::new(env!("CARGO_BIN_EXE_adcast-edge"));
                command
                    .env("REDIS_URL", redis_url)
                    .env("ADCAST_STREAM_KEY", stream_key)
                    .env("ADCAST_EDGE_LISTEN", format!("127.0.0.1:{port}"))
                    .env("ADCAST_DATA_DIR", data_dir.path())
                    .env("ADCAST_MAX_STALENESS_MS", MAX_STALENESS_MS.to_string())
                    .env("ADCAST_CATCH_UP_TIMEOUT_MS", BOUND_MS.to_string())
                    .env("ADCAST_MIN_SEQ_WAIT_MS", "3000")
                    .env("ADCAST_XREAD_BLOCK_MS", "500")
                    .env("ADCAST_PERSIST_INTERVAL_SECS", "3600")
                    .env("ADCAST_LOG", "warn")
                    .stdout(Stdio::null());
                for (name, value) in env {
                    command.env(name, value);
                }
                command
            },
            "the edge",
        )
        .await;
        EdgeProcess {
            process,
            address,
            _data_dir: data_dir,
        }
    }

    async fn get(&self, path: &str) -> TestResponse {
        send(self.address, Method::GET, path, &[], None).await
    }

    /// The value of one metric line `name value` on `/metrics`.
    async fn metric(&self, name: &str) -> f64 {
        let response = self.get("/metrics").await;
        let text = String::from_utf8_lossy(&response.body).into_owned();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .parse()
            .unwrap()
    }

    /// Waits (up to 20 s) until a public answer has applied `seq`.
    async fn wait_for_seq(&self, seq: u64) -> TestResponse {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let response = self.get("/api/v1/ad?limit=100").await;
            if response.status == StatusCode::OK && response.seq() >= seq {
                return response;
            }
            assert!(
                Instant::now() < deadline,
                "the edge did not reach change {seq}: {} {:?}",
                response.status,
                response.header(headers::ADCAST_SEQ)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn titles(response: &TestResponse) -> Vec<String> {
    response.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["title"].as_str().unwrap().to_owned())
        .collect()
}

/// Longer than `--max-staleness-ms`: the next request must catch up.
async fn let_the_state_age() {
    tokio::time::sleep(Duration::from_millis(MAX_STALENESS_MS + 100)).await;
}

/// Freezes `edge` (SIGSTOP) for `freeze`, during which the writer makes
/// three changes after the one already applied; returns the last change's
/// sequence number. The caller thaws the edge.
async fn freeze_while_writing(edge: &EdgeProcess, writer: &TestWriter, freeze: Duration) -> u64 {
    edge.process.signal("STOP");
    let frozen_at = Instant::now();
    let mut last = 0;
    for i in 0..3 {
        last = writer
            .post_ad(&ad_body(&format!("during the freeze {i}")))
            .await
            .seq();
    }
    writer.wait_for_stream_len(4).await;
    tokio::time::sleep(freeze.saturating_sub(frozen_at.elapsed())).await;
    last
}

#[tokio::test]
async fn poll_mode_the_first_request_after_a_freeze_includes_the_writes_made_during_it() {
    let writer = TestWriter::spawn().await;
    let writer_url = writer.url();
    let edge = EdgeProcess::start(
        &redis_url(),
        &writer.stream_key,
        &[("ADCAST_SYNC", "poll"), ("ADCAST_WRITER_URL", &writer_url)],
    )
    .await;
    let before = writer.post_ad(&ad_body("before the freeze")).await.seq();
    edge.wait_for_seq(before).await;

    let last = freeze_while_writing(&edge, &writer, Duration::from_secs(4)).await;
    let reads_before_thaw = {
        edge.process.signal("CONT");
        // Nothing ran while frozen, and nothing runs on its own after: the
        // request below is what catches up.
        edge.metric("adcast_edge_poll_reads_total").await
    };

    let first = edge.get("/api/v1/ad?limit=100").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first.seq(),
        last,
        "the first answer after the thaw is current"
    );
    assert_eq!(
        titles(&first),
        [
            "before the freeze",
            "during the freeze 0",
            "during the freeze 1",
            "during the freeze 2"
        ]
    );
    assert_eq!(
        edge.metric("adcast_edge_poll_reads_total").await,
        reads_before_thaw + 1.0,
        "that request caught up with one read"
    );
}

#[tokio::test]
async fn stream_mode_the_tailer_recovers_from_a_freeze_longer_than_its_timeouts() {
    let writer = TestWriter::spawn().await;
    // XREAD blocks 500 ms; the connection's response timeout is 5.5 s and
    // its connect timeout 3 s: the freeze outlasts them all.
    let edge = EdgeProcess::start(&redis_url(), &writer.stream_key, &[]).await;
    let before = writer.post_ad(&ad_body("before the freeze")).await.seq();
    edge.wait_for_seq(before).await;

    let last = freeze_while_writing(&edge, &writer, Duration::from_secs(8)).await;
    edge.process.signal("CONT");
    let thawed_at = Instant::now();

    let current = edge.wait_for_seq(last).await;
    assert!(
        thawed_at.elapsed() < Duration::from_secs(5),
        "current {:?} after the thaw",
        thawed_at.elapsed()
    );
    assert_eq!(titles(&current).len(), 4);
    // And it keeps tailing: a write after the thaw arrives too.
    let after = writer.post_ad(&ad_body("after the thaw")).await.seq();
    let answer = edge.wait_for_seq(after).await;
    assert_eq!(titles(&answer).len(), 5);
}

#[tokio::test]
async fn poll_mode_with_redis_unreachable_answers_the_last_state_within_the_bound() {
    let mut redis = RedisServer::start(false);
    let writer = TestWriter::spawn_with(|settings| settings.redis_url = Some(redis.url())).await;
    let writer_url = writer.url();
    let edge = EdgeProcess::start(
        &redis.url(),
        &writer.stream_key,
        &[
            ("ADCAST_SYNC", "poll"),
            ("ADCAST_WRITER_URL", &writer_url),
            ("ADCAST_READY_MAX_LAG_MS", "1500"),
        ],
    )
    .await;
    writer.post_ad(&ad_body("one")).await;
    let mut last = writer.post_ad(&ad_body("two")).await.seq();
    let mut expected = vec!["one", "two"];
    edge.wait_for_seq(last).await;
    assert_eq!(edge.get("/readyz").await.status, StatusCode::OK);

    // A Redis that hangs (connections open, nothing answers), then one that
    // is gone (connections refused).
    for (outage, stop) in [("hung", true), ("gone", false)] {
        if stop {
            redis.signal("STOP");
        } else {
            redis.stop();
        }
        for _ in 0..4 {
            let_the_state_age().await;
            let started = Instant::now();
            let response = edge.get("/api/v1/ad?limit=100").await;
            let took = started.elapsed();
            assert_eq!(response.status, StatusCode::OK, "{outage}");
            assert_eq!(response.seq(), last, "{outage}: the last state, stale");
            assert_eq!(titles(&response), expected, "{outage}");
            assert!(
                took < Duration::from_millis(BOUND_MS + 600),
                "{outage}: answered in {took:?}, bound {BOUND_MS} ms"
            );
        }
        // Past --ready-max-lag-ms without reaching the stream: not ready,
        // and /readyz is bounded the same way.
        tokio::time::sleep(Duration::from_millis(1_600)).await;
        let started = Instant::now();
        let ready = edge.get("/readyz").await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{outage}");
        assert!(started.elapsed() < Duration::from_millis(BOUND_MS + 600));
        assert_eq!(edge.get("/api/v1/ad").await.status, StatusCode::OK);
        if stop {
            redis.signal("CONT");
            last = writer.post_ad(&ad_body("three")).await.seq();
            expected.push("three");
            let answer = edge.wait_for_seq(last).await;
            assert_eq!(titles(&answer), expected);
            assert_eq!(edge.get("/readyz").await.status, StatusCode::OK);
        }
    }
}

#[tokio::test]
async fn poll_mode_concurrent_requests_share_one_read_of_the_stream() {
    let redis = RedisServer::start(false);
    let writer = TestWriter::spawn_with(|settings| settings.redis_url = Some(redis.url())).await;
    let writer_url = writer.url();
    let edge = EdgeProcess::start(
        &redis.url(),
        &writer.stream_key,
        &[
            ("ADCAST_SYNC", "poll"),
            ("ADCAST_WRITER_URL", &writer_url),
            // Long enough to hold the read while the requests pile up.
            ("ADCAST_CATCH_UP_TIMEOUT_MS", "10000"),
        ],
    )
    .await;
    let first = writer.post_ad(&ad_body("first")).await.seq();
    edge.wait_for_seq(first).await;
    let second = writer.post_ad(&ad_body("second")).await.seq();
    writer.wait_for_stream_len(2).await;
    let_the_state_age().await;
    let reads_before = edge.metric("adcast_edge_poll_reads_total").await;

    // Redis hangs: the first request's read waits on it, and every other
    // request arrives while it does.
    redis.signal("STOP");
    let address = edge.address;
    let requests: Vec<_> = (0..50)
        .map(|_| {
            tokio::spawn(async move {
                send(address, Method::GET, "/api/v1/ad?limit=100", &[], None).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    redis.signal("CONT");
    for request in requests {
        let response = request.await.unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.seq(), second, "every request waited for the read");
        assert_eq!(titles(&response), ["first", "second"]);
    }
    assert_eq!(
        edge.metric("adcast_edge_poll_reads_total").await - reads_before,
        1.0,
        "50 concurrent requests, one read"
    );
}

#[tokio::test]
async fn poll_mode_a_gap_in_the_stream_recovers_from_a_newer_snapshot() {
    let writer = TestWriter::spawn().await;
    for i in 0..5 {
        writer.post_ad(&ad_body(&format!("covered {i}"))).await;
    }
    writer.wait_for_stream_len(5).await;
    writer.producer(1).produce().await.unwrap(); // trims entries 1..5
    assert!(writer.stream_entries().await.is_empty());

    // The edge holds only a stale file (seq 0) that the stream no longer
    // continues.
    let stale_dir = TempDir::new("adcast-stale");
    std::fs::create_dir_all(stale_dir.path()).unwrap();
    let stale = stale_dir.path().join(snapshot::file_name(0));
    let empty = Snapshot {
        seq: 0,
        created_at: Timestamp::now(),
        ads: vec![],
    };
    snapshot::write_atomically(&stale, &empty.encode()).unwrap();
    let writer_url = writer.url();
    let stale_path = stale.to_string_lossy().into_owned();
    let edge = EdgeProcess::start(
        &redis_url(),
        &writer.stream_key,
        &[
            ("ADCAST_SYNC", "poll"),
            ("ADCAST_WRITER_URL", &writer_url),
            ("ADCAST_SNAPSHOT", &stale_path),
        ],
    )
    .await;

    let answer = edge.wait_for_seq(5).await;
    assert_eq!(answer.seq(), 5, "never a state that skipped an event");
    assert_eq!(titles(&answer).len(), 5);
    assert_eq!(edge.metric("adcast_edge_resyncs_total").await, 1.0);

    let newer = writer.post_ad(&ad_body("after the gap")).await.seq();
    writer.wait_for_stream_len(1).await;
    let_the_state_age().await;
    let next = edge.get("/api/v1/ad?limit=100").await;
    assert_eq!(next.seq(), newer, "the stream continues from the snapshot");
    assert_eq!(titles(&next).len(), 6);
}

#[tokio::test]
async fn poll_mode_forwarded_writes_and_min_seq_are_read_back_at_once() {
    let writer = TestWriter::spawn().await;
    let writer_url = writer.url();
    let edge = EdgeProcess::start(
        &redis_url(),
        &writer.stream_key,
        &[("ADCAST_SYNC", "poll"), ("ADCAST_WRITER_URL", &writer_url)],
    )
    .await;
    edge.wait_for_seq(0).await;

    let created = send(
        edge.address,
        Method::POST,
        "/api/v1/ad",
        &[("content-type", "application/json")],
        Some(ad_body("through the edge").to_string().into()),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(
        created.header(headers::ADCAST_APPLIED),
        None,
        "applied before the answer"
    );
    let read = edge.get("/api/v1/ad?limit=100").await;
    assert_eq!(read.seq(), created.seq());
    assert_eq!(titles(&read), ["through the edge"]);

    // A write straight to the writer, then a read asking for it.
    let direct = writer
        .post_ad(&ad_body("straight to the writer"))
        .await
        .seq();
    let min_seq = direct.to_string();
    let read = send(
        edge.address,
        Method::GET,
        "/api/v1/ad?limit=100",
        &[(headers::ADCAST_MIN_SEQ, &min_seq)],
        None,
    )
    .await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(read.seq() >= direct);
    assert_eq!(titles(&read).len(), 2);
}
