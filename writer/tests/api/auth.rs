use http::{Method, StatusCode};

use adcast_testing::writer::{ad_body, TestWriter};

#[tokio::test]
async fn with_tokens_configured_admin_calls_need_a_valid_bearer_token() {
    let app = TestWriter::spawn_with(|settings| {
        settings.admin_tokens = vec!["old-token".into(), "new-token".into()]
    })
    .await;
    let body = ad_body("AD").to_string();
    let mut refusals = Vec::new();
    for authorization in [
        None,
        Some("Bearer wrong"),
        Some("old-token"),
        Some("Basic b2xkLXRva2Vu"),
    ] {
        let mut headers = vec![("content-type", "application/json")];
        headers.extend(authorization.map(|value| ("authorization", value)));
        let response = app
            .request(Method::POST, "/api/v1/ad", &headers, Some(&body))
            .await;
        assert_eq!(
            response.status,
            StatusCode::UNAUTHORIZED,
            "{authorization:?}"
        );
        assert_eq!(response.error().0, "unauthorized");
        refusals.push(response.body);
    }
    assert!(
        refusals.iter().all(|body| body == &refusals[0]),
        "a 401 must not say which part failed"
    );
    for path in ["/api/v1/ad/1", "/api/v1/admin/ad"] {
        assert_eq!(
            app.get(path).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(app.count("ads").await, 0);

    for token in ["old-token", "new-token"] {
        let authorization = format!("Bearer {token}");
        let response = app
            .request(
                Method::POST,
                "/api/v1/ad",
                &[
                    ("content-type", "application/json"),
                    ("authorization", &authorization),
                ],
                Some(&body),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{token}");
    }
    // Operations endpoints stay open for probes and scrapers.
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(app.get("/metrics").await.status, StatusCode::OK);
}

#[tokio::test]
async fn tokens_can_come_from_a_file() {
    let dir = adcast_testing::TempDir::new("adcast-tokens");
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(&file, "# rotation in progress\nfile-token\n\n").unwrap();
    let app = TestWriter::spawn_with(move |settings| settings.admin_tokens_file = Some(file)).await;
    assert_eq!(
        app.get("/api/v1/admin/ad").await.status,
        StatusCode::UNAUTHORIZED
    );
    let ok = app
        .request(
            Method::GET,
            "/api/v1/admin/ad",
            &[("authorization", "Bearer file-token")],
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn refuses_a_public_address_without_tokens_unless_allowed() {
    let database = adcast_testing::databases::TestDatabase::create().await;
    let key = adcast_testing::redis::StreamKey::new();
    let mut settings = adcast_testing::writer::settings(
        &database.url(),
        &adcast_testing::redis::redis_url(),
        key.as_str(),
    );
    settings.listen = "0.0.0.0:0".parse().unwrap();
    let error = adcast_writer::startup::Application::build(settings.clone())
        .await
        .err()
        .expect("must refuse");
    assert!(
        error.to_string().contains("--allow-insecure-admin"),
        "{error}"
    );

    settings.allow_insecure_admin = true;
    assert!(adcast_writer::startup::Application::build(settings.clone())
        .await
        .is_ok());
    settings.allow_insecure_admin = false;
    settings.admin_tokens = vec!["t".into()];
    assert!(adcast_writer::startup::Application::build(settings)
        .await
        .is_ok());
}

#[tokio::test]
async fn authentication_is_checked_before_the_body_size() {
    let app = TestWriter::spawn_with(|settings| settings.admin_tokens = vec!["token".into()]).await;
    let big = "x".repeat(70 * 1024);
    let anonymous = app
        .request(
            Method::POST,
            "/api/v1/ad",
            &[("content-type", "application/json")],
            Some(&big),
        )
        .await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "an anonymous caller learns nothing about body rules"
    );
    let authorized = app
        .request(
            Method::POST,
            "/api/v1/ad",
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer token"),
            ],
            Some(&big),
        )
        .await;
    assert_eq!(authorized.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.count("ads").await, 0);
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    use std::process::Stdio;
    let token = "tok-never-logged-7f3a";
    let password = "pw-never-logged-91c2";
    // Trust authentication ignores the password, but the URL still carries it.
    let database = adcast_testing::databases::TestDatabase::create().await;
    let database_url = database
        .url()
        .replacen("postgres@", &format!("postgres:{password}@"), 1);
    let key = adcast_testing::redis::StreamKey::new();
    let snapshot_dir = adcast_testing::TempDir::new("adcast-secrets");
    let (writer, address) = adcast_testing::processes::start_listening(
        |port| {
            let mut command = crate::writer_command(
                &database_url,
                &adcast_testing::redis::redis_url(),
                key.as_str(),
                port,
                snapshot_dir.path(),
            );
            command
                .env("ADCAST_ADMIN_TOKENS", token)
                .env("ADCAST_LOG", "trace")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            command
        },
        "adcast-writer",
    )
    .await;
    let bearer = format!("Bearer {token}");
    let body = bytes::Bytes::from(ad_body("logged?").to_string());
    let headers = [
        ("content-type", "application/json"),
        ("authorization", bearer.as_str()),
    ];
    let created =
        adcast_testing::http::send(address, Method::POST, "/api/v1/ad", &headers, Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let wrong = format!("Bearer {token}-wrong");
    adcast_testing::http::send(
        address,
        Method::GET,
        "/api/v1/admin/ad",
        &[("authorization", wrong.as_str())],
        None,
    )
    .await;
    let output = writer.kill_with_output();
    let logs = String::from_utf8_lossy(&output.stderr) + String::from_utf8_lossy(&output.stdout);
    assert!(
        logs.contains("adcast-writer listening"),
        "the logs were captured"
    );
    assert!(
        !logs.contains(token),
        "the admin token leaked into the logs"
    );
    assert!(
        !logs.contains(password),
        "the database password leaked into the logs"
    );
}
