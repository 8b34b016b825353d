//! The index against the shared definition of docs/api.md's matching
//! (`adcast_shared::matching::answer`, a brute-force reading of the rules
//! that the writer's preview and explain use too): thousands of random ads,
//! tens of thousands of random queries, identical answers; and long random
//! sequences of upserts, deletes, starts and ends applied to a serving
//! state (base + overlay, compacted inline or in the background), checked
//! against the same definition after every step.

use std::collections::BTreeMap;
use std::time::Duration;

use adcast_edge::compaction::{CompactionPolicy, StateCell};
use adcast_edge::image;
use adcast_edge::index::{AdIndex, Page};
use adcast_edge::state::ServingState;
use adcast_shared::ad::{
    Ad, AdId, AgeRange, AudienceQuery, ConditionGroup, ConditionGroupParts, Gender, Platform,
    Targeting, TimeWindow, Title,
};
use adcast_shared::country::{Country, CODES};
use adcast_shared::event::Change;
use adcast_shared::matching;
use adcast_shared::snapshot::Snapshot;
use adcast_shared::timestamp::Timestamp;
use adcast_shared::wire::public_item_json;

/// xorshift64*: deterministic and seedable, so a failure is reproducible.
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

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A few countries, so that queries often hit restricted ones.
fn country(rng: &mut Rng) -> Country {
    const POPULAR: [&str; 6] = ["TW", "JP", "US", "FR", "BR", "IN"];
    if rng.chance(80) {
        Country::parse(POPULAR[rng.below(6) as usize]).unwrap()
    } else {
        Country::try_from(CODES[rng.below(CODES.len() as u64) as usize]).unwrap()
    }
}

fn group(rng: &mut Rng) -> ConditionGroupParts {
    let age = rng.chance(50).then(|| {
        let a = 1 + rng.below(100) as u8;
        let b = 1 + rng.below(100) as u8;
        AgeRange::new(a.min(b), a.max(b)).unwrap()
    });
    let mut genders: Vec<Gender> = Gender::ALL.into_iter().filter(|_| rng.chance(40)).collect();
    if rng.chance(50) {
        genders.clear();
    }
    let mut countries: Vec<Country> = (0..rng.below(4)).map(|_| country(rng)).collect();
    countries.sort();
    countries.dedup();
    let platforms: Vec<Platform> = Platform::ALL
        .into_iter()
        .filter(|_| rng.chance(35))
        .collect();
    ConditionGroupParts {
        age,
        genders,
        countries,
        platforms,
    }
}

/// Times on a coarse grid (ties on endAt are common) around `now`.
fn ads(rng: &mut Rng, count: usize, now: i64) -> Vec<Ad> {
    (1..=count as i64)
        .map(|id| random_ad(rng, id, now))
        .collect()
}

fn random_ad(rng: &mut Rng, id: i64, now: i64) -> Ad {
    let start = now + (rng.below(40) as i64 - 30) * 1_000;
    let end = start + (1 + rng.below(40) as i64) * 1_000;
    let groups: Vec<ConditionGroupParts> = match rng.below(10) {
        0..=1 => vec![],
        2..=7 => vec![group(rng)],
        _ => (0..2 + rng.below(2)).map(|_| group(rng)).collect(),
    };
    // Canonical targeting: an unrestricted group means everyone.
    let valid: Result<Vec<_>, _> = groups.into_iter().map(ConditionGroup::try_from).collect();
    let targeting = valid.map_or(Targeting::everyone(), Targeting::any_of);
    Ad {
        id: AdId::new(id).unwrap(),
        title: Title::parse(format!("AD {id} \"q\" {}", rng.below(1000))).unwrap(),
        window: TimeWindow::new(
            Timestamp::from_millis(start).unwrap(),
            Timestamp::from_millis(end).unwrap(),
        )
        .unwrap(),
        targeting,
    }
}

fn query(rng: &mut Rng) -> AudienceQuery {
    AudienceQuery {
        age: rng.chance(50).then(|| 1 + rng.below(100) as u8),
        gender: rng.chance(50).then(|| Gender::ALL[rng.below(2) as usize]),
        country: rng.chance(50).then(|| country(rng)),
        platform: rng.chance(50).then(|| Platform::ALL[rng.below(3) as usize]),
    }
}

/// A query instant at or after `from`: `from` itself, later, or exactly an
/// ad's start or end (the boundaries where answers change).
fn query_instant(rng: &mut Rng, ads: &[Ad], from: i64) -> Timestamp {
    let at = match (rng.below(4), ads.is_empty()) {
        (0, _) | (_, true) => from,
        (1, _) => from + rng.below(40_000) as i64,
        (2, _) => ads[rng.below(ads.len() as u64) as usize]
            .window
            .start()
            .as_millis(),
        _ => ads[rng.below(ads.len() as u64) as usize]
            .window
            .end()
            .as_millis(),
    }
    .max(from);
    Timestamp::from_millis(at).unwrap()
}

/// The one definition of the answer (`adcast_shared::matching`), which the
/// writer's preview also uses, rendered as the Public API renders items.
fn brute_force(
    ads: &[Ad],
    query: &AudienceQuery,
    page: Page,
    now: Timestamp,
) -> Vec<serde_json::Value> {
    matching::answer(ads, query, page.offset, page.limit, now)
        .iter()
        .map(|ad| serde_json::from_str(&public_item_json(ad)).expect("items are JSON"))
        .collect()
}

fn check(seed: u64, ad_count: usize, queries: usize) {
    let mut rng = Rng(seed);
    let build_time = 1_700_000_000_000i64;
    let ads = ads(&mut rng, ad_count, build_time);
    let index = AdIndex::build(&ads, Timestamp::from_millis(build_time).unwrap());
    for i in 0..queries {
        // Query times: the build instant, later, and exactly on boundaries.
        let now = query_instant(&mut rng, &ads, build_time);
        let audience = query(&mut rng);
        let page = Page {
            offset: match rng.below(4) {
                0 => 0,
                1 => rng.below(10) as usize,
                2 => rng.below(ad_count as u64 + 50) as usize,
                _ => 1_000_000,
            },
            limit: 1 + rng.below(100) as usize,
        };
        let expected = brute_force(&ads, &audience, page, now);
        let got: Vec<serde_json::Value> = index
            .query(&audience, page, now)
            .into_iter()
            .map(|item| serde_json::from_str(item).expect("items are JSON"))
            .collect();
        if got != expected {
            panic!(
                "seed {seed}, query #{i}: {audience:?} {page:?} at {now}: got {} items, expected {}; first difference at {:?}",
                got.len(),
                expected.len(),
                got.iter().zip(&expected).position(|(a, b)| a != b)
            );
        }
    }
}

#[test]
fn index_matches_brute_force_on_small_sets() {
    for seed in 1..=40 {
        check(seed, 1 + seed as usize * 3, 500);
    }
}

#[test]
fn index_matches_brute_force_on_thousands_of_ads() {
    check(0xA11CE, 3_000, 20_000);
}

#[test]
fn index_matches_brute_force_with_many_ties() {
    // 64+ ads per word boundary with identical ends exercise popcount skipping.
    check(0xBEEF, 700, 10_000);
}

fn random_page(rng: &mut Rng, ad_count: usize) -> Page {
    Page {
        offset: match rng.below(4) {
            0 => 0,
            1 => rng.below(10) as usize,
            2 => rng.below(ad_count as u64 + 50) as usize,
            _ => 1_000_000,
        },
        limit: 1 + rng.below(100) as usize,
    }
}

/// The first instant after `now` at which the active set can change, by
/// the definition: the next end, or just after the next start.
fn brute_force_next_change(ads: &[Ad], now: i64) -> Option<i64> {
    ads.iter()
        .filter(|ad| ad.window.end().as_millis() > now)
        .flat_map(|ad| {
            let start = ad.window.start().as_millis();
            [
                Some(ad.window.end().as_millis()),
                (start >= now).then_some(start + 1),
            ]
        })
        .flatten()
        .min()
}

/// One random batch of 1–6 changes to `model` (the writer's ads by id):
/// new ads, replaced ones (new window, targeting, title), deletes of
/// existing and of unknown ids.
fn random_batch(
    rng: &mut Rng,
    model: &mut BTreeMap<i64, Ad>,
    next_id: &mut i64,
    seq: &mut u64,
    now: i64,
) -> Vec<(u64, Change)> {
    (0..1 + rng.below(6))
        .map(|_| {
            let existing = (!model.is_empty()).then(|| {
                *model
                    .keys()
                    .nth(rng.below(model.len() as u64) as usize)
                    .unwrap()
            });
            let change = match (rng.below(10), existing) {
                (0..=3, _) | (_, None) => {
                    *next_id += 1;
                    Change::Upsert(random_ad(rng, *next_id, now))
                }
                (4..=6, Some(id)) => Change::Upsert(random_ad(rng, id, now)),
                (7..=8, Some(id)) => Change::Delete(AdId::new(id).unwrap()),
                (_, Some(_)) => Change::Delete(AdId::new(*next_id + 1_000).unwrap()),
            };
            match &change {
                Change::Upsert(ad) => {
                    model.insert(ad.id.get(), ad.clone());
                }
                Change::Delete(id) => {
                    model.remove(&id.get());
                }
            }
            *seq += 1;
            (*seq, change)
        })
        .collect()
}

fn check_state(
    state: &ServingState,
    model: &BTreeMap<i64, Ad>,
    rng: &mut Rng,
    now: i64,
    context: &str,
) {
    let ads: Vec<Ad> = model.values().cloned().collect();
    for q in 0..4 {
        // At the apply instant, later (ads start and end without a
        // rebuild), and exactly on boundaries.
        let at = query_instant(rng, &ads, now);
        let audience = if q == 0 {
            AudienceQuery::default()
        } else {
            query(rng)
        };
        let page = random_page(rng, ads.len());
        let expected = brute_force(&ads, &audience, page, at);
        let got: Vec<serde_json::Value> = state
            .index
            .query(&audience, page, at)
            .into_iter()
            .map(|item| serde_json::from_str(item).expect("items are JSON"))
            .collect();
        assert!(
            got == expected,
            "{context}: {audience:?} {page:?} at {at}: got {} items, expected {}; first difference at {:?}",
            got.len(),
            expected.len(),
            got.iter().zip(&expected).position(|(a, b)| a != b)
        );
        assert_eq!(
            state.index.next_change_after(at).map(Timestamp::as_millis),
            brute_force_next_change(&ads, at.as_millis()),
            "{context}: next change after {at}"
        );
    }
}

/// A catalog of `ad_count` ads, then `steps` random batches with the clock
/// moving forward, each installed in a [`StateCell`] under `policy` and
/// checked against the brute-force model; returns the compactions done.
fn check_sequence(seed: u64, ad_count: usize, steps: usize, policy: CompactionPolicy) -> u64 {
    check_sequence_with_restarts(seed, ad_count, steps, policy, None)
}

/// [`check_sequence`], where every `restart_every` steps the state is
/// saved as an index image, and the sequence goes on from the state loaded
/// back from it (as a restarted edge does), in a new cell.
fn check_sequence_with_restarts(
    seed: u64,
    ad_count: usize,
    steps: usize,
    policy: CompactionPolicy,
    restart_every: Option<usize>,
) -> u64 {
    let mut rng = Rng(seed);
    let mut now = 1_700_000_000_000i64;
    let initial = ads(&mut rng, ad_count, now);
    let mut model: BTreeMap<i64, Ad> = initial.iter().map(|ad| (ad.id.get(), ad.clone())).collect();
    let mut seq = 10;
    let snapshot = Snapshot {
        seq,
        created_at: Timestamp::from_millis(now).unwrap(),
        ads: initial,
    };
    let mut cell = StateCell::new(
        ServingState::from_snapshot(snapshot, Timestamp::from_millis(now).unwrap()),
        policy,
    );
    let mut compactions = 0;
    let mut next_id = ad_count as i64;
    for step in 0..steps {
        if restart_every.is_some_and(|every| step > 0 && step % every == 0) {
            wait_for_compaction(&cell);
            compactions += cell.compactions();
            let state = cell.load();
            let path = std::env::temp_dir().join(format!(
                "adcast-differential-{seed}-{step}-{}.adimage",
                std::process::id()
            ));
            let at = Timestamp::from_millis(now).unwrap();
            image::write(&path, state.seq, &state.index, at).unwrap();
            let loaded = image::load(&path).unwrap();
            // The mapping outlives the name, as when the persister replaces
            // the image while its ads are served.
            std::fs::remove_file(&path).unwrap();
            assert_eq!(loaded.seq, seq);
            cell = StateCell::new(ServingState::from_loaded(loaded), policy);
            let context = format!("seed {seed}, {ad_count} ads, restarted at step {step}");
            check_state(&cell.load(), &model, &mut rng, now, &context);
        }
        now += rng.below(3_000) as i64;
        let batch = random_batch(&mut rng, &mut model, &mut next_id, &mut seq, now);
        let current = cell.load();
        if step % 5 == 0 {
            // Let a running compaction be swapped in between this load and
            // the install: the install must move onto the new base.
            wait_for_compaction(&cell);
        }
        let next = current
            .apply(&batch, Timestamp::from_millis(now).unwrap())
            .unwrap();
        drop(current);
        cell.install(next);
        let state = cell.load();
        let context = format!("seed {seed}, {ad_count} ads, step {step} (seq {seq})");
        assert_eq!(state.seq, seq, "{context}");
        check_state(&state, &model, &mut rng, now, &context);
        if step % 50 == 0 {
            let at = Timestamp::from_millis(now).unwrap();
            let mut expected: Vec<Ad> = model
                .values()
                .filter(|ad| ad.window.end() > at)
                .cloned()
                .collect();
            expected.sort_by_key(|ad| ad.id);
            assert_eq!(
                state.to_snapshot(at).unwrap().ads,
                expected,
                "{context}: persisted ads"
            );
        }
    }
    wait_for_compaction(&cell);
    check_state(
        &cell.load(),
        &model,
        &mut rng,
        now,
        "after the last compaction",
    );
    compactions + cell.compactions()
}

fn wait_for_compaction(cell: &StateCell) {
    while cell.compacting() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn inline(max_overlay: usize) -> CompactionPolicy {
    CompactionPolicy {
        min_overlay: max_overlay,
        max_overlay,
        background: false,
    }
}

fn background(max_overlay: usize) -> CompactionPolicy {
    CompactionPolicy {
        min_overlay: max_overlay,
        max_overlay,
        background: true,
    }
}

#[test]
fn sequences_match_brute_force_without_compaction() {
    for (seed, ads) in [(1, 10), (2, 1_000)] {
        let compactions = check_sequence(seed, ads, 300, inline(usize::MAX));
        assert_eq!(compactions, 0);
    }
}

#[test]
fn sequences_match_brute_force_across_inline_compactions() {
    for (seed, ads, steps, max_overlay) in [
        (11, 10, 400, 1),
        (12, 10, 400, 7),
        (13, 1_000, 400, 5),
        (14, 1_000, 300, 40),
        (15, 20_000, 150, 30),
    ] {
        let compactions = check_sequence(seed, ads, steps, inline(max_overlay));
        assert!(
            compactions as usize >= steps / max_overlay.max(6) / 2,
            "seed {seed}: only {compactions} compactions"
        );
    }
}

#[test]
fn sequences_match_brute_force_across_background_compactions() {
    for (seed, ads, steps, max_overlay) in
        [(21, 10, 400, 1), (22, 1_000, 400, 5), (23, 20_000, 150, 20)]
    {
        let compactions = check_sequence(seed, ads, steps, background(max_overlay));
        assert!(
            compactions >= 5,
            "seed {seed}: only {compactions} compactions"
        );
    }
}

#[test]
fn sequences_match_brute_force_across_restarts_from_the_index_image() {
    for (seed, ads, steps, policy, restart_every) in [
        (31, 10, 300, inline(3), 7),
        (32, 1_000, 300, inline(20), 13),
        (33, 1_000, 300, background(5), 11),
        (34, 20_000, 100, inline(15), 9),
    ] {
        let compactions =
            check_sequence_with_restarts(seed, ads, steps, policy, Some(restart_every));
        assert!(
            compactions >= 3,
            "seed {seed}: only {compactions} compactions"
        );
    }
}
