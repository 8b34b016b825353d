//! `image::decode` on arbitrary bytes: it must return, never panic (nor
//! abort, hang or exhaust memory), and whatever it accepts must be usable
//! as a serving state: queried, changed, compacted and saved, without a
//! panic.
//!
//! The image checksums its header and its body, so nearly every mutation
//! of a valid file dies on a checksum. Each input is therefore decoded
//! twice: as given, and with both CRCs rewritten to match the bytes (as a
//! forger would), so that mutations reach the structure checks.

#![no_main]

use std::sync::Arc;

use adcast_edge::compaction::{CompactionPolicy, StateCell};
use adcast_edge::image::{self, HEADER_LEN};
use adcast_edge::index::Page;
use adcast_edge::mmap::FileBytes;
use adcast_edge::state::ServingState;
use adcast_shared::ad::{AdId, AudienceQuery};
use adcast_shared::event::Change;
use adcast_shared::sample::{sample_query, SampleRng};
use adcast_shared::timestamp::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check(data.to_vec());
    if data.len() >= HEADER_LEN && data[..8] == *b"ADCASTIX" {
        let mut repaired = data.to_vec();
        repair(&mut repaired);
        check(repaired);
    }
});

fn check(bytes: Vec<u8>) {
    let Ok(loaded) = image::decode(Arc::new(FileBytes::from(bytes))) else {
        return;
    };
    let now = Timestamp::from_millis(loaded.index.built_at()).expect("a valid instant");
    let mut rng = SampleRng::new(loaded.seq);
    for n in 0..8 {
        let query = if n == 0 {
            AudienceQuery::default()
        } else {
            sample_query(&mut rng)
        };
        let page = Page {
            offset: rng.below(5) as usize,
            limit: 1 + rng.below(20) as usize,
        };
        loaded.index.for_each_match(&query, page, now, |_| {});
        let _ = loaded.index.next_change_after(now);
    }
    let _ = loaded.index.ads().count();
    // A change, compacted at once, and the state saved as a snapshot.
    let seq = loaded.seq;
    let policy = CompactionPolicy {
        min_overlay: 1,
        max_overlay: 1,
        background: false,
    };
    let cell = StateCell::new(ServingState::from_loaded(loaded), policy);
    let state = cell.load();
    let change = [(seq + 1, Change::Delete(AdId::new(1).expect("positive")))];
    if let Ok(next) = state.apply(&change, now) {
        cell.install(next);
    }
    let _ = cell.load().to_snapshot(now);
}

/// Makes both checksums (at the offsets of the layout in
/// adcast_edge::image) agree with the bytes; everything else is kept.
fn repair(file: &mut [u8]) {
    let body_crc = crc32c::crc32c(&file[HEADER_LEN..]);
    file[88..92].copy_from_slice(&body_crc.to_le_bytes());
    file[12..16].fill(0);
    let header_crc = crc32c::crc32c(&file[..HEADER_LEN]);
    file[12..16].copy_from_slice(&header_crc.to_le_bytes());
}
