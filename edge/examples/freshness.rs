//! Freshness benchmark: with 8 edges tailing one stream and the writer taking
//! 50 writes/s, how long from a write being acknowledged until every edge
//! serves it (p50/p99).
//!
//! Runs a real writer and 8 real edges in this process against the local
//! PostgreSQL and Redis (database `adcast_freshness`, recreated each run).
//! `cargo run --release -p adcast-edge --example freshness`
//! (FRESHNESS_SECONDS=20 EDGES=8 RATE=50; ADCAST_TEST_DATABASE_URL and
//! ADCAST_TEST_REDIS_URL as for the tests.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adcast_edge::forward::http_client;
use bytes::Bytes;
use clap::Parser;
use http::Request;
use http_body_util::{BodyExt, Full};
use sqlx::Connection;

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
    let pg = std::env::var("ADCAST_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let redis_url =
        std::env::var("ADCAST_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut admin = sqlx::PgConnection::connect(&format!("{pg}/postgres")).await?;
    sqlx::query("DROP DATABASE IF EXISTS adcast_freshness")
        .execute(&mut admin)
        .await?;
    sqlx::query("CREATE DATABASE adcast_freshness")
        .execute(&mut admin)
        .await?;
    let stream_key = format!("adcast:freshness:{}", std::process::id());
    let work = std::env::temp_dir().join(format!("adcast-freshness-{}", std::process::id()));

    let writer_settings = adcast_writer::config::Settings {
        listen: "127.0.0.1:0".parse()?,
        database_url: Some(format!("{pg}/adcast_freshness")),
        redis_url: Some(redis_url.clone()),
        stream_key: stream_key.clone(),
        snapshot_dir: work.join("snapshots"),
        snapshot_keep: 5,
        snapshot_every_changes: 1_000_000,
        snapshot_interval_secs: 3_600,
        admin_tokens: vec![],
        admin_tokens_file: None,
        allow_insecure_admin: false,
        request_timeout_ms: 10_000,
        header_read_timeout_ms: 5_000,
        max_connections: 1_024,
        db_acquire_timeout_ms: 3_000,
        db_max_connections: 10,
        relay_interval_ms: 1_000,
        log_format: adcast_writer::config::LogFormat::Text,
        log: "warn".into(),
    };
    let writer = adcast_writer::startup::Application::build(writer_settings).await?;
    let writer_address = writer.local_addr();
    tokio::spawn(writer.run_until_stopped(std::future::pending()));

    // Per seq: when each edge applied it.
    let applied: Arc<Mutex<HashMap<u64, Vec<Instant>>>> = Arc::default();
    for e in 0..edges {
        let settings = adcast_edge::config::Settings::try_parse_from([
            "adcast-edge",
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            &redis_url,
            "--stream-key",
            &stream_key,
            "--data-dir",
            work.join(format!("edge-{e}")).to_str().unwrap(),
            "--log",
            "warn",
        ])?;
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
        let seq: u64 = response.headers()["adcast-seq"].to_str()?.parse()?;
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
    let _ = std::fs::remove_dir_all(&work);
    std::process::exit(if missing == 0 { 0 } else { 1 });
}
