//! Applies single-event batches one after another to an edge's state
//! booted from a snapshot of N sample ads, as the tailer does (with
//! background compaction), and prints the apply latency percentiles and
//! the compactions done.
//!
//! `cargo run --release -p adcast-edge --example apply_latency -- 1000000 1000`

use std::time::{Duration, Instant};

use adcast_edge::compaction::{CompactionPolicy, StateCell};
use adcast_edge::state::{LoadedSnapshot, ServingState};
use adcast_shared::ad::{AdId, Title};
use adcast_shared::event::Change;
use adcast_shared::sample::{sample_ads, SampleRng};
use adcast_shared::snapshot::Snapshot;
use adcast_shared::timestamp::Timestamp;

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let events: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1_000);
    let pause_ms: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(2);
    let now = Timestamp::now();
    let ads = sample_ads(count, 42, now);
    let fresh = sample_ads(events, 4242, now);
    // Only what the events need stays beside the state.
    let picks: Vec<_> = {
        let mut rng = SampleRng::new(5);
        (0..events)
            .map(|_| ads[rng.below(count as u64) as usize].clone())
            .collect()
    };
    // Booted as an edge boots: from a snapshot file's bytes.
    let file = Snapshot {
        seq: 1,
        created_at: now,
        ads,
    }
    .encode();
    let started = Instant::now();
    let state = ServingState::from_loaded(LoadedSnapshot::decode(&file, now).expect("valid"));
    eprintln!("{count} ads decoded and indexed in {:?}", started.elapsed());
    drop(file);
    let cell = StateCell::new(state, CompactionPolicy::default());
    let mut took = Vec::with_capacity(events);
    for i in 0..events {
        let seq = 2 + i as u64;
        let change = match i % 3 {
            0 => {
                let mut ad = picks[i].clone();
                ad.title = Title::parse(format!("changed {i}")).unwrap();
                Change::Upsert(ad)
            }
            1 => {
                let mut ad = fresh[i].clone();
                ad.id = AdId::new(100_000_000 + i as i64).unwrap();
                Change::Upsert(ad)
            }
            _ => Change::Delete(picks[i].id),
        };
        let start = Instant::now();
        let current = cell.load();
        let next = current.apply(&[(seq, change)], Timestamp::now()).unwrap();
        drop(current);
        cell.install(next);
        took.push(start.elapsed());
        std::thread::sleep(Duration::from_millis(pause_ms));
    }
    while cell.compacting() {
        std::thread::sleep(Duration::from_millis(5));
    }
    took.sort();
    let at = |p: f64| took[((took.len() as f64 * p) as usize).min(took.len() - 1)];
    println!(
        "{count} ads, {events} single-event applies ({pause_ms} ms apart): p50 {:?}, p99 {:?}, max {:?}; {} compactions (last built in {:?}); overlay now {}",
        at(0.50),
        at(0.99),
        took[took.len() - 1],
        cell.compactions(),
        cell.last_compaction_time(),
        cell.load().index.overlay_len()
    );
}
