//! `Snapshot::decode` (and `decode_in_two`, which must agree with it) on
//! arbitrary bytes: it must return, never panic (nor
//! abort, hang or exhaust memory), and whatever it accepts must survive
//! `encode` then `decode` unchanged.
//!
//! The format checksums its header and its body, so nearly every mutation of
//! a valid file dies on a checksum before reaching zstd or bincode. Each input
//! is therefore decoded three ways:
//!
//! 1. as given;
//! 2. with the header's body length and both CRCs rewritten to match the
//!    bytes, so mutated bodies reach zstd and bincode;
//! 3. with the bytes after the header taken as an *uncompressed* body:
//!    compressed, then wrapped in a repaired header, so mutations reach
//!    bincode and the ad validation directly (the seed corpus holds such
//!    raw-body files too; see examples/seed.rs);
//! 4. the same uncompressed body cut in two zstd frames that declare their
//!    sizes (as this build writes bodies), so the two-thread decompression
//!    runs;
//! 5. the same body but its last two bytes, cut in three frames at places
//!    those two bytes choose, so the fuzzer can find cuts that fall between
//!    ads and reach the frame-by-frame reading of `decode_in_two` (and cuts
//!    that fall inside an ad, which it must give up for the reading in
//!    order).

#![no_main]

use adcast_shared::snapshot::{Snapshot, HEADER_LEN, MAGIC};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= HEADER_LEN && data[..MAGIC.len()] == MAGIC {
        let mut repaired = data.to_vec();
        repair(&mut repaired);
        check(&repaired);

        let body = zstd::bulk::compress(&data[HEADER_LEN..], 1).expect("zstd compresses any bytes");
        let mut wrapped = data[..HEADER_LEN].to_vec();
        wrapped.extend_from_slice(&body);
        repair(&mut wrapped);
        check(&wrapped);

        let raw = &data[HEADER_LEN..];
        let (head, tail) = raw.split_at(raw.len() / 2);
        let mut framed = data[..HEADER_LEN].to_vec();
        for part in [head, tail] {
            framed.extend(zstd::bulk::compress(part, 1).expect("zstd compresses any bytes"));
        }
        repair(&mut framed);
        check(&framed);

        let (raw, knobs) = raw.split_at(raw.len().saturating_sub(2));
        if let [a, b] = *knobs {
            let (a, b) = (usize::from(a.min(b)), usize::from(a.max(b)));
            let cuts = [0, raw.len() * a / 256, raw.len() * b / 256, raw.len()];
            let mut framed = data[..HEADER_LEN].to_vec();
            for part in cuts.windows(2) {
                let part = &raw[part[0]..part[1]];
                framed.extend(zstd::bulk::compress(part, 1).expect("zstd compresses any bytes"));
            }
            repair(&mut framed);
            check(&framed);
        }
    }
});

fn check(bytes: &[u8]) {
    // Decoding in two halves (split at any size here) accepts and refuses
    // exactly what decoding in order does.
    let in_two = Snapshot::decode_in_two_from(bytes, 2, Vec::new).map(|(_, mut first, second)| {
        first.extend(second);
        first
    });
    let in_order = Snapshot::decode(bytes);
    match (&in_order, in_two) {
        (Ok(snapshot), Ok(ads)) => assert_eq!(snapshot.ads, ads, "halves decode other ads"),
        (Err(error), Err(other)) => assert_eq!(error, &other, "halves fail otherwise"),
        (in_order, in_two) => panic!("in order: {in_order:?}, in halves: {in_two:?}"),
    }
    if let Ok(snapshot) = in_order {
        let again = Snapshot::decode(&snapshot.encode());
        assert_eq!(
            again.as_ref(),
            Ok(&snapshot),
            "re-encoded snapshot decodes differently"
        );
    }
}

/// Makes the body length and both checksums (at the offsets of the layout in
/// adcast_shared::snapshot) agree with the bytes; everything else is kept.
fn repair(file: &mut [u8]) {
    let body_len = (file.len() - HEADER_LEN) as u64;
    file[40..48].copy_from_slice(&body_len.to_le_bytes());
    let body_crc = crc32c::crc32c(&file[HEADER_LEN..]);
    file[12..16].copy_from_slice(&body_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&file[..48]);
    file[48..52].copy_from_slice(&header_crc.to_le_bytes());
}
