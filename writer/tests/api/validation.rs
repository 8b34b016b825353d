//! Every docs/api.md validation rule answers 400 naming the field, and leaves
//! nothing behind: no ad row, no outbox row, no stream entry.

use http::{Method, StatusCode};
use serde_json::{json, Value};

use adcast_testing::writer::TestWriter;

fn with(changes: Value) -> String {
    let mut body =
        json!({"title": "AD", "startAt": "2024-01-01T00:00:00Z", "endAt": "2099-01-01T00:00:00Z"});
    for (key, value) in changes.as_object().unwrap() {
        if value == &json!("__remove__") {
            body.as_object_mut().unwrap().remove(key);
        } else {
            body[key] = value.clone();
        }
    }
    body.to_string()
}

fn cases() -> Vec<(String, Option<&'static str>)> {
    let c = |conditions: Value| with(json!({ "conditions": conditions }));
    vec![
        ("not json".into(), None),
        ("[]".into(), None),
        (with(json!({"title": "__remove__"})), Some("title")),
        (with(json!({"title": ""})), Some("title")),
        (with(json!({"title": "  "})), Some("title")),
        (with(json!({"title": "x".repeat(257)})), Some("title")),
        (with(json!({"title": "bell\u{7}"})), Some("title")),
        (with(json!({"title": 1})), Some("title")),
        (with(json!({"startAt": "__remove__"})), Some("startAt")),
        (with(json!({"startAt": "2024-01-01"})), Some("startAt")),
        (with(json!({"endAt": "__remove__"})), Some("endAt")),
        (with(json!({"endAt": "not a time"})), Some("endAt")),
        (with(json!({"startAt": "2099-01-01T00:00:00Z"})), Some("endAt")),
        (with(json!({"startAt": "2099-06-01T00:00:00Z"})), Some("endAt")),
        (with(json!({"startAt": "2020-01-01T00:00:00Z", "endAt": "2021-01-01T00:00:00Z"})), Some("endAt")),
        (with(json!({"id": 7})), Some("id")),
        (r#"{"title":"a","title":"b","startAt":"2024-01-01T00:00:00Z","endAt":"2099-01-01T00:00:00Z"}"#.into(), Some("title")),
        (c(json!("all")), Some("conditions")),
        (c(json!({"ageStart": 0})), Some("conditions.ageStart")),
        (c(json!({"ageEnd": 101})), Some("conditions.ageEnd")),
        (c(json!({"ageStart": 1.5})), Some("conditions.ageStart")),
        (c(json!({"ageStart": 50, "ageEnd": 40})), Some("conditions.ageEnd")),
        (c(json!({"gender": ["X"]})), Some("conditions.gender")),
        (c(json!({"gender": 1})), Some("conditions.gender")),
        (c(json!({"gender": "X"})), Some("conditions.gender")),
        (c(json!({"country": ["XX"]})), Some("conditions.country")),
        (c(json!({"country": ["TW", null]})), Some("conditions.country")),
        (c(json!({"platform": ["tv"]})), Some("conditions.platform")),
        (c(json!({"platform": {"web": true}})), Some("conditions.platform")),
        (c(json!({"os": ["ios"]})), Some("conditions.os")),
        (c(json!([{"gender": ["F"]}, {"country": ["QQ"]}])), Some("conditions[1].country")),
        (c(json!([{"gender": ["F"]}, "x"])), Some("conditions[1]")),
    ]
}

#[tokio::test]
async fn every_rule_is_a_400_naming_the_field_and_changes_nothing() {
    let app = TestWriter::spawn().await;
    for (body, field) in cases() {
        let response = app
            .request(
                Method::POST,
                "/api/v1/ad",
                &[("content-type", "application/json")],
                Some(&body),
            )
            .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            response.error(),
            ("invalid_argument".into(), field.map(str::to_owned)),
            "{body}"
        );
    }
    // The same rules apply to PUT, on an existing ad.
    let created = app
        .post_ad(&serde_json::from_str(&with(json!({}))).unwrap())
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let path = format!("/api/v1/ad/{}", created.json()["id"]);
    for (body, field) in cases() {
        let response = app
            .request(
                Method::PUT,
                &path,
                &[("content-type", "application/json")],
                Some(&body),
            )
            .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "PUT {body}");
        assert_eq!(response.error().1.as_deref(), field, "PUT {body}");
    }
    assert_eq!(app.count("ads").await, 1);
    assert_eq!(app.count("outbox").await, 1);
    assert_eq!(
        app.get(&path).await.json(),
        created.json(),
        "a rejected PUT changes nothing"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.stream_entries().await.len(), 1);
}
