//! The edge's hot path and its update path, for 1,000 / 10,000 / 100,000
//! active ads: query evaluation (a realistic mix of queries and pages), a
//! whole answer (page body and cache lifetime), index build, and applying one change event.
//!
//! `cargo bench -p adcast-edge --bench query`

use adcast_edge::index::{AdIndex, Page};
use adcast_edge::state::ServingState;
use adcast_shared::ad::AudienceQuery;
use adcast_shared::event::Change;
use adcast_shared::sample::{sample_ads, sample_query, SampleRng};
use adcast_shared::snapshot::Snapshot;
use adcast_shared::timestamp::Timestamp;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

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

fn bench(c: &mut Criterion) {
    let now = Timestamp::now();
    let mut rng = SampleRng::new(99);
    let queries: Vec<(AudienceQuery, Page)> = (0..4096)
        .map(|_| (sample_query(&mut rng), sample_page(&mut rng)))
        .collect();
    for count in [1_000usize, 10_000, 100_000] {
        let ads = sample_ads(count, 42, now);
        let index = AdIndex::build(&ads, now);
        let mut group = c.benchmark_group(format!("edge/{count}_ads"));

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
        group.sample_size(10);
        group.bench_function("index_build", |b| {
            b.iter(|| AdIndex::build(&ads, now).len())
        });

        let state = ServingState::from_snapshot(
            Snapshot {
                seq: 1,
                created_at: now,
                ads: ads.clone(),
            },
            now,
        );
        let mut changed = ads[count / 2].clone();
        changed.title = adcast_shared::ad::Title::parse("changed".into()).unwrap();
        let event = [(2u64, Change::Upsert(changed))];
        group.bench_with_input(
            BenchmarkId::new("apply_one_event", count),
            &state,
            |b, state| b.iter(|| state.apply(&event, now).unwrap().seq),
        );
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
