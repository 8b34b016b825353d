use std::collections::HashMap;

use adcast_shared::event::Change;
use http::StatusCode;

use adcast_testing::writer::{ad_body, TestWriter};

#[tokio::test]
async fn concurrent_creates_get_gapless_sequence_numbers_in_stream_order() {
    // 200 creates queue behind one lock on a pool of 20 connections: on a
    // loaded machine the default 3 s wait for a connection can run out, and
    // a 503 is not what this test is about.
    let app = TestWriter::spawn_with(|settings| settings.db_acquire_timeout_ms = 60_000).await;
    let responses = futures_util::future::join_all((0..200).map(|i| {
        let app = &app;
        async move { app.post_ad(&ad_body(&format!("AD {i}"))).await }
    }))
    .await;
    let mut seq_to_id = HashMap::new();
    for response in &responses {
        assert_eq!(response.status, StatusCode::CREATED);
        seq_to_id.insert(response.seq(), response.json()["id"].as_i64().unwrap());
    }
    let mut seqs: Vec<u64> = seq_to_id.keys().copied().collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=200).collect::<Vec<u64>>(),
        "sequence numbers are 1..200 with no gap or repeat"
    );

    let entries = app.wait_for_stream_len(200).await;
    for (position, (entry_id, payload)) in entries.iter().enumerate() {
        let seq = position as u64 + 1;
        assert_eq!(entry_id, &format!("{seq}-0"));
        let change = Change::decode(payload).unwrap();
        assert_eq!(
            change.ad_id().get(),
            seq_to_id[&seq],
            "entry {seq} carries the change answered with Adcast-Seq {seq}"
        );
    }
}
