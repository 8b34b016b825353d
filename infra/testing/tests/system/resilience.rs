//! The edge under trimmed streams, lost Redis data, outages and bad files:
//! it never serves a state that skipped an event, and it converges.

use std::time::Duration;

use adcast_shared::snapshot::{self, Snapshot};
use adcast_shared::timestamp::Timestamp;
use http::StatusCode;

use adcast_testing::edge::{edge_settings, following, settings_for, TestEdge};
use adcast_testing::processes::free_port;
use adcast_testing::redis::RedisServer;
use adcast_testing::writer::{ad_body, TestWriter};
use adcast_testing::TempDir;

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_stream_trimmed_past_the_edge_makes_it_resync_from_a_snapshot() {
    let writer = TestWriter::spawn().await;
    for i in 0..5 {
        writer.post_ad(&ad_body(&format!("old {i}"))).await;
    }
    writer.wait_for_stream_len(5).await;
    let produced = writer.producer(1).produce().await.unwrap();
    assert_eq!((produced.seq, produced.oldest_kept), (5, 5));
    assert!(
        writer.stream_entries().await.is_empty(),
        "entries 1..5 are trimmed"
    );

    // An edge holding only a stale file (seq 0), able to reach the writer.
    let mut settings = settings_for(&writer);
    let (_stale_dir, stale) = empty_snapshot_file();
    settings.snapshot = Some(stale);
    let edge = TestEdge::start(settings).await;
    assert_eq!(edge.node.state().seq, 0);

    let newer = writer.post_ad(&ad_body("new")).await;
    edge.wait_for_seq(newer.seq()).await;
    assert_eq!(
        edge.titles("limit=100").await.len(),
        6,
        "the 5 trimmed creates came from the snapshot"
    );
    assert_eq!(edge.metrics.resyncs(), 1);
}

#[tokio::test]
async fn an_edge_converges_after_redis_loses_all_its_data() {
    let redis = RedisServer::start(false);
    let writer = TestWriter::spawn_with(|settings| settings.redis_url = Some(redis.url())).await;
    let edge = TestEdge::start(edge_settings(&redis.url(), &writer.stream_key)).await;
    let mut last = 0;
    for i in 0..3 {
        last = writer.post_ad(&ad_body(&format!("before {i}"))).await.seq();
    }
    edge.wait_for_seq(last).await;

    let mut connection = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut connection)
        .await
        .unwrap();
    for i in 0..2 {
        last = writer.post_ad(&ad_body(&format!("after {i}"))).await.seq();
    }
    edge.wait_for_seq(last).await;
    assert_eq!(edge.titles("limit=100").await.len(), 5);
}

#[tokio::test]
async fn an_edge_started_from_a_file_with_redis_down_serves_it_and_catches_up() {
    let mut redis = RedisServer::start(false);
    let writer = TestWriter::spawn_with(|settings| settings.redis_url = Some(redis.url())).await;
    writer.post_ad(&ad_body("in the file 1")).await;
    writer.post_ad(&ad_body("in the file 2")).await;
    writer.wait_for_stream_len(2).await;
    writer.producer(5).produce().await.unwrap();
    redis.stop();
    let late = writer
        .post_ad(&ad_body("written while Redis was down"))
        .await;
    assert_eq!(late.status, StatusCode::CREATED);

    let mut settings = edge_settings(&redis.url(), &writer.stream_key);
    settings.snapshot = Some(writer.snapshot_dir.clone());
    settings.ready_max_lag_ms = 1_000;
    let edge = TestEdge::start(settings).await;
    assert_eq!(edge.titles("").await, ["in the file 1", "in the file 2"]);
    assert_eq!(
        edge.get("/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "no stream contact yet"
    );

    redis.restart(false); // back, and empty: the writer republishes
    edge.wait_for_seq(late.seq()).await;
    assert_eq!(edge.titles("limit=100").await.len(), 3);
    wait_until("the edge is ready", async || {
        edge.get("/readyz").await.status == StatusCode::OK
    })
    .await;
}

#[tokio::test]
async fn an_edge_restarts_from_its_own_saved_state_with_writer_and_redis_down() {
    let writer = TestWriter::spawn().await;
    let mut first = TestEdge::start(settings_for(&writer)).await;
    writer.post_ad(&ad_body("kept 1")).await;
    let last = writer.post_ad(&ad_body("kept 2")).await.seq();
    first.wait_for_seq(last).await;
    first.stop().await; // saves its state on the way out
    let data_dir = first.keep_data_dir();
    drop(first);

    let nowhere = format!("redis://127.0.0.1:{}", free_port());
    let mut settings = edge_settings(&nowhere, &writer.stream_key);
    settings.writer_url = Some(format!("http://127.0.0.1:{}", free_port()));
    settings.data_dir = data_dir.clone();
    let image = data_dir.join("index.adimage");
    let written = std::fs::metadata(&image).unwrap().modified().unwrap();
    let snapshots = snapshot::list_files(&data_dir).unwrap();
    let mut second = TestEdge::start(settings).await;
    assert_eq!(second.node.state().seq, last);
    assert_eq!(second.titles("").await, ["kept 1", "kept 2"]);
    // Nothing changed: stopping writes neither file again.
    second.stop().await;
    assert_eq!(
        std::fs::metadata(&image).unwrap().modified().unwrap(),
        written
    );
    assert_eq!(snapshot::list_files(&data_dir).unwrap(), snapshots);
}

#[tokio::test]
async fn an_edge_restarts_from_its_index_image_alone_and_keeps_none_when_told() {
    let writer = TestWriter::spawn().await;
    let mut first = TestEdge::start(settings_for(&writer)).await;
    writer.post_ad(&ad_body("imaged 1")).await;
    let deleted = writer.post_ad(&ad_body("imaged 2")).await;
    let path = format!("/api/v1/ad/{}", deleted.json()["id"]);
    let deleted = writer.request(http::Method::DELETE, &path, &[], None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let last = writer.post_ad(&ad_body("imaged 3")).await.seq();
    first.wait_for_seq(last).await;
    first.stop().await;
    let data_dir = first.keep_data_dir();
    drop(first);
    // Only the image is left to start from.
    for (_, path) in snapshot::list_files(&data_dir).unwrap() {
        std::fs::remove_file(path).unwrap();
    }
    assert!(data_dir.join("index.adimage").exists());

    let nowhere = format!("redis://127.0.0.1:{}", free_port());
    let mut settings = edge_settings(&nowhere, &writer.stream_key);
    settings.data_dir = data_dir.clone();
    let mut second = TestEdge::start(settings).await;
    assert_eq!(second.node.state().seq, last);
    assert_eq!(second.titles("").await, ["imaged 1", "imaged 3"]);
    second.stop().await;
    second.keep_data_dir();
    drop(second);

    // With --index-image false the image is neither read nor written.
    std::fs::remove_file(data_dir.join("index.adimage")).unwrap();
    let mut settings = settings_for(&writer);
    settings.index_image = false;
    let mut third = TestEdge::start(settings).await;
    third.wait_for_seq(last).await;
    third.stop().await;
    let third_dir = third.keep_data_dir();
    assert!(!snapshot::list_files(&third_dir).unwrap().is_empty());
    assert!(!third_dir.join("index.adimage").exists());
    let _ = std::fs::remove_dir_all(&third_dir);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn a_corrupt_or_truncated_newest_snapshot_is_refused_and_an_older_one_used() {
    let writer = TestWriter::spawn().await;
    writer.post_ad(&ad_body("good")).await;
    let good = writer.producer(5).produce().await.unwrap();
    writer.post_ad(&ad_body("newer")).await;
    let newer = writer.producer(5).produce().await.unwrap();
    let newer_path = writer.snapshot_dir.join(snapshot::file_name(newer.seq));
    let original = std::fs::read(&newer_path).unwrap();

    let nowhere = format!("redis://127.0.0.1:{}", free_port());
    for damage in ["flip", "truncate"] {
        let mut bytes = original.clone();
        match damage {
            "flip" => {
                let last = bytes.len() - 1;
                bytes[last] ^= 0x40;
            }
            _ => bytes.truncate(bytes.len() / 2),
        }
        std::fs::write(&newer_path, &bytes).unwrap();
        let mut settings = edge_settings(&nowhere, &writer.stream_key);
        settings.snapshot = Some(writer.snapshot_dir.clone());
        let edge = TestEdge::start(settings).await;
        assert_eq!(
            edge.node.state().seq,
            good.seq,
            "{damage}: fell back to the older file"
        );
        assert_eq!(edge.titles("").await, ["good"], "{damage}");
    }
}

#[tokio::test]
async fn stalled_connections_neither_block_others_nor_linger() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let writer = TestWriter::spawn().await;
    let mut settings = following(&writer);
    settings.header_read_timeout_ms = 1_000;
    let edge = TestEdge::start(settings).await;

    // 300 clients that start a request and never finish its headers.
    let mut stalled = Vec::new();
    for _ in 0..300 {
        let mut stream = tokio::net::TcpStream::connect(edge.address).await.unwrap();
        stream
            .write_all(b"GET /api/v1/ad HTTP/1.1\r\nHost: slow\r\nX-Slow: ")
            .await
            .unwrap();
        stalled.push(stream);
    }
    let started = std::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(edge.get("/api/v1/ad").await.status, StatusCode::OK);
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "normal requests waited {:?}",
        started.elapsed()
    );

    // After the header-read timeout every stalled connection is closed.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for stream in &mut stalled {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
        match read {
            Ok(Ok(_)) | Ok(Err(_)) => {} // EOF, a 408 then EOF, or a reset: closed by the server
            Err(_) => panic!("a stalled connection was still open after the header timeout"),
        }
    }
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let writer = TestWriter::spawn().await;
    let edge = TestEdge::start(following(&writer)).await;
    let long_query = format!("/api/v1/ad?pad={}", "x".repeat(20_000));
    let response = edge.get(&long_query).await;
    assert_eq!(response.status, StatusCode::from_u16(431).unwrap());
    assert_eq!(
        edge.get("/api/v1/ad").await.status,
        StatusCode::OK,
        "the edge keeps serving"
    );
}

#[tokio::test]
async fn an_edge_behind_a_fully_trimmed_stream_resyncs_without_waiting_for_a_write() {
    let writer = TestWriter::spawn().await;
    for i in 0..3 {
        writer.post_ad(&ad_body(&format!("covered {i}"))).await;
    }
    writer.wait_for_stream_len(3).await;
    writer.producer(1).produce().await.unwrap(); // trims every entry
    assert!(writer.stream_entries().await.is_empty());

    let mut settings = settings_for(&writer);
    let (_stale_dir, stale) = empty_snapshot_file();
    settings.snapshot = Some(stale);
    let edge = TestEdge::start(settings).await;
    edge.wait_for_seq(3).await; // no write happens: the empty, trimmed stream itself shows the gap
    assert_eq!(edge.titles("").await.len(), 3);
}

/// A snapshot file of the empty state (seq 0), in a directory removed when
/// the guard drops: what an edge that fell far behind still holds.
fn empty_snapshot_file() -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new("adcast-stale");
    let path = dir.path().join(snapshot::file_name(0));
    let empty = Snapshot {
        seq: 0,
        created_at: Timestamp::now(),
        ads: vec![],
    };
    snapshot::write_atomically(&path, &empty.encode()).unwrap();
    (dir, path)
}
