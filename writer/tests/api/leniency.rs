//! The variants existing clients send (docs/api.md, "Accepted variants") are
//! accepted and stored, published and shown in canonical form.

use http::StatusCode;
use serde_json::json;

use adcast_testing::writer::TestWriter;

#[tokio::test]
async fn single_strings_repeats_and_uk_are_stored_canonical() {
    let app = TestWriter::spawn().await;
    let created = app
        .post_ad(&json!({
            "title": "variants",
            "startAt": "2024-01-01T00:00:00Z",
            "endAt": "2099-01-01T00:00:00Z",
            "conditions": {"gender": "f", "country": ["UK", "TW", "tw", "gb"], "platform": "IOS"}
        }))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let canonical = json!([{"gender": ["F"], "country": ["GB", "TW"], "platform": ["ios"]}]);
    assert_eq!(created.json()["conditions"], canonical);
    let read = app
        .get(&format!("/api/v1/ad/{}", created.json()["id"]))
        .await;
    assert_eq!(read.json()["conditions"], canonical);
    let stored: String = sqlx::query_scalar("SELECT conditions::text FROM ads")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(!stored.contains("UK"), "stored as GB: {stored}");
}
