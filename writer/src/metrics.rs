//! The writer's Prometheus metrics: a `prometheus-client` registry, rendered
//! at `/metrics` in the Prometheus text format (0.0.4).
//!
//! Names and label names are a contract (dashboards and alarms use them);
//! the crate adds the `_total` suffix of counters and the unit suffix of
//! metrics registered with a unit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteOnly {
    route: &'static str,
}

type SeqGauge = Gauge<u64, AtomicU64>;

pub struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    latency: Family<RouteOnly, Histogram, fn() -> Histogram>,
    /// Highest sequence number committed by this process (or seen at
    /// start-up, or read from the database when another writer is ahead).
    last_committed_seq: SeqGauge,
    /// Highest sequence number known to be in the stream.
    last_published_seq: SeqGauge,
    /// Derived from the two above when rendered.
    outbox_backlog: SeqGauge,
    publish_failures: Counter,
    snapshot_last_seq: SeqGauge,
    snapshot_bytes: SeqGauge,
    /// How long the last snapshot took (a gauge: one value per snapshot,
    /// minutes apart, is what an operator looks at).
    snapshot_duration: Gauge<f64, AtomicU64>,
    snapshot_failures: Counter,
    /// Newest snapshot in the object store (`--snapshot-store`).
    snapshot_store_last_seq: SeqGauge,
    snapshot_store_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let metrics = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            last_committed_seq: Gauge::default(),
            last_published_seq: Gauge::default(),
            outbox_backlog: Gauge::default(),
            publish_failures: Counter::default(),
            snapshot_last_seq: Gauge::default(),
            snapshot_bytes: Gauge::default(),
            snapshot_duration: Gauge::default(),
            snapshot_failures: Counter::default(),
            snapshot_store_last_seq: Gauge::default(),
            snapshot_store_failures: Counter::default(),
        };
        metrics.registered()
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Metrics {
    fn registered(mut self) -> Metrics {
        let registry = &mut self.registry;
        registry.register(
            "adcast_http_requests",
            "Admin API requests by route and status",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "adcast_http_request_duration",
            "Admin API request latency",
            Unit::Seconds,
            self.latency.clone(),
        );
        registry.register(
            "adcast_last_committed_seq",
            "Highest change sequence number committed",
            self.last_committed_seq.clone(),
        );
        registry.register(
            "adcast_last_published_seq",
            "Highest change sequence number known to be in the stream",
            self.last_published_seq.clone(),
        );
        registry.register(
            "adcast_outbox_backlog",
            "Committed changes not yet in the stream",
            self.outbox_backlog.clone(),
        );
        registry.register(
            "adcast_publish_failures",
            "Failed attempts to publish to the stream",
            self.publish_failures.clone(),
        );
        registry.register(
            "adcast_snapshot_last_seq",
            "Sequence number of the last snapshot written",
            self.snapshot_last_seq.clone(),
        );
        registry.register_with_unit(
            "adcast_snapshot",
            "Size of the last snapshot written",
            Unit::Bytes,
            self.snapshot_bytes.clone(),
        );
        registry.register_with_unit(
            "adcast_snapshot_duration",
            "How long writing the last snapshot took",
            Unit::Seconds,
            self.snapshot_duration.clone(),
        );
        registry.register(
            "adcast_snapshot_failures",
            "Snapshot attempts that failed",
            self.snapshot_failures.clone(),
        );
        registry.register(
            "adcast_snapshot_store_last_seq",
            "Sequence number of the newest snapshot uploaded to the object store (the pointer's)",
            self.snapshot_store_last_seq.clone(),
        );
        registry.register(
            "adcast_snapshot_store_failures",
            "Failed uploads of a snapshot or its pointer to the object store (the stream is not trimmed until one succeeds)",
            self.snapshot_store_failures.clone(),
        );
        self
    }

    pub fn record_request(&self, route: &'static str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RouteStatus { route, status })
            .inc();
        self.latency
            .get_or_create(&RouteOnly { route })
            .observe(elapsed.as_secs_f64());
    }

    /// A commit at `seq` (or a higher one seen elsewhere); never goes down.
    pub fn note_committed(&self, seq: u64) {
        self.last_committed_seq
            .inner()
            .fetch_max(seq, Ordering::Relaxed);
    }

    /// What the stream holds now; may go down (Redis lost data).
    pub fn note_published(&self, seq: u64) {
        self.last_published_seq.set(seq);
    }

    pub fn publish_failed(&self) {
        self.publish_failures.inc();
    }

    pub fn record_snapshot(&self, seq: u64, bytes: usize, elapsed: Duration) {
        self.snapshot_last_seq.set(seq);
        self.snapshot_bytes.set(bytes as u64);
        self.snapshot_duration.set(elapsed.as_secs_f64());
    }

    pub fn snapshot_failed(&self) {
        self.snapshot_failures.inc();
    }

    pub fn record_snapshot_stored(&self, seq: u64) {
        self.snapshot_store_last_seq.set(seq);
    }

    pub fn snapshot_store_failed(&self) {
        self.snapshot_store_failures.inc();
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let backlog = self
            .last_committed_seq
            .get()
            .saturating_sub(self.last_published_seq.get());
        self.outbox_backlog.set(backlog);
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_backlog() {
        let metrics = Metrics::default();
        metrics.record_request("POST /api/v1/ad", 201, Duration::from_millis(3));
        metrics.note_committed(7);
        metrics.note_published(5);
        let text = metrics.render();
        assert!(
            text.contains("adcast_http_requests_total{route=\"POST /api/v1/ad\",status=\"201\"} 1"),
            "{text}"
        );
        assert!(text.contains("adcast_http_request_duration_seconds_bucket{route=\"POST /api/v1/ad\",le=\"0.0025\"} 0"), "{text}");
        assert!(text.contains(
            "adcast_http_request_duration_seconds_bucket{route=\"POST /api/v1/ad\",le=\"0.005\"} 1"
        ), "{text}");
        assert!(text.contains("adcast_outbox_backlog 2"), "{text}");
    }

    #[test]
    fn renders_the_last_snapshot_and_failures() {
        let metrics = Metrics::default();
        metrics.record_snapshot(42, 1234, Duration::from_millis(250));
        metrics.snapshot_failed();
        let text = metrics.render();
        for line in [
            "adcast_snapshot_last_seq 42",
            "adcast_snapshot_bytes 1234",
            "adcast_snapshot_duration_seconds 0.25",
            "adcast_snapshot_failures_total 1",
            "# TYPE adcast_snapshot_failures_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn a_published_sequence_number_can_go_down() {
        let metrics = Metrics::default();
        metrics.note_published(9);
        metrics.note_published(3);
        metrics.note_committed(9);
        metrics.note_committed(4);
        let text = metrics.render();
        assert!(
            text.lines().any(|l| l == "adcast_last_published_seq 3"),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l == "adcast_last_committed_seq 9"),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l == "adcast_outbox_backlog 6"),
            "{text}"
        );
    }
}
