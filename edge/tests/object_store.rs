//! `--snapshot s3://bucket/prefix`: the edge binary, started as a process
//! with the standard AWS environment pointing at a real S3-compatible server
//! (moto) the test starts, boots from the object the pointer names, refuses
//! corrupt objects and falls back to older ones, lists the store when the
//! pointer is missing, falls back to local files and then the writer when
//! the store is down, and fetches a newer snapshot from the store after a
//! gap in the stream.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use adcast_edge::image;
use adcast_edge::index::AdIndex;
use adcast_shared::sample::sample_ads;
use adcast_shared::snapshot::{self, Snapshot};
use adcast_shared::snapshot_store::{Pointer, SnapshotStore, StoreUrl};
use adcast_shared::timestamp::Timestamp;
use adcast_testing::http::{send, TestResponse};
use adcast_testing::processes::{start_listening, KillOnDrop};
use adcast_testing::redis::{redis_url, StreamKey};
use adcast_testing::s3::MotoServer;
use adcast_testing::writer::{ad_body, TestWriter};
use adcast_testing::TempDir;
use bytes::Bytes;
use http::{Method, StatusCode};

/// A query every `ad_body` ad matches.
const MATCHING: &str = "/api/v1/ad?limit=100&age=25&country=TW&platform=ios";

/// A snapshot file of `ads` sample ads at `seq`.
fn snapshot_file(seq: u64, ads: usize) -> Bytes {
    Snapshot {
        seq,
        created_at: Timestamp::now(),
        ads: sample_ads(ads, seq, Timestamp::now()),
    }
    .encode()
    .into()
}

/// Uploads `file` as the object of `seq` (what the writer does).
async fn put(store: &SnapshotStore, seq: u64, file: &Bytes) {
    store.upload(seq, file.clone()).await.unwrap();
}

async fn point_to(store: &SnapshotStore, seq: u64, file: &Bytes) {
    store
        .publish_pointer(&Pointer::for_snapshot(seq, file))
        .await
        .unwrap();
}

/// The same file with one byte of its body flipped: its checksum fails.
fn corrupt(file: &Bytes) -> Bytes {
    let mut bytes = file.to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    bytes.into()
}

/// A seed file given with this "seq" is the edge's index image.
const AS_INDEX_IMAGE: u64 = u64::MAX;

/// An index image of `ads` sample ads at `seq`.
fn image_file(seq: u64, ads: usize) -> Bytes {
    let work = TempDir::new("adcast-test-image");
    let path = work.path().join(image::FILE_NAME);
    let index = AdIndex::from_ads(sample_ads(ads, seq, Timestamp::now()), Timestamp::now());
    image::write(&path, seq, &index, Timestamp::now()).unwrap();
    std::fs::read(&path).unwrap().into()
}

struct Edge {
    process: KillOnDrop,
    address: std::net::SocketAddr,
    log: PathBuf,
    data_dir: PathBuf,
    _work: TempDir,
}

impl Edge {
    /// Starts the edge binary with `--snapshot <snapshot>`, the AWS
    /// environment of `moto`, its own data directory (seeded with `seed`:
    /// snapshot files by seq, or the index image as [`AS_INDEX_IMAGE`]) and
    /// log file; returns once it listens.
    async fn start(
        moto: &MotoServer,
        snapshot: &str,
        stream_key: &str,
        writer_url: Option<String>,
        seed: &[(u64, Bytes)],
    ) -> Edge {
        let work = TempDir::new("adcast-test-edge-s3");
        let data_dir = work.path().join("data");
        std::fs::create_dir_all(&data_dir).unwrap();
        for (seq, file) in seed {
            let name = match *seq {
                AS_INDEX_IMAGE => image::FILE_NAME.to_owned(),
                seq => snapshot::file_name(seq),
            };
            snapshot::write_atomically(&data_dir.join(name), file).unwrap();
        }
        let env = moto.env();
        let (process, address) = start_listening(
            |port| {
                let mut command = Command::new(env!("CARGO_BIN_EXE_adcast-edge"));
                command
                    .args(["--listen", &format!("127.0.0.1:{port}")])
                    .args(["--snapshot", snapshot])
                    .arg("--data-dir")
                    .arg(&data_dir)
                    .args(["--xread-block-ms", "300"])
                    .env("REDIS_URL", redis_url())
                    .env("ADCAST_STREAM_KEY", stream_key)
                    .env("ADCAST_LOG", "info")
                    .stdout(Stdio::null())
                    .stderr(
                        std::fs::File::create(work.path().join(format!("edge-{port}.log")))
                            .unwrap(),
                    );
                if let Some(url) = &writer_url {
                    command.env("ADCAST_WRITER_URL", url);
                }
                for (name, value) in &env {
                    command.env(name, value);
                }
                command
            },
            "adcast-edge",
        )
        .await;
        Edge {
            process,
            log: work.path().join(format!("edge-{}.log", address.port())),
            address,
            data_dir,
            _work: work,
        }
    }

    async fn get(&self, path: &str) -> TestResponse {
        send(self.address, Method::GET, path, &[], None).await
    }

    /// The sequence number the edge answers at, once it serves.
    async fn serving_seq(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let response = self.get("/api/v1/ad?limit=100").await;
            if response.status == StatusCode::OK {
                return response.seq();
            }
            assert!(
                Instant::now() < deadline,
                "the edge never served: {} {}\n{}",
                response.status,
                String::from_utf8_lossy(&response.body),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the edge answers at `seq`.
    async fn wait_for_seq(&self, seq: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.serving_seq().await != seq {
            assert!(
                Instant::now() < deadline,
                "the edge never reached {seq}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn has_file(&self, seq: u64) -> bool {
        self.data_dir.join(snapshot::file_name(seq)).exists()
    }
}

/// Waits until the stream's last entry is `seq`.
async fn wait_until_published(writer: &TestWriter, seq: u64) {
    let expected = format!("{seq}-0");
    let deadline = Instant::now() + Duration::from_secs(15);
    while writer.stream_entries().await.last().map(|(id, _)| id) != Some(&expected) {
        assert!(
            Instant::now() < deadline,
            "change {seq} was never published"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn store_with_bucket(moto: &MotoServer) -> (StoreUrl, SnapshotStore) {
    let url = moto.fresh_store_url("prod/eu").await;
    let store = moto.store(&url);
    (url, store)
}

#[tokio::test]
async fn boots_from_the_object_the_pointer_names_and_saves_it_locally() {
    let moto = MotoServer::start();
    let (url, store) = store_with_bucket(&moto).await;
    let (older, newer) = (snapshot_file(10, 3), snapshot_file(20, 6));
    put(&store, 10, &older).await;
    put(&store, 20, &newer).await;
    point_to(&store, 20, &newer).await;
    let key = StreamKey::new();
    let edge = Edge::start(&moto, &url.to_string(), key.as_str(), None, &[]).await;
    assert_eq!(edge.serving_seq().await, 20);
    assert!(
        edge.log().contains("loaded snapshot from the object store"),
        "{}",
        edge.log()
    );
    // Saved into the data directory for a restart without the store.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !edge.has_file(20) {
        assert!(
            Instant::now() < deadline,
            "the store's snapshot was not saved"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let saved = std::fs::read(edge.data_dir.join(snapshot::file_name(20))).unwrap();
    assert_eq!(saved, newer);
}

#[tokio::test]
async fn a_restart_takes_its_own_index_image_unless_the_store_holds_a_newer_snapshot() {
    let moto = MotoServer::start();
    let (url, store) = store_with_bucket(&moto).await;
    let in_store = snapshot_file(20, 6);
    put(&store, 20, &in_store).await;
    point_to(&store, 20, &in_store).await;
    let key = StreamKey::new();
    // The image is as new as the store's snapshot: nothing is downloaded.
    let seed = [(AS_INDEX_IMAGE, image_file(20, 4))];
    let edge = Edge::start(&moto, &url.to_string(), key.as_str(), None, &seed).await;
    assert_eq!(edge.serving_seq().await, 20);
    assert_eq!(
        edge.get("/api/v1/ad?limit=100").await.json()["items"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let log = edge.log();
    assert!(log.contains("loaded index image"), "{log}");
    assert!(!log.contains("from the object store"), "{log}");
    drop(edge);

    // An older image: the store's newer snapshot is taken.
    let seed = [(AS_INDEX_IMAGE, image_file(15, 4))];
    let edge = Edge::start(&moto, &url.to_string(), key.as_str(), None, &seed).await;
    assert_eq!(edge.serving_seq().await, 20);
    assert!(
        edge.log().contains("loaded snapshot from the object store"),
        "{}",
        edge.log()
    );
}

#[tokio::test]
async fn a_corrupt_newest_object_is_refused_and_the_next_older_valid_one_is_used() {
    let moto = MotoServer::start();
    let (url, store) = store_with_bucket(&moto).await;
    let valid = snapshot_file(10, 3);
    put(&store, 10, &valid).await;
    // 15: truncated. 20: a flipped byte, and the pointer names exactly
    // these bytes, so only the snapshot decoder can catch it.
    let truncated = snapshot_file(15, 4).slice(..100);
    put(&store, 15, &truncated).await;
    let corrupt = corrupt(&snapshot_file(20, 6));
    put(&store, 20, &corrupt).await;
    point_to(&store, 20, &corrupt).await;
    let key = StreamKey::new();
    let edge = Edge::start(&moto, &url.to_string(), key.as_str(), None, &[]).await;
    assert_eq!(edge.serving_seq().await, 10, "{}", edge.log());
    let log = edge.log();
    assert!(
        log.contains("refusing the snapshot the store's pointer names")
            && log.contains("checksum mismatch"),
        "the corrupt object is refused with a clear line: {log}"
    );
    assert!(
        log.contains("refusing snapshot object") && log.contains("seq=15"),
        "{log}"
    );
    assert!(
        !edge.has_file(20) && !edge.has_file(15),
        "a refused object is never saved"
    );
}

#[tokio::test]
async fn an_object_that_does_not_match_its_pointer_is_refused() {
    let moto = MotoServer::start();
    let (url, store) = store_with_bucket(&moto).await;
    let (older, newer) = (snapshot_file(10, 3), snapshot_file(20, 6));
    put(&store, 10, &older).await;
    put(&store, 20, &newer).await;
    // The pointer describes other bytes than the object holds.
    point_to(&store, 20, &snapshot_file(20, 2)).await;
    let key = StreamKey::new();
    let edge = Edge::start(&moto, &url.to_string(), key.as_str(), None, &[]).await;
    assert_eq!(edge.serving_seq().await, 10, "{}", edge.log());
    assert!(
        edge.log().contains("do not match the pointer"),
        "{}",
        edge.log()
    );
}

#[tokio::test]
async fn without_a_pointer_the_store_is_listed_and_the_newest_valid_object_used() {
    let moto = MotoServer::start();
    let (url, store) = store_with_bucket(&moto).await;
    put(&store, 10, &snapshot_file(10, 3)).await;
    put(&store, 20, &snapshot_file(20, 6)).await;
    let key = StreamKey::new();
    let edge = Edge::start(&moto, &url.to_string(), key.as_str(), None, &[]).await;
    assert_eq!(edge.serving_seq().await, 20, "{}", edge.log());
    assert!(edge.log().contains("no pointer object"), "{}", edge.log());
}

#[tokio::test]
async fn a_store_that_is_down_at_boot_falls_back_to_the_local_files() {
    let mut moto = MotoServer::start();
    let (url, store) = store_with_bucket(&moto).await;
    let newer = snapshot_file(20, 6);
    put(&store, 20, &newer).await;
    point_to(&store, 20, &newer).await;
    moto.stop();
    let key = StreamKey::new();
    let started = Instant::now();
    let edge = Edge::start(
        &moto,
        &url.to_string(),
        key.as_str(),
        None,
        &[(7, snapshot_file(7, 2))],
    )
    .await;
    assert_eq!(edge.serving_seq().await, 7, "{}", edge.log());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a store that is down must fail fast: {:?}",
        started.elapsed()
    );
    assert!(
        edge.log().contains("the snapshot store cannot be read"),
        "{}",
        edge.log()
    );
}

#[tokio::test]
async fn a_store_that_is_down_with_nothing_local_falls_back_to_the_writer() {
    let mut moto = MotoServer::start();
    let (url, _store) = store_with_bucket(&moto).await;
    moto.stop();
    let writer = TestWriter::spawn().await;
    writer.post_ad(&ad_body("from the writer")).await;
    writer.wait_for_stream_len(1).await;
    writer.producer(5).produce().await.unwrap();
    let edge = Edge::start(
        &moto,
        &url.to_string(),
        &writer.stream_key,
        Some(writer.url()),
        &[],
    )
    .await;
    assert_eq!(edge.serving_seq().await, 1, "{}", edge.log());
    let body = edge.get(MATCHING).await.json();
    assert_eq!(body["items"][0]["title"], "from the writer");
}

#[tokio::test]
async fn after_a_gap_a_newer_snapshot_comes_from_the_store() {
    let moto = MotoServer::start();
    let (url, store) = store_with_bucket(&moto).await;
    let writer = TestWriter::spawn().await;
    let producer = writer.producer(1);
    let file = |seq: u64| -> Bytes {
        std::fs::read(writer.snapshot_dir.join(snapshot::file_name(seq)))
            .unwrap()
            .into()
    };
    // The store holds the snapshot of change 1.
    writer.post_ad(&ad_body("one")).await;
    writer.wait_for_stream_len(1).await;
    producer.produce().await.unwrap();
    let first = file(1);
    put(&store, 1, &first).await;
    point_to(&store, 1, &first).await;
    // Changes 2 and 3 are trimmed from the stream behind the snapshot of
    // 3, which is not in the store yet; change 4 is in the stream.
    writer.post_ad(&ad_body("two")).await;
    writer.post_ad(&ad_body("three")).await;
    wait_until_published(&writer, 3).await;
    producer.produce().await.unwrap();
    writer.post_ad(&ad_body("four")).await;
    wait_until_published(&writer, 4).await;

    let edge = Edge::start(&moto, &url.to_string(), &writer.stream_key, None, &[]).await;
    // It boots at 1 and finds the gap (the stream goes on at 4); nothing
    // newer exists anywhere yet, so it serves the state of 1 meanwhile.
    assert_eq!(edge.serving_seq().await, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(edge.serving_seq().await, 1);
    // The snapshot of 3 reaches the store: the edge takes it and goes on.
    let third = file(3);
    put(&store, 3, &third).await;
    point_to(&store, 3, &third).await;
    edge.wait_for_seq(4).await;
    let body = edge.get(MATCHING).await.json();
    let mut titles: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["title"].as_str().unwrap())
        .collect();
    titles.sort_unstable();
    assert_eq!(titles, ["four", "one", "three", "two"]);
    drop(edge.process);
}

#[tokio::test]
async fn an_edge_that_found_nothing_takes_the_first_snapshot_the_store_receives() {
    let moto = MotoServer::start();
    let (url, store) = store_with_bucket(&moto).await;
    let key = StreamKey::new();
    let edge = Edge::start(&moto, &url.to_string(), key.as_str(), None, &[]).await;
    // Nothing anywhere: the edge listens but cannot serve yet.
    let response = edge.get("/servingz").await;
    assert_eq!(
        response.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        edge.log()
    );
    let file = snapshot_file(30, 4);
    put(&store, 30, &file).await;
    point_to(&store, 30, &file).await;
    edge.wait_for_seq(30).await;
}
