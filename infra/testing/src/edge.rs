//! Real edges in-process on random ports, each with a data directory of its
//! own that is removed afterwards, once the edge can no longer write to it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use adcast_edge::config::{LogFormat, Settings, SyncMode};
use adcast_edge::data_dir::DataDir;
use adcast_edge::metrics::Metrics;
use adcast_edge::node::Node;
use adcast_edge::Application;
use http::Method;
use tokio::sync::oneshot;

use crate::http::{send, TestResponse};
use crate::redis::redis_url;
use crate::writer::TestWriter;

/// Edge settings for a test: loopback on a random port, a fresh data
/// directory, short XREAD blocks, generous waits.
pub fn edge_settings(redis_url: &str, stream_key: &str) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        redis_url: redis_url.to_owned(),
        stream_key: stream_key.to_owned(),
        sync: SyncMode::Stream,
        max_staleness_ms: 250,
        catch_up_timeout_ms: 200,
        writer_url: None,
        writer_token: None,
        writer_token_file: None,
        snapshot: None,
        data_dir: std::env::temp_dir().join(crate::unique("adcast-test-edge")),
        index_image: true,
        worker_threads: None,
        min_seq_wait_ms: 3_000,
        cache_max_age_secs: 5,
        // As by default: every system test that writes and then reads also
        // checks that no kept answer outlives its state.
        answer_cache_entries: 4096,
        ready_max_lag_ms: 15_000,
        xread_block_ms: 500,
        persist_interval_secs: 3_600,
        header_read_timeout_ms: 5_000,
        max_connections: 10_000,
        log_format: LogFormat::Text,
        log: "warn".into(),
    }
}

/// Settings for an edge following `writer`'s stream on the shared Redis,
/// with no forwarding.
pub fn following(writer: &TestWriter) -> Settings {
    edge_settings(&redis_url(), &writer.stream_key)
}

/// Settings for an edge following `writer`'s stream, forwarding to it.
pub fn settings_for(writer: &TestWriter) -> Settings {
    let mut settings = following(writer);
    settings.writer_url = Some(format!("http://{}", writer.address));
    settings
}

pub struct TestEdge {
    pub address: SocketAddr,
    pub node: Arc<Node>,
    pub metrics: Arc<Metrics>,
    /// Removed on drop unless [`TestEdge::keep_data_dir`] was called.
    pub data_dir: PathBuf,
    /// Closed on drop, which waits for the edge's file writes in flight.
    files: Arc<DataDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestEdge {
    pub async fn start(settings: Settings) -> TestEdge {
        let data_dir = settings.data_dir.clone();
        let app = Application::build(settings).await.expect("edge starts");
        let address = app.local_addr();
        let node = app.node();
        let metrics = app.metrics();
        let files = app.data_dir();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        TestEdge {
            address,
            node,
            metrics,
            data_dir,
            files,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Graceful stop, as on SIGTERM (persists the state).
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        send(self.address, Method::GET, path, &[], None).await
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> TestResponse {
        send(
            self.address,
            method,
            path,
            headers,
            body.map(|b| bytes::Bytes::from(b.to_owned())),
        )
        .await
    }

    /// Keeps the data directory after this edge is dropped (for a restart).
    pub fn keep_data_dir(&mut self) -> PathBuf {
        std::mem::take(&mut self.data_dir)
    }

    /// Waits until the edge has applied `seq`.
    pub async fn wait_for_seq(&self, seq: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.node.state().seq < seq {
            assert!(
                tokio::time::Instant::now() < deadline,
                "edge stuck at {} waiting for {seq}",
                self.node.state().seq
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Titles of `GET /api/v1/ad?<query>`, in answer order.
    pub async fn titles(&self, query: &str) -> Vec<String> {
        let response = self.get(&format!("/api/v1/ad?{query}")).await;
        assert_eq!(
            response.status,
            http::StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        response.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["title"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for TestEdge {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        // The edge's file writes run on the blocking pool and outlive the
        // aborted task; removing the directory before they end would let
        // one recreate it. Closing waits for them and refuses later ones.
        // It is awaited on a thread of its own: this one may be the test
        // runtime's only thread, and the writes do not need it.
        let files = self.files.clone();
        let data_dir = std::mem::take(&mut self.data_dir);
        let cleanup = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime for closing the data directory")
                .block_on(files.close());
            if !data_dir.as_os_str().is_empty() {
                let _ = std::fs::remove_dir_all(&data_dir);
            }
        });
        let _ = cleanup.join();
    }
}

/// A create body with a given window and conditions.
pub fn ad(title: &str, start: &str, end: &str, conditions: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"title": title, "startAt": start, "endAt": end, "conditions": conditions})
}
