//! One base URL for the whole API: admin calls through an edge reach the
//! writer unchanged, and the edge answers a write only once it serves it.

use http::{Method, StatusCode};
use serde_json::json;

use adcast_testing::edge::{settings_for, TestEdge};
use adcast_testing::writer::{ad_body, TestWriter};

#[tokio::test]
async fn writes_through_the_edge_are_readable_from_it_at_once() {
    let writer = TestWriter::spawn().await;
    let edge = TestEdge::start(settings_for(&writer)).await;
    let json = [("content-type", "application/json")];

    let created = edge
        .request(
            Method::POST,
            "/api/v1/ad",
            &json,
            Some(&ad_body("via edge").to_string()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.json()["id"].as_i64().unwrap();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/ad/{id}").as_str())
    );
    // No Adcast-Min-Seq: the POST itself waited until the edge applied it.
    assert_eq!(edge.titles("").await, ["via edge"]);

    let path = format!("/api/v1/ad/{id}");
    let body = json!({"title": "renamed", "startAt": "2024-01-01T00:00:00Z", "endAt": "2099-01-01T00:00:00Z"}).to_string();
    let updated = edge.request(Method::PUT, &path, &json, Some(&body)).await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(edge.titles("").await, ["renamed"]);

    let fetched = edge.get(&path).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.json()["title"], "renamed");
    let listed = edge.get("/api/v1/admin/ad").await;
    assert_eq!(listed.json()["items"][0]["id"], json!(id));

    let deleted = edge.request(Method::DELETE, &path, &[], None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(edge.titles("").await.is_empty());

    // Errors come back from the writer as they are.
    let invalid = edge
        .request(Method::POST, "/api/v1/ad", &json, Some("{\"title\":\"\"}"))
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        invalid.error(),
        ("invalid_argument".into(), Some("title".into()))
    );
}

#[tokio::test]
async fn forwarded_calls_keep_their_headers() {
    let writer =
        TestWriter::spawn_with(|settings| settings.admin_tokens = vec!["secret".into()]).await;
    let mut settings = settings_for(&writer);
    settings.writer_token = Some("secret".into());
    let edge = TestEdge::start(settings).await;
    let body = ad_body("authorised").to_string();
    let refused = edge
        .request(
            Method::POST,
            "/api/v1/ad",
            &[("content-type", "application/json")],
            Some(&body),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "the edge adds no credentials of its own"
    );
    let headers = [
        ("content-type", "application/json"),
        ("authorization", "Bearer secret"),
        ("idempotency-key", "k1"),
    ];
    let first = edge
        .request(Method::POST, "/api/v1/ad", &headers, Some(&body))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let retry = edge
        .request(Method::POST, "/api/v1/ad", &headers, Some(&body))
        .await;
    assert_eq!(retry.body, first.body, "Idempotency-Key reached the writer");
    assert_eq!(writer.count("ads").await, 1);
}

#[tokio::test]
async fn an_edge_with_an_internal_token_boots_and_forwards_the_clients_own_token() {
    let writer = TestWriter::spawn_with(|settings| {
        settings.admin_tokens = vec!["alice:adm-secret".into()];
        settings.read_tokens = vec!["viewer:read-secret".into()];
        settings.internal_tokens = vec!["edge-1:int-secret".into()];
    })
    .await;
    let mut settings = settings_for(&writer);
    // What the edge holds may fetch snapshots and nothing else.
    settings.writer_token = Some("int-secret".into());
    let edge = TestEdge::start(settings).await;
    let body = ad_body("scoped").to_string();
    let post = |authorization: &'static str| {
        let edge = &edge;
        let body = body.clone();
        async move {
            let mut headers = vec![("content-type", "application/json")];
            if !authorization.is_empty() {
                headers.push(("authorization", authorization));
            }
            edge.request(Method::POST, "/api/v1/ad", &headers, Some(&body))
                .await
        }
    };

    // The writer's 401 and 403 come through unchanged.
    let anonymous = post("").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    let as_edge = post("Bearer int-secret").await;
    assert_eq!(as_edge.status, StatusCode::FORBIDDEN);
    assert_eq!(as_edge.error().0, "forbidden");
    let as_viewer = post("Bearer read-secret").await;
    assert_eq!(as_viewer.status, StatusCode::FORBIDDEN);
    assert_eq!(as_viewer.error().0, "forbidden");
    assert_eq!(writer.count("ads").await, 0);

    // An admin's write goes through, and is recorded as the admin's.
    let created = post("Bearer adm-secret").await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.json()["id"].as_i64().unwrap();
    let history = edge
        .request(
            Method::GET,
            &format!("/api/v1/admin/ad/{id}/history"),
            &[("authorization", "Bearer read-secret")],
            None,
        )
        .await;
    assert_eq!(history.status, StatusCode::OK);
    assert_eq!(history.json()["items"][0]["by"], "alice");
    let whoami = edge
        .request(
            Method::GET,
            "/api/v1/admin/whoami",
            &[("authorization", "Bearer read-secret")],
            None,
        )
        .await;
    assert_eq!(whoami.json(), json!({"scope": "read", "label": "viewer"}));
}

#[tokio::test]
async fn forwarding_to_a_writer_that_is_down_is_a_503() {
    let writer = TestWriter::spawn().await;
    let mut settings = settings_for(&writer);
    let unused = adcast_testing::processes::free_port();
    settings.writer_url = Some(format!("http://127.0.0.1:{unused}"));
    // The edge boots from the writer's snapshot directory instead.
    settings.snapshot = Some(writer.snapshot_dir.clone());
    let edge = TestEdge::start(settings).await;
    let response = edge
        .request(
            Method::POST,
            "/api/v1/ad",
            &[("content-type", "application/json")],
            Some(&ad_body("x").to_string()),
        )
        .await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.error().0, "unavailable");
    assert_eq!(
        edge.get("/api/v1/ad").await.status,
        StatusCode::OK,
        "the Public API is unaffected"
    );
}

#[tokio::test]
async fn an_oversized_body_through_the_edge_is_413_not_a_5xx() {
    let writer = TestWriter::spawn().await;
    let edge = TestEdge::start(settings_for(&writer)).await;
    for size in [100 * 1024, 1_000_000] {
        for _ in 0..5 {
            let answer = adcast_testing::http::post_whole_body_then_read(
                edge.address,
                "/api/v1/ad",
                &[],
                size,
            )
            .await
            .unwrap_or_else(|error| panic!("{size} bytes: {error}"));
            assert!(answer.starts_with("HTTP/1.1 413"), "{size} bytes: {answer}");
            assert!(answer.contains("payload_too_large"), "{answer}");
        }
    }
}

#[tokio::test]
async fn the_web_console_is_forwarded_to_the_writer() {
    let writer = TestWriter::spawn().await;
    let edge = TestEdge::start(settings_for(&writer)).await;
    let redirect = edge.get("/admin").await;
    assert_eq!(redirect.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(redirect.header("location"), Some("admin/"));
    let page = edge.get("/admin/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.header("content-security-policy").is_some());
    let etag = page.header("etag").unwrap().to_owned();
    let unchanged = edge
        .request(Method::GET, "/admin/", &[("if-none-match", &etag)], None)
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert_eq!(
        edge.get("/admin/nope.js").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn forwarded_answers_are_counted_by_their_status() {
    let writer = TestWriter::spawn().await;
    let edge = TestEdge::start(settings_for(&writer)).await;
    let patched = edge
        .request(Method::PATCH, "/api/v1/ad/1", &[], Some("{}"))
        .await;
    assert_eq!(patched.status, StatusCode::METHOD_NOT_ALLOWED);
    let not_json = edge
        .request(
            Method::POST,
            "/api/v1/ad",
            &[("content-type", "text/plain")],
            Some("hello"),
        )
        .await;
    assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let metrics = String::from_utf8(edge.get("/metrics").await.body.to_vec()).unwrap();
    for status in ["405", "415"] {
        let line =
            format!("adcast_edge_http_requests_total{{route=\"forwarded\",status=\"{status}\"}} 1");
        assert!(metrics.contains(&line), "missing {line:?} in\n{metrics}");
    }
    assert!(
        !metrics.contains("status=\"other\""),
        "nothing is counted as other:\n{metrics}"
    );
}
