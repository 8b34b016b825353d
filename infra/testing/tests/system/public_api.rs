//! The Public API on an edge, exactly as docs/api.md describes it.

use std::time::Duration;

use adcast_shared::timestamp::Timestamp;
use http::{Method, StatusCode};
use serde_json::json;

use adcast_testing::edge::{ad, following, settings_for, TestEdge};
use adcast_testing::writer::TestWriter;

fn iso_in(millis: i64) -> String {
    Timestamp::from_millis(Timestamp::now().as_millis() + millis)
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn creates_updates_and_deletes_become_visible_on_the_edge() {
    let writer = TestWriter::spawn().await;
    let edge = TestEdge::start(following(&writer)).await;

    let created = writer
        .post_ad(&ad(
            "first",
            "2024-01-01T00:00:00Z",
            "2099-01-01T00:00:00Z",
            json!(null),
        ))
        .await;
    let seq = created.seq().to_string();
    let read = edge
        .request(Method::GET, "/api/v1/ad", &[("adcast-min-seq", &seq)], None)
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(
        read.json(),
        json!({"items": [{"title": "first", "endAt": "2099-01-01T00:00:00.000Z"}]})
    );
    assert_eq!(read.header("adcast-seq"), Some(seq.as_str()));

    let path = format!("/api/v1/ad/{}", created.json()["id"]);
    let body = ad(
        "renamed",
        "2024-01-01T00:00:00Z",
        "2098-01-01T00:00:00Z",
        json!({"gender": ["F"]}),
    )
    .to_string();
    let updated = writer
        .request(
            Method::PUT,
            &path,
            &[("content-type", "application/json")],
            Some(&body),
        )
        .await;
    edge.wait_for_seq(updated.seq()).await;
    assert_eq!(edge.titles("gender=F").await, ["renamed"]);
    assert!(edge.titles("gender=M").await.is_empty());

    let deleted = writer.request(Method::DELETE, &path, &[], None).await;
    edge.wait_for_seq(deleted.seq()).await;
    assert!(edge.titles("").await.is_empty());
}

#[tokio::test]
async fn answers_are_filtered_sorted_by_end_then_id_and_paginated() {
    let writer = TestWriter::spawn().await;
    let edge = TestEdge::start(following(&writer)).await;
    let start = "2024-01-01T00:00:00Z";
    let ads = [
        ("late", "2099-03-01T00:00:00Z", json!(null)),
        ("tie b", "2099-02-01T00:00:00Z", json!({"country": ["TW"]})),
        (
            "tie a",
            "2099-02-01T00:00:00Z",
            json!({"ageStart": 20, "ageEnd": 30}),
        ),
        (
            "early",
            "2099-01-01T00:00:00Z",
            json!([{"platform": ["ios"]}, {"gender": ["F"]}]),
        ),
        ("future", "2099-04-01T00:00:00Z", json!(null)),
    ];
    let mut last = 0;
    for (title, end, conditions) in &ads {
        let start = if *title == "future" {
            "2098-01-01T00:00:00Z"
        } else {
            start
        };
        last = writer
            .post_ad(&ad(title, start, end, conditions.clone()))
            .await
            .seq();
    }
    edge.wait_for_seq(last).await;
    assert_eq!(
        edge.titles("").await,
        ["early", "tie b", "tie a", "late"],
        "ties by id: \"tie b\" was created first"
    );
    assert_eq!(edge.titles("limit=2").await, ["early", "tie b"]);
    assert_eq!(edge.titles("offset=2&limit=2").await, ["tie a", "late"]);
    assert!(edge.titles("offset=4").await.is_empty());
    assert!(edge.titles("offset=1000000").await.is_empty());
    assert_eq!(
        edge.titles("country=tw&age=40").await,
        ["early", "tie b", "late"]
    );
    assert_eq!(
        edge.titles("country=JP&age=25").await,
        ["early", "tie a", "late"]
    );
    assert_eq!(
        edge.titles("platform=web&gender=M").await,
        ["tie b", "tie a", "late"]
    );
    assert_eq!(
        edge.titles("platform=IOS&gender=m&country=JP&age=99").await,
        ["early", "late"]
    );
    assert_eq!(
        edge.titles("unknown=1&gender=f").await,
        ["early", "tie b", "tie a", "late"]
    );

    let response = edge.get("/api/v1/ad?limit=1").await;
    assert_eq!(response.header("content-type"), Some("application/json"));
    let item = &response.json()["items"][0];
    assert_eq!(
        item.as_object().unwrap().len(),
        2,
        "items have exactly title and endAt: {item}"
    );
}

#[tokio::test]
async fn every_invalid_parameter_is_a_400_naming_it() {
    let writer = TestWriter::spawn().await;
    let edge = TestEdge::start(following(&writer)).await;
    let cases = [
        ("offset=", "offset"),
        ("offset=-1", "offset"),
        ("offset=1000001", "offset"),
        ("offset=1.5", "offset"),
        ("offset=1&offset=2", "offset"),
        ("limit=", "limit"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=five", "limit"),
        ("limit=5&limit=5", "limit"),
        ("age=", "age"),
        ("age=0", "age"),
        ("age=101", "age"),
        ("age=twenty", "age"),
        ("age=1&age=2", "age"),
        ("gender=", "gender"),
        ("gender=X", "gender"),
        ("gender=male", "gender"),
        ("gender=M&gender=M", "gender"),
        ("country=", "country"),
        ("country=XX", "country"),
        ("country=TWN", "country"),
        ("country=TW&country=JP", "country"),
        ("platform=", "platform"),
        ("platform=windows", "platform"),
        ("platform=ios&platform=web", "platform"),
    ];
    for (query, field) in cases {
        let response = edge.get(&format!("/api/v1/ad?{query}")).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            response.error(),
            ("invalid_argument".into(), Some(field.into())),
            "{query}"
        );
        assert_eq!(
            response.header("cache-control"),
            Some("no-store"),
            "{query}"
        );
        assert!(response.header("adcast-seq").is_some(), "{query}");
    }
}

#[tokio::test]
async fn ads_appear_at_start_and_disappear_at_end_with_no_write() {
    let writer = TestWriter::spawn().await;
    let edge = TestEdge::start(following(&writer)).await;
    let created = writer
        .post_ad(&ad("brief", &iso_in(1_500), &iso_in(3_000), json!(null)))
        .await;
    edge.wait_for_seq(created.seq()).await;
    let before = edge.get("/api/v1/ad").await;
    assert_eq!(before.json()["items"], json!([]));
    let max_age: u64 = before
        .header("cache-control")
        .unwrap()
        .trim_start_matches("public, max-age=")
        .parse()
        .unwrap();
    assert!(
        max_age <= 1,
        "cache must not outlive the ad's start: max-age={max_age}"
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while edge.titles("").await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the ad never appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while !edge.titles("").await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the ad never disappeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        edge.node.state().seq,
        created.seq(),
        "no write happened in between"
    );
}

#[tokio::test]
async fn cache_control_is_capped_and_errors_are_not_cached() {
    let writer = TestWriter::spawn().await;
    let mut settings = following(&writer);
    settings.cache_max_age_secs = 3;
    let edge = TestEdge::start(settings).await;
    let ok = edge.get("/api/v1/ad").await;
    assert_eq!(ok.header("cache-control"), Some("public, max-age=3"));
    let bad = edge.get("/api/v1/ad?age=0").await;
    assert_eq!(bad.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn adcast_min_seq_waits_boundedly_then_answers_503() {
    let writer = TestWriter::spawn().await;
    let mut settings = following(&writer);
    settings.min_seq_wait_ms = 300;
    let edge = TestEdge::start(settings).await;
    let started = std::time::Instant::now();
    let response = edge
        .request(
            Method::GET,
            "/api/v1/ad",
            &[("adcast-min-seq", "999")],
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.error().0, "unavailable");
    assert!(response.header("retry-after").is_some());
    assert!(
        started.elapsed() >= Duration::from_millis(300)
            && started.elapsed() < Duration::from_secs(3)
    );

    for malformed in ["soon", "+0", "-1", "1.0"] {
        let bad = edge
            .request(
                Method::GET,
                "/api/v1/ad",
                &[("adcast-min-seq", malformed)],
                None,
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{malformed:?}");
        assert_eq!(bad.error().1.as_deref(), Some("Adcast-Min-Seq"));
    }

    let created = writer
        .post_ad(&adcast_testing::writer::ad_body("waited for"))
        .await;
    let seq = created.seq().to_string();
    let response = edge
        .request(Method::GET, "/api/v1/ad", &[("adcast-min-seq", &seq)], None)
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json()["items"][0]["title"], "waited for");
}

#[tokio::test]
async fn methods_routes_and_head_follow_the_spec() {
    let writer = TestWriter::spawn().await;
    let edge = TestEdge::start(following(&writer)).await;
    let post = edge
        .request(
            Method::POST,
            "/api/v1/ad",
            &[("content-type", "application/json")],
            Some("{}"),
        )
        .await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    for path in ["/api/v1/ad/1", "/api/v1/admin/ad", "/nope"] {
        let response = edge.get(path).await;
        assert_eq!(
            response.status,
            StatusCode::NOT_FOUND,
            "{path}: an edge without a writer serves no admin route"
        );
        assert_eq!(response.error().0, "not_found");
        assert!(response.header("adcast-seq").is_some());
    }
    let head = edge.request(Method::HEAD, "/api/v1/ad", &[], None).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert!(head.header("adcast-seq").is_some());
    // The answer reaches a client that sends a large body the edge does not
    // need before reading (no reset connection instead).
    for path in ["/api/v1/ad", "/api/v1/admin/ad"] {
        let answer =
            adcast_testing::http::post_whole_body_then_read(edge.address, path, &[], 500_000)
                .await
                .unwrap_or_else(|error| panic!("{path}: {error}"));
        let expected = if path == "/api/v1/ad" { "405" } else { "404" };
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {expected}")),
            "{path}: {answer}"
        );
    }
}

#[tokio::test]
async fn operations_endpoints_report_readiness_and_metrics() {
    let writer = TestWriter::spawn().await;
    let edge = TestEdge::start(settings_for(&writer)).await;
    let created = writer
        .post_ad(&adcast_testing::writer::ad_body("counted"))
        .await;
    edge.wait_for_seq(created.seq()).await;
    assert_eq!(edge.get("/healthz").await.status, StatusCode::OK);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while edge.get("/readyz").await.status != StatusCode::OK {
        assert!(
            std::time::Instant::now() < deadline,
            "edge never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The same query twice: computed, then served from the answer cache.
    assert_eq!(edge.titles("").await, ["counted"]);
    assert_eq!(edge.titles("").await, ["counted"]);
    let metrics = String::from_utf8(edge.get("/metrics").await.body.to_vec()).unwrap();
    for expected in [
        format!("adcast_edge_applied_seq {}", created.seq()),
        "adcast_edge_ads 1".to_owned(),
        "adcast_edge_http_requests_total{route=\"/api/v1/ad\",status=\"200\"} 2".to_owned(),
        "adcast_edge_request_duration_seconds_count 2".to_owned(),
        "adcast_edge_answer_cache_misses_total 1".to_owned(),
        "adcast_edge_answer_cache_hits_total 1".to_owned(),
        "adcast_edge_ready 1".to_owned(),
    ] {
        assert!(
            metrics.contains(&expected),
            "missing {expected:?} in\n{metrics}"
        );
    }
}

/// A kept answer (the second asking of a query string) is the computed one,
/// headers included; another spelling, `Adcast-Min-Seq`, `HEAD` and an
/// invalid query answer exactly as the full path does.
#[tokio::test]
async fn kept_answers_are_the_computed_ones_headers_included() {
    let writer = TestWriter::spawn().await;
    let edge = TestEdge::start(settings_for(&writer)).await;
    let created = writer
        .post_ad(&ad(
            "kept",
            "2024-01-01T00:00:00Z",
            "2099-01-01T00:00:00Z",
            json!({"country": ["TW"]}),
        ))
        .await;
    edge.wait_for_seq(created.seq()).await;
    let seq = created.seq().to_string();
    let parts = |response: &adcast_testing::http::TestResponse| {
        let header = |name: &str| {
            response
                .headers
                .get(name)
                .map(|value| value.to_str().unwrap().to_owned())
        };
        (
            response.status,
            header("content-type"),
            header("cache-control"),
            header("adcast-seq"),
            response.body.clone(),
        )
    };
    let path = "/api/v1/ad?country=tw&limit=3";
    let computed = parts(&edge.get(path).await);
    assert_eq!(computed.0, StatusCode::OK);
    assert_eq!(computed.3.as_deref(), Some(seq.as_str()));
    assert!(String::from_utf8_lossy(&computed.4).contains("\"kept\""));
    for _ in 0..3 {
        assert_eq!(parts(&edge.get(path).await), computed);
    }
    let other_spelling = parts(&edge.get("/api/v1/ad?limit=3&country=TW").await);
    assert_eq!(other_spelling, computed);
    let waited = edge
        .request(Method::GET, path, &[("adcast-min-seq", &seq)], None)
        .await;
    assert_eq!(parts(&waited), computed);
    let head = edge.request(Method::HEAD, path, &[], None).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.headers.get("adcast-seq").unwrap(), seq.as_str());
    assert!(head.body.is_empty());
    for _ in 0..2 {
        let invalid = edge.get("/api/v1/ad?country=tw&limit=0").await;
        assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
        assert_eq!(invalid.json()["error"]["field"], "limit");
    }
    let bad_min_seq = edge
        .request(Method::GET, path, &[("adcast-min-seq", "x")], None)
        .await;
    assert_eq!(bad_min_seq.status, StatusCode::BAD_REQUEST);
    // A new state ends the kept answer: the next asking sees the change.
    let ad_path = format!("/api/v1/ad/{}", created.json()["id"]);
    let deleted = writer.request(Method::DELETE, &ad_path, &[], None).await;
    edge.wait_for_seq(deleted.seq()).await;
    let after = parts(&edge.get(path).await);
    assert_eq!(after.3.as_deref(), Some(deleted.seq().to_string().as_str()));
    assert_eq!(after.4, bytes::Bytes::from_static(br#"{"items":[]}"#));
}
