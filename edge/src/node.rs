//! The running node: the current serving state and what reports on it.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use adcast_shared::timestamp::Timestamp;
use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::config::Settings;
use crate::forward::HttpClient;
use crate::freshness::Freshness;
use crate::metrics::Metrics;
use crate::state::ServingState;

pub struct Node {
    /// The state queries read; replaced whole, never mutated.
    state: ArcSwap<ServingState>,
    /// The applied sequence number, for `Adcast-Min-Seq` and forwarded
    /// writes to wait on.
    applied: watch::Sender<u64>,
    /// When the tailer last heard from Redis (ms since epoch; 0 = never).
    last_stream_contact: AtomicI64,
    /// Creation time of the snapshot the current state descends from.
    snapshot_created_at: AtomicI64,
    /// Set while a gap is known and no newer snapshot was found yet: the
    /// state is stale (a true prefix of history) and the node is not ready.
    pub resync_pending: AtomicBool,
    /// How current the applied state is, from the writer's heartbeat.
    pub freshness: Freshness,
    pub metrics: Metrics,
    pub settings: Settings,
    /// Client for the writer (forwarding, snapshot download).
    pub writer: Option<WriterLink>,
}

/// How to reach the writer.
pub struct WriterLink {
    pub url: String,
    pub token: Option<String>,
    pub client: HttpClient,
}

impl Node {
    pub fn new(settings: Settings, writer: Option<WriterLink>) -> Arc<Node> {
        let (applied, _) = watch::channel(0);
        Arc::new(Node {
            state: ArcSwap::from_pointee(ServingState::unloaded()),
            applied,
            last_stream_contact: AtomicI64::new(0),
            snapshot_created_at: AtomicI64::new(0),
            resync_pending: AtomicBool::new(false),
            freshness: Freshness::default(),
            metrics: Metrics::default(),
            settings,
            writer,
        })
    }

    /// The current state; cheap, lock-free.
    pub fn state(&self) -> Arc<ServingState> {
        self.state.load_full()
    }

    /// Installs a new state (from the tailer, a snapshot load or a resync).
    pub fn install(&self, state: ServingState) {
        let seq = state.seq;
        self.state.store(Arc::new(state));
        self.applied.send_replace(seq);
    }

    pub fn note_snapshot_loaded(&self, created_at: Timestamp) {
        self.snapshot_created_at
            .store(created_at.as_millis(), Ordering::Relaxed);
    }

    pub fn note_stream_contact(&self) {
        self.last_stream_contact
            .store(Timestamp::now().as_millis(), Ordering::Relaxed);
    }

    /// Time since the tailer last heard from Redis; `None` if it never did.
    pub fn stream_silence(&self) -> Option<Duration> {
        let last = self.last_stream_contact.load(Ordering::Relaxed);
        (last > 0).then(|| {
            Duration::from_millis(Timestamp::now().as_millis().saturating_sub(last).max(0) as u64)
        })
    }

    /// Follows the applied sequence number (for instrumentation).
    pub fn subscribe_applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Waits until change `seq` is applied, at most `bound`. True if it is.
    pub async fn wait_for_seq(&self, seq: u64, bound: Duration) -> bool {
        let mut applied = self.applied.subscribe();
        tokio::time::timeout(bound, applied.wait_for(|applied| *applied >= seq))
            .await
            .is_ok_and(|result| result.is_ok())
    }

    /// Ready: state loaded, the stream heard from recently enough, and the
    /// writer's heartbeat says the state is recent enough.
    pub fn is_ready(&self) -> bool {
        self.state().loaded
            && !self.resync_pending.load(Ordering::Relaxed)
            && self
                .stream_silence()
                .is_some_and(|silence| silence <= self.settings.ready_max_lag())
            && self
                .freshness
                .stale_beyond(self.settings.ready_max_lag(), Timestamp::now())
                .is_none()
    }

    pub fn render_metrics(&self) -> String {
        let state = self.state();
        let now = Timestamp::now().as_millis();
        let snapshot_created = self.snapshot_created_at.load(Ordering::Relaxed);
        let stream_last = self.metrics.stream_last_seq.load(Ordering::Relaxed);
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
                self.stream_silence()
                    .map_or(-1.0, |silence| silence.as_secs_f64()),
            ),
            (
                "adcast_edge_staleness_seconds",
                "Seconds since the newest writer heartbeat whose change is applied here (-1: none yet).",
                self.freshness.staleness_seconds(Timestamp::now()),
            ),
            (
                "adcast_edge_snapshot_age_seconds",
                "Age of the snapshot the current state was started from.",
                if snapshot_created > 0 {
                    (now - snapshot_created) as f64 / 1000.0
                } else {
                    -1.0
                },
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
                if self.is_ready() { 1.0 } else { 0.0 },
            ),
        ];
        self.metrics.render(&gauges)
    }
}
