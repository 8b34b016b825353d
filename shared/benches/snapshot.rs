//! Snapshot encode/decode time and file size for 1,000 and 100,000 ads.
//!
//! `cargo bench -p adcast-shared --bench snapshot`; the file sizes are
//! printed before the timings. Ads are generated with a realistic mix: 1–2
//! condition groups (10 % target everyone), age ranges, 0–3 countries, 0–2
//! platforms, titles of 10–60 characters.

use adcast_shared::ad::{
    Ad, AdId, AgeRange, ConditionGroup, ConditionGroupParts, Gender, Platform, Targeting,
    TimeWindow, Title,
};
use adcast_shared::country::{Country, CODES};
use adcast_shared::snapshot::Snapshot;
use adcast_shared::timestamp::Timestamp;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn group(rng: &mut Rng) -> Option<ConditionGroup> {
    let age = (rng.below(2) == 0).then(|| {
        let start = 1 + rng.below(60) as u8;
        AgeRange::new(start, (start + 5 + rng.below(30) as u8).min(100)).unwrap()
    });
    let genders = if rng.below(3) == 0 {
        vec![Gender::ALL[rng.below(2) as usize]]
    } else {
        vec![]
    };
    let mut countries: Vec<Country> = (0..rng.below(4))
        .map(|_| Country::try_from(CODES[rng.below(CODES.len() as u64) as usize]).unwrap())
        .collect();
    countries.sort();
    countries.dedup();
    let mut platforms: Vec<Platform> = (0..rng.below(3))
        .map(|_| Platform::ALL[rng.below(3) as usize])
        .collect();
    platforms.sort();
    platforms.dedup();
    ConditionGroup::try_from(ConditionGroupParts {
        age,
        genders,
        countries,
        platforms,
    })
    .ok()
}

fn ads(count: usize) -> Vec<Ad> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let now = Timestamp::now().as_millis();
    (1..=count as i64)
        .map(|id| {
            let title: String = (0..10 + rng.below(50))
                .map(|_| (b'a' + rng.below(26) as u8) as char)
                .collect();
            let start = now - rng.below(86_400_000 * 30) as i64;
            let end = now + 1 + rng.below(86_400_000 * 60) as i64;
            let groups: Vec<_> = (0..1 + rng.below(2)).map(|_| group(&mut rng)).collect();
            let targeting = if rng.below(10) == 0 || groups.iter().any(Option::is_none) {
                Targeting::everyone()
            } else {
                Targeting::any_of(groups.into_iter().flatten().collect())
            };
            Ad {
                id: AdId::new(id).unwrap(),
                title: Title::parse(title).unwrap(),
                window: TimeWindow::new(
                    Timestamp::from_millis(start).unwrap(),
                    Timestamp::from_millis(end).unwrap(),
                )
                .unwrap(),
                targeting,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(20);
    for count in [1_000usize, 100_000] {
        let snapshot = Snapshot {
            seq: 42,
            created_at: Timestamp::now(),
            ads: ads(count),
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
