use adcast_shared::event::Change;
use http::{Method, StatusCode};
use serde_json::json;

use adcast_testing::writer::{ad_body, TestWriter};

#[tokio::test]
async fn created_ad_is_stored_in_the_outbox_and_in_the_stream_as_seq_0() {
    let app = TestWriter::spawn().await;
    let response = app.post_ad(&ad_body("AD 1")).await;
    assert_eq!(response.status, StatusCode::CREATED);
    let ad = response.json();
    let id = ad["id"].as_i64().unwrap();
    assert_eq!(
        response.header("location"),
        Some(format!("/api/v1/ad/{id}").as_str())
    );
    assert_eq!(response.seq(), 1);
    assert_eq!(
        ad,
        json!({"id": id, "title": "AD 1", "startAt": "2024-01-01T00:00:00.000Z", "endAt": "2099-01-01T00:00:00.000Z",
               "conditions": [{"ageStart": 20, "ageEnd": 30, "country": ["TW"], "platform": ["ios"]}]})
    );

    let title: String = sqlx::query_scalar("SELECT title FROM ads WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(title, "AD 1");
    let payload: Vec<u8> = sqlx::query_scalar("SELECT payload FROM outbox WHERE seq = 1")
        .fetch_one(&app.db)
        .await
        .unwrap();

    let entries = app.wait_for_stream_len(1).await;
    assert_eq!(entries[0].0, "1-0");
    assert_eq!(entries[0].1, payload);
    match Change::decode(&entries[0].1).unwrap() {
        Change::Upsert(stored) => {
            assert_eq!(stored.id.get(), id);
            assert_eq!(stored.title.as_str(), "AD 1");
        }
        other => panic!("expected an upsert, got {other:?}"),
    }
}

#[tokio::test]
async fn get_returns_the_stored_ad_in_canonical_form() {
    let app = TestWriter::spawn().await;
    let body = json!({"title": "Multi", "startAt": "2024-01-01T08:00:00+08:00", "endAt": "2099-01-01T00:00:00.123456Z",
                      "conditions": [{"gender": ["f"]}, {"ageEnd": 17, "platform": []}]});
    let created = app.post_ad(&body).await.json();
    let fetched = app.get(&format!("/api/v1/ad/{}", created["id"])).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.json(), created);
    assert_eq!(created["startAt"], "2024-01-01T00:00:00.000Z");
    assert_eq!(created["endAt"], "2099-01-01T00:00:00.123Z");
    assert_eq!(
        created["conditions"],
        json!([{"gender": ["F"]}, {"ageStart": 1, "ageEnd": 17}])
    );
}

#[tokio::test]
async fn put_replaces_the_ad_and_publishes_an_upsert() {
    let app = TestWriter::spawn().await;
    let id = app.post_ad(&ad_body("before")).await.json()["id"]
        .as_i64()
        .unwrap();
    let replacement = json!({"title": "after", "startAt": "2024-02-01T00:00:00Z", "endAt": "2098-01-01T00:00:00Z"});
    let response = app
        .request(
            Method::PUT,
            &format!("/api/v1/ad/{id}"),
            &[("content-type", "application/json")],
            Some(&replacement.to_string()),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.seq(), 2);
    assert_eq!(response.json()["title"], "after");
    assert_eq!(response.json()["conditions"], json!([]));
    assert_eq!(
        app.get(&format!("/api/v1/ad/{id}")).await.json(),
        response.json()
    );
    let entries = app.wait_for_stream_len(2).await;
    assert!(
        matches!(Change::decode(&entries[1].1).unwrap(), Change::Upsert(ad) if ad.title.as_str() == "after")
    );
}

#[tokio::test]
async fn delete_hides_the_ad_everywhere_and_publishes_a_delete() {
    let app = TestWriter::spawn().await;
    let id = app.post_ad(&ad_body("doomed")).await.json()["id"]
        .as_i64()
        .unwrap();
    let response = app
        .request(Method::DELETE, &format!("/api/v1/ad/{id}"), &[], None)
        .await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert!(response.body.is_empty());
    assert_eq!(response.seq(), 2);

    assert_eq!(
        app.get(&format!("/api/v1/ad/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/api/v1/admin/ad").await.json()["items"], json!([]));
    let again = app
        .request(Method::DELETE, &format!("/api/v1/ad/{id}"), &[], None)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let put = app
        .request(
            Method::PUT,
            &format!("/api/v1/ad/{id}"),
            &[("content-type", "application/json")],
            Some(&ad_body("x").to_string()),
        )
        .await;
    assert_eq!(put.status, StatusCode::NOT_FOUND);

    let entries = app.wait_for_stream_len(2).await;
    assert_eq!(
        Change::decode(&entries[1].1).unwrap(),
        Change::Delete(adcast_shared::ad::AdId::new(id).unwrap())
    );
}

#[tokio::test]
async fn admin_list_pages_by_id_with_a_next_cursor() {
    let app = TestWriter::spawn().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.post_ad(&ad_body(&format!("AD {i}"))).await.json()["id"]
                .as_i64()
                .unwrap(),
        );
    }
    app.request(Method::DELETE, &format!("/api/v1/ad/{}", ids[1]), &[], None)
        .await;

    let first = app.get("/api/v1/admin/ad?limit=2").await.json();
    let first_ids: Vec<_> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ad| ad["id"].as_i64().unwrap())
        .collect();
    assert_eq!(first_ids, vec![ids[0], ids[2]]);
    assert_eq!(first["next"], json!(ids[2]));

    let second = app
        .get(&format!("/api/v1/admin/ad?limit=2&after={}", ids[2]))
        .await
        .json();
    let second_ids: Vec<_> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ad| ad["id"].as_i64().unwrap())
        .collect();
    assert_eq!(second_ids, vec![ids[3], ids[4]]);
    assert_eq!(second["next"], json!(null));

    let all = app.get("/api/v1/admin/ad").await.json();
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
    assert_eq!(all["next"], json!(null));
}

#[tokio::test]
async fn admin_list_rejects_bad_cursors_and_limits() {
    let app = TestWriter::spawn().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("limit=", "limit"),
        ("limit=1&limit=2", "limit"),
        ("limit=+5", "limit"),
        ("after=-1", "after"),
        ("after=x", "after"),
        ("after=", "after"),
    ] {
        let response = app.get(&format!("/api/v1/admin/ad?{query}")).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            response.error(),
            ("invalid_argument".into(), Some(field.into())),
            "{query}"
        );
    }
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let app = TestWriter::spawn().await;
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    app.post_ad(&ad_body("counted")).await;
    app.wait_for_stream_len(1).await;
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    assert!(
        text.contains("adcast_http_requests_total{route=\"/api/v1/ad\",status=\"201\"} 1"),
        "{text}"
    );
    assert!(text.contains("adcast_last_committed_seq 1"), "{text}");
    assert!(
        text.contains("adcast_http_request_duration_seconds_count{route=\"/api/v1/ad\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn graceful_stop_closes_the_listener() {
    let mut app = TestWriter::spawn().await;
    let address = app.address;
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    app.stop().await;
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}
