//! Explain and preview (docs/api.md, "Ad operations"): what users see at an
//! instant, and why one ad is or is not among it, from the writer's data.

use http::{Method, StatusCode};
use serde_json::{json, Value};

use adcast_testing::http::TestResponse;
use adcast_testing::writer::TestWriter;

fn ad(title: &str, start: &str, end: &str, conditions: Value) -> Value {
    json!({"title": title, "startAt": start, "endAt": end, "conditions": conditions})
}

async fn create(app: &TestWriter, body: Value) -> i64 {
    let response = app.post_ad(&body).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    response.json()["id"].as_i64().unwrap()
}

/// Titles of a preview answer.
fn titles(response: &TestResponse) -> Vec<String> {
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    response.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["title"].as_str().unwrap().to_owned())
        .collect()
}

/// Three ads: A and B end together (ties by id), C later and only for iOS.
async fn catalog(app: &TestWriter) -> [i64; 3] {
    let a = create(
        app,
        ad(
            "A",
            "2030-01-01T00:00:00Z",
            "2031-01-01T00:00:00Z",
            json!({"ageStart": 20, "ageEnd": 30}),
        ),
    )
    .await;
    let b = create(
        app,
        ad(
            "B",
            "2030-06-01T00:00:00Z",
            "2031-01-01T00:00:00Z",
            json!(null),
        ),
    )
    .await;
    let c = create(
        app,
        ad(
            "C",
            "2030-01-01T00:00:00Z",
            "2032-01-01T00:00:00Z",
            json!([{"platform": ["ios"], "country": ["TW"]}, {"gender": "F"}]),
        ),
    )
    .await;
    [a, b, c]
}

#[tokio::test]
async fn preview_answers_the_public_api_body_at_the_instant_asked() {
    let app = TestWriter::spawn().await;
    catalog(&app).await;
    let at = |query: &str| format!("/api/v1/admin/preview?{query}");
    // Before anything starts, and at the very start instant: nothing.
    assert!(titles(&app.get(&at("at=2029-12-31T00:00:00Z")).await).is_empty());
    assert!(titles(&app.get(&at("at=2030-01-01T00:00:00Z")).await).is_empty());
    assert_eq!(
        titles(&app.get(&at("at=2030-01-01T00:00:00.001Z")).await),
        ["A", "C"]
    );
    assert_eq!(
        titles(&app.get(&at("at=2030-07-01T00:00:00Z")).await),
        ["A", "B", "C"]
    );
    assert_eq!(
        titles(&app.get(&at("at=2030-07-01T00:00:00Z&age=40")).await),
        ["B", "C"]
    );
    assert_eq!(
        titles(
            &app.get(&at("at=2030-07-01T00:00:00Z&platform=web&gender=M"))
                .await
        ),
        ["A", "B"]
    );
    assert_eq!(
        titles(
            &app.get(&at("at=2030-07-01T00:00:00Z&offset=1&limit=1"))
                .await
        ),
        ["B"]
    );
    // At A's and B's end instant they are gone (strict), C is left.
    assert_eq!(
        titles(&app.get(&at("at=2031-01-01T00:00:00Z")).await),
        ["C"]
    );
    // Offsets are accepted in any RFC 3339 form (+ written %2B).
    assert_eq!(
        titles(&app.get(&at("at=2030-07-01T08:00:00%2B08:00&limit=2")).await),
        ["A", "B"]
    );
}

#[tokio::test]
async fn preview_body_is_exactly_the_public_api_shape_with_the_seq_it_reflects() {
    let app = TestWriter::spawn().await;
    let [..] = catalog(&app).await;
    let response = app
        .get("/api/v1/admin/preview?at=2030-07-01T00:00:00Z&limit=1")
        .await;
    assert_eq!(
        std::str::from_utf8(&response.body).unwrap(),
        r#"{"items":[{"title":"A","endAt":"2031-01-01T00:00:00.000Z"}]}"#
    );
    assert_eq!(response.seq(), 3);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let none = app
        .get("/api/v1/admin/preview?at=2000-01-01T00:00:00Z")
        .await;
    assert_eq!(none.json(), json!({"items": []}));
}

#[tokio::test]
async fn preview_refuses_what_the_public_api_refuses_and_a_bad_at() {
    let app = TestWriter::spawn().await;
    for (query, field) in [
        ("age=0", "age"),
        ("age=1&age=2", "age"),
        ("age=", "age"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("offset=-1", "offset"),
        ("offset=1000001", "offset"),
        ("gender=X", "gender"),
        ("country=XX", "country"),
        ("platform=tv", "platform"),
        ("at=yesterday", "at"),
        ("at=2030-01-01", "at"),
        ("at=", "at"),
        ("at=2030-01-01T00:00:00Z&at=2030-01-02T00:00:00Z", "at"),
        ("at=2030-01-01T00:00:00+08:00", "at"),
    ] {
        let response = app.get(&format!("/api/v1/admin/preview?{query}")).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            response.error(),
            ("invalid_argument".into(), Some(field.into())),
            "{query}"
        );
    }
    let fine = app.get("/api/v1/admin/preview?country=uk&unknown=1").await;
    assert_eq!(
        fine.status,
        StatusCode::OK,
        "UK is GB; unknown parameters are ignored"
    );
}

#[tokio::test]
async fn explain_says_why_an_ad_is_not_served() {
    let app = TestWriter::spawn().await;
    let [_, _, c] = catalog(&app).await;
    let response = app
        .get(&format!(
            "/api/v1/admin/ad/{c}/explain?at=2030-07-01T00:00:00Z&country=JP&platform=web&gender=M"
        ))
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.json(),
        json!({"id": c, "at": "2030-07-01T00:00:00.000Z", "served": false, "state": "active",
               "audience": false, "position": null,
               "groups": [{"matches": false, "failed": ["country", "platform"]},
                          {"matches": false, "failed": ["gender"]}]})
    );
    assert_eq!(response.seq(), 3);
}

#[tokio::test]
async fn explain_gives_the_position_that_preview_serves_the_ad_at() {
    let app = TestWriter::spawn().await;
    let [a, b, c] = catalog(&app).await;
    let at = "2030-07-01T00:00:00Z";
    for (id, position) in [(a, 0), (b, 1), (c, 2)] {
        let explained = app
            .get(&format!("/api/v1/admin/ad/{id}/explain?at={at}&gender=F"))
            .await
            .json();
        assert_eq!(explained["served"], true);
        assert_eq!(explained["position"], position);
        let page = app
            .get(&format!(
                "/api/v1/admin/preview?at={at}&gender=F&offset={position}&limit=1"
            ))
            .await;
        let expected = ["A", "B", "C"][position as usize];
        assert_eq!(titles(&page), [expected]);
    }
    // With age 40, A is out and B moves up.
    let explained = app
        .get(&format!("/api/v1/admin/ad/{b}/explain?at={at}&age=40"))
        .await
        .json();
    assert_eq!(explained["position"], 0);
    let a_out = app
        .get(&format!("/api/v1/admin/ad/{a}/explain?at={at}&age=40"))
        .await
        .json();
    assert_eq!(
        a_out["groups"],
        json!([{"matches": false, "failed": ["age"]}])
    );
    assert_eq!(a_out["position"], Value::Null);
}

#[tokio::test]
async fn explain_states_follow_the_window_strictly() {
    let app = TestWriter::spawn().await;
    let [_, b, _] = catalog(&app).await;
    for (at, state, served) in [
        ("2030-05-31T00:00:00Z", "scheduled", false),
        ("2030-06-01T00:00:00Z", "scheduled", false),
        ("2030-06-01T00:00:00.001Z", "active", true),
        ("2030-12-31T23:59:59.999Z", "active", true),
        ("2031-01-01T00:00:00Z", "ended", false),
    ] {
        let explained = app
            .get(&format!("/api/v1/admin/ad/{b}/explain?at={at}"))
            .await
            .json();
        assert_eq!(explained["state"], state, "{at}");
        assert_eq!(explained["served"], served, "{at}");
        assert_eq!(explained["audience"], true, "targets everyone");
        assert_eq!(explained["groups"], json!([]));
    }
}

#[tokio::test]
async fn explain_of_unknown_deleted_or_malformed_ids() {
    let app = TestWriter::spawn().await;
    let [a, _, _] = catalog(&app).await;
    assert_eq!(
        app.get("/api/v1/admin/ad/999/explain").await.status,
        StatusCode::NOT_FOUND
    );
    let deleted = app
        .request(Method::DELETE, &format!("/api/v1/ad/{a}"), &[], None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = app.get(&format!("/api/v1/admin/ad/{a}/explain")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.error().0, "not_found");
    for id in ["abc", "0", "-1"] {
        let response = app.get(&format!("/api/v1/admin/ad/{id}/explain")).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{id}");
        assert_eq!(response.error().1.as_deref(), Some("id"));
    }
}

#[tokio::test]
async fn explain_takes_the_user_parameters_by_the_public_api_rules_and_ignores_paging() {
    let app = TestWriter::spawn().await;
    let [a, _, _] = catalog(&app).await;
    for (query, field) in [
        ("age=101", "age"),
        ("gender=", "gender"),
        ("country=TW&country=JP", "country"),
        ("platform=tv", "platform"),
        ("at=soon", "at"),
    ] {
        let response = app
            .get(&format!("/api/v1/admin/ad/{a}/explain?{query}"))
            .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(response.error().1.as_deref(), Some(field), "{query}");
    }
    let paging = app
        .get(&format!("/api/v1/admin/ad/{a}/explain?offset=-1&limit=0"))
        .await;
    assert_eq!(
        paging.status,
        StatusCode::OK,
        "offset and limit are not explain's"
    );
}

#[tokio::test]
async fn ad_operations_need_the_token_and_take_only_their_methods() {
    let app = TestWriter::spawn_with(|settings| settings.admin_tokens = vec!["t".into()]).await;
    for (method, path) in [
        (Method::GET, "/api/v1/admin/preview"),
        (Method::GET, "/api/v1/admin/ad/1/explain"),
        (Method::GET, "/api/v1/admin/ad/export"),
        (Method::POST, "/api/v1/admin/ad/import"),
    ] {
        let response = app.request(method.clone(), path, &[], None).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(response.error().0, "unauthorized");
    }
    let token = [("authorization", "Bearer t")];
    for (method, path, allow) in [
        (Method::POST, "/api/v1/admin/preview", "GET, HEAD"),
        (Method::DELETE, "/api/v1/admin/ad/1/explain", "GET, HEAD"),
        (Method::PUT, "/api/v1/admin/ad/export", "GET, HEAD"),
        (Method::GET, "/api/v1/admin/ad/import", "POST"),
    ] {
        let response = app.request(method.clone(), path, &token, None).await;
        assert_eq!(
            response.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(response.header("allow"), Some(allow));
    }
    let head = app
        .request(Method::HEAD, "/api/v1/admin/preview", &token, None)
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
}
