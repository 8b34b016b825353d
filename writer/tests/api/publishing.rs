//! The relay under Redis outages and writer crashes: every acknowledged write
//! reaches the stream, in order, exactly once.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use http::StatusCode;

use adcast_shared::protocol::stream;
use adcast_testing::databases::TestDatabase;
use adcast_testing::http::send;
use adcast_testing::processes::{free_port, start_listening, KillOnDrop};
use adcast_testing::redis::{
    redis_url, stream_entries, wait_for_stream_len, RedisServer, StreamKey,
};
use adcast_testing::writer::{ad_body, settings, TestWriter};
use adcast_testing::TempDir;

async fn writes_survive_a_redis_outage(persistent: bool) {
    let mut redis = RedisServer::start(persistent);
    let app = TestWriter::spawn_with(|settings| settings.redis_url = Some(redis.url())).await;
    assert_eq!(
        app.post_ad(&ad_body("before")).await.status,
        StatusCode::CREATED
    );
    app.wait_for_stream_len(1).await;

    redis.stop();
    for i in 0..3 {
        let started = Instant::now();
        let response = app.post_ad(&ad_body(&format!("during {i}"))).await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "writes succeed while Redis is down"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a write must not wait on Redis"
        );
    }
    redis.restart(persistent);

    let entries = app.wait_for_stream_len(4).await;
    let ids: Vec<&str> = entries.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["1-0", "2-0", "3-0", "4-0"]);
}

#[tokio::test]
async fn writes_while_redis_is_down_are_published_when_it_returns() {
    writes_survive_a_redis_outage(true).await;
}

#[tokio::test]
async fn writes_while_redis_is_down_are_published_when_it_returns_empty() {
    writes_survive_a_redis_outage(false).await;
}

/// The real writer binary, so that it can be killed with SIGKILL. Each life
/// gets a fresh port; the database, stream key and snapshot directory (a
/// volume kept across restarts) are what survive, until the test ends.
struct WriterProcess {
    database: TestDatabase,
    stream_key: StreamKey,
    snapshot_dir: TempDir,
}

impl WriterProcess {
    async fn new() -> WriterProcess {
        WriterProcess {
            database: TestDatabase::create().await,
            stream_key: StreamKey::new(),
            snapshot_dir: TempDir::new("adcast-test-snapshots"),
        }
    }

    fn stream_key(&self) -> &str {
        self.stream_key.as_str()
    }

    /// Starts one life and returns once it accepts connections.
    async fn start(&self, redis_url: &str) -> (KillOnDrop, SocketAddr) {
        start_listening(
            |port| {
                let mut command = crate::writer_command(
                    &self.database.url(),
                    redis_url,
                    self.stream_key(),
                    port,
                    self.snapshot_dir.path(),
                );
                command
                    .env("ADCAST_RELAY_INTERVAL_MS", "100")
                    .env("ADCAST_LOG", "warn")
                    .stdout(Stdio::null());
                command
            },
            "the writer",
        )
        .await
    }

    /// Waits for the start-up snapshot of an empty database (sequence 0).
    /// Without it, a first snapshot taken after some writes would let the
    /// stream be trimmed behind it, and entries these tests look for would
    /// rightly be gone.
    async fn wait_for_empty_snapshot(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let path = self
            .snapshot_dir
            .path()
            .join(adcast_shared::snapshot::file_name(0));
        while !path.exists() {
            assert!(Instant::now() < deadline, "no start-up snapshot");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn writer_killed_after_commit_before_publish_publishes_on_restart() {
    let writer = WriterProcess::new().await;
    let redis = redis::Client::open(redis_url()).unwrap();

    // First life: Redis unreachable, so the commit cannot be published.
    let unreachable_redis = format!("redis://127.0.0.1:{}", free_port());
    let (mut first_life, address) = writer.start(&unreachable_redis).await;
    writer.wait_for_empty_snapshot().await;
    let body = bytes::Bytes::from(ad_body("survivor").to_string());
    let response = send(
        address,
        http::Method::POST,
        "/api/v1/ad",
        &[("content-type", "application/json")],
        Some(body),
    )
    .await;
    assert_eq!(response.status, StatusCode::CREATED);
    first_life.kill(); // SIGKILL: no shutdown hook runs.
    assert!(stream_entries(&redis, writer.stream_key()).await.is_empty());

    // Second life: the relay finds the unpublished outbox row at start-up.
    let (_second_life, _) = writer.start(&redis_url()).await;
    let entries = wait_for_stream_len(&redis, writer.stream_key(), 1).await;
    assert_eq!(entries[0].0, stream::entry_id(1));
}

#[tokio::test]
async fn a_second_writer_on_the_same_database_keeps_one_gapless_order() {
    let first = TestWriter::spawn().await;
    let mut second_settings = settings(&first.database_url, &redis_url(), &first.stream_key);
    second_settings.relay_interval_ms = 100;
    let second = TestWriter::start(second_settings).await;
    let responses = futures_util::future::join_all((0..40).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        async move { app.post_ad(&ad_body(&format!("AD {i}"))).await }
    }))
    .await;
    let mut seqs: Vec<u64> = responses.iter().map(|r| r.seq()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
    let entries = first.wait_for_stream_len(40).await;
    assert!(entries
        .iter()
        .enumerate()
        .all(|(i, (id, _))| *id == stream::entry_id(i as u64 + 1)));
}

#[tokio::test]
async fn after_redis_loses_its_data_republishing_starts_after_the_oldest_kept_snapshot() {
    let mut redis = RedisServer::start(false);
    let app = TestWriter::spawn_with(|settings| settings.redis_url = Some(redis.url())).await;
    for i in 0..5 {
        app.post_ad(&ad_body(&format!("old {i}"))).await;
    }
    app.wait_for_stream_len(5).await;
    let produced = app.producer(1).produce().await.unwrap();
    assert_eq!(produced.oldest_kept, 5);
    for i in 0..3 {
        app.post_ad(&ad_body(&format!("new {i}"))).await;
    }
    redis.stop();
    redis.restart(false);
    let entries = app.wait_for_stream_len(3).await;
    let ids: Vec<&str> = entries.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        ["6-0", "7-0", "8-0"],
        "history a kept snapshot covers is not republished"
    );
}

#[tokio::test]
async fn writer_killed_during_a_burst_loses_no_acknowledged_write_and_duplicates_none() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let writer = WriterProcess::new().await;
    let redis = redis::Client::open(redis_url()).unwrap();
    let (mut first_life, address) = writer.start(&redis_url()).await;
    writer.wait_for_empty_snapshot().await;

    let acked = Arc::new(AtomicUsize::new(0));
    let requests: Vec<_> = (0..120)
        .map(|i| {
            let acked = acked.clone();
            tokio::spawn(async move {
                let body = bytes::Bytes::from(ad_body(&format!("burst {i}")).to_string());
                let answer = adcast_testing::http::try_send(
                    address,
                    http::Method::POST,
                    "/api/v1/ad",
                    &[("content-type", "application/json")],
                    Some(body),
                )
                .await;
                match answer {
                    Ok(response) if response.status == StatusCode::CREATED => {
                        acked.fetch_add(1, Ordering::SeqCst);
                        Some(format!("burst {i}"))
                    }
                    _ => None,
                }
            })
        })
        .collect();
    // SIGKILL once a good part of the burst has been answered.
    while acked.load(Ordering::SeqCst) < 40 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    first_life.kill();
    let mut acknowledged = Vec::new();
    for request in requests {
        acknowledged.extend(request.await.unwrap());
    }
    assert!(acknowledged.len() >= 40);
    eprintln!(
        "burst: {} of 120 writes acknowledged before SIGKILL",
        acknowledged.len()
    );

    let (_second_life, _) = writer.start(&redis_url()).await;
    let db = sqlx::PgPool::connect(&writer.database.url()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let committed: i64 = loop {
        let committed: i64 = sqlx::query_scalar("SELECT last_seq FROM change_sequence")
            .fetch_one(&db)
            .await
            .unwrap();
        let entries = stream_entries(&redis, writer.stream_key()).await;
        if entries.len() as i64 == committed {
            break committed;
        }
        assert!(
            Instant::now() < deadline,
            "the stream never caught up with the database"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let entries = stream_entries(&redis, writer.stream_key()).await;
    let ids: Vec<String> = entries.iter().map(|(id, _)| id.clone()).collect();
    let expected: Vec<String> = (1..=committed as u64).map(stream::entry_id).collect();
    assert_eq!(ids, expected, "one gapless order, no entry twice");
    let published: Vec<String> = entries
        .iter()
        .map(
            |(_, payload)| match adcast_shared::event::Change::decode(payload).unwrap() {
                adcast_shared::event::Change::Upsert(ad) => ad.title.as_str().to_owned(),
                other => panic!("unexpected {other:?}"),
            },
        )
        .collect();
    for title in &acknowledged {
        assert_eq!(
            published.iter().filter(|t| *t == title).count(),
            1,
            "{title} must be published exactly once"
        );
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM ads")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        rows, committed,
        "every committed change is one whole ad, nothing half-written"
    );
}

/// Requests that hold every connection of the request pool must not hold
/// up publishing: the relay has connections of its own. Here the pool has
/// one connection, taken by a write queued behind the write lock (held by
/// another session), while a change committed during a Redis outage waits
/// to be published.
#[tokio::test]
async fn publishing_goes_on_while_requests_hold_every_database_connection() {
    let mut redis = RedisServer::start(true);
    let app = TestWriter::spawn_with(|settings| {
        settings.redis_url = Some(redis.url());
        settings.db_max_connections = 1;
        settings.request_timeout_ms = 60_000;
    })
    .await;
    redis.stop();
    assert_eq!(
        app.post_ad(&ad_body("committed while Redis is down"))
            .await
            .status,
        StatusCode::CREATED
    );

    let mut lock_holder = app.db.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(adcast_writer::store::WRITE_LOCK_KEY)
        .execute(&mut *lock_holder)
        .await
        .unwrap();
    let address = app.address;
    let queued = tokio::spawn(async move {
        let body = ad_body("queued behind the lock").to_string();
        send(
            address,
            http::Method::POST,
            "/api/v1/ad",
            &[("content-type", "application/json")],
            Some(bytes::Bytes::from(body)),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!queued.is_finished(), "the second write waits for the lock");

    redis.restart(true);
    let deadline = Instant::now() + Duration::from_secs(8);
    while stream_entries(&app.redis, &app.stream_key).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the committed change was not published while requests held the pool"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !queued.is_finished(),
        "the request pool stayed taken while the change was published"
    );

    lock_holder.rollback().await.unwrap();
    assert_eq!(queued.await.unwrap().status, StatusCode::CREATED);
    let entries = app.wait_for_stream_len(2).await;
    let ids: Vec<&str> = entries.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["1-0", "2-0"]);
}
