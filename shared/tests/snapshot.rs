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

/// Ads enough to be decoded on two threads, with ids from one-byte to
/// eight-byte varints and the strategies' titles and groups.
fn many_ads() -> Vec<Ad> {
    let base = sample_ads(300);
    let count = 20_000;
    let step = i64::MAX / count as i64;
    (0..count)
        .map(|i| Ad {
            id: AdId::new(1 + i as i64 * step).unwrap(),
            ..base[i % base.len()].clone()
        })
        .collect()
}

/// The file of `file` with its body replaced by `raw`, compressed, with a
/// header that verifies: damage only the decoder can see.
fn reframed(file: &[u8], raw: &[u8]) -> Vec<u8> {
    with_body(file, &zstd::bulk::compress(raw, 3).unwrap())
}

/// [`reframed`], with `raw` cut into zstd frames at `cuts` (ascending
/// offsets into `raw`), each declaring its size, as this build writes
/// bodies.
fn framed(file: &[u8], raw: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut from = 0;
    for &to in cuts.iter().chain([raw.len()].iter()) {
        body.extend(zstd::bulk::compress(&raw[from..to], 1).unwrap());
        from = to;
    }
    with_body(file, &body)
}

fn with_body(file: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = file[..HEADER_LEN].to_vec();
    out[12..16].copy_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out[40..48].copy_from_slice(&(body.len() as u64).to_le_bytes());
    let header_crc = crc32c::crc32c(&out[..48]);
    out[48..52].copy_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Where each of `ads` ends in the raw body of their snapshot.
fn ad_ends(ads: &[Ad]) -> Vec<usize> {
    let config = bincode::config::standard();
    let mut at = bincode::serde::encode_to_vec(ads.len() as u64, config)
        .unwrap()
        .len();
    ads.iter()
        .map(|ad| {
            at += bincode::serde::encode_to_vec(ad, config).unwrap().len();
            at
        })
        .collect()
}

fn raw_body(file: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    zstd::stream::read::Decoder::new(&file[HEADER_LEN..])
        .unwrap()
        .read_to_end(&mut raw)
        .unwrap();
    raw
}

/// `decode_in_two`'s halves, joined, or its error.
fn decoded_in_two(file: &[u8]) -> Result<(Vec<Ad>, usize), SnapshotError> {
    split_in_two(file, 16_384)
}

fn split_in_two(file: &[u8], split_from: u64) -> Result<(Vec<Ad>, usize), SnapshotError> {
    let (_, mut first, second) = Snapshot::decode_in_two_from(file, split_from, Vec::new)?;
    let split = first.len();
    first.extend(second);
    Ok((first, split))
}

#[test]
fn a_large_file_decodes_in_two_halves_to_the_same_ads() {
    let snapshot = Snapshot {
        seq: 3,
        created_at: Timestamp::from_millis(1_700_000_000_000).unwrap(),
        ads: many_ads(),
    };
    let file = snapshot.encode();
    let count = snapshot.ads.len();
    // As written: frame by frame, the cut after a frame.
    let (ads, split) = decoded_in_two(&file).unwrap();
    assert!(0 < split && split < count, "decoded in two parts: {split}");
    assert!(ads == snapshot.ads);
    // Frames every 997 ads: cut after one of them, near the middle.
    let raw = raw_body(&file);
    let ends = ad_ends(&snapshot.ads);
    assert_eq!(*ends.last().unwrap(), raw.len());
    let cuts: Vec<usize> = ends.iter().copied().skip(996).step_by(997).collect();
    let (ads, split) = decoded_in_two(&framed(&file, &raw, &cuts)).unwrap();
    assert!(ads == snapshot.ads);
    assert_eq!(split % 997, 0, "cut after a frame: {split}");
    assert!(split.abs_diff(count / 2) <= 997, "near the middle: {split}");
    // One frame, or frames that cut an ad: decompressed whole, cut at the
    // middle ad.
    for file in [
        reframed(&file, &raw),
        framed(&file, &raw, &[ends[count / 3] - 1, ends[2 * count / 3]]),
        framed(&file, &raw, &[ends[count / 3], ends[2 * count / 3] + 1]),
    ] {
        let (ads, split) = decoded_in_two(&file).unwrap();
        assert_eq!(split, count / 2, "decoded in two halves");
        assert!(ads == snapshot.ads);
    }
    let small = small_file();
    let (ads, split) = decoded_in_two(&small).unwrap();
    assert_eq!((ads, split), (Snapshot::decode(&small).unwrap().ads, 2));
    let (ads, split) = split_in_two(&small, 2).unwrap();
    assert_eq!((ads, split), (Snapshot::decode(&small).unwrap().ads, 1));
}

proptest! {
    /// Any file, split at any size: the two decoders agree.
    #[test]
    fn small_files_split_in_two_decode_as_in_order(ads in common::ads_by_id(12), cut in 0usize..400, byte in any::<u8>()) {
        let file = Snapshot { seq: 1, created_at: Timestamp::now(), ads }.encode();
        let mut raw = raw_body(&file);
        if !raw.is_empty() {
            let at = cut % raw.len();
            raw[at] = byte;
        }
        let damaged = reframed(&file, &raw);
        let in_order = Snapshot::decode(&damaged).map(|snapshot| snapshot.ads);
        let in_two = split_in_two(&damaged, 2).map(|(ads, _)| ads);
        prop_assert_eq!(in_order, in_two);
    }

    /// The same, the body in frames that each end after an ad (read frame
    /// by frame) before the damage.
    #[test]
    fn small_framed_files_split_in_two_decode_as_in_order(ads in common::ads_by_id(12), every in 1usize..4, cut in 0usize..400, byte in any::<u8>()) {
        let file = Snapshot { seq: 1, created_at: Timestamp::now(), ads: ads.clone() }.encode();
        let mut raw = raw_body(&file);
        let ends = ad_ends(&ads);
        let cuts: Vec<usize> = ends.iter().copied().step_by(every).filter(|&end| end < raw.len()).collect();
        let at = cut % raw.len();
        raw[at] = byte;
        let damaged = framed(&file, &raw, &cuts);
        let in_order = Snapshot::decode(&damaged).map(|snapshot| snapshot.ads);
        let in_two = split_in_two(&damaged, 2).map(|(ads, _)| ads);
        prop_assert_eq!(in_order, in_two);
    }
}

/// Damage past the header's checks gets the same answer from both
/// decoders: the same error, or (when it happens to leave a valid file)
/// the same ads.
#[test]
fn a_damaged_large_file_is_refused_in_two_halves_as_in_order() {
    let ads = many_ads();
    let file = Snapshot {
        seq: 3,
        created_at: Timestamp::from_millis(1_700_000_000_000).unwrap(),
        ads: ads.clone(),
    }
    .encode();
    let raw = raw_body(&file);
    let same = |damaged: &[u8], what: &str| {
        let in_order = Snapshot::decode(damaged).map(|snapshot| snapshot.ads);
        let in_two = decoded_in_two(damaged).map(|(ads, _)| ads);
        assert!(in_order == in_two, "{what}: {in_order:?} / {in_two:?}");
        in_two
    };
    // Out of order exactly at the cut, and further on.
    for at in [ads.len() / 2, ads.len() / 2 + 1, ads.len() - 1] {
        let mut swapped = ads.clone();
        swapped.swap(at - 1, at);
        let damaged = Snapshot {
            seq: 3,
            created_at: Timestamp::now(),
            ads: swapped,
        }
        .encode();
        assert_eq!(same(&damaged, "swap"), Err(SnapshotError::IdOrder));
    }
    // Damaged bodies in one frame, and in frames that each end after an ad
    // (read frame by frame), every 997 ads.
    let ends = ad_ends(&ads);
    let in_frames = |raw: &[u8]| {
        let cuts: Vec<usize> = ends
            .iter()
            .copied()
            .skip(996)
            .step_by(997)
            .filter(|&end| end < raw.len())
            .collect();
        framed(&file, raw, &cuts)
    };
    for frames in ["one frame", "frames"] {
        let body = |raw: &[u8]| match frames {
            "frames" => in_frames(raw),
            _ => reframed(&file, raw),
        };
        let mut longer = raw.clone();
        longer.extend_from_slice(&[0, 0]);
        assert!(same(&body(&longer), frames).is_err(), "trailing");
        for cut in [1, raw.len() / 4, raw.len() / 2, raw.len() - 3] {
            let damaged = body(&raw[..raw.len() - cut]);
            assert!(same(&damaged, frames).is_err(), "truncated by {cut}");
        }
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..16 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut damaged = raw.clone();
            let at = 1 + (rng as usize % (damaged.len() - 1));
            damaged[at] = (rng >> 32) as u8;
            // Accepted or refused: `same` checks that both decoders agree.
            let _ = same(&body(&damaged), &format!("{frames}, byte {at}"));
        }
    }
}
