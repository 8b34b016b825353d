//! The edge's Prometheus metrics. Lock-free: the request path only touches
//! atomics, so counting costs nothing measurable at full load.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Routes as labelled in metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteLabel {
    Ads,
    Forwarded,
    Operations,
    Unknown,
}

const ROUTES: [(RouteLabel, &str); 4] = [
    (RouteLabel::Ads, "/api/v1/ad"),
    (RouteLabel::Forwarded, "forwarded"),
    (RouteLabel::Operations, "operations"),
    (RouteLabel::Unknown, "unknown"),
];
const STATUSES: [u16; 10] = [200, 201, 204, 304, 400, 401, 404, 405, 503, 500];
const LATENCY_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
];

#[derive(Default)]
pub struct Metrics {
    /// `[route][status slot]`; the last slot counts any other status.
    requests: [[AtomicU64; STATUSES.len() + 1]; ROUTES.len()],
    /// Public API latency: per-bucket counts (not cumulative), then +Inf.
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_nanos: AtomicU64,
    /// Events applied since start.
    pub events_applied: AtomicU64,
    /// Times the edge reloaded a snapshot because of a gap.
    pub resyncs: AtomicU64,
    /// Stream errors (connection lost, timeouts, undecodable entries).
    pub stream_errors: AtomicU64,
    /// The stream's last id as last seen (for lag).
    pub stream_last_seq: AtomicU64,
}

impl Metrics {
    pub fn record(&self, route: RouteLabel, status: u16, elapsed: Duration) {
        let route_slot = ROUTES
            .iter()
            .position(|(r, _)| *r == route)
            .unwrap_or(ROUTES.len() - 1);
        let status_slot = STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(STATUSES.len());
        self.requests[route_slot][status_slot].fetch_add(1, Ordering::Relaxed);
        if route == RouteLabel::Ads {
            let seconds = elapsed.as_secs_f64();
            let bucket = LATENCY_BUCKETS
                .iter()
                .position(|bound| seconds <= *bound)
                .unwrap_or(LATENCY_BUCKETS.len());
            self.latency[bucket].fetch_add(1, Ordering::Relaxed);
            self.latency_sum_nanos
                .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        }
    }

    /// Renders everything; `gauges` are the state-derived values the caller
    /// reads at scrape time (name, help, value).
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP adcast_edge_http_requests_total Requests by route and status.\n");
        out.push_str("# TYPE adcast_edge_http_requests_total counter\n");
        for (route_slot, (_, route)) in ROUTES.iter().enumerate() {
            for (status_slot, count) in self.requests[route_slot].iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count == 0 {
                    continue;
                }
                let status = STATUSES
                    .get(status_slot)
                    .map_or("other".to_owned(), u16::to_string);
                let _ = writeln!(out, "adcast_edge_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}");
            }
        }
        out.push_str("# HELP adcast_edge_request_duration_seconds Public API latency.\n");
        out.push_str("# TYPE adcast_edge_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (bucket, bound) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += self.latency[bucket].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "adcast_edge_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.latency[LATENCY_BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "adcast_edge_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let sum = self.latency_sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "adcast_edge_request_duration_seconds_sum {sum}");
        let _ = writeln!(
            out,
            "adcast_edge_request_duration_seconds_count {cumulative}"
        );
        let counters = [
            (
                "adcast_edge_events_applied_total",
                "Change events applied since start.",
                &self.events_applied,
            ),
            (
                "adcast_edge_resyncs_total",
                "Snapshot reloads after a gap in the stream.",
                &self.resyncs,
            ),
            (
                "adcast_edge_stream_errors_total",
                "Errors reading the stream.",
                &self.stream_errors,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_latency_and_gauges() {
        let metrics = Metrics::default();
        metrics.record(RouteLabel::Ads, 200, Duration::from_micros(80));
        metrics.record(RouteLabel::Ads, 400, Duration::from_micros(30));
        metrics.record(RouteLabel::Unknown, 418, Duration::from_micros(30));
        let text = metrics.render(&[("adcast_edge_applied_seq", "Last change applied.", 7.0)]);
        assert!(
            text.contains("adcast_edge_http_requests_total{route=\"/api/v1/ad\",status=\"200\"} 1")
        );
        assert!(
            text.contains("adcast_edge_http_requests_total{route=\"unknown\",status=\"other\"} 1")
        );
        assert!(text.contains("adcast_edge_request_duration_seconds_bucket{le=\"0.00005\"} 1"));
        assert!(text.contains("adcast_edge_request_duration_seconds_bucket{le=\"0.0001\"} 2"));
        assert!(text.contains("adcast_edge_request_duration_seconds_count 2"));
        assert!(text.contains("adcast_edge_applied_seq 7"));
    }
}
