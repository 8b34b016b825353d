//! Times a cold start from a snapshot file in phases: verify and decode
//! alone (each ad dropped at once), then decode and index together as a
//! boot does. Runs each `RUNS` times (default 3) in one process and prints
//! the medians.
//!
//! `cargo run --release -p adcast-edge --example boot_phases -- FILE [RUNS]`

use std::time::{Duration, Instant};

use adcast_edge::state::LoadedSnapshot;
use adcast_shared::snapshot::Snapshot;
use adcast_shared::timestamp::Timestamp;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: boot_phases FILE [RUNS]");
    let runs: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(3);
    let bytes = std::fs::read(&path).expect("readable snapshot file");
    let (mut decode, mut boot) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let mut count = 0usize;
        Snapshot::decode_each(&bytes, |_| count += 1).expect("valid snapshot");
        decode.push(started.elapsed());
        let started = Instant::now();
        let loaded = LoadedSnapshot::decode(&bytes, Timestamp::now()).expect("valid snapshot");
        boot.push(started.elapsed());
        assert_eq!(loaded.ads as usize, count);
        drop(loaded);
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2].as_secs_f64() * 1000.0
    };
    let (decode, boot) = (median(&mut decode), median(&mut boot));
    println!(
        "{path}: decode alone {decode:.1} ms, decode and index {boot:.1} ms (medians of {runs})"
    );
}
