//! Every validation rule of docs/api.md for Admin API bodies, one test per rule.

use adcast_shared::ad::{AdDraft, Gender, Platform};
use adcast_shared::json::Json;
use adcast_shared::timestamp::Timestamp;
use adcast_shared::wire::{conditions_view, parse_ad_draft};
use serde_json::{json, Value};

fn now() -> Timestamp {
    Timestamp::parse_rfc3339("2025-01-01T00:00:00Z").unwrap()
}

fn body(extra: Value) -> Value {
    let mut base = json!({
        "title": "AD 1",
        "startAt": "2024-12-01T00:00:00Z",
        "endAt": "2025-12-01T00:00:00Z",
    });
    for (key, value) in extra.as_object().unwrap() {
        base[key] = value.clone();
    }
    base
}

fn parse(value: &Value) -> Result<AdDraft, (Option<String>, String)> {
    parse_text(&value.to_string())
}

fn parse_text(text: &str) -> Result<AdDraft, (Option<String>, String)> {
    let json = Json::parse(text.as_bytes()).expect("test bodies are valid JSON");
    parse_ad_draft(&json, now()).map_err(|e| (e.field, e.message))
}

fn rejected_field(value: Value) -> String {
    match parse(&value) {
        Ok(draft) => panic!("{value} was accepted as {draft:?}"),
        Err((field, _)) => field.unwrap_or_default(),
    }
}

fn canonical(value: Value) -> Value {
    let draft = parse(&value).expect("body must be valid");
    serde_json::to_value(conditions_view(&draft.targeting)).unwrap()
}

#[test]
fn minimal_body_is_accepted() {
    let draft = parse(&body(json!({}))).unwrap();
    assert_eq!(draft.title.as_str(), "AD 1");
    assert!(draft.targeting.groups().is_empty());
}

#[test]
fn body_must_be_an_object() {
    for text in ["[]", "\"ad\"", "1", "null", "true"] {
        let error = parse_text(text).unwrap_err();
        assert_eq!(error.0, None, "{text}");
    }
}

#[test]
fn missing_required_fields_are_named() {
    for field in ["title", "startAt", "endAt"] {
        let mut value = body(json!({}));
        value.as_object_mut().unwrap().remove(field);
        assert_eq!(rejected_field(value), field);
        assert_eq!(rejected_field(body(json!({ field: null }))), field);
    }
}

#[test]
fn null_for_a_key_inside_a_condition_group_is_an_error() {
    // Only `conditions` itself may be null; inside a group a key is either
    // absent (no restriction) or a value of its type.
    for key in ["ageStart", "ageEnd", "gender", "country", "platform"] {
        let conditions = json!({ key: null });
        assert_eq!(
            rejected_field(body(json!({ "conditions": conditions }))),
            format!("conditions.{key}")
        );
    }
}

#[test]
fn unknown_fields_are_rejected() {
    assert_eq!(rejected_field(body(json!({"id": 5}))), "id");
    assert_eq!(
        rejected_field(body(json!({"conditions": {"age": 5}}))),
        "conditions.age"
    );
}

#[test]
fn repeated_keys_are_rejected() {
    let text = r#"{"title":"a","title":"b","startAt":"2024-12-01T00:00:00Z","endAt":"2025-12-01T00:00:00Z"}"#;
    assert_eq!(parse_text(text).unwrap_err().0.as_deref(), Some("title"));
    let nested = r#"{"title":"a","startAt":"2024-12-01T00:00:00Z","endAt":"2025-12-01T00:00:00Z","conditions":{"ageStart":1,"ageStart":2}}"#;
    assert_eq!(
        parse_text(nested).unwrap_err().0.as_deref(),
        Some("conditions.ageStart")
    );
}

#[test]
fn title_must_be_a_valid_string() {
    for bad in [
        json!(""),
        json!("   "),
        json!("x".repeat(257)),
        json!("a\tb"),
        json!(5),
        json!(["a"]),
    ] {
        assert_eq!(rejected_field(body(json!({ "title": bad }))), "title");
    }
    assert!(parse(&body(json!({"title": "🎉".repeat(256)}))).is_ok());
}

#[test]
fn times_must_be_rfc3339() {
    for bad in [
        json!("2024-12-01"),
        json!("tomorrow"),
        json!(1733011200),
        json!("2024-12-01T25:00:00Z"),
    ] {
        assert_eq!(
            rejected_field(body(json!({ "startAt": bad.clone() }))),
            "startAt"
        );
        assert_eq!(rejected_field(body(json!({ "endAt": bad }))), "endAt");
    }
}

#[test]
fn end_must_be_after_start_and_the_error_names_end() {
    let same = body(json!({"startAt": "2025-06-01T00:00:00Z", "endAt": "2025-06-01T00:00:00Z"}));
    assert_eq!(rejected_field(same), "endAt");
    let reversed =
        body(json!({"startAt": "2025-07-01T00:00:00Z", "endAt": "2025-06-01T00:00:00Z"}));
    assert_eq!(rejected_field(reversed), "endAt");
}

#[test]
fn end_must_be_in_the_future() {
    let past = body(json!({"startAt": "2024-01-01T00:00:00Z", "endAt": "2024-06-01T00:00:00Z"}));
    assert_eq!(rejected_field(past), "endAt");
    let exactly_now =
        body(json!({"startAt": "2024-01-01T00:00:00Z", "endAt": "2025-01-01T00:00:00Z"}));
    assert_eq!(rejected_field(exactly_now), "endAt");
}

#[test]
fn times_are_stored_in_utc_truncated_to_milliseconds() {
    let draft = parse(&body(
        json!({"startAt": "2024-12-01T08:00:00.123999+08:00"}),
    ))
    .unwrap();
    assert_eq!(draft.window.start().to_string(), "2024-12-01T00:00:00.123Z");
}

#[test]
fn age_bounds_are_1_to_100_integers() {
    for bad in [
        json!(0),
        json!(101),
        json!(-1),
        json!(20.5),
        json!("20"),
        json!(true),
    ] {
        let conditions = json!({"conditions": {"ageStart": bad.clone()}});
        assert_eq!(rejected_field(body(conditions)), "conditions.ageStart");
        let conditions = json!({"conditions": {"ageEnd": bad}});
        assert_eq!(rejected_field(body(conditions)), "conditions.ageEnd");
    }
}

#[test]
fn age_start_above_age_end_names_age_end() {
    let conditions = json!({"conditions": {"ageStart": 40, "ageEnd": 30}});
    assert_eq!(rejected_field(body(conditions)), "conditions.ageEnd");
}

#[test]
fn one_age_bound_leaves_the_other_end_open() {
    assert_eq!(
        canonical(body(json!({"conditions": {"ageStart": 30}}))),
        json!([{"ageStart": 30, "ageEnd": 100}])
    );
    assert_eq!(
        canonical(body(json!({"conditions": {"ageEnd": 30}}))),
        json!([{"ageStart": 1, "ageEnd": 30}])
    );
}

#[test]
fn restrictions_that_allow_everyone_are_dropped() {
    assert_eq!(
        canonical(body(json!({"conditions": {"ageStart": 1, "ageEnd": 100}}))),
        json!([])
    );
    assert_eq!(
        canonical(body(json!({"conditions": {"ageStart": 1}}))),
        json!([])
    );
    assert_eq!(
        canonical(body(json!({"conditions": {"gender": ["M", "f"]}}))),
        json!([])
    );
    assert_eq!(
        canonical(body(
            json!({"conditions": {"platform": ["web", "ios", "android"], "country": ["TW"]}})
        )),
        json!([{"country": ["TW"]}])
    );
    let every_country: Vec<&str> = adcast_shared::country::CODES
        .iter()
        .map(|code| std::str::from_utf8(code).unwrap())
        .collect();
    assert_eq!(
        canonical(body(json!({"conditions": {"country": every_country}}))),
        json!([])
    );
    assert_eq!(
        canonical(body(json!({"conditions": {"gender": ["M", "F", "M"]}}))),
        json!([]),
        "a repeat counts once: M and F are every gender"
    );
}

#[test]
fn enum_values_are_case_insensitive_and_canonicalised() {
    let value = body(
        json!({"conditions": {"gender": ["m"], "country": ["tw", "Jp"], "platform": ["IOS", "Web"]}}),
    );
    assert_eq!(
        canonical(value),
        json!([{"gender": ["M"], "country": ["TW", "JP"], "platform": ["ios", "web"]}])
    );
}

#[test]
fn unknown_enum_values_are_rejected() {
    let cases = [
        ("gender", json!(["X"])),
        ("gender", json!(["male"])),
        ("country", json!(["XX"])),
        ("country", json!(["EU"])),
        ("country", json!(["TWN"])),
        ("platform", json!(["windows"])),
        ("platform", json!([1])),
    ];
    for (key, value) in cases {
        let conditions = json!({"conditions": { key: value }});
        assert_eq!(
            rejected_field(body(conditions)),
            format!("conditions.{key}")
        );
    }
}

#[test]
fn one_string_means_an_array_of_it() {
    let value = body(json!({"conditions": {"gender": "f", "country": "tw", "platform": "iOS"}}));
    assert_eq!(
        canonical(value),
        json!([{"gender": ["F"], "country": ["TW"], "platform": ["ios"]}])
    );
}

#[test]
fn enum_fields_of_another_type_are_rejected() {
    for key in ["gender", "country", "platform"] {
        for value in [json!(1), json!(true), json!(null), json!({"a": "M"})] {
            let conditions = json!({"conditions": { key: value }});
            assert_eq!(
                rejected_field(body(conditions)),
                format!("conditions.{key}")
            );
        }
    }
}

#[test]
fn a_single_string_is_checked_like_an_array_value() {
    for (key, value) in [("gender", "X"), ("country", "XX"), ("platform", "tv")] {
        let conditions = json!({"conditions": { key: value }});
        assert_eq!(
            rejected_field(body(conditions)),
            format!("conditions.{key}")
        );
    }
}

#[test]
fn repeated_values_in_one_array_are_merged_keeping_the_first_place() {
    let value = body(json!({"conditions": {
        "gender": ["F", "f"],
        "country": ["TW", "JP", "tw", "JP"],
        "platform": ["ios", "iOS", "web"]
    }}));
    assert_eq!(
        canonical(value),
        json!([{"gender": ["F"], "country": ["TW", "JP"], "platform": ["ios", "web"]}])
    );
}

#[test]
fn uk_is_stored_as_gb() {
    assert_eq!(
        canonical(body(json!({"conditions": {"country": ["UK", "fr"]}}))),
        json!([{"country": ["GB", "FR"]}])
    );
    assert_eq!(
        canonical(body(json!({"conditions": {"country": "uk"}}))),
        json!([{"country": ["GB"]}])
    );
    assert_eq!(
        canonical(body(json!({"conditions": {"country": ["GB", "UK"]}}))),
        json!([{"country": ["GB"]}]),
        "UK and GB are one country"
    );
}

#[test]
fn empty_arrays_mean_no_restriction_and_are_dropped() {
    let value = body(json!({"conditions": {"gender": [], "country": ["TW"], "platform": []}}));
    assert_eq!(canonical(value), json!([{"country": ["TW"]}]));
}

#[test]
fn absent_null_and_empty_conditions_target_everyone() {
    for conditions in [
        json!(null),
        json!({}),
        json!([]),
        json!([{}]),
        json!({"gender": []}),
    ] {
        assert_eq!(
            canonical(body(json!({ "conditions": conditions }))),
            json!([])
        );
    }
}

#[test]
fn an_unrestricted_group_makes_the_whole_ad_target_everyone() {
    let conditions = json!({"conditions": [{"gender": ["F"]}, {}]});
    assert_eq!(canonical(body(conditions)), json!([]));
}

#[test]
fn array_of_groups_is_kept_in_order_and_errors_name_the_index() {
    let value =
        body(json!({"conditions": [{"gender": ["F"]}, {"platform": ["web"], "ageStart": 18}]}));
    assert_eq!(
        canonical(value),
        json!([{"gender": ["F"]}, {"ageStart": 18, "ageEnd": 100, "platform": ["web"]}])
    );
    let bad = body(json!({"conditions": [{"gender": ["F"]}, {"country": ["ZZ"]}]}));
    assert_eq!(rejected_field(bad), "conditions[1].country");
    let not_object = body(json!({"conditions": [{"gender": ["F"]}, 5]}));
    assert_eq!(rejected_field(not_object), "conditions[1]");
}

#[test]
fn conditions_of_another_type_are_rejected() {
    for bad in [json!("everyone"), json!(1), json!(true)] {
        assert_eq!(
            rejected_field(body(json!({ "conditions": bad }))),
            "conditions"
        );
    }
}

#[test]
fn parsed_enums_have_their_canonical_values() {
    let draft = parse(&body(
        json!({"conditions": {"gender": ["f"], "platform": ["ANDROID"]}}),
    ))
    .unwrap();
    let group = &draft.targeting.groups()[0];
    assert_eq!(group.genders(), &[Gender::F]);
    assert_eq!(group.platforms(), &[Platform::Android]);
}
