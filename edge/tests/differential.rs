//! The index against the shared definition of docs/api.md's matching
//! (`adcast_shared::matching::answer`, a brute-force reading of the rules
//! that the writer's preview and explain use too): thousands of random ads,
//! tens of thousands of random queries, identical answers.

use adcast_edge::index::{AdIndex, Page};
use adcast_shared::ad::{
    Ad, AdId, AgeRange, AudienceQuery, ConditionGroup, ConditionGroupParts, Gender, Platform,
    Targeting, TimeWindow, Title,
};
use adcast_shared::country::{Country, CODES};
use adcast_shared::matching;
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
        .map(|id| {
            let start = now + (rng.below(40) as i64 - 30) * 1_000;
            let end = start + (1 + rng.below(40) as i64) * 1_000;
            let groups: Vec<ConditionGroupParts> = match rng.below(10) {
                0..=1 => vec![],
                2..=7 => vec![group(rng)],
                _ => (0..2 + rng.below(2)).map(|_| group(rng)).collect(),
            };
            // Canonical targeting: an unrestricted group means everyone.
            let valid: Result<Vec<_>, _> =
                groups.into_iter().map(ConditionGroup::try_from).collect();
            let targeting = valid.map_or(Targeting::everyone(), Targeting::any_of);
            Ad {
                id: AdId::new(id).unwrap(),
                title: Title::parse(format!("AD {id} \"q\"")).unwrap(),
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

fn query(rng: &mut Rng) -> AudienceQuery {
    AudienceQuery {
        age: rng.chance(50).then(|| 1 + rng.below(100) as u8),
        gender: rng.chance(50).then(|| Gender::ALL[rng.below(2) as usize]),
        country: rng.chance(50).then(|| country(rng)),
        platform: rng.chance(50).then(|| Platform::ALL[rng.below(3) as usize]),
    }
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
        let now = match rng.below(4) {
            0 => build_time,
            1 => build_time + rng.below(40_000) as i64,
            2 => ads[rng.below(ads.len() as u64) as usize]
                .window
                .start()
                .as_millis(),
            _ => ads[rng.below(ads.len() as u64) as usize]
                .window
                .end()
                .as_millis(),
        }
        .max(build_time);
        let now = Timestamp::from_millis(now).unwrap();
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
