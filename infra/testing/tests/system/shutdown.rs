//! An edge going away: it stops writing into its data directory before the
//! directory is removed, so a test run leaves nothing behind.

use std::time::Duration;

use adcast_testing::edge::{settings_for, TestEdge};
use adcast_testing::writer::{ad_body, TestWriter};

#[tokio::test]
async fn a_dropped_edge_leaves_no_data_directory_even_mid_download() {
    let writer = TestWriter::spawn().await;
    for i in 0..50 {
        writer.post_ad(&ad_body(&format!("ad {i}"))).await;
    }
    writer.wait_for_stream_len(50).await;
    writer.producer(5).produce().await.unwrap();
    // Dropped at different points of its first download from the writer
    // (and of saving it): each time the directory ends up removed.
    for delay_ms in [0, 1, 2, 5, 10, 20, 50] {
        let edge = TestEdge::start(settings_for(&writer)).await;
        let data_dir = edge.data_dir.clone();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        drop(edge);
        // Time for anything the edge left running to write once more.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !data_dir.exists(),
            "dropped after {delay_ms} ms: {} is still there",
            data_dir.display()
        );
    }
}
