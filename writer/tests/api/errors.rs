use http::{Method, StatusCode};

use adcast_testing::writer::{ad_body, TestWriter};

#[tokio::test]
async fn non_json_bodies_are_415_and_change_nothing() {
    let app = TestWriter::spawn().await;
    let body = ad_body("AD").to_string();
    for headers in [
        vec![],
        vec![("content-type", "text/plain")],
        vec![("content-type", "application/x-www-form-urlencoded")],
    ] {
        let response = app
            .request(Method::POST, "/api/v1/ad", &headers, Some(&body))
            .await;
        assert_eq!(
            response.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{headers:?}"
        );
        assert_eq!(response.error().0, "unsupported_media_type");
    }
    let with_charset = app
        .request(
            Method::POST,
            "/api/v1/ad",
            &[("content-type", "application/json; charset=utf-8")],
            Some(&body),
        )
        .await;
    assert_eq!(with_charset.status, StatusCode::CREATED);
    assert_eq!(app.count("ads").await, 1);
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_and_change_nothing() {
    let app = TestWriter::spawn().await;
    let mut big = ad_body("AD");
    big["title"] = serde_json::Value::String("x".repeat(70 * 1024));
    let response = app.post_ad(&big).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.error().0, "payload_too_large");
    assert_eq!(app.count("ads").await, 0);
}

#[tokio::test]
async fn chunked_bodies_over_64_kib_are_413() {
    let app = TestWriter::spawn().await;
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let chunk = "x".repeat(16 * 1024);
    let mut request = String::from(
        "POST /api/v1/ad HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    );
    for _ in 0..5 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
}

#[tokio::test]
async fn a_client_sending_a_large_body_before_reading_still_gets_the_answer() {
    // Answering before the body is read, then closing, would reset the
    // connection under a client still writing: it would see an error, not
    // the 413 (or 401).
    let app = TestWriter::spawn_with(|settings| settings.admin_tokens = vec!["token".into()]).await;
    let authorized = [("authorization", "Bearer token")];
    for size in [100 * 1024, 1_000_000] {
        for _ in 0..5 {
            let answer = adcast_testing::http::post_whole_body_then_read(
                app.address,
                "/api/v1/ad",
                &authorized,
                size,
            )
            .await
            .unwrap_or_else(|error| panic!("{size} bytes: {error}"));
            assert!(answer.starts_with("HTTP/1.1 413"), "{size} bytes: {answer}");
            assert!(answer.contains("payload_too_large"), "{answer}");
            let anonymous = adcast_testing::http::post_whole_body_then_read(
                app.address,
                "/api/v1/ad",
                &[],
                size,
            )
            .await
            .unwrap_or_else(|error| panic!("{size} bytes: {error}"));
            assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
        }
    }
    assert_eq!(app.count("ads").await, 0);
}

#[tokio::test]
async fn unknown_routes_and_ids_are_404() {
    let app = TestWriter::spawn().await;
    for path in [
        "/nope",
        "/api/v1/ad/12345",
        "/api/v1/ad/1/extra",
        "/api/v2/ad",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.error().0, "not_found");
    }
}

#[tokio::test]
async fn malformed_ids_are_400_naming_the_id() {
    let app = TestWriter::spawn().await;
    for path in [
        "/api/v1/ad/abc",
        "/api/v1/ad/0",
        "/api/v1/ad/-1",
        "/api/v1/ad/99999999999999999999",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            response.error(),
            ("invalid_argument".into(), Some("id".into()))
        );
    }
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let app = TestWriter::spawn().await;
    for (method, path, allow) in [
        (Method::GET, "/api/v1/ad", "POST"),
        (Method::PATCH, "/api/v1/ad/1", "GET, HEAD, PUT, DELETE"),
        (Method::POST, "/api/v1/ad/1", "GET, HEAD, PUT, DELETE"),
        (Method::DELETE, "/api/v1/admin/ad", "GET, HEAD"),
        (Method::POST, "/healthz", "GET, HEAD"),
    ] {
        let response = app.request(method.clone(), path, &[], None).await;
        assert_eq!(
            response.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(response.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(response.error().0, "method_not_allowed");
    }
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let app = TestWriter::spawn().await;
    let id = app.post_ad(&ad_body("AD")).await.json()["id"].clone();
    let response = app
        .request(Method::HEAD, &format!("/api/v1/ad/{id}"), &[], None)
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.body.is_empty());
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestWriter::spawn().await;
    let response = app
        .request(
            Method::GET,
            "/healthz",
            &[("x-request-id", "abc-123")],
            None,
        )
        .await;
    assert_eq!(response.header("x-request-id"), Some("abc-123"));
    let generated = app.get("/nope").await;
    assert!(generated
        .header("x-request-id")
        .is_some_and(|id| !id.is_empty()));
}
