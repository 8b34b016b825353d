//! Proptest strategies for valid ads, shared by the property tests.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use adcast_shared::ad::{
    Ad, AdId, AgeRange, ConditionGroup, ConditionGroupParts, Gender, Platform, Targeting,
    TimeWindow, Title,
};
use adcast_shared::country::{Country, CODES};
use adcast_shared::timestamp::Timestamp;
use proptest::prelude::*;
use proptest::sample::subsequence;

pub fn title() -> impl Strategy<Value = Title> {
    "[a-zA-Z0-9 éß🎉]{0,255}[a-z]".prop_map(|text| Title::parse(text).unwrap())
}

pub fn group() -> impl Strategy<Value = Option<ConditionGroup>> {
    let countries: Vec<Country> = CODES
        .iter()
        .map(|c| Country::try_from(*c).unwrap())
        .collect();
    (
        proptest::option::of((1u8..=100, 1u8..=100)),
        // Canonical groups never name every value of a dimension (that
        // restricts nothing and is dropped), so neither do generated ones.
        subsequence(Gender::ALL.to_vec(), 0..=1),
        subsequence(countries, 0..=5),
        subsequence(Platform::ALL.to_vec(), 0..=2),
    )
        .prop_map(|(age, genders, countries, platforms)| {
            let age = age
                .map(|(a, b)| AgeRange::new(a.min(b), a.max(b)).unwrap())
                .filter(|range| (range.start(), range.end()) != (1, 100));
            let parts = ConditionGroupParts {
                age,
                genders,
                countries,
                platforms,
            };
            ConditionGroup::try_from(parts).ok()
        })
}

pub fn ad() -> impl Strategy<Value = Ad> {
    let now = Timestamp::now().as_millis();
    (
        1i64..=i64::MAX,
        title(),
        (now - 10_000_000_000)..now,
        // At least a day long, so the ad still ends in the future when a
        // test parses it a moment later.
        86_400_000i64..10_000_000_000,
        proptest::collection::vec(group(), 0..4),
    )
        .prop_map(move |(id, title, start, length, groups)| {
            let start = Timestamp::from_millis(start).unwrap();
            let end = Timestamp::from_millis(start.as_millis().max(now) + length).unwrap();
            let targeting = if groups.iter().any(Option::is_none) {
                Targeting::everyone()
            } else {
                Targeting::any_of(groups.into_iter().flatten().collect())
            };
            Ad {
                id: AdId::new(id).unwrap(),
                title,
                window: TimeWindow::new(start, end).unwrap(),
                targeting,
            }
        })
}

/// Ads with distinct ids in ascending order, as a snapshot holds them.
pub fn ads_by_id(max: usize) -> impl Strategy<Value = Vec<Ad>> {
    proptest::collection::vec(ad(), 0..max).prop_map(|mut ads| {
        ads.sort_by_key(|ad| ad.id);
        ads.dedup_by_key(|ad| ad.id);
        ads
    })
}
