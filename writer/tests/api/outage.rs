//! PostgreSQL stopped under the writer: 503 within seconds, nothing
//! half-written, and recovery without a restart.

use std::time::{Duration, Instant};

use http::StatusCode;

use adcast_testing::databases::{PostgresServer, TestDatabase};
use adcast_testing::redis::{redis_url, StreamKey};
use adcast_testing::writer::{ad_body, settings, TestWriter};

#[tokio::test]
async fn postgres_down_is_a_fast_503_and_the_writer_recovers_by_itself() {
    let postgres = PostgresServer::start();
    let key = StreamKey::new();
    let mut config = settings(&postgres.url(), &redis_url(), key.as_str());
    config.db_acquire_timeout_ms = 2_000;
    let app = TestWriter::start(config).await;
    assert_eq!(
        app.post_ad(&ad_body("before")).await.status,
        StatusCode::CREATED
    );

    postgres.stop();
    let started = Instant::now();
    let response = app.post_ad(&ad_body("during")).await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(response.error().0, "unavailable");
    assert!(response.header("retry-after").is_some());
    assert_eq!(
        app.get("/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);

    postgres.start_again();
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let response = app.post_ad(&ad_body("after")).await;
        if response.status == StatusCode::CREATED || Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        after.status,
        StatusCode::CREATED,
        "the writer recovers without a restart"
    );
    assert_eq!(
        after.seq(),
        2,
        "the failed write consumed no sequence number"
    );
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM ads ORDER BY id")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(titles, ["before", "after"]);
    app.wait_for_stream_len(2).await;
}

#[tokio::test]
async fn the_database_url_can_require_tls() {
    // A private server with a fresh self-signed certificate, so the test does
    // not depend on how the shared test server is set up; `sslmode=require`
    // fails outright if the writer was built without TLS.
    let postgres = match PostgresServer::start_with_tls() {
        Ok(postgres) => postgres,
        Err(why) => {
            eprintln!("SKIPPED the_database_url_can_require_tls: {}", why.0);
            return;
        }
    };
    let database = TestDatabase::create_on(&postgres.base_url()).await;
    let key = StreamKey::new();
    let config = settings(
        &format!("{}?sslmode=require", database.url()),
        &redis_url(),
        key.as_str(),
    );
    let app = TestWriter::start(config).await;
    assert_eq!(
        app.post_ad(&ad_body("over TLS")).await.status,
        StatusCode::CREATED
    );
    // This test's own connection is one of them; the writer holds the others.
    let (encrypted, plain): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE ssl), count(*) FILTER (WHERE NOT ssl)
         FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE datname = current_database()",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        encrypted >= 2,
        "the writer's connections use TLS ({encrypted} encrypted)"
    );
    assert_eq!(plain, 0);
}
