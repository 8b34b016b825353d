//! Prometheus metrics for the writer, rendered in the text exposition format.
//!
//! Hand-rolled on purpose: a handful of counters, one histogram and a few
//! gauges do not justify a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Default)]
pub struct Metrics {
    /// Requests by (route, status).
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// Latency by route.
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    /// Highest sequence number committed by this process (or seen at start-up).
    pub last_committed_seq: AtomicU64,
    /// Highest sequence number known to be in the stream.
    pub last_published_seq: AtomicU64,
    /// Publish attempts that failed (Redis unreachable or refused).
    pub publish_failures: AtomicU64,
    /// The last snapshot written: sequence number, size in bytes, duration.
    last_snapshot: Mutex<Option<(u64, usize, Duration)>>,
    /// Snapshot attempts that failed.
    pub snapshot_failures: AtomicU64,
}

impl Metrics {
    pub fn record_request(&self, route: &'static str, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .expect("metrics lock poisoned")
            .entry((route, status))
            .or_default() += 1;
        let seconds = elapsed.as_secs_f64();
        let mut latency = self.latency.lock().expect("metrics lock poisoned");
        let histogram = latency.entry(route).or_default();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum_seconds += seconds;
    }

    pub fn note_committed(&self, seq: u64) {
        self.last_committed_seq.fetch_max(seq, Ordering::Relaxed);
    }

    pub fn record_snapshot(&self, seq: u64, bytes: usize, elapsed: Duration) {
        *self.last_snapshot.lock().expect("metrics lock poisoned") = Some((seq, bytes, elapsed));
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP adcast_http_requests_total Admin API requests by route and status.\n");
        out.push_str("# TYPE adcast_http_requests_total counter\n");
        for ((route, status), count) in self.requests.lock().expect("metrics lock poisoned").iter()
        {
            let _ = writeln!(
                out,
                "adcast_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str("# HELP adcast_http_request_duration_seconds Admin API request latency.\n");
        out.push_str("# TYPE adcast_http_request_duration_seconds histogram\n");
        for (route, histogram) in self.latency.lock().expect("metrics lock poisoned").iter() {
            for (count, bound) in histogram.buckets.iter().zip(LATENCY_BUCKETS) {
                let _ = writeln!(
                    out,
                    "adcast_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "adcast_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                 adcast_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                 adcast_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count, histogram.sum_seconds, histogram.count
            );
        }
        let committed = self.last_committed_seq.load(Ordering::Relaxed);
        let published = self.last_published_seq.load(Ordering::Relaxed);
        let gauges = [
            (
                "adcast_last_committed_seq",
                "gauge",
                "Highest change sequence number committed.",
                committed,
            ),
            (
                "adcast_last_published_seq",
                "gauge",
                "Highest change sequence number known to be in the stream.",
                published,
            ),
            (
                "adcast_outbox_backlog",
                "gauge",
                "Committed changes not yet in the stream.",
                committed.saturating_sub(published),
            ),
            (
                "adcast_publish_failures_total",
                "counter",
                "Failed attempts to publish to the stream.",
                self.publish_failures.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
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
        metrics.last_published_seq.store(5, Ordering::Relaxed);
        let text = metrics.render();
        assert!(
            text.contains("adcast_http_requests_total{route=\"POST /api/v1/ad\",status=\"201\"} 1")
        );
        assert!(text.contains("adcast_http_request_duration_seconds_bucket{route=\"POST /api/v1/ad\",le=\"0.0025\"} 0"));
        assert!(text.contains(
            "adcast_http_request_duration_seconds_bucket{route=\"POST /api/v1/ad\",le=\"0.005\"} 1"
        ));
        assert!(text.contains("adcast_outbox_backlog 2"));
    }
}
