//! Snapshots: exactly the database state after change S, trimming that never
//! strands an edge, the internal download route, and the CLI.

use std::collections::BTreeMap;
use std::process::Command;

use adcast_shared::ad::Ad;
use adcast_shared::event::Change;
use adcast_shared::snapshot::{self, Snapshot};
use http::{Method, StatusCode};
use sqlx::PgPool;

use adcast_testing::writer::{ad_body, TestWriter};

/// The live ads after replaying the outbox up to `seq`: the model a
/// snapshot at `seq` must equal (every test ad ends in 2099).
async fn replay(db: &PgPool, seq: u64) -> Vec<Ad> {
    let rows: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, payload FROM outbox WHERE seq <= $1 ORDER BY seq")
            .bind(seq as i64)
            .fetch_all(db)
            .await
            .unwrap();
    assert_eq!(
        rows.len() as u64,
        seq,
        "the outbox must still hold the whole history for this check"
    );
    let mut ads = BTreeMap::new();
    for (_, payload) in rows {
        match Change::decode(&payload).unwrap() {
            Change::Upsert(ad) => {
                ads.insert(ad.id, ad);
            }
            Change::Delete(id) => {
                ads.remove(&id);
            }
        }
    }
    ads.into_values().collect()
}

/// Waits until the stream's last entry is `seq` (trimming changes its length).
async fn wait_until_published(app: &TestWriter, seq: u64) {
    let expected = format!("{seq}-0");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while app.stream_entries().await.last().map(|(id, _)| id) != Some(&expected) {
        assert!(
            std::time::Instant::now() < deadline,
            "entry {expected} was never published"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn read_snapshot(path: &std::path::Path) -> Snapshot {
    Snapshot::decode(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test]
async fn snapshot_holds_exactly_the_live_unended_ads() {
    let app = TestWriter::spawn().await;
    let mut ids = Vec::new();
    for title in ["kept", "deleted", "ended"] {
        ids.push(
            app.post_ad(&ad_body(title)).await.json()["id"]
                .as_i64()
                .unwrap(),
        );
    }
    app.request(Method::DELETE, &format!("/api/v1/ad/{}", ids[1]), &[], None)
        .await;
    // Let the third ad end, as time passing would.
    sqlx::query("UPDATE ads SET start_at = now() - interval '2 hours', end_at = now() - interval '1 hour' WHERE id = $1")
        .bind(ids[2])
        .execute(&app.db)
        .await
        .unwrap();

    let produced = app.producer(5).produce().await.unwrap();
    assert_eq!(produced.seq, 4);
    let snapshot = read_snapshot(&app.snapshot_dir.join(snapshot::file_name(4)));
    assert_eq!(snapshot.seq, 4);
    let kept: Vec<i64> = snapshot.ads.iter().map(|ad| ad.id.get()).collect();
    assert_eq!(kept, [ids[0]]);
    let served = serde_json::to_value(adcast_shared::wire::AdView::new(&snapshot.ads[0])).unwrap();
    assert_eq!(
        served,
        app.get(&format!("/api/v1/ad/{}", ids[0])).await.json()
    );
}

#[tokio::test]
async fn snapshots_taken_during_concurrent_writes_equal_the_replayed_history() {
    let app = TestWriter::spawn().await;
    let producer = app.producer(1_000);
    let writes = async {
        for round in 0..30 {
            let created = app.post_ad(&ad_body(&format!("AD {round}"))).await.json();
            let path = format!("/api/v1/ad/{}", created["id"]);
            match round % 3 {
                0 => {
                    let body = ad_body(&format!("AD {round} v2")).to_string();
                    app.request(
                        Method::PUT,
                        &path,
                        &[("content-type", "application/json")],
                        Some(&body),
                    )
                    .await;
                }
                1 => {
                    app.request(Method::DELETE, &path, &[], None).await;
                }
                _ => {}
            }
        }
    };
    let snapshots = async {
        let mut seqs = Vec::new();
        for _ in 0..15 {
            seqs.push(producer.produce().await.unwrap().seq);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        seqs
    };
    let ((), seqs) = tokio::join!(writes, snapshots);
    assert!(seqs.windows(2).all(|pair| pair[0] <= pair[1]));
    assert!(
        seqs.iter().any(|&seq| seq > 0 && seq < 50),
        "some snapshots must land mid-burst: {seqs:?}"
    );
    for seq in seqs {
        let snapshot = read_snapshot(&app.snapshot_dir.join(snapshot::file_name(seq)));
        assert_eq!(
            snapshot.ads,
            replay(&app.db, seq).await,
            "snapshot at {seq} differs from the history up to {seq}"
        );
    }
}

#[tokio::test]
async fn trimming_keeps_every_entry_after_the_oldest_kept_snapshot() {
    let app = TestWriter::spawn().await;
    let producer = app.producer(2);
    let mut produced = Vec::new();
    for round in 0..4 {
        for i in 0..10 {
            app.post_ad(&ad_body(&format!("AD {round}.{i}"))).await;
        }
        wait_until_published(&app, 10 * (round + 1)).await;
        produced.push(producer.produce().await.unwrap());
    }
    let last = produced.last().unwrap();
    assert_eq!(last.seq, 40);
    assert_eq!(last.oldest_kept, 30);
    let kept: Vec<u64> = snapshot::list_files(&app.snapshot_dir)
        .unwrap()
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(kept, [40, 30]);

    let ids: Vec<String> = app
        .stream_entries()
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let expected: Vec<String> = (31..=40).map(|seq| format!("{seq}-0")).collect();
    assert_eq!(
        ids, expected,
        "entries after the oldest kept snapshot all remain; older ones are trimmed"
    );
    let outbox_min: i64 = sqlx::query_scalar("SELECT min(seq) FROM outbox")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(outbox_min, 31);
}

#[tokio::test]
async fn latest_snapshot_is_served_with_an_etag_and_answers_304_when_unchanged() {
    let app = TestWriter::spawn().await;
    let url = "/internal/v1/snapshot/latest";
    // The writer writes one at start-up; give it a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let first = loop {
        let response = app.get(url).await;
        if response.status == StatusCode::OK || std::time::Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("etag"), Some("\"0\""));
    assert_eq!(Snapshot::decode(&first.body).unwrap().seq, 0);

    let unchanged = app
        .request(Method::GET, url, &[("if-none-match", "\"0\"")], None)
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert!(unchanged.body.is_empty());

    app.post_ad(&ad_body("new")).await;
    app.producer(5).produce().await.unwrap();
    let newer = app
        .request(Method::GET, url, &[("if-none-match", "\"0\"")], None)
        .await;
    assert_eq!(newer.status, StatusCode::OK);
    assert_eq!(newer.header("etag"), Some("\"1\""));
    let snapshot = Snapshot::decode(&newer.body).unwrap();
    assert_eq!((snapshot.seq, snapshot.ads.len()), (1, 1));
}

#[tokio::test]
async fn snapshot_route_needs_a_token_when_tokens_are_configured() {
    let app = TestWriter::spawn_with(|settings| settings.admin_tokens = vec!["t0k".into()]).await;
    app.producer(5).produce().await.unwrap();
    let url = "/internal/v1/snapshot/latest";
    assert_eq!(app.get(url).await.status, StatusCode::UNAUTHORIZED);
    let ok = app
        .request(Method::GET, url, &[("authorization", "Bearer t0k")], None)
        .await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn snapshot_command_writes_one_file_and_exits() {
    let app = TestWriter::spawn().await;
    app.post_ad(&ad_body("baked")).await;
    let out = app.snapshot_dir.join("baked.adsnap");
    let status = Command::new(env!("CARGO_BIN_EXE_adcast-writer"))
        .args(["snapshot", "--out"])
        .arg(&out)
        .env("DATABASE_URL", &app.database_url)
        .env("ADCAST_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success());
    let snapshot = read_snapshot(&out);
    assert_eq!(snapshot.seq, 1);
    assert_eq!(snapshot.ads[0].title.as_str(), "baked");
}

#[tokio::test]
async fn a_snapshot_never_prunes_changes_the_stream_does_not_have_yet() {
    // Redis unreachable: the change is committed but cannot be published.
    let unreachable = format!(
        "redis://127.0.0.1:{}",
        adcast_testing::processes::free_port()
    );
    let app = TestWriter::spawn_with(|settings| settings.redis_url = Some(unreachable)).await;
    app.post_ad(&ad_body("unpublished")).await;
    // A snapshot covering it, keeping only itself (as after a restart with an
    // empty snapshot directory).
    let mut producer = app.producer(1);
    producer.redis = redis::Client::open(adcast_testing::redis::redis_url()).unwrap();
    let produced = producer.produce().await.unwrap();
    assert_eq!(produced.oldest_kept, 1);
    assert_eq!(
        app.count("outbox").await,
        1,
        "the unpublished change stays in the outbox"
    );
}

#[tokio::test]
async fn a_snapshot_of_thousands_of_rows_holds_exactly_the_live_unended_ones() {
    use adcast_shared::ad::{AdId, TimeWindow, Title};
    use adcast_shared::json::Json;
    use adcast_shared::timestamp::Timestamp;
    use adcast_shared::wire::parse_conditions;

    // Stored conditions as the writer stores them, and variants a catalog
    // holds: everyone, one group, two groups, one dimension each.
    const CONDITIONS: [&str; 5] = [
        "null",
        r#"[{"ageStart":18,"ageEnd":35,"gender":["F"]},{"country":["TW","JP"],"platform":["ios"]}]"#,
        r#"[{"ageStart":20,"ageEnd":64,"country":["US"],"platform":["android","web"]}]"#,
        r#"[{"gender":["M"]}]"#,
        r#"[{"country":["FR","DE","GB"]}]"#,
    ];
    let app = TestWriter::spawn().await;
    // Several thousand rows: many hand-over batches and a partial last one,
    // and more encoded bytes than the encoder takes in one go.
    let (mut ids, mut titles, mut starts, mut ends, mut conditions, mut deleted) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut expected = Vec::new();
    for i in 0..6_000_i64 {
        let id = 3 * i + 1 + i % 2; // ascending, with gaps
        let title = format!("Ad \"{i}\" — café {}", "x".repeat((i % 40) as usize));
        let ended = i % 11 == 3;
        let start = if ended {
            "2020-01-01T00:00:00Z"
        } else {
            "2026-01-01T00:00:00Z"
        }
        .to_owned();
        let end = if ended {
            "2020-06-01T00:00:00Z".to_owned()
        } else {
            format!("2099-01-01T00:00:{:02}.{:03}Z", i % 60, i % 1000)
        };
        let is_deleted = i % 7 == 2;
        let condition = CONDITIONS[(i % 5) as usize];
        if !ended && !is_deleted {
            let window = TimeWindow::new(
                Timestamp::parse_rfc3339(&start).unwrap(),
                Timestamp::parse_rfc3339(&end).unwrap(),
            )
            .unwrap();
            expected.push(Ad {
                id: AdId::new(id).unwrap(),
                title: Title::parse(title.clone()).unwrap(),
                window,
                targeting: parse_conditions(&Json::parse(condition.as_bytes()).unwrap()).unwrap(),
            });
        }
        ids.push(id);
        titles.push(title);
        starts.push(start);
        ends.push(end);
        conditions.push(condition.to_owned());
        deleted.push(is_deleted);
    }
    sqlx::query(
        "INSERT INTO ads (id, title, start_at, end_at, conditions, last_seq, deleted_at)
         SELECT id, title, start_at::timestamptz, end_at::timestamptz, conditions::jsonb, 1,
                CASE WHEN deleted THEN now() END
         FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[])
              AS t(id, title, start_at, end_at, conditions, deleted)",
    )
    .bind(&ids)
    .bind(&titles)
    .bind(&starts)
    .bind(&ends)
    .bind(&conditions)
    .bind(&deleted)
    .execute(&app.db)
    .await
    .unwrap();

    let store = adcast_writer::store::Store::new(app.db.clone());
    let out = app.snapshot_dir.join("many.adsnap");
    let target = out.clone();
    let written = store.write_snapshot(move |_| target).await.unwrap();
    assert_eq!(written.ads, expected.len() as u64);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(written.bytes, bytes.len() as u64);
    let snapshot = Snapshot::decode(&bytes).unwrap();
    assert!(expected.len() > 4 * 1024, "{} live ads", expected.len());
    assert_eq!(snapshot.ads.len(), expected.len());
    for (got, want) in snapshot.ads.iter().zip(&expected) {
        assert_eq!(got, want);
    }
}
