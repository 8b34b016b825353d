//! Property tests: valid ads survive JSON and the event codec unchanged, and
//! no byte string makes the event decoder panic.

mod common;

use adcast_shared::ad::{Ad, AdId};
use adcast_shared::event::Change;
use adcast_shared::json::Json;
use adcast_shared::timestamp::Timestamp;
use adcast_shared::wire::{parse_ad_draft, AdView};
use common::ad;
use proptest::prelude::*;

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
