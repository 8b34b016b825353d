//! Snapshots in an object store (`--snapshot-store`), against a real
//! S3-compatible server (moto) each test starts: every kept snapshot is
//! uploaded and the pointer moves to it, retention applies in the store, and
//! the stream is never trimmed behind a snapshot the store does not hold.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use adcast_shared::snapshot::{self, Snapshot};
use adcast_shared::snapshot_store::SnapshotStore;
use adcast_testing::databases::TestDatabase;
use adcast_testing::processes::{free_port, KillOnDrop};
use adcast_testing::redis::{redis_url, StreamKey};
use adcast_testing::s3::MotoServer;
use adcast_testing::writer::{ad_body, TestWriter};
use adcast_testing::TempDir;

/// Waits until the stream's last entry is `seq`.
async fn wait_until_published(app: &TestWriter, seq: u64) {
    let expected = format!("{seq}-0");
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.stream_entries().await.last().map(|(id, _)| id) != Some(&expected) {
        assert!(
            Instant::now() < deadline,
            "entry {expected} was never published"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stream_seqs(app: &TestWriter) -> Vec<u64> {
    app.stream_entries()
        .await
        .into_iter()
        .map(|(id, _)| id.trim_end_matches("-0").parse().unwrap())
        .collect()
}

async fn post_ads(app: &TestWriter, count: usize, round: usize) {
    for i in 0..count {
        app.post_ad(&ad_body(&format!("AD {round}.{i}"))).await;
    }
}

/// `adcast_snapshot_store_failures_total` in a rendering of the metrics.
fn store_failures(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("adcast_snapshot_store_failures_total "))
        .and_then(|value| value.trim().parse().ok())
        .expect("the store failure counter is rendered")
}

/// Waits until the store's pointer names `seq`.
async fn wait_for_pointer(store: &SnapshotStore, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pointer = store.pointer().await.ok().flatten();
        if pointer.as_ref().is_some_and(|pointer| pointer.seq == seq) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the pointer never moved to {seq}: {pointer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_kept_snapshot_is_uploaded_the_pointer_moves_and_retention_applies() {
    let moto = MotoServer::start();
    let url = moto.fresh_store_url("prod/eu").await;
    let store = moto.store(&url);
    let app = TestWriter::spawn().await;
    let mut producer = app.producer(2);
    producer.object_store = Some(store.clone());
    for round in 1..=3 {
        post_ads(&app, 5, round).await;
        let seq = 5 * round as u64;
        wait_until_published(&app, seq).await;
        let produced = producer.produce().await.unwrap();
        assert_eq!(produced.seq, seq);
        assert!(produced.stored);

        let pointer = store.pointer().await.unwrap().expect("a pointer");
        assert_eq!(pointer.seq, seq, "the pointer names the newest snapshot");
        assert_eq!(pointer.object, snapshot::file_name(seq));
        let object = store.fetch(seq).await.unwrap();
        let file = std::fs::read(app.snapshot_dir.join(snapshot::file_name(seq))).unwrap();
        assert_eq!(object, file, "the object is the kept file, byte for byte");
        assert!(pointer.matches(&object));
        assert_eq!(Snapshot::decode(&object).unwrap().ads.len(), 5 * round);

        let expected: Vec<u64> = [seq, seq.saturating_sub(5)]
            .into_iter()
            .filter(|seq| *seq > 0)
            .collect();
        assert_eq!(
            store.list().await.unwrap(),
            expected,
            "the store keeps the newest two, like the directory"
        );
    }
    // Trimmed behind the oldest snapshot kept in both places (10), no further.
    assert_eq!(stream_seqs(&app).await, (11..=15).collect::<Vec<_>>());
    let text = producer.metrics.render();
    assert!(text.contains("adcast_snapshot_store_last_seq 15"), "{text}");
    assert!(
        text.contains("adcast_snapshot_store_failures_total 0"),
        "{text}"
    );
}

#[tokio::test]
async fn the_stream_is_not_trimmed_while_the_store_is_down_and_is_once_it_is_back() {
    let mut moto = MotoServer::start();
    let url = moto.fresh_store_url("edges").await;
    let store = moto.store(&url);
    moto.stop();

    let app = TestWriter::spawn().await;
    post_ads(&app, 5, 1).await;
    wait_until_published(&app, 5).await;
    let mut producer = app.producer(1);
    producer.object_store = Some(store.clone());
    let metrics = producer.metrics.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(producer.run(async {
        let _ = stopped.await;
    }));

    // The producer writes its start-up snapshot, cannot upload it, and keeps
    // trying: the stream and the outbox keep everything meanwhile.
    let deadline = Instant::now() + Duration::from_secs(20);
    while store_failures(&metrics.render()) < 2 {
        assert!(
            Instant::now() < deadline,
            "no repeated upload attempts: {}",
            metrics.render()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(app.snapshot_dir.join(snapshot::file_name(5)).exists());
    assert_eq!(
        stream_seqs(&app).await,
        (1..=5).collect::<Vec<_>>(),
        "nothing is trimmed behind a snapshot the store does not hold"
    );
    assert_eq!(app.count("outbox").await, 5);

    // The store comes back (empty: moto keeps nothing): the next attempt
    // uploads, moves the pointer, and only then trims.
    moto.restart();
    moto.create_bucket(&url.bucket).await;
    wait_for_pointer(&store, 5).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stream_seqs(&app).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the stream was not trimmed after the upload"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.list().await.unwrap(), [5]);
    let _ = stop.send(());
    running.await.unwrap();
}

#[tokio::test]
async fn the_writer_binary_uploads_to_the_store_named_by_its_environment() {
    let moto = MotoServer::start();
    let url = moto.fresh_store_url("from-env").await;
    let store = moto.store(&url);
    let database = TestDatabase::create().await;
    let key = StreamKey::new();
    let dir = TempDir::new("adcast-test-writer-store");
    let mut command = Command::new(env!("CARGO_BIN_EXE_adcast-writer"));
    command
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--snapshot-dir")
        .arg(dir.path())
        .env("DATABASE_URL", database.url())
        .env("REDIS_URL", redis_url())
        .env("ADCAST_STREAM_KEY", key.as_str())
        .env("ADCAST_SNAPSHOT_STORE", url.to_string())
        .env("ADCAST_LOG", "warn")
        .stdout(Stdio::null());
    for (name, value) in moto.env() {
        command.env(name, value);
    }
    let _writer = KillOnDrop::new(command.spawn().unwrap());
    // The start-up snapshot (of the empty database: seq 0) goes to the store.
    wait_for_pointer(&store, 0).await;
    assert_eq!(store.list().await.unwrap(), [0]);
    let object = store.fetch(0).await.unwrap();
    assert_eq!(Snapshot::decode(&object).unwrap().ads, []);
}
