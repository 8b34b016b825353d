//! Writes a seed corpus for the image_decode target: a few valid index
//! images, made with adcast-edge's own writer so they follow the format of
//! the code under test (an empty state, a few ads, and a few hundred with
//! changes since the base).
//!
//! `cargo run --example seed -- <corpus dir>` writes
//! `<dir>/image_decode/seed-*` (existing files of the same names are
//! replaced; libFuzzer's own finds are left alone).

use std::path::PathBuf;

use adcast_edge::image;
use adcast_edge::index::AdIndex;
use adcast_shared::event::Change;
use adcast_shared::sample::sample_ads;
use adcast_shared::timestamp::Timestamp;

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    let dir = dir.join("image_decode");
    std::fs::create_dir_all(&dir).expect("creating the corpus directory");
    let now = Timestamp::from_millis(1_800_000_000_000).expect("a valid instant");
    for (name, count, changes) in [("empty", 0, 0), ("few", 3, 0), ("changed", 300, 12)] {
        let ads = sample_ads(count + changes, 7, now);
        let (base, later) = ads.split_at(count);
        let events: Vec<(u64, Change)> = later
            .iter()
            .cloned()
            .map(Change::Upsert)
            .chain(
                base.iter()
                    .take(changes / 2)
                    .map(|ad| Change::Delete(ad.id)),
            )
            .enumerate()
            .map(|(n, change)| (n as u64 + 1, change))
            .collect();
        let index = AdIndex::build(base, now).apply(&events, now);
        let path = dir.join(format!("seed-{name}"));
        image::write(&path, events.len() as u64, &index, now).expect("writing a seed image");
    }
}
