//! Import and export (docs/api.md, "Ad operations"): all or nothing, in
//! order, bounded, idempotent; export streams what import takes back.

use adcast_shared::event::Change;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use adcast_testing::http::TestResponse;
use adcast_testing::writer::TestWriter;

const IMPORT: &str = "/api/v1/admin/ad/import";
const EXPORT: &str = "/api/v1/admin/ad/export";

fn line(i: usize) -> Value {
    json!({"title": format!("AD {i}"), "startAt": "2024-01-01T00:00:00Z",
           "endAt": "2099-01-01T00:00:00Z", "conditions": {"gender": "F", "country": ["TW", "tw"]}})
}

fn ndjson(ads: &[Value]) -> String {
    ads.iter().map(|ad| format!("{ad}\n")).collect()
}

async fn import(app: &TestWriter, media_type: &str, body: &str, key: Option<&str>) -> TestResponse {
    let mut headers = vec![("content-type", media_type)];
    if let Some(key) = key {
        headers.push(("idempotency-key", key));
    }
    app.request(Method::POST, IMPORT, &headers, Some(body))
        .await
}

async fn export(app: &TestWriter) -> (Vec<Value>, TestResponse) {
    let response = app.get(EXPORT).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.header("content-type"),
        Some("application/x-ndjson")
    );
    let text = std::str::from_utf8(&response.body).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'));
    let ads = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (ads, response)
}

#[tokio::test]
async fn an_import_stores_every_ad_in_order_with_its_own_id_and_seq() {
    let app = TestWriter::spawn().await;
    let before = app.post_ad(&line(0)).await.json()["id"].as_i64().unwrap();
    let ads: Vec<Value> = (1..=50).map(line).collect();
    let response = import(
        &app,
        "application/json",
        &Value::from(ads.clone()).to_string(),
        None,
    )
    .await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    let answer = response.json();
    assert_eq!(answer["created"], 50);
    assert_eq!(answer["seq"], 51);
    assert_eq!(response.seq(), 51);
    let ids: Vec<i64> = answer["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]) && ids[0] > before);
    for (i, id) in ids.iter().enumerate() {
        let stored = app.get(&format!("/api/v1/ad/{id}")).await.json();
        assert_eq!(stored["title"], format!("AD {}", i + 1));
        assert_eq!(
            stored["conditions"],
            json!([{"gender": ["F"], "country": ["TW"]}])
        );
    }
    // One event per ad, in order: seq 2..51 upsert ids[0..50].
    let entries = app.wait_for_stream_len(51).await;
    for (i, (entry, payload)) in entries[1..].iter().enumerate() {
        assert_eq!(entry, &format!("{}-0", i + 2));
        match Change::decode(payload).unwrap() {
            Change::Upsert(ad) => assert_eq!(ad.id.get(), ids[i]),
            other => panic!("expected an upsert, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn ndjson_skips_blank_lines_ignores_ids_and_keeps_ended_ads() {
    let app = TestWriter::spawn().await;
    let ended = json!({"id": 77, "title": "old", "startAt": "2020-01-01T00:00:00Z", "endAt": "2021-01-01T00:00:00Z"});
    let body = format!("{}\r\n\n   \n{ended}\n\n", line(1));
    let response = import(&app, "application/x-ndjson; charset=utf-8", &body, None).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    let ids = response.json()["ids"].clone();
    assert_eq!(ids.as_array().unwrap().len(), 2);
    assert_ne!(ids[1], 77, "the id in a line is ignored");
    let old = app.get(&format!("/api/v1/ad/{}", ids[1])).await.json();
    assert_eq!(old["endAt"], "2021-01-01T00:00:00.000Z");
}

#[tokio::test]
async fn one_invalid_ad_among_ten_thousand_stores_nothing() {
    let app = TestWriter::spawn().await;
    let mut ads: Vec<Value> = (0..10_000).map(line).collect();
    // Line 9,999 (index 9,998) ends before it starts.
    ads[9_998]["endAt"] = json!("2023-01-01T00:00:00Z");
    let response = import(&app, "application/x-ndjson", &ndjson(&ads), None).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        response.error(),
        ("invalid_argument".into(), Some("[9998].endAt".into()))
    );
    assert_eq!(app.count("ads").await, 0);
    assert_eq!(app.count("outbox").await, 0);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(app.stream_entries().await.is_empty());
    let seq: i64 = sqlx::query_scalar("SELECT last_seq FROM change_sequence")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(seq, 0, "no sequence number was used");
}

#[tokio::test]
async fn ten_thousand_ads_import_in_one_request() {
    let app = TestWriter::spawn().await;
    let ads: Vec<Value> = (0..10_000).map(line).collect();
    let started = std::time::Instant::now();
    let response = import(&app, "application/x-ndjson", &ndjson(&ads), None).await;
    let took = started.elapsed();
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(response.json()["created"], 10_000);
    assert_eq!(app.count("ads").await, 10_000);
    assert_eq!(app.count("outbox").await, 10_000);
    eprintln!("10,000 ads imported in {took:?} (debug build)");
}

#[tokio::test]
async fn errors_name_the_ad_by_its_index() {
    let app = TestWriter::spawn().await;
    let mut bad_country = line(2);
    bad_country["conditions"] = json!([{"gender": ["F"]}, {"country": ["ZZ"]}]);
    for (body, media_type, field) in [
        (format!("[{}, 5]", line(0)), "application/json", Some("[1]")),
        (
            format!("[{}, {}, {bad_country}]", line(0), line(1)),
            "application/json",
            Some("[2].conditions[1].country"),
        ),
        (
            format!("[{}, {{\"title\": 1}}]", line(0)),
            "application/json",
            Some("[1].title"),
        ),
        (
            format!("{}\n\n{{\"title\":\"x\",\"colour\":1}}\n", line(0)),
            "application/x-ndjson",
            Some("[1].colour"),
        ),
        (
            format!("{}\nnot json\n", line(0)),
            "application/x-ndjson",
            Some("[1]"),
        ),
        (
            format!("[{}, {{\"title\" \"x\"}}]", line(0)),
            "application/json",
            Some("[1]"),
        ),
        ("{\"title\":\"a\"}".into(), "application/json", None),
        (format!("[{}] trailing", line(0)), "application/json", None),
        ("[]".into(), "application/json", None),
        ("\n\n".into(), "application/x-ndjson", None),
    ] {
        let response = import(&app, media_type, &body, None).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(response.error().1.as_deref(), field, "{body}");
    }
    assert_eq!(app.count("ads").await, 0);
}

#[tokio::test]
async fn more_than_ten_thousand_ads_or_sixteen_mib_is_413() {
    let app = TestWriter::spawn().await;
    let tiny =
        json!({"title": "x", "startAt": "2024-01-01T00:00:00Z", "endAt": "2099-01-01T00:00:00Z"});
    let many: Vec<Value> = (0..10_001).map(|_| tiny.clone()).collect();
    for (media_type, body) in [
        ("application/x-ndjson", ndjson(&many)),
        ("application/json", Value::from(many.clone()).to_string()),
    ] {
        let response = import(&app, media_type, &body, None).await;
        assert_eq!(
            response.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{media_type}"
        );
        assert_eq!(response.error().0, "payload_too_large");
    }
    let huge = format!("[{}]", "\"x\",".repeat(4_300_000) + "1");
    assert!(huge.len() > 16 * 1024 * 1024);
    let response = import(&app, "application/json", &huge, None).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.count("ads").await, 0);
}

#[tokio::test]
async fn a_chunked_body_over_sixteen_mib_is_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestWriter::spawn().await;
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    stream
        .write_all(
            b"POST /api/v1/admin/ad/import HTTP/1.1\r\nhost: test\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let chunk = "\n".repeat(1024 * 1024);
    let mut answer = String::new();
    for _ in 0..17 {
        if stream
            .write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
            .await
            .is_err()
        {
            break; // the server answered and stopped reading
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let _ = stream.read_to_string(&mut answer).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"));
}

#[tokio::test]
async fn other_media_types_are_415() {
    let app = TestWriter::spawn().await;
    let response = import(&app, "text/plain", &ndjson(&[line(0)]), None).await;
    assert_eq!(response.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(response.error().0, "unsupported_media_type");
}

#[tokio::test]
async fn a_retry_with_the_same_key_replays_whatever_the_format_and_another_body_is_409() {
    let app = TestWriter::spawn().await;
    let ads: Vec<Value> = (0..3).map(line).collect();
    let first = import(&app, "application/x-ndjson", &ndjson(&ads), Some("batch-1")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    // The same ads as a pretty JSON array: the same request.
    let pretty = serde_json::to_string_pretty(&ads).unwrap();
    let retry = import(&app, "application/json", &pretty, Some("batch-1")).await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.seq(), first.seq());
    assert_eq!(app.count("ads").await, 3);
    let other = import(
        &app,
        "application/x-ndjson",
        &ndjson(&ads[..2]),
        Some("batch-1"),
    )
    .await;
    assert_eq!(other.status, StatusCode::CONFLICT);
    // A refused import is its key's first answer too.
    let bad = format!("{}\n{{\"title\":\"\"}}\n", line(9));
    let refused = import(&app, "application/x-ndjson", &bad, Some("batch-2")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let again = import(&app, "application/x-ndjson", &bad, Some("batch-2")).await;
    assert_eq!(again.body, refused.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.count("ads").await, 3);
}

#[tokio::test]
async fn export_streams_every_live_ad_by_id_in_canonical_form() {
    let app = TestWriter::spawn().await;
    let ended = json!({"title": "ended", "startAt": "2020-01-01T00:00:00Z", "endAt": "2021-01-01T00:00:00Z"});
    let mut ads: Vec<Value> = (0..2_500).map(line).collect();
    ads.insert(3, ended);
    let created = import(&app, "application/x-ndjson", &ndjson(&ads), None).await;
    let ids = created.json()["ids"].clone();
    app.request(Method::DELETE, &format!("/api/v1/ad/{}", ids[0]), &[], None)
        .await;
    let (exported, response) = export(&app).await;
    assert_eq!(response.seq(), 2_502);
    assert_eq!(
        exported.len(),
        2_500,
        "the deleted ad is left out, the ended one kept"
    );
    let exported_ids: Vec<i64> = exported
        .iter()
        .map(|ad| ad["id"].as_i64().unwrap())
        .collect();
    assert!(exported_ids.windows(2).all(|pair| pair[0] < pair[1]));
    assert_eq!(exported[2]["title"], "ended");
    assert_eq!(
        exported[0]["conditions"],
        json!([{"gender": ["F"], "country": ["TW"]}])
    );
    let one = app
        .get(&format!("/api/v1/ad/{}", exported_ids[0]))
        .await
        .json();
    assert_eq!(exported[0], one, "each line is the ad as GET shows it");
}

#[tokio::test]
async fn export_output_imports_again_unchanged() {
    let source = TestWriter::spawn().await;
    let mut ads: Vec<Value> = (0..30).map(line).collect();
    ads.push(json!({"title": "groups", "startAt": "2024-01-01T00:00:00+08:00", "endAt": "2030-01-01T00:00:00.123456Z",
                    "conditions": [{"ageStart": 20}, {"platform": "web", "country": "UK"}]}));
    import(&source, "application/x-ndjson", &ndjson(&ads), None).await;
    let first = source.get(EXPORT).await;
    let target = TestWriter::spawn().await;
    let text = std::str::from_utf8(&first.body).unwrap();
    let imported = import(&target, "application/x-ndjson", text, None).await;
    assert_eq!(imported.status, StatusCode::CREATED, "{:?}", imported.body);
    let (again, _) = export(&target).await;
    let (original, _) = export(&source).await;
    let without_ids = |ads: Vec<Value>| {
        ads.into_iter()
            .map(|mut ad| {
                ad.as_object_mut().unwrap().remove("id");
                ad
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(without_ids(again), without_ids(original));
}

#[tokio::test]
async fn export_of_an_empty_catalog_is_empty() {
    let app = TestWriter::spawn().await;
    let (ads, response) = export(&app).await;
    assert!(ads.is_empty());
    assert_eq!(response.seq(), 0);
}
