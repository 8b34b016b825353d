//! The snapshot format: round trips, and refusal of every damaged file.

mod common;

use std::io::Read;

use adcast_shared::ad::{Ad, AdId};
use adcast_shared::snapshot::{
    self, Snapshot, SnapshotError, SnapshotHeader, SnapshotWriter, HEADER_LEN,
};
use adcast_shared::timestamp::Timestamp;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

fn sample_ads(count: usize) -> Vec<Ad> {
    let mut runner = TestRunner::deterministic();
    let mut ads = Vec::new();
    while ads.len() < count {
        ads.extend(
            common::ads_by_id(count)
                .new_tree(&mut runner)
                .unwrap()
                .current(),
        );
    }
    ads.sort_by_key(|ad| ad.id);
    ads.dedup_by_key(|ad| ad.id);
    ads.truncate(count);
    ads
}

fn small_file() -> Vec<u8> {
    Snapshot {
        seq: 7,
        created_at: Timestamp::from_millis(1_700_000_000_000).unwrap(),
        ads: sample_ads(2),
    }
    .encode()
}

proptest! {
    #[test]
    fn snapshots_round_trip(ads in common::ads_by_id(20), seq in any::<u64>(), created in 0i64..4_000_000_000_000) {
        let snapshot = Snapshot { seq, created_at: Timestamp::from_millis(created).unwrap(), ads };
        let bytes = snapshot.encode();
        let header = SnapshotHeader::decode(&bytes).unwrap();
        prop_assert_eq!(header.seq, seq);
        prop_assert_eq!(header.ad_count, snapshot.ads.len() as u64);
        prop_assert_eq!(Snapshot::decode(&bytes).unwrap(), snapshot);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        prop_assert!(Snapshot::decode(&bytes).is_err());
    }
}

#[test]
fn empty_snapshot_round_trips() {
    let snapshot = Snapshot {
        seq: 0,
        created_at: Timestamp::now(),
        ads: Vec::new(),
    };
    assert_eq!(Snapshot::decode(&snapshot.encode()).unwrap(), snapshot);
}

#[test]
fn every_truncation_is_refused() {
    let file = small_file();
    for length in 0..file.len() {
        let error =
            Snapshot::decode(&file[..length]).expect_err("a truncated file must be refused");
        if length < HEADER_LEN {
            assert_eq!(error, SnapshotError::TruncatedHeader(length));
        } else {
            assert!(
                matches!(error, SnapshotError::BodyLength { .. }),
                "{length}: {error}"
            );
        }
    }
}

#[test]
fn padding_is_refused() {
    let mut file = small_file();
    file.push(0);
    assert!(matches!(
        Snapshot::decode(&file),
        Err(SnapshotError::BodyLength { .. })
    ));
}

#[test]
fn every_single_bit_flip_is_refused() {
    let file = small_file();
    assert!(Snapshot::decode(&file).is_ok());
    for at in 0..file.len() {
        for bit in 0..8 {
            let mut damaged = file.clone();
            damaged[at] ^= 1 << bit;
            assert!(
                Snapshot::decode(&damaged).is_err(),
                "flip of bit {bit} at byte {at} went unnoticed"
            );
        }
    }
}

#[test]
fn errors_say_what_is_wrong() {
    let file = small_file();
    let mut magic = file.clone();
    magic[0] = b'X';
    assert_eq!(Snapshot::decode(&magic), Err(SnapshotError::WrongMagic));
    let mut version = file.clone();
    version[8] = 9;
    assert_eq!(
        Snapshot::decode(&version),
        Err(SnapshotError::UnknownVersion(9))
    );
    let mut header = file.clone();
    header[16] ^= 1;
    assert_eq!(
        Snapshot::decode(&header),
        Err(SnapshotError::HeaderChecksum)
    );
    let mut body = file.clone();
    let last = body.len() - 1;
    body[last] ^= 1;
    assert_eq!(Snapshot::decode(&body), Err(SnapshotError::BodyChecksum));
    assert!(SnapshotError::BodyChecksum.to_string().contains("checksum"));
}

#[test]
fn ads_out_of_id_order_are_refused() {
    let mut ads = sample_ads(3);
    ads.reverse();
    let bytes = Snapshot {
        seq: 1,
        created_at: Timestamp::now(),
        ads,
    }
    .encode();
    assert_eq!(Snapshot::decode(&bytes), Err(SnapshotError::IdOrder));
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "adcast-snapshot-test-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn files_are_written_atomically_listed_newest_first_and_pruned() {
    let dir = temp_dir("files");
    for seq in [3u64, 12, 7] {
        let bytes = Snapshot {
            seq,
            created_at: Timestamp::now(),
            ads: Vec::new(),
        }
        .encode();
        snapshot::write_atomically(&dir.join(snapshot::file_name(seq)), &bytes).unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
    let listed: Vec<u64> = snapshot::list_files(&dir)
        .unwrap()
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(listed, [12, 7, 3]);
    assert!(std::fs::read_dir(&dir).unwrap().all(|entry| !entry
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".tmp")));

    assert_eq!(snapshot::prune(&dir, 2).unwrap(), [12, 7]);
    let listed: Vec<u64> = snapshot::list_files(&dir)
        .unwrap()
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(listed, [12, 7]);
    let newest = std::fs::read(dir.join(snapshot::file_name(12))).unwrap();
    assert_eq!(Snapshot::decode(&newest).unwrap().seq, 12);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rewriting_a_file_replaces_it_whole() {
    let dir = temp_dir("rewrite");
    let path = dir.join("fixed.adsnap");
    let big = Snapshot {
        seq: 1,
        created_at: Timestamp::now(),
        ads: sample_ads(50),
    }
    .encode();
    let small = Snapshot {
        seq: 2,
        created_at: Timestamp::now(),
        ads: Vec::new(),
    }
    .encode();
    snapshot::write_atomically(&path, &big).unwrap();
    snapshot::write_atomically(&path, &small).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), small);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_streamed_file_decodes_like_an_encoded_one() {
    let dir = temp_dir("streamed");
    for count in [0, 2, 300] {
        let expected = Snapshot {
            seq: 41,
            created_at: Timestamp::from_millis(1_700_000_000_000).unwrap(),
            ads: sample_ads(count),
        };
        let path = dir.join(snapshot::file_name(41));
        let mut writer =
            SnapshotWriter::create(&path, 41, expected.created_at, count as u64).unwrap();
        for ad in &expected.ads {
            writer.push(ad).unwrap();
        }
        let size = writer.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(size, bytes.len() as u64);
        assert_eq!(Snapshot::decode(&bytes).unwrap(), expected, "{count} ads");
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no temporary file is left"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_streamed_file_larger_than_the_encoder_buffer_decodes_like_an_encoded_one() {
    let dir = temp_dir("streamed-large");
    let base = sample_ads(300);
    let ads: Vec<Ad> = (0..20_000)
        .map(|i| Ad {
            id: AdId::new(i as i64 + 1).unwrap(),
            ..base[i % base.len()].clone()
        })
        .collect();
    let raw = bincode::serde::encode_to_vec(&ads, bincode::config::standard()).unwrap();
    assert!(
        raw.len() > 1 << 20,
        "many hand-overs to zstd: {} bytes",
        raw.len()
    );
    let expected = Snapshot {
        seq: 9,
        created_at: Timestamp::from_millis(1_700_000_000_000).unwrap(),
        ads,
    };
    let path = dir.join(snapshot::file_name(9));
    let mut writer =
        SnapshotWriter::create(&path, 9, expected.created_at, expected.ads.len() as u64).unwrap();
    for ad in &expected.ads {
        writer.push(ad).unwrap();
    }
    writer.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut body = Vec::new();
    zstd::stream::read::Decoder::new(&bytes[HEADER_LEN..])
        .unwrap()
        .read_to_end(&mut body)
        .unwrap();
    assert!(
        body == raw,
        "the body is the bincode of the ads, byte for byte"
    );
    assert_eq!(Snapshot::decode(&bytes).unwrap(), expected);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_streamed_file_with_the_wrong_count_or_order_is_never_written() {
    let dir = temp_dir("streamed-refused");
    let ads = sample_ads(3);
    let path = dir.join(snapshot::file_name(1));
    let created = Timestamp::from_millis(1_700_000_000_000).unwrap();

    let mut short = SnapshotWriter::create(&path, 1, created, 3).unwrap();
    short.push(&ads[0]).unwrap();
    assert!(short.finish().is_err(), "fewer ads than announced");

    let mut long = SnapshotWriter::create(&path, 1, created, 1).unwrap();
    long.push(&ads[0]).unwrap();
    assert!(long.push(&ads[1]).is_err(), "more ads than announced");
    drop(long);

    let mut unordered = SnapshotWriter::create(&path, 1, created, 2).unwrap();
    unordered.push(&ads[1]).unwrap();
    assert!(unordered.push(&ads[0]).is_err(), "ids must ascend");
    drop(unordered);

    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "neither the file nor a temporary one exists"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
