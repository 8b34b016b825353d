//! Writes a snapshot file of N sample ads (for the cold-start benchmark)
//! and prints the first item a plain `GET /api/v1/ad?limit=1` must return.
//!
//! `cargo run --release -p adcast-edge --example make_snapshot -- FILE 100000`

use adcast_edge::index::{AdIndex, Page};
use adcast_shared::ad::AudienceQuery;
use adcast_shared::sample::sample_ads;
use adcast_shared::snapshot::{self, Snapshot};
use adcast_shared::timestamp::Timestamp;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: make_snapshot FILE COUNT");
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let now = Timestamp::now();
    let ads = sample_ads(count, 42, now);
    let first = AdIndex::build(&ads, now)
        .query(
            &AudienceQuery::default(),
            Page {
                offset: 0,
                limit: 1,
            },
            now,
        )
        .first()
        .map(|item| item.to_string())
        .unwrap_or_default();
    let bytes = Snapshot {
        seq: count as u64,
        created_at: now,
        ads,
    }
    .encode();
    snapshot::write_atomically(std::path::Path::new(&path), &bytes).expect("writing the snapshot");
    eprintln!("wrote {path}: {count} ads, {} bytes", bytes.len());
    println!("{{\"items\":[{first}]}}");
}
