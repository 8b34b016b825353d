use http::{Method, StatusCode};

use adcast_testing::writer::{ad_body, TestWriter};

async fn post_with_key(
    app: &TestWriter,
    key: &str,
    body: &str,
) -> adcast_testing::http::TestResponse {
    app.request(
        Method::POST,
        "/api/v1/ad",
        &[
            ("content-type", "application/json"),
            ("idempotency-key", key),
        ],
        Some(body),
    )
    .await
}

#[tokio::test]
async fn retry_with_same_key_and_body_returns_the_first_answer_and_creates_nothing() {
    let app = TestWriter::spawn().await;
    let first = post_with_key(&app, "key-1", &ad_body("AD").to_string()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    // Same JSON, other key order and spacing: still the same request.
    let reordered = r#"{ "endAt": "2099-01-01T00:00:00Z", "title": "AD", "startAt": "2024-01-01T00:00:00Z",
        "conditions": {"platform": ["ios"], "country": ["TW"], "ageEnd": 30, "ageStart": 20} }"#;
    let retry = post_with_key(&app, "key-1", reordered).await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(retry.seq(), first.seq());
    assert_eq!(app.count("ads").await, 1);
    assert_eq!(app.count("outbox").await, 1);
}

#[tokio::test]
async fn same_key_with_another_body_is_a_409() {
    let app = TestWriter::spawn().await;
    post_with_key(&app, "key-2", &ad_body("AD").to_string()).await;
    let other = post_with_key(&app, "key-2", &ad_body("Other").to_string()).await;
    assert_eq!(other.status, StatusCode::CONFLICT);
    assert_eq!(other.error().0, "conflict");
    assert_eq!(app.count("ads").await, 1);
}

#[tokio::test]
async fn different_keys_create_different_ads() {
    let app = TestWriter::spawn().await;
    let a = post_with_key(&app, "a", &ad_body("AD").to_string()).await;
    let b = post_with_key(&app, "b", &ad_body("AD").to_string()).await;
    assert_ne!(a.json()["id"], b.json()["id"]);
    assert_eq!(app.count("ads").await, 2);
}

#[tokio::test]
async fn concurrent_retries_create_one_ad() {
    let app = TestWriter::spawn().await;
    let body = ad_body("AD").to_string();
    let answers =
        futures_util::future::join_all((0..10).map(|_| post_with_key(&app, "race", &body))).await;
    assert!(answers
        .iter()
        .all(|answer| answer.status == StatusCode::CREATED));
    assert!(answers.iter().all(|answer| answer.body == answers[0].body));
    assert_eq!(app.count("ads").await, 1);
}

#[tokio::test]
async fn invalid_keys_are_rejected() {
    let app = TestWriter::spawn().await;
    let too_long = "k".repeat(256);
    for key in ["", "has space", too_long.as_str()] {
        let response = post_with_key(&app, key, &ad_body("AD").to_string()).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{key:?}");
        assert_eq!(response.error().1.as_deref(), Some("Idempotency-Key"));
    }
    assert_eq!(app.count("ads").await, 0);
}

#[tokio::test]
async fn a_retry_is_answered_from_the_key_even_after_its_end_has_passed() {
    let app = TestWriter::spawn().await;
    let end = adcast_shared::timestamp::Timestamp::from_millis(
        adcast_shared::timestamp::Timestamp::now().as_millis() + 1_000,
    )
    .unwrap();
    let body = serde_json::json!({"title": "brief", "startAt": "2024-01-01T00:00:00Z", "endAt": end.to_string()}).to_string();
    let first = post_with_key(&app, "late-retry", &body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let retry = post_with_key(&app, "late-retry", &body).await;
    assert_eq!(
        retry.status,
        StatusCode::CREATED,
        "the first answer, not a 400 for a past endAt"
    );
    assert_eq!(retry.body, first.body);
}

#[tokio::test]
async fn same_key_with_another_invalid_body_is_still_a_409() {
    let app = TestWriter::spawn().await;
    post_with_key(&app, "k", &ad_body("AD").to_string()).await;
    let other = post_with_key(&app, "k", r#"{"title":""}"#).await;
    assert_eq!(other.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_refusal_is_the_first_answer_too() {
    let app = TestWriter::spawn().await;
    let invalid = r#"{"title":"","startAt":"2024-01-01T00:00:00Z","endAt":"2099-01-01T00:00:00Z"}"#;
    let first = post_with_key(&app, "refused", invalid).await;
    assert_eq!(first.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        first.error(),
        ("invalid_argument".into(), Some("title".into()))
    );

    // The same body again: the same answer, status included.
    let retry = post_with_key(&app, "refused", invalid).await;
    assert_eq!(retry.status, StatusCode::BAD_REQUEST);
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));

    // Another body under the same key is a conflict, even a valid one.
    let valid = post_with_key(&app, "refused", &ad_body("AD").to_string()).await;
    assert_eq!(valid.status, StatusCode::CONFLICT);
    assert_eq!(app.count("ads").await, 0);
    assert_eq!(app.count("outbox").await, 0);

    // Without a key nothing is remembered.
    let keyless = app.post_ad(&serde_json::json!({"title": ""})).await;
    assert_eq!(keyless.status, StatusCode::BAD_REQUEST);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}
