//! The edge's hot path and its update path, for 1,000 / 10,000 / 100,000 /
//! 1,000,000 active ads: query evaluation (a realistic mix of queries and
//! pages), a whole answer (page body and cache lifetime), index build, and
//! applying a batch of one and of 100 change events; queries and applies
//! again on top of an overlay of 1,000 changed ads.
//!
//! `cargo bench -p adcast-edge --bench query`
//! (`ADCAST_BENCH_SIZES=1000,10000` picks the catalog sizes).

use adcast_edge::index::{AdIndex, Page};
use adcast_edge::state::ServingState;
use adcast_shared::ad::{AdId, AudienceQuery, Title};
use adcast_shared::event::Change;
use adcast_shared::sample::{sample_ads, sample_query, SampleRng};
use adcast_shared::snapshot::Snapshot;
use adcast_shared::timestamp::Timestamp;
use criterion::{criterion_group, criterion_main, Criterion};

/// Mostly first pages of 5–20, some deeper pages.
fn sample_page(rng: &mut SampleRng) -> Page {
    let limit = [5, 5, 10, 20][rng.below(4) as usize];
    let offset = if rng.chance(80) {
        0
    } else {
        limit * (1 + rng.below(5) as usize)
    };
    Page { offset, limit }
}

fn sizes() -> Vec<usize> {
    std::env::var("ADCAST_BENCH_SIZES")
        .ok()
        .map(|list| {
            list.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000, 1_000_000])
}

/// `n` events continuing `seq`: replaced titles of existing ads, new ads
/// and deletes, spread over the catalog.
fn events(ads: &[adcast_shared::ad::Ad], seq: u64, n: usize) -> Vec<(u64, Change)> {
    let mut rng = SampleRng::new(7);
    let fresh = sample_ads(n, 1234, Timestamp::now());
    (0..n)
        .map(|i| {
            let change = match i % 4 {
                0 | 1 => {
                    let mut ad = ads[rng.below(ads.len() as u64) as usize].clone();
                    ad.title = Title::parse(format!("changed {i}")).unwrap();
                    Change::Upsert(ad)
                }
                2 => {
                    let mut ad = fresh[i].clone();
                    ad.id = AdId::new(10_000_000 + i as i64).unwrap();
                    Change::Upsert(ad)
                }
                _ => Change::Delete(ads[rng.below(ads.len() as u64) as usize].id),
            };
            (seq + 1 + i as u64, change)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let now = Timestamp::now();
    let mut rng = SampleRng::new(99);
    let queries: Vec<(AudienceQuery, Page)> = (0..4096)
        .map(|_| (sample_query(&mut rng), sample_page(&mut rng)))
        .collect();
    for count in sizes() {
        let ads = sample_ads(count, 42, now);
        let mut group = c.benchmark_group(format!("edge/{count}_ads"));
        if count <= 100_000 {
            group.sample_size(10);
            group.bench_function("index_build", |b| {
                b.iter(|| AdIndex::build(&ads, now).len())
            });
        }
        let state = ServingState::from_snapshot(
            Snapshot {
                seq: 1,
                created_at: now,
                ads: ads.clone(),
            },
            now,
        );
        group.sample_size(if count >= 1_000_000 { 10 } else { 50 });
        let one = events(&ads, 1, 1);
        group.bench_function("apply_1_event", |b| {
            b.iter(|| state.apply(&one, now).unwrap().seq)
        });
        let hundred = events(&ads, 1, 100);
        group.bench_function("apply_100_events", |b| {
            b.iter(|| state.apply(&hundred, now).unwrap().seq)
        });

        group.sample_size(100);
        let index = &state.index;
        let mut i = 0;
        group.bench_function("query", |b| {
            b.iter(|| {
                let (query, page) = &queries[i % queries.len()];
                i += 1;
                index.query(query, *page, now).len()
            })
        });
        let everyone = AudienceQuery::default();
        let first_ten = Page {
            offset: 0,
            limit: 10,
        };
        group.bench_function("query_and_render_page_of_10", |b| {
            b.iter(|| index.answer(&everyone, first_ten, now, 5).body.len())
        });

        // The same after 1,000 changes (the default overlay bound): the
        // overlay's worst case for queries and for the next apply.
        let changed = state.apply(&events(&ads, 1, 1_000), now).unwrap();
        let index = &changed.index;
        let mut i = 0;
        group.bench_function("query_with_overlay_1000", |b| {
            b.iter(|| {
                let (query, page) = &queries[i % queries.len()];
                i += 1;
                index.query(query, *page, now).len()
            })
        });
        group.sample_size(if count >= 1_000_000 { 10 } else { 50 });
        let one_more = events(&ads, 1_001, 1);
        group.bench_function("apply_1_event_on_overlay_1000", |b| {
            b.iter(|| changed.apply(&one_more, now).unwrap().seq)
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
