//! The edge's Prometheus metrics: the counters, and the rendering of every
//! edge metric (counters, and gauges read from the node at scrape time).
//! Lock-free: the request path only touches atomics, so counting costs
//! nothing measurable at full load.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use adcast_shared::timestamp::Timestamp;

use crate::answer_cache::AnswerCache;
use crate::node::Node;

/// Routes as labelled in metrics; the discriminant is the counter slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteLabel {
    Ads = 0,
    Forwarded = 1,
    Operations = 2,
    Unknown = 3,
}

/// The `route` label of each [`RouteLabel`], by slot.
const ROUTES: [&str; 4] = ["/api/v1/ad", "forwarded", "operations", "unknown"];
/// Statuses are counted by their number, one slot each from 100 to 599;
/// anything else (not a valid HTTP status class) shares the `other` slot.
const FIRST_STATUS: u16 = 100;
const STATUS_SLOTS: usize = 500;
const LATENCY_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
];

pub struct Metrics {
    /// `[route][status - 100]`, then one slot for any other status: a
    /// counter per answer without a lookup, whatever status a forwarded
    /// answer carries.
    requests: [[AtomicU64; STATUS_SLOTS + 1]; ROUTES.len()],
    /// Public API latency: per-bucket counts (not cumulative), then +Inf.
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_nanos: AtomicU64,
    /// Events applied since start.
    events_applied: AtomicU64,
    /// Times the edge reloaded a snapshot because of a gap.
    resyncs: AtomicU64,
    /// Stream errors (connection lost, timeouts, undecodable entries).
    stream_errors: AtomicU64,
    /// The stream's last id as last seen (for lag).
    stream_last_seq: AtomicU64,
    /// Poll mode: catch-ups that read the stream (one per single flight,
    /// however many requests waited on it).
    poll_reads: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            latency: Default::default(),
            latency_sum_nanos: AtomicU64::new(0),
            events_applied: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            stream_errors: AtomicU64::new(0),
            stream_last_seq: AtomicU64::new(0),
            poll_reads: AtomicU64::new(0),
        }
    }
}

fn status_slot(status: u16) -> usize {
    usize::from(status.wrapping_sub(FIRST_STATUS)).min(STATUS_SLOTS)
}

impl Metrics {
    /// Counts one answer (and, on the Public API, its latency).
    pub fn record(&self, route: RouteLabel, status: u16, elapsed: Duration) {
        self.requests[route as usize][status_slot(status)].fetch_add(1, Ordering::Relaxed);
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

    pub fn count_events_applied(&self, events: usize) {
        self.events_applied
            .fetch_add(events as u64, Ordering::Relaxed);
    }

    pub fn count_resync(&self) {
        self.resyncs.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_stream_error(&self) {
        self.stream_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_poll_read(&self) {
        self.poll_reads.fetch_add(1, Ordering::Relaxed);
    }

    /// Poll-mode catch-ups since start.
    pub fn poll_reads(&self) -> u64 {
        self.poll_reads.load(Ordering::Relaxed)
    }

    pub fn note_stream_last_seq(&self, seq: u64) {
        self.stream_last_seq.store(seq, Ordering::Relaxed);
    }

    /// Snapshot reloads after a gap since start.
    pub fn resyncs(&self) -> u64 {
        self.resyncs.load(Ordering::Relaxed)
    }

    /// The Prometheus text of every edge metric; gauges are read from
    /// `node` now.
    pub fn render(&self, node: &Node, answers: &AnswerCache) -> String {
        let mut out = String::new();
        out.push_str("# HELP adcast_edge_http_requests_total Requests by route and status.\n");
        out.push_str("# TYPE adcast_edge_http_requests_total counter\n");
        for (route, counts) in ROUTES.iter().zip(&self.requests) {
            for (slot, count) in counts.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count == 0 {
                    continue;
                }
                let _ = write!(
                    out,
                    "adcast_edge_http_requests_total{{route=\"{route}\",status=\""
                );
                if slot < STATUS_SLOTS {
                    let _ = write!(out, "{}", FIRST_STATUS + slot as u16);
                } else {
                    out.push_str("other");
                }
                let _ = writeln!(out, "\"}} {count}");
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
                self.events_applied.load(Ordering::Relaxed),
            ),
            (
                "adcast_edge_answer_cache_hits_total",
                "Public API answers served from the answer cache.",
                answers.hits(),
            ),
            (
                "adcast_edge_answer_cache_misses_total",
                "Public API answers computed with the answer cache on.",
                answers.misses(),
            ),
            (
                "adcast_edge_resyncs_total",
                "Snapshot reloads after a gap in the stream.",
                self.resyncs.load(Ordering::Relaxed),
            ),
            (
                "adcast_edge_stream_errors_total",
                "Errors reading the stream.",
                self.stream_errors.load(Ordering::Relaxed),
            ),
            (
                "adcast_edge_poll_reads_total",
                "Poll mode: catch-up reads of the stream, each shared by the requests that waited on it.",
                self.poll_reads.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let state = node.state();
        let stream_last = self.stream_last_seq.load(Ordering::Relaxed);
        let now = Timestamp::now().as_millis();
        let gauges = [
            (
                "adcast_edge_applied_seq",
                "Sequence number of the last change applied.",
                state.seq as f64,
            ),
            (
                "adcast_edge_lag_events",
                "Changes in the stream not yet applied here (as of the last look).",
                stream_last.saturating_sub(state.seq) as f64,
            ),
            (
                "adcast_edge_stream_silence_seconds",
                "Seconds since the stream was last heard from (-1: never).",
                node.stream_silence()
                    .map_or(-1.0, |silence| silence.as_secs_f64()),
            ),
            (
                "adcast_edge_staleness_seconds",
                "Seconds since the newest writer heartbeat whose change is applied here (-1: none yet).",
                node.freshness().staleness_seconds(Timestamp::now()),
            ),
            (
                "adcast_edge_snapshot_age_seconds",
                "Age of the snapshot the current state was started from.",
                node.snapshot_created_at()
                    .map_or(-1.0, |created| (now - created.as_millis()) as f64 / 1000.0),
            ),
            (
                "adcast_edge_ads",
                "Ads held (not ended at the last rebuild).",
                state.index.len() as f64,
            ),
            (
                "adcast_edge_index_entries",
                "Condition-group entries in the index.",
                state.index.entries() as f64,
            ),
            (
                "adcast_edge_index_bitset_bytes",
                "Bytes held by the index bitsets.",
                state.index.bitset_bytes() as f64,
            ),
            (
                "adcast_edge_ready",
                "1 when /readyz answers 200.",
                if node.is_ready() { 1.0 } else { 0.0 },
            ),
        ];
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
    use crate::state::LoadedSnapshot;
    use adcast_shared::snapshot::Snapshot;

    fn node_at(seq: u64) -> std::sync::Arc<Node> {
        let node = Node::new(Duration::from_secs(15));
        let snapshot = Snapshot {
            seq,
            created_at: Timestamp::now(),
            ads: Vec::new(),
        };
        node.install_snapshot(LoadedSnapshot::from_snapshot(snapshot, Timestamp::now()));
        node
    }

    #[test]
    fn renders_requests_latency_and_gauges() {
        let metrics = Metrics::default();
        metrics.record(RouteLabel::Ads, 200, Duration::from_micros(80));
        metrics.record(RouteLabel::Ads, 400, Duration::from_micros(30));
        let text = metrics.render(&node_at(7), &AnswerCache::new(4));
        assert!(
            text.contains("adcast_edge_http_requests_total{route=\"/api/v1/ad\",status=\"200\"} 1")
        );
        assert!(text.contains("adcast_edge_request_duration_seconds_bucket{le=\"0.00005\"} 1"));
        assert!(text.contains("adcast_edge_request_duration_seconds_bucket{le=\"0.0001\"} 2"));
        assert!(text.contains("adcast_edge_request_duration_seconds_count 2"));
        assert!(text.contains("adcast_edge_applied_seq 7"));
        assert!(
            text.contains("adcast_edge_ready 0"),
            "the stream was never reached"
        );
    }

    #[test]
    fn every_status_is_counted_by_its_number() {
        let metrics = Metrics::default();
        for status in [100, 403, 405, 409, 413, 415, 418, 429, 502, 504, 599] {
            metrics.record(RouteLabel::Forwarded, status, Duration::ZERO);
        }
        metrics.record(RouteLabel::Unknown, 600, Duration::ZERO);
        let text = metrics.render(&node_at(1), &AnswerCache::new(4));
        for status in [100, 403, 405, 409, 413, 415, 418, 429, 502, 504, 599] {
            let line = format!(
                "adcast_edge_http_requests_total{{route=\"forwarded\",status=\"{status}\"}} 1"
            );
            assert!(text.contains(&line), "missing {line} in\n{text}");
        }
        assert!(
            text.contains("adcast_edge_http_requests_total{route=\"unknown\",status=\"other\"} 1"),
            "outside 100-599 is other"
        );
        assert!(!text.contains("route=\"forwarded\",status=\"other\""));
    }
}
