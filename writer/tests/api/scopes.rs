//! Token scopes and the audit trail: every route × every kind of caller
//! (admin, read, internal, no token, unknown token), labels recorded with
//! every change, `history` and `whoami`.

use http::{Method, StatusCode};
use serde_json::{json, Value};

use adcast_testing::http::TestResponse;
use adcast_testing::writer::{ad_body, TestWriter};

const ADMIN: &str = "adm-tok-1";
const ADMIN_UNLABELLED: &str = "adm-tok-2";
const READ: &str = "read-tok-1";
const INTERNAL: &str = "int-tok-1";

/// A writer with one token of each scope (labelled) and an unlabelled admin one.
async fn scoped_writer() -> TestWriter {
    TestWriter::spawn_with(|settings| {
        settings.admin_tokens = vec![format!("alice:{ADMIN}"), ADMIN_UNLABELLED.into()];
        settings.read_tokens = vec![format!("viewer:{READ}")];
        settings.internal_tokens = vec![format!("edge-eu-1:{INTERNAL}")];
    })
    .await
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Admin,
    Read,
    Internal,
    Nobody,
    Stranger,
}

const EVERYONE: [Who; 5] = [
    Who::Admin,
    Who::Read,
    Who::Internal,
    Who::Nobody,
    Who::Stranger,
];

impl Who {
    fn authorization(self) -> Option<String> {
        match self {
            Who::Admin => Some(format!("Bearer {ADMIN}")),
            Who::Read => Some(format!("Bearer {READ}")),
            Who::Internal => Some(format!("Bearer {INTERNAL}")),
            Who::Nobody => None,
            Who::Stranger => Some("Bearer not-a-configured-token".into()),
        }
    }
}

/// What a route needs.
#[derive(Clone, Copy, Debug)]
enum Needs {
    Open,
    AnyToken,
    Read,
    Write,
    Internal,
}

impl Needs {
    /// Whether `who` gets past authentication and scope.
    fn expected_refusal(self, who: Who) -> Option<StatusCode> {
        let allowed = match (self, who) {
            (Needs::Open, _) => return None,
            (_, Who::Nobody | Who::Stranger) => return Some(StatusCode::UNAUTHORIZED),
            (_, Who::Admin) | (Needs::AnyToken, _) => true,
            (Needs::Read, Who::Read) | (Needs::Internal, Who::Internal) => true,
            _ => false,
        };
        (!allowed).then_some(StatusCode::FORBIDDEN)
    }
}

/// (method, path, content type, body, what it needs, success status)
type RouteCase<'a> = (
    Method,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Needs,
    StatusCode,
);

async fn call(
    app: &TestWriter,
    who: Who,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Option<&str>,
) -> TestResponse {
    let authorization = who.authorization();
    let mut headers = Vec::new();
    if let Some(value) = &authorization {
        headers.push(("authorization", value.as_str()));
    }
    if let Some(content_type) = content_type {
        headers.push(("content-type", content_type));
    }
    app.request(method, path, &headers, body).await
}

#[tokio::test]
async fn every_route_answers_every_kind_of_caller_by_its_scope() {
    let app = scoped_writer().await;
    let fixture = call(
        &app,
        Who::Admin,
        Method::POST,
        "/api/v1/ad",
        Some("application/json"),
        Some(&ad_body("fixture").to_string()),
    )
    .await;
    assert_eq!(fixture.status, StatusCode::CREATED);
    let id = fixture.json()["id"].as_i64().unwrap();

    let ad = ad_body("scoped").to_string();
    let import = json!([ad_body("imported")]).to_string();
    let ad_path = format!("/api/v1/ad/{id}");
    let explain = format!("/api/v1/admin/ad/{id}/explain");
    let history = format!("/api/v1/admin/ad/{id}/history");
    let json_type = Some("application/json");
    // (method, path, content type, body, what it needs, success status)
    let routes: Vec<RouteCase<'_>> = vec![
        (
            Method::POST,
            "/api/v1/ad",
            json_type,
            Some(&ad),
            Needs::Write,
            StatusCode::CREATED,
        ),
        (
            Method::GET,
            &ad_path,
            None,
            None,
            Needs::Read,
            StatusCode::OK,
        ),
        (
            Method::HEAD,
            &ad_path,
            None,
            None,
            Needs::Read,
            StatusCode::OK,
        ),
        (
            Method::PUT,
            &ad_path,
            json_type,
            Some(&ad),
            Needs::Write,
            StatusCode::OK,
        ),
        // An id no ad has: past the scope check, the admin gets the 404.
        (
            Method::DELETE,
            "/api/v1/ad/999999",
            None,
            None,
            Needs::Write,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/api/v1/admin/ad",
            None,
            None,
            Needs::Read,
            StatusCode::OK,
        ),
        (
            Method::HEAD,
            "/api/v1/admin/ad",
            None,
            None,
            Needs::Read,
            StatusCode::OK,
        ),
        (
            Method::GET,
            &explain,
            None,
            None,
            Needs::Read,
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/v1/admin/preview",
            None,
            None,
            Needs::Read,
            StatusCode::OK,
        ),
        (
            Method::POST,
            "/api/v1/admin/ad/import",
            json_type,
            Some(&import),
            Needs::Write,
            StatusCode::CREATED,
        ),
        (
            Method::GET,
            "/api/v1/admin/ad/export",
            None,
            None,
            Needs::Read,
            StatusCode::OK,
        ),
        (
            Method::GET,
            &history,
            None,
            None,
            Needs::Read,
            StatusCode::OK,
        ),
        (
            Method::HEAD,
            &history,
            None,
            None,
            Needs::Read,
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/v1/admin/whoami",
            None,
            None,
            Needs::AnyToken,
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/internal/v1/snapshot/latest",
            None,
            None,
            Needs::Internal,
            StatusCode::OK,
        ),
        (
            Method::HEAD,
            "/internal/v1/snapshot/latest",
            None,
            None,
            Needs::Internal,
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/healthz",
            None,
            None,
            Needs::Open,
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/readyz",
            None,
            None,
            Needs::Open,
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/metrics",
            None,
            None,
            Needs::Open,
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/openapi.yaml",
            None,
            None,
            Needs::Open,
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/admin/",
            None,
            None,
            Needs::Open,
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/admin/app.js",
            None,
            None,
            Needs::Open,
            StatusCode::OK,
        ),
    ];
    let mut refused_writes = 0;
    let mut forbidden_bodies = Vec::new();
    for (method, path, content_type, body, needs, success) in &routes {
        for who in EVERYONE {
            let before = app.count("ad_history").await;
            let answer = call(&app, who, method.clone(), path, *content_type, *body).await;
            let context = format!("{method} {path} as {who:?}");
            match needs.expected_refusal(who) {
                None => assert_eq!(answer.status, *success, "{context}: {:?}", answer.body),
                Some(refusal) => {
                    assert_eq!(answer.status, refusal, "{context}: {:?}", answer.body);
                    if *method != Method::HEAD {
                        let code = answer.error().0;
                        if refusal == StatusCode::FORBIDDEN {
                            assert_eq!(code, "forbidden", "{context}");
                            assert!(answer.header("www-authenticate").is_none(), "{context}");
                            forbidden_bodies.push(answer.body.clone());
                        } else {
                            assert_eq!(code, "unauthorized", "{context}");
                            assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
                        }
                    }
                    assert_eq!(
                        app.count("ad_history").await,
                        before,
                        "{context}: a refused call changed nothing"
                    );
                    if matches!(needs, Needs::Write) {
                        refused_writes += 1;
                    }
                }
            }
        }
    }
    assert_eq!(
        refused_writes,
        4 * 4,
        "four writes refused to four callers each"
    );
    assert!(!forbidden_bodies.is_empty());
    // fixture + POST + import by the admin; the PUT changed the fixture.
    assert_eq!(app.count("ads").await, 3);
    assert_eq!(app.get(&ad_path).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_method_is_checked_before_the_scope_and_after_the_token() {
    let app = scoped_writer().await;
    let patch = |who| call(&app, who, Method::PATCH, "/api/v1/ad/1", None, None);
    assert_eq!(patch(Who::Nobody).await.status, StatusCode::UNAUTHORIZED);
    let wrong_method = patch(Who::Read).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.header("allow"), Some("GET, HEAD, PUT, DELETE"));
    // Route first: an unknown path is a 404 whoever asks.
    for who in EVERYONE {
        let missing = call(&app, who, Method::GET, "/api/v1/admin/nothing", None, None).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{who:?}");
    }
    // A read token is refused before its body is read: no 413, a 403.
    let big = "x".repeat(70 * 1024);
    let write = call(
        &app,
        Who::Read,
        Method::POST,
        "/api/v1/ad",
        Some("application/json"),
        Some(&big),
    )
    .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn whoami_names_the_scope_and_label_of_the_token() {
    let app = &scoped_writer().await;
    let whoami = |token: &'static str| async move {
        let bearer = format!("Bearer {token}");
        let answer = app
            .request(
                Method::GET,
                "/api/v1/admin/whoami",
                &[("authorization", bearer.as_str())],
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{token}");
        assert_eq!(answer.header("cache-control"), Some("no-store"));
        answer.json()
    };
    assert_eq!(
        whoami(ADMIN).await,
        json!({"scope": "admin", "label": "alice"})
    );
    assert_eq!(
        whoami(ADMIN_UNLABELLED).await,
        json!({"scope": "admin", "label": null})
    );
    assert_eq!(
        whoami(READ).await,
        json!({"scope": "read", "label": "viewer"})
    );
    assert_eq!(
        whoami(INTERNAL).await,
        json!({"scope": "internal", "label": "edge-eu-1"})
    );

    let open = TestWriter::spawn().await;
    let answer = open.get("/api/v1/admin/whoami").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!({"scope": "open", "label": null}));
}

fn history_of(answer: &TestResponse) -> Vec<(u64, String, Value)> {
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let json = answer.json();
    assert_eq!(json.as_object().unwrap().len(), 1, "only items: {json}");
    json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            assert_eq!(item.as_object().unwrap().len(), 4, "{item}");
            let at = item["at"].as_str().expect("at");
            assert!(
                at.len() == 24 && at.ends_with('Z') && at.as_bytes()[19] == b'.',
                "RFC 3339 UTC with milliseconds: {at}"
            );
            (
                item["seq"].as_u64().expect("seq"),
                item["action"].as_str().expect("action").to_owned(),
                item["by"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_change_records_the_label_of_its_token_oldest_first() {
    let app = scoped_writer().await;
    let as_admin = |token: &str| format!("Bearer {token}");
    let alice = as_admin(ADMIN);
    let anonymous = as_admin(ADMIN_UNLABELLED);
    let json_type = ("content-type", "application/json");

    let created = app
        .request(
            Method::POST,
            "/api/v1/ad",
            &[
                json_type,
                ("authorization", &alice),
                ("idempotency-key", "k-1"),
            ],
            Some(&ad_body("audited").to_string()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.json()["id"].as_i64().unwrap();
    let path = format!("/api/v1/ad/{id}");
    // A replayed create is no change: nothing more is recorded.
    let replayed = app
        .request(
            Method::POST,
            "/api/v1/ad",
            &[
                json_type,
                ("authorization", &anonymous),
                ("idempotency-key", "k-1"),
            ],
            Some(&ad_body("audited").to_string()),
        )
        .await;
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    let replaced = app
        .request(
            Method::PUT,
            &path,
            &[json_type, ("authorization", &anonymous)],
            Some(&ad_body("audited v2").to_string()),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK);
    let replaced_again = app
        .request(
            Method::PUT,
            &path,
            &[json_type, ("authorization", &alice)],
            Some(&ad_body("audited v3").to_string()),
        )
        .await;
    let deleted = app
        .request(Method::DELETE, &path, &[("authorization", &alice)], None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    // The ad is gone, its history stays; a read token may see it.
    let read = format!("Bearer {READ}");
    let history_path = format!("/api/v1/admin/ad/{id}/history");
    let history = app
        .request(
            Method::GET,
            &history_path,
            &[("authorization", &read)],
            None,
        )
        .await;
    assert_eq!(app.get(&path).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        history_of(&history),
        vec![
            (created.seq(), "create".into(), json!("alice")),
            (replaced.seq(), "replace".into(), Value::Null),
            (replaced_again.seq(), "replace".into(), json!("alice")),
            (deleted.seq(), "delete".into(), json!("alice")),
        ]
    );

    // Every change has exactly one record: the trail and the sequence agree.
    let last_seq: i64 = sqlx::query_scalar("SELECT last_seq FROM change_sequence")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(app.count("ad_history").await, last_seq);
}

#[tokio::test]
async fn each_imported_ad_is_a_create_by_the_importer() {
    let app = scoped_writer().await;
    let alice = format!("Bearer {ADMIN}");
    let body = [ad_body("one"), ad_body("two"), ad_body("three")]
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let imported = app
        .request(
            Method::POST,
            "/api/v1/admin/ad/import",
            &[
                ("content-type", "application/x-ndjson"),
                ("authorization", &alice),
            ],
            Some(&body),
        )
        .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{:?}", imported.body);
    let json = imported.json();
    let last = json["seq"].as_u64().unwrap();
    let ids = json["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 3);
    for (index, id) in ids.iter().enumerate() {
        let history = app
            .request(
                Method::GET,
                &format!("/api/v1/admin/ad/{id}/history"),
                &[("authorization", &alice)],
                None,
            )
            .await;
        assert_eq!(
            history_of(&history),
            vec![(last - 2 + index as u64, "create".into(), json!("alice"))],
            "ad {id}"
        );
    }
}

#[tokio::test]
async fn with_tokens_off_changes_are_recorded_by_nobody() {
    let app = TestWriter::spawn().await;
    let created = app.post_ad(&ad_body("open")).await;
    let id = created.json()["id"].as_i64().unwrap();
    let history = app.get(&format!("/api/v1/admin/ad/{id}/history")).await;
    assert_eq!(
        history_of(&history),
        vec![(created.seq(), "create".into(), Value::Null)]
    );
}

#[tokio::test]
async fn history_of_an_unknown_or_malformed_id_is_an_error() {
    let app = TestWriter::spawn().await;
    let unknown = app.get("/api/v1/admin/ad/424242/history").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error().0, "not_found");
    for bad in ["0", "-1", "abc", "1.5", "99999999999999999999"] {
        let answer = app.get(&format!("/api/v1/admin/ad/{bad}/history")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            answer.error(),
            ("invalid_argument".into(), Some("id".into())),
            "{bad}"
        );
    }
    let wrong_method = app
        .request(Method::POST, "/api/v1/admin/ad/1/history", &[], None)
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.header("allow"), Some("GET, HEAD"));

    // An ad from before the audit trail existed has an empty history.
    let created = app.post_ad(&ad_body("old")).await;
    let id = created.json()["id"].as_i64().unwrap();
    sqlx::query("DELETE FROM ad_history")
        .execute(&app.db)
        .await
        .unwrap();
    let empty = app.get(&format!("/api/v1/admin/ad/{id}/history")).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.json(), json!({"items": []}));
}

#[tokio::test]
async fn only_read_or_internal_tokens_still_close_the_admin_api() {
    // "Tokens off" means none of any scope: read tokens alone leave nobody
    // able to write.
    let app = TestWriter::spawn_with(|settings| settings.read_tokens = vec![READ.into()]).await;
    assert_eq!(
        app.post_ad(&ad_body("x")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let read = format!("Bearer {READ}");
    let write = app
        .request(
            Method::POST,
            "/api/v1/ad",
            &[
                ("content-type", "application/json"),
                ("authorization", &read),
            ],
            Some(&ad_body("x").to_string()),
        )
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("ads").await, 0);
}

#[tokio::test]
async fn invalid_token_configuration_refuses_to_start_without_naming_the_token() {
    let database = adcast_testing::databases::TestDatabase::create().await;
    let key = adcast_testing::redis::StreamKey::new();
    let mut settings = adcast_testing::writer::settings(
        &database.url(),
        &adcast_testing::redis::redis_url(),
        key.as_str(),
    );
    settings.read_tokens = vec!["not a label:s3cret-value".into()];
    let error = adcast_writer::startup::Application::build(settings.clone())
        .await
        .err()
        .expect("an invalid label is refused");
    let message = format!("{error:#}");
    assert!(message.contains("read token 1"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");

    settings.read_tokens = vec!["shared-secret".into()];
    settings.admin_tokens = vec!["shared-secret".into()];
    let error = adcast_writer::startup::Application::build(settings)
        .await
        .err()
        .expect("one token in two scopes is refused");
    assert!(!format!("{error:#}").contains("shared-secret"), "{error:#}");
}

#[tokio::test]
async fn labels_reach_the_logs_and_tokens_do_not() {
    use std::process::Stdio;
    let database = adcast_testing::databases::TestDatabase::create().await;
    let key = adcast_testing::redis::StreamKey::new();
    let snapshot_dir = adcast_testing::TempDir::new("adcast-scopes-logs");
    let (writer, address) = adcast_testing::processes::start_listening(
        |port| {
            let mut command = crate::writer_command(
                &database.url(),
                &adcast_testing::redis::redis_url(),
                key.as_str(),
                port,
                snapshot_dir.path(),
            );
            command
                .env("ADCAST_ADMIN_TOKENS", "carol:adm-never-logged-1")
                .env(
                    "ADCAST_READ_TOKENS",
                    "dave:read-never-logged-2,read-never-logged-3",
                )
                .env("ADCAST_LOG", "debug")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            command
        },
        "adcast-writer",
    )
    .await;
    let send = |token: &'static str, method: Method| async move {
        let bearer = format!("Bearer {token}");
        adcast_testing::http::send(
            address,
            method,
            "/api/v1/ad",
            &[
                ("content-type", "application/json"),
                ("authorization", bearer.as_str()),
            ],
            Some(bytes::Bytes::from(ad_body("logged?").to_string())),
        )
        .await
    };
    assert_eq!(
        send("adm-never-logged-1", Method::POST).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        send("read-never-logged-2", Method::POST).await.status,
        StatusCode::FORBIDDEN
    );
    let output = writer.kill_with_output();
    let logs = String::from_utf8_lossy(&output.stderr) + String::from_utf8_lossy(&output.stdout);
    assert!(logs.contains("adcast-writer listening"), "captured: {logs}");
    assert!(logs.contains("carol") && logs.contains("dave"), "{logs}");
    assert!(!logs.contains("never-logged"), "a token leaked: {logs}");
}
