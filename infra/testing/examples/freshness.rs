//! Freshness benchmark: with 8 edges tailing one stream and the writer taking
//! 50 writes/s, how long from a write being acknowledged until every edge
//! serves it (p50/p99).
//!
//! Runs a real writer and 8 real edges in this process against the local
//! PostgreSQL and Redis (a fresh database and stream key, removed afterwards).
//! `cargo run --release -p adcast-testing --example freshness`
//! (FRESHNESS_SECONDS=20 EDGES=8 RATE=50; ADCAST_TEST_DATABASE_URL and
//! ADCAST_TEST_REDIS_URL as for the tests.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adcast_edge::writer_client::http_client;
use adcast_shared::protocol::headers;
use adcast_testing::databases::TestDatabase;
use adcast_testing::redis::{redis_url, StreamKey};
use adcast_testing::TempDir;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = env_or("FRESHNESS_SECONDS", 20);
    let edges: usize = env_or("EDGES", 8);
    let rate: u64 = env_or("RATE", 50);
    let database = TestDatabase::create().await;
    let stream_key = StreamKey::new();
    let work = TempDir::new("adcast-freshness");

    let mut writer_settings =
        adcast_testing::writer::settings(&database.url(), &redis_url(), stream_key.as_str());
    writer_settings.snapshot_dir = work.path().join("snapshots");
    writer_settings.snapshot_every_changes = 1_000_000;
    writer_settings.db_max_connections = 10;
    writer_settings.relay_interval_ms = 1_000;
    let writer = adcast_writer::startup::Application::build(writer_settings).await?;
    let writer_address = writer.local_addr();
    tokio::spawn(writer.run_until_stopped(std::future::pending()));

    // Per seq: when each edge applied it.
    let applied: Arc<Mutex<HashMap<u64, Vec<Instant>>>> = Arc::default();
    for e in 0..edges {
        let mut settings = adcast_testing::edge::edge_settings(&redis_url(), stream_key.as_str());
        settings.data_dir = work.path().join(format!("edge-{e}"));
        settings.xread_block_ms = 5_000;
        let edge = adcast_edge::Application::build(settings).await?;
        let mut seqs = edge.node().subscribe_applied();
        let applied = applied.clone();
        tokio::spawn(async move {
            let mut seen = *seqs.borrow();
            while seqs.changed().await.is_ok() {
                let now = Instant::now();
                let current = *seqs.borrow();
                let mut applied = applied.lock().unwrap();
                for seq in seen + 1..=current {
                    applied.entry(seq).or_default().push(now);
                }
                seen = current;
            }
        });
        tokio::spawn(edge.run_until_stopped(std::future::pending()));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let client = http_client();
    let mut acked: Vec<(u64, Instant)> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut i = 0;
    while Instant::now() < deadline {
        ticker.tick().await;
        i += 1;
        let body = format!(
            r#"{{"title":"fresh {i}","startAt":"2024-01-01T00:00:00Z","endAt":"2099-01-01T00:00:00Z","conditions":{{"country":["TW"]}}}}"#
        );
        let request = Request::post(format!("http://{writer_address}/api/v1/ad"))
            .header("content-type", "application/json")
            .body(
                Full::new(Bytes::from(body))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )?;
        let response = client.request(request).await?;
        let acked_at = Instant::now();
        let seq: u64 = response.headers()[headers::ADCAST_SEQ].to_str()?.parse()?;
        response.into_body().collect().await?;
        acked.push((seq, acked_at));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let applied = applied.lock().unwrap();
    let mut latencies: Vec<f64> = Vec::new();
    let mut missing = 0;
    for (seq, acked_at) in &acked {
        match applied.get(seq) {
            Some(times) if times.len() == edges => {
                let last = times.iter().max().unwrap();
                latencies.push(last.saturating_duration_since(*acked_at).as_secs_f64() * 1000.0);
            }
            _ => missing += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "writes acknowledged: {}, not served by all {edges} edges within 2 s: {missing}",
        acked.len()
    );
    println!("| edges | write rate | writes | ack → served by all edges p50 | p99 | max |");
    println!("| --- | --- | --- | --- | --- | --- |");
    println!(
        "| {edges} | {rate}/s | {} | {:.2} ms | {:.2} ms | {:.2} ms |",
        acked.len(),
        pick(0.5),
        pick(0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
    drop((work, stream_key, database));
    std::process::exit(if missing == 0 { 0 } else { 1 });
}
