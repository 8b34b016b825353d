//! Property tests: valid ads survive JSON and the event codec unchanged, and
//! no byte string makes the event decoder panic.

use adcast_shared::ad::{
    Ad, AdId, AgeRange, ConditionGroup, ConditionGroupParts, Gender, Platform, Targeting,
    TimeWindow, Title,
};
use adcast_shared::country::{Country, CODES};
use adcast_shared::event::Change;
use adcast_shared::json::Json;
use adcast_shared::timestamp::Timestamp;
use adcast_shared::wire::{parse_ad_draft, AdView};
use proptest::prelude::*;
use proptest::sample::subsequence;

fn title() -> impl Strategy<Value = Title> {
    "[a-zA-Z0-9 éß🎉]{0,255}[a-z]".prop_map(|text| Title::parse(text).unwrap())
}

fn group() -> impl Strategy<Value = Option<ConditionGroup>> {
    let countries: Vec<Country> = CODES
        .iter()
        .map(|c| Country::try_from(*c).unwrap())
        .collect();
    (
        proptest::option::of((1u8..=100, 1u8..=100)),
        subsequence(Gender::ALL.to_vec(), 0..=2),
        subsequence(countries, 0..=5),
        subsequence(Platform::ALL.to_vec(), 0..=3),
    )
        .prop_map(|(age, genders, countries, platforms)| {
            let age = age.map(|(a, b)| AgeRange::new(a.min(b), a.max(b)).unwrap());
            let parts = ConditionGroupParts {
                age,
                genders,
                countries,
                platforms,
            };
            ConditionGroup::try_from(parts).ok()
        })
}

fn ad() -> impl Strategy<Value = Ad> {
    let now = Timestamp::now().as_millis();
    (
        1i64..=i64::MAX,
        title(),
        (now - 10_000_000_000)..now,
        1i64..10_000_000_000,
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

proptest! {
    #[test]
    fn canonical_json_parses_back_to_the_same_ad(ad in ad()) {
        let mut value = serde_json::to_value(AdView::new(&ad)).unwrap();
        value.as_object_mut().unwrap().remove("id");
        let json = Json::parse(value.to_string().as_bytes()).unwrap();
        let draft = parse_ad_draft(&json, Timestamp::now()).unwrap();
        prop_assert_eq!(Ad::from_draft(ad.id, draft), ad);
    }

    #[test]
    fn events_round_trip(ad in ad(), delete in any::<bool>()) {
        let change = if delete { Change::Delete(ad.id) } else { Change::Upsert(ad) };
        prop_assert_eq!(Change::decode(&change.encode()).unwrap(), change);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Change::decode(&bytes);
    }

    #[test]
    fn decoding_a_mutated_event_never_panics(ad in ad(), index in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = Change::Upsert(ad).encode();
        let at = index.index(bytes.len());
        bytes[at] = byte;
        // Either an error or some valid change: never a panic, never an invalid value.
        if let Ok(Change::Upsert(decoded)) = Change::decode(&bytes) {
            prop_assert!(decoded.window.end() > decoded.window.start());
        }
    }
}

#[test]
fn unknown_event_version_is_rejected() {
    let mut bytes = Change::Delete(AdId::new(1).unwrap()).encode();
    bytes[0] = 99;
    assert!(Change::decode(&bytes)
        .unwrap_err()
        .to_string()
        .contains("version 99"));
}

#[test]
fn event_with_trailing_bytes_is_rejected() {
    let mut bytes = Change::Delete(AdId::new(1).unwrap()).encode();
    bytes.push(0);
    assert!(Change::decode(&bytes).is_err());
}

#[test]
fn event_with_invalid_field_values_is_rejected() {
    // A delete of id 0 has a valid shape but an invalid value.
    let valid = Change::Delete(AdId::new(1).unwrap()).encode();
    let mut zero_id = valid.clone();
    *zero_id.last_mut().unwrap() = 0;
    assert!(Change::decode(&zero_id).is_err());
}
