//! Snapshot encode/decode time and file size for 1,000 and 100,000 ads.
//!
//! `cargo bench -p adcast-shared --bench snapshot`; the file sizes are
//! printed before the timings. Ads come from `adcast_shared::sample`.

use adcast_shared::sample::sample_ads;
use adcast_shared::snapshot::Snapshot;
use adcast_shared::timestamp::Timestamp;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(20);
    for count in [1_000usize, 100_000] {
        let snapshot = Snapshot {
            seq: 42,
            created_at: Timestamp::now(),
            ads: sample_ads(count, 7, Timestamp::now()),
        };
        let bytes = snapshot.encode();
        println!(
            "snapshot/{count} ads: file size {} bytes ({:.2} MiB)",
            bytes.len(),
            bytes.len() as f64 / 1048576.0
        );
        group.bench_with_input(
            BenchmarkId::new("encode", count),
            &snapshot,
            |b, snapshot| b.iter(|| snapshot.encode()),
        );
        group.bench_with_input(BenchmarkId::new("decode", count), &bytes, |b, bytes| {
            b.iter(|| Snapshot::decode(bytes).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
