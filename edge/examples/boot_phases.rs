//! Times the two phases of a cold start from a snapshot file: verify and
//! decode, then build the index. Runs each `RUNS` times (default 3) in one
//! process and prints the medians.
//!
//! `cargo run --release -p adcast-edge --example boot_phases -- FILE [RUNS]`

use std::time::Instant;

use adcast_edge::index::AdIndex;
use adcast_shared::snapshot::Snapshot;
use adcast_shared::timestamp::Timestamp;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: boot_phases FILE [RUNS]");
    let runs: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(3);
    let bytes = std::fs::read(&path).expect("readable snapshot file");
    let (mut decode, mut build) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let snapshot = Snapshot::decode(&bytes).expect("valid snapshot");
        let decoded = Instant::now();
        let index = AdIndex::from_ads(snapshot.ads, Timestamp::now());
        let built = Instant::now();
        decode.push(decoded - started);
        build.push(built - decoded);
        drop(index);
    }
    let median = |times: &mut Vec<std::time::Duration>| {
        times.sort();
        times[times.len() / 2].as_secs_f64() * 1000.0
    };
    println!(
        "{path}: decode {:.1} ms, build {:.1} ms (medians of {runs})",
        median(&mut decode),
        median(&mut build)
    );
}
