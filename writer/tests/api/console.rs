//! The web console's files at `/admin/`, and the admin list's `state` and
//! `q` filters it pages through.

use std::collections::BTreeSet;
use std::time::Duration;

use adcast_shared::timestamp::Timestamp;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use adcast_testing::http::TestResponse;
use adcast_testing::writer::{ad_body, TestWriter};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

fn content_type_for(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        other => panic!("no content type expected for {other:?}"),
    }
}

// --- the files -----------------------------------------------------------

#[tokio::test]
async fn admin_redirects_to_admin_slash() {
    let app = TestWriter::spawn().await;
    let response = app.get("/admin").await;
    assert_eq!(response.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(response.header("location"), Some("admin/"));
}

#[tokio::test]
async fn admin_slash_is_the_html_page_with_strict_security_headers() {
    let app = TestWriter::spawn().await;
    let response = app.get("/admin/").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(String::from_utf8_lossy(&response.body).starts_with("<!doctype html>"));
    assert_eq!(response.header("content-security-policy"), Some(CSP));
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(response.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(response.header("cache-control"), Some("no-cache"));
}

#[tokio::test]
async fn every_file_is_served_with_its_content_type_and_an_etag() {
    let app = TestWriter::spawn().await;
    let mut etags = BTreeSet::new();
    for name in adcast_writer::console::asset_names() {
        let response = app.get(&format!("/admin/{name}")).await;
        assert_eq!(response.status, StatusCode::OK, "{name}");
        assert_eq!(
            response.header("content-type"),
            Some(content_type_for(name)),
            "{name}"
        );
        assert!(!response.body.is_empty(), "{name}");
        assert_eq!(response.header("content-security-policy"), Some(CSP));
        let etag = response.header("etag").expect("an ETag").to_owned();
        assert!(
            etag.len() == 34 && etag.starts_with('"') && etag.ends_with('"'),
            "{etag}"
        );
        etags.insert(etag);
    }
    assert_eq!(etags.len(), adcast_writer::console::asset_names().count());
}

#[tokio::test]
async fn a_matching_if_none_match_is_answered_304_without_a_body() {
    let app = TestWriter::spawn().await;
    let first = app.get("/admin/app.js").await;
    let etag = first.header("etag").unwrap().to_owned();
    for sent in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
    ] {
        let again = app
            .request(
                Method::GET,
                "/admin/app.js",
                &[("if-none-match", &sent)],
                None,
            )
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{sent}");
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        assert_eq!(again.header("cache-control"), Some("no-cache"));
    }
}

#[tokio::test]
async fn another_etag_gets_the_file() {
    let app = TestWriter::spawn().await;
    let response = app
        .request(
            Method::GET,
            "/admin/app.js",
            &[("if-none-match", "\"0123\"")],
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(!response.body.is_empty());
}

#[tokio::test]
async fn the_files_need_no_token_when_tokens_are_configured() {
    let app =
        TestWriter::spawn_with(|settings| settings.admin_tokens = vec!["secret".into()]).await;
    assert_eq!(app.get("/admin/").await.status, StatusCode::OK);
    assert_eq!(app.get("/admin/api.js").await.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/admin/ad").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_unknown_console_path_is_a_json_404() {
    let app = TestWriter::spawn().await;
    for path in [
        "/admin/nope.js",
        "/admin/sub/app.js",
        "/admin//",
        "/admin/APP.JS",
        "/administrator",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.error().0, "not_found", "{path}");
    }
}

#[tokio::test]
async fn console_files_answer_get_and_head_only() {
    let app = TestWriter::spawn().await;
    let head = app.request(Method::HEAD, "/admin/app.js", &[], None).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    for path in ["/admin", "/admin/", "/admin/app.js"] {
        let post = app.request(Method::POST, path, &[], Some("{}")).await;
        assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(post.header("allow"), Some("GET, HEAD"), "{path}");
    }
}

/// Every file the page or a module refers to is one the writer serves, so
/// no reference can break unnoticed until a browser loads it.
#[tokio::test]
async fn every_file_the_console_refers_to_is_served() {
    let app = TestWriter::spawn().await;
    let served: BTreeSet<&str> = adcast_writer::console::asset_names().collect();
    let mut referenced = BTreeSet::new();
    for name in &served {
        let body = app.get(&format!("/admin/{name}")).await.body;
        let text = String::from_utf8(body.to_vec()).unwrap();
        for marker in ["href=\"", "src=\"", "from \"./"] {
            for piece in text.split(marker).skip(1) {
                let target = piece.split('"').next().unwrap();
                if !target.starts_with('#') && !target.contains(':') {
                    referenced.insert(target.to_owned());
                }
            }
        }
    }
    assert!(referenced.len() >= 8, "{referenced:?}");
    for target in &referenced {
        assert!(served.contains(target.as_str()), "{target} is not served");
    }
}

/// openapi.yaml lists the files as the `asset` parameter's values.
#[test]
fn the_openapi_document_lists_every_file() {
    let document = adcast_shared::protocol::OPENAPI_YAML;
    let section = document
        .split("    ConsoleAsset:")
        .nth(1)
        .expect("a ConsoleAsset parameter");
    let listed: BTreeSet<&str> = section
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("enum:"))
        .skip(1)
        .map_while(|line| line.trim_start().strip_prefix("- "))
        .collect();
    let served: BTreeSet<&str> = adcast_writer::console::asset_names().collect();
    assert_eq!(listed, served);
}

// --- the admin list's filters ----------------------------------------------

fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ad| ad["title"].as_str().unwrap().to_owned())
        .collect()
}

fn body_between(title: &str, start: Timestamp, end: Timestamp) -> Value {
    json!({"title": title, "startAt": start.to_string(), "endAt": end.to_string()})
}

fn shifted(seconds: i64) -> Timestamp {
    Timestamp::from_millis(Timestamp::now().as_millis() + seconds * 1_000).unwrap()
}

async fn created(app: &TestWriter, body: &Value) -> i64 {
    let response = app.post_ad(body).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    response.json()["id"].as_i64().unwrap()
}

#[tokio::test]
async fn the_state_filter_uses_the_writers_clock() {
    let app = TestWriter::spawn().await;
    created(&app, &body_between("ending", shifted(-60), shifted(1))).await;
    created(&app, &body_between("running", shifted(-60), shifted(3_600))).await;
    created(&app, &body_between("later", shifted(3_600), shifted(7_200))).await;
    // Let the first one end.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    for (state, expected) in [
        ("scheduled", vec!["later"]),
        ("active", vec!["running"]),
        ("ended", vec!["ending"]),
    ] {
        let page = app.get(&format!("/api/v1/admin/ad?state={state}")).await;
        assert_eq!(page.status, StatusCode::OK, "{state}");
        assert_eq!(titles(&page.json()), expected, "{state}");
    }
    assert_eq!(titles(&app.get("/api/v1/admin/ad").await.json()).len(), 3);
}

#[tokio::test]
async fn the_title_search_is_a_case_insensitive_substring() {
    let app = TestWriter::spawn().await;
    for title in [
        "Summer SALE",
        "winter sale",
        "Spring",
        "50% off",
        "5000 off",
    ] {
        created(&app, &ad_body(title)).await;
    }
    let search = |q: &'static str| {
        let app = &app;
        async move {
            let page = app.get(&format!("/api/v1/admin/ad?q={q}")).await;
            assert_eq!(page.status, StatusCode::OK, "{q}");
            titles(&page.json())
        }
    };
    assert_eq!(search("sale").await, ["Summer SALE", "winter sale"]);
    assert_eq!(search("SaLe").await, ["Summer SALE", "winter sale"]);
    assert_eq!(search("mer%20S").await, ["Summer SALE"]);
    // `%` and `_` are themselves, not patterns.
    assert_eq!(search("50%25").await, ["50% off"]);
    assert_eq!(search("_").await, Vec::<String>::new());
    assert_eq!(search("autumn").await, Vec::<String>::new());
}

#[tokio::test]
async fn filters_combine_and_keyset_pages_still_work() {
    let app = TestWriter::spawn().await;
    let mut wanted = Vec::new();
    for i in 0..5 {
        wanted.push(created(&app, &ad_body(&format!("match {i}"))).await);
        created(&app, &ad_body(&format!("other {i}"))).await;
        created(
            &app,
            &body_between(&format!("match later {i}"), shifted(3_600), shifted(7_200)),
        )
        .await;
    }
    let mut seen: Vec<i64> = Vec::new();
    let mut after = 0;
    let mut pages = 0;
    loop {
        let page = app
            .get(&format!(
                "/api/v1/admin/ad?state=active&q=MATCH&limit=2&after={after}"
            ))
            .await
            .json();
        let ids: Vec<i64> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ad| ad["id"].as_i64().unwrap())
            .collect();
        seen.extend(ids.iter().copied());
        pages += 1;
        match page["next"].as_i64() {
            Some(next) => {
                assert_eq!(Some(&next), ids.last(), "next is the page's last id");
                after = next;
            }
            None => break,
        }
    }
    assert_eq!(seen, wanted);
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn bad_state_or_q_values_are_a_400_naming_them() {
    let app = TestWriter::spawn().await;
    let long = "x".repeat(257);
    let longest = "%C3%A9".repeat(256);
    assert_eq!(
        app.get(&format!("/api/v1/admin/ad?q={longest}"))
            .await
            .status,
        StatusCode::OK
    );
    let cases: Vec<(String, &str)> = vec![
        ("state=".into(), "state"),
        ("state=bogus".into(), "state"),
        ("state=Active".into(), "state"),
        ("state=active&state=ended".into(), "state"),
        ("q=".into(), "q"),
        (format!("q={long}"), "q"),
        ("q=a&q=b".into(), "q"),
        ("q=a%00b".into(), "q"),
        ("q=a%0Ab".into(), "q"),
    ];
    for (query, field) in cases {
        let response: TestResponse = app.get(&format!("/api/v1/admin/ad?{query}")).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            response.error(),
            ("invalid_argument".into(), Some(field.into())),
            "{query}"
        );
    }
}
