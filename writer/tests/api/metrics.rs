//! `/metrics` of a real writer: every documented name, with a value that
//! fits what the writer did.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use http::StatusCode;

use adcast_testing::writer::{ad_body, TestWriter};

/// `series → value` for every sample line, and `name → type` from the
/// `# TYPE` lines.
fn parse(text: &str) -> (BTreeMap<String, f64>, BTreeMap<String, String>) {
    let mut samples = BTreeMap::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if let Some(declaration) = line.strip_prefix("# TYPE ") {
            let (name, kind) = declaration.split_once(' ').expect("# TYPE name kind");
            types.insert(name.to_owned(), kind.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (series, value) = line.rsplit_once(' ').expect("series value");
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("a number in {line:?}"));
            samples.insert(series.to_owned(), value);
        }
    }
    (samples, types)
}

async fn scrape(app: &TestWriter) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    String::from_utf8(response.body.to_vec()).unwrap()
}

#[tokio::test]
async fn metrics_report_requests_publishing_and_the_last_snapshot() {
    // A snapshot after every change, so the create is followed by one.
    let app = TestWriter::spawn_with(|settings| settings.snapshot_every_changes = 1).await;
    let created = app.post_ad(&ad_body("measured")).await;
    assert_eq!(created.status, StatusCode::CREATED);
    app.wait_for_stream_len(1).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = scrape(&app).await;
        if text
            .lines()
            .any(|line| line == "adcast_snapshot_last_seq 1")
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot after the create:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (samples, types) = parse(&text);
    let value = |series: &str| -> f64 {
        *samples
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };

    for (name, kind) in [
        ("adcast_http_requests_total", "counter"),
        ("adcast_http_request_duration_seconds", "histogram"),
        ("adcast_last_committed_seq", "gauge"),
        ("adcast_last_published_seq", "gauge"),
        ("adcast_outbox_backlog", "gauge"),
        ("adcast_publish_failures_total", "counter"),
        ("adcast_snapshot_last_seq", "gauge"),
        ("adcast_snapshot_bytes", "gauge"),
        ("adcast_snapshot_duration_seconds", "gauge"),
        ("adcast_snapshot_failures_total", "counter"),
    ] {
        assert_eq!(types.get(name).map(String::as_str), Some(kind), "{name}");
    }

    assert_eq!(
        value(r#"adcast_http_requests_total{route="/api/v1/ad",status="201"}"#),
        1.0
    );
    let create = r#"{route="/api/v1/ad"}"#;
    assert_eq!(
        value(&format!(
            "adcast_http_request_duration_seconds_count{create}"
        )),
        1.0
    );
    assert_eq!(
        value(r#"adcast_http_request_duration_seconds_bucket{route="/api/v1/ad",le="+Inf"}"#),
        1.0
    );
    let took = value(&format!("adcast_http_request_duration_seconds_sum{create}"));
    assert!(took > 0.0 && took < 10.0, "a create took {took} s");

    assert_eq!(value("adcast_last_committed_seq"), 1.0);
    assert_eq!(value("adcast_last_published_seq"), 1.0);
    assert_eq!(value("adcast_outbox_backlog"), 0.0);
    assert_eq!(value("adcast_publish_failures_total"), 0.0);

    let newest = adcast_shared::snapshot::list_files(&app.snapshot_dir).unwrap()[0]
        .1
        .clone();
    assert_eq!(
        value("adcast_snapshot_bytes"),
        std::fs::metadata(&newest).unwrap().len() as f64,
        "the size of the file written at seq 1"
    );
    let duration = value("adcast_snapshot_duration_seconds");
    assert!(
        duration > 0.0 && duration < 30.0,
        "a snapshot took {duration} s"
    );
    assert_eq!(value("adcast_snapshot_failures_total"), 0.0);
}
