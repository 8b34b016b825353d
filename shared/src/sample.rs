//! Deterministic sample data for benchmarks and tests (feature `sample`).
//!
//! A realistic mix: most ads have one condition group, some several, some
//! none; half restrict age, a third gender, most a few countries (weighted
//! towards popular ones), some platforms. Titles are 10–60 characters.

use crate::ad::{
    Ad, AdId, AgeRange, AudienceQuery, ConditionGroup, ConditionGroupParts, Gender, Platform,
    Targeting, TimeWindow, Title,
};
use crate::country::{Country, CODES};
use crate::timestamp::Timestamp;

/// xorshift64*: small, fast, seedable; not for anything secret.
#[derive(Clone, Debug)]
pub struct SampleRng(u64);

impl SampleRng {
    pub fn new(seed: u64) -> SampleRng {
        SampleRng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const POPULAR: [&str; 8] = ["TW", "JP", "US", "FR", "BR", "IN", "DE", "GB"];

pub fn sample_country(rng: &mut SampleRng) -> Country {
    if rng.chance(80) {
        Country::parse(POPULAR[rng.below(POPULAR.len() as u64) as usize])
            .expect("popular codes are assigned")
    } else {
        Country::try_from(CODES[rng.below(CODES.len() as u64) as usize])
            .expect("table codes are valid")
    }
}

fn sample_group(rng: &mut SampleRng) -> Option<ConditionGroup> {
    let age = rng.chance(50).then(|| {
        let start = 13 + rng.below(40) as u8;
        AgeRange::new(start, (start + 5 + rng.below(30) as u8).min(100)).expect("within 1-100")
    });
    let genders = if rng.chance(33) {
        vec![Gender::ALL[rng.below(2) as usize]]
    } else {
        vec![]
    };
    let mut countries: Vec<Country> = (0..rng.below(4)).map(|_| sample_country(rng)).collect();
    countries.sort();
    countries.dedup();
    let platforms: Vec<Platform> = Platform::ALL
        .into_iter()
        .filter(|_| rng.chance(40))
        .collect();
    ConditionGroup::try_from(ConditionGroupParts {
        age,
        genders,
        countries,
        platforms,
    })
    .ok()
}

/// `count` ads with ids 1..=count, all active at `now` (started within the
/// last 30 days, ending within the next 60).
pub fn sample_ads(count: usize, seed: u64, now: Timestamp) -> Vec<Ad> {
    let mut rng = SampleRng::new(seed);
    let now = now.as_millis();
    (1..=count as i64)
        .map(|id| {
            let title: String = (0..10 + rng.below(50))
                .map(|_| (b'a' + rng.below(26) as u8) as char)
                .collect();
            let start = now - 1 - rng.below(86_400_000 * 30) as i64;
            let end = now + 60_000 + rng.below(86_400_000 * 60) as i64;
            let groups: Vec<Option<ConditionGroup>> = match rng.below(10) {
                0 => vec![],
                1 => (0..2 + rng.below(2))
                    .map(|_| sample_group(&mut rng))
                    .collect(),
                _ => vec![sample_group(&mut rng)],
            };
            let targeting = if groups.iter().any(Option::is_none) {
                Targeting::everyone()
            } else {
                Targeting::any_of(groups.into_iter().flatten().collect())
            };
            Ad {
                id: AdId::new(id).expect("ids start at 1"),
                title: Title::parse(title).expect("letters only"),
                window: TimeWindow::new(
                    Timestamp::from_millis(start).expect("in range"),
                    Timestamp::from_millis(end).expect("in range"),
                )
                .expect("end after start"),
                targeting,
            }
        })
        .collect()
}

/// A user as a client would describe them: each dimension present or not.
pub fn sample_query(rng: &mut SampleRng) -> AudienceQuery {
    AudienceQuery {
        age: rng.chance(60).then(|| 13 + rng.below(60) as u8),
        gender: rng.chance(60).then(|| Gender::ALL[rng.below(2) as usize]),
        country: rng.chance(70).then(|| sample_country(rng)),
        platform: rng.chance(70).then(|| Platform::ALL[rng.below(3) as usize]),
    }
}
