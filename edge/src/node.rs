//! The running node: the current serving state, the applied sequence number
//! others wait on, and whether the node can serve and is ready.
//!
//! The tailer and the boot install states and report stream contact and
//! gaps here; the server reads the state and asks for readiness. Nothing
//! else is kept here: settings, metrics and the writer client belong to
//! the parts that use them.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use adcast_shared::timestamp::Timestamp;
use tokio::sync::watch;

use crate::compaction::{CompactionPolicy, StateCell};
use crate::freshness::Freshness;
use crate::state::{LoadedSnapshot, ServingState};

pub struct Node {
    /// The state queries read; replaced whole, never mutated (its index's
    /// overlay is compacted in the background).
    state: StateCell,
    /// The applied sequence number, for `Adcast-Min-Seq` and forwarded
    /// writes to wait on.
    applied: watch::Sender<u64>,
    /// When the tailer last heard from Redis, or (poll mode) a catch-up
    /// last reached the end of the stream (ms since epoch; 0 = never).
    last_stream_contact: AtomicI64,
    /// Creation time of the snapshot the current state descends from (ms
    /// since epoch; 0 = none), for the snapshot-age metric.
    snapshot_created_at: AtomicI64,
    /// Set while a gap is known and no newer snapshot was found yet: the
    /// state is stale (a true prefix of history) and the node is not ready.
    resync_pending: AtomicBool,
    /// How current the applied state is, from the writer's heartbeat.
    freshness: Freshness,
    /// Longest stream silence, and staleness, a ready node may have
    /// (`--ready-max-lag-ms`).
    ready_max_lag: Duration,
}

/// Whether `/readyz` answers 200, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// No state is loaded yet: nothing can be served.
    NotLoaded,
    /// A gap after this sequence number waits for a newer snapshot.
    ResyncPending {
        seq: u64,
    },
    /// The stream was last heard from this long ago, more than allowed.
    StreamSilent(Duration),
    /// The stream was never reached since start.
    StreamNotReached,
    /// The writer's heartbeat says the state is this stale, more than
    /// allowed (the writer, or the path from it, is not getting through).
    Stale(Duration),
}

impl Node {
    pub fn new(ready_max_lag: Duration) -> Arc<Node> {
        let (applied, _) = watch::channel(0);
        Arc::new(Node {
            state: StateCell::new(ServingState::unloaded(), CompactionPolicy::default()),
            applied,
            last_stream_contact: AtomicI64::new(0),
            snapshot_created_at: AtomicI64::new(0),
            resync_pending: AtomicBool::new(false),
            freshness: Freshness::default(),
            ready_max_lag,
        })
    }

    /// The current state; cheap, lock-free.
    pub fn state(&self) -> Arc<ServingState> {
        self.state.load()
    }

    /// The current state for a moment: see [`StateCell::peek`].
    pub fn peek_state(&self) -> arc_swap::Guard<Arc<ServingState>> {
        self.state.peek()
    }

    /// Installs a new state (from the tailer or an explicit empty start).
    pub fn install(&self, state: ServingState) {
        let seq = state.seq;
        self.state.install(state);
        self.applied.send_replace(seq);
    }

    /// Replaces the serving state with one built from `snapshot`; a gap
    /// waiting for a newer snapshot is resolved by it.
    pub fn install_snapshot(&self, snapshot: LoadedSnapshot) {
        let (seq, created_at, ads) = (snapshot.seq, snapshot.created_at, snapshot.ads);
        self.install(ServingState::from_loaded(snapshot));
        self.snapshot_created_at
            .store(created_at.as_millis(), Ordering::Relaxed);
        self.resync_pending.store(false, Ordering::Relaxed);
        tracing::info!(seq, ads, "serving from snapshot");
    }

    /// Creation time of the snapshot the current state descends from.
    pub fn snapshot_created_at(&self) -> Option<Timestamp> {
        match self.snapshot_created_at.load(Ordering::Relaxed) {
            0 => None,
            millis => Timestamp::from_millis(millis),
        }
    }

    /// Redis answered a read of the stream.
    pub fn note_stream_contact(&self) {
        self.last_stream_contact
            .store(Timestamp::now().as_millis(), Ordering::Relaxed);
    }

    /// The stream does not continue the state: not ready until a newer
    /// snapshot is installed.
    pub fn note_gap(&self) {
        self.resync_pending.store(true, Ordering::Relaxed);
    }

    /// A gap is known and no newer snapshot was installed yet.
    pub fn resync_pending(&self) -> bool {
        self.resync_pending.load(Ordering::Relaxed)
    }

    /// Time since the tailer last heard from Redis (in poll mode: since a
    /// catch-up last reached the end of the stream); `None` if it never did.
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

    /// How current the applied state is (written by the heartbeat reader).
    pub fn freshness(&self) -> &Freshness {
        &self.freshness
    }

    /// The bound of `--ready-max-lag-ms`.
    pub fn ready_max_lag(&self) -> Duration {
        self.ready_max_lag
    }

    /// Ready: state loaded, no gap pending, the stream heard from recently
    /// enough, and the writer's heartbeat not older than the same bound.
    /// (In poll mode `/readyz` catches up first, so "heard from" is that
    /// catch-up, and the rule is the same.)
    pub fn readiness(&self) -> Readiness {
        let state = self.state();
        if !state.loaded {
            return Readiness::NotLoaded;
        }
        if self.resync_pending.load(Ordering::Relaxed) {
            return Readiness::ResyncPending { seq: state.seq };
        }
        match self.stream_silence() {
            None => Readiness::StreamNotReached,
            Some(silence) if silence > self.ready_max_lag => Readiness::StreamSilent(silence),
            Some(_) => match self
                .freshness
                .stale_beyond(self.ready_max_lag, Timestamp::now())
            {
                Some(staleness) => Readiness::Stale(staleness),
                None => Readiness::Ready,
            },
        }
    }

    pub fn is_ready(&self) -> bool {
        self.readiness() == Readiness::Ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(seq: u64) -> LoadedSnapshot {
        let snapshot = adcast_shared::snapshot::Snapshot {
            seq,
            created_at: Timestamp::now(),
            ads: Vec::new(),
        };
        LoadedSnapshot::from_snapshot(snapshot, Timestamp::now())
    }

    #[test]
    fn readiness_needs_a_state_no_gap_and_recent_stream_contact() {
        let node = Node::new(Duration::from_secs(15));
        assert_eq!(node.readiness(), Readiness::NotLoaded);
        node.install_snapshot(snapshot(4));
        assert_eq!(node.readiness(), Readiness::StreamNotReached);
        node.note_stream_contact();
        assert_eq!(node.readiness(), Readiness::Ready);
        node.note_gap();
        assert_eq!(node.readiness(), Readiness::ResyncPending { seq: 4 });
        node.install_snapshot(snapshot(9));
        assert_eq!(
            node.readiness(),
            Readiness::Ready,
            "the snapshot ends the gap"
        );
    }

    #[test]
    fn a_silent_stream_makes_the_node_unready() {
        let node = Node::new(Duration::ZERO);
        node.install_snapshot(snapshot(1));
        node.last_stream_contact
            .store(Timestamp::now().as_millis() - 50, Ordering::Relaxed);
        assert!(matches!(node.readiness(), Readiness::StreamSilent(_)));
    }
}
