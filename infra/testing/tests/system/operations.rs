//! The edge's operations endpoints: `/readyz` ("loaded and current") and
//! `/servingz` ("can serve"), as load balancers and operators see them.

use std::time::{Duration, Instant};

use http::{Method, StatusCode};

use adcast_testing::edge::{edge_settings, following, settings_for, TestEdge};
use adcast_testing::processes::free_port;
use adcast_testing::writer::{ad_body, TestWriter};

/// A Redis URL nothing answers on.
fn unreachable_redis() -> String {
    format!("redis://127.0.0.1:{}", free_port())
}

#[tokio::test]
async fn an_edge_on_a_quiet_stream_is_ready_within_a_second_of_start() {
    let writer = TestWriter::spawn().await;
    let created = writer.post_ad(&ad_body("before the file")).await;
    writer.wait_for_stream_len(1).await;
    writer.producer(5).produce().await.unwrap();

    // The stream holds nothing after the file's sequence number, and an
    // XREAD BLOCK would wait its whole 5 s for news.
    let mut settings = following(&writer);
    settings.snapshot = Some(writer.snapshot_dir.clone());
    settings.xread_block_ms = 5_000;
    let started = Instant::now();
    let edge = TestEdge::start(settings).await;
    assert_eq!(edge.node.state().seq, created.seq());
    loop {
        let readyz = edge.get("/readyz").await;
        if readyz.status == StatusCode::OK {
            assert_eq!(readyz.json()["seq"], created.seq());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not ready 1 s after start: {}",
            String::from_utf8_lossy(&readyz.body)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_edge_that_cannot_reach_redis_is_not_ready() {
    let writer = TestWriter::spawn().await;
    let mut settings = edge_settings(&unreachable_redis(), &writer.stream_key);
    settings.snapshot = Some(writer.snapshot_dir.clone());
    settings.xread_block_ms = 5_000;
    let edge = TestEdge::start(settings).await;
    assert!(edge.node.state().loaded);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let readyz = edge.get("/readyz").await;
    assert_eq!(readyz.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(readyz.error().0, "unavailable");
    assert_eq!(readyz.header("retry-after"), Some("1"));
}

#[tokio::test]
async fn servingz_is_200_with_a_loaded_state_however_stale() {
    let writer = TestWriter::spawn().await;
    let mut settings = edge_settings(&unreachable_redis(), &writer.stream_key);
    settings.snapshot = Some(writer.snapshot_dir.clone());
    let edge = TestEdge::start(settings).await;
    let seq = edge.node.state().seq;

    let servingz = edge.get("/servingz").await;
    assert_eq!(servingz.status, StatusCode::OK);
    assert_eq!(
        servingz.json(),
        serde_json::json!({"status": "serving", "seq": seq})
    );
    assert_eq!(servingz.header("content-type"), Some("application/json"));
    let head = edge.request(Method::HEAD, "/servingz", &[], None).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(
        edge.get("/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "serving, but not current"
    );
}

#[tokio::test]
async fn servingz_is_503_until_a_state_is_loaded() {
    let writer = TestWriter::spawn().await;
    // No file, and a writer URL nothing answers on: no state can arrive.
    let mut settings = following(&writer);
    settings.writer_url = Some(format!("http://127.0.0.1:{}", free_port()));
    let edge = TestEdge::start(settings).await;

    let servingz = edge.get("/servingz").await;
    assert_eq!(servingz.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(servingz.error().0, "unavailable");
    assert_eq!(servingz.header("retry-after"), Some("1"));
    assert_eq!(servingz.header("cache-control"), Some("no-store"));
    let head = edge.request(Method::HEAD, "/servingz", &[], None).await;
    assert_eq!(head.status, StatusCode::SERVICE_UNAVAILABLE);
    let post = edge.request(Method::POST, "/servingz", &[], None).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[tokio::test]
async fn servingz_turns_200_when_the_first_snapshot_arrives() {
    let writer = TestWriter::spawn().await;
    let edge = TestEdge::start(settings_for(&writer)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while edge.get("/servingz").await.status != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "the writer's snapshot never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Issue 16's failover case: the region's Redis disappears for a minute (a
/// failover, a partition). The edge must stay a healthy load-balancer target
/// (`/servingz` 200) and keep answering from its last state the whole time,
/// while `/readyz` reports that it is no longer current; when Redis is back
/// the edge catches up and is ready again.
#[tokio::test]
async fn an_edge_whose_redis_is_gone_for_a_minute_stays_a_healthy_target_and_answers() {
    let mut redis = adcast_testing::redis::RedisServer::start(true);
    let writer = TestWriter::spawn_with(|settings| settings.redis_url = Some(redis.url())).await;
    let mut settings = edge_settings(&redis.url(), &writer.stream_key);
    settings.ready_max_lag_ms = 3_000;
    let edge = TestEdge::start(settings).await;
    let before = writer.post_ad(&ad_body("served throughout")).await.seq();
    edge.wait_for_seq(before).await;

    redis.stop();
    let gone = Instant::now();
    let mut saw_not_ready = false;
    while gone.elapsed() < Duration::from_secs(60) {
        let servingz = edge.get("/servingz").await;
        assert_eq!(
            servingz.status,
            StatusCode::OK,
            "a healthy target {:?} into the outage",
            gone.elapsed()
        );
        let answer = edge.get("/api/v1/ad").await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.header("adcast-seq"),
            Some(before.to_string().as_str())
        );
        assert_eq!(edge.titles("").await, ["served throughout"]);
        if gone.elapsed() > Duration::from_secs(5) {
            let readyz = edge.get("/readyz").await;
            assert_eq!(
                readyz.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "not current {:?} into the outage",
                gone.elapsed()
            );
            saw_not_ready = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(saw_not_ready);

    // Back with its data (AOF): the writer publishes what it held meanwhile.
    redis.restart(true);
    let after = writer.post_ad(&ad_body("after the outage")).await.seq();
    edge.wait_for_seq(after).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while edge.get("/readyz").await.status != StatusCode::OK {
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
