//! What every request handler may use, built once by `startup`.
//!
//! Routes and the server import this module; nothing here imports them, so
//! adding a route means adding a handler in `routes/` and, when it needs
//! something new, a field here.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use crate::auth::Tokens;
use crate::metrics::Metrics;
use crate::store::Store;

pub struct AppState {
    pub store: Store,
    /// Every configured token of every scope; empty is tokens off.
    pub tokens: Tokens,
    pub metrics: Arc<Metrics>,
    /// The highest sequence number committed, owned by the write path:
    /// [`AppState::committed`] advances it and the outbox relay subscribes.
    pub commits: watch::Sender<u64>,
    /// Where the snapshot producer writes; `/internal/v1/snapshot/latest` reads.
    pub snapshot_dir: PathBuf,
}

impl AppState {
    /// Records a commit: the relay wakes and publishes it.
    pub fn committed(&self, seq: u64) {
        advance(&self.commits, seq);
        self.metrics.note_committed(seq);
    }
}

/// Raises the committed sequence number to `seq`; a lower or equal one
/// (a concurrent request committed after it) changes nothing and wakes nobody.
pub fn advance(commits: &watch::Sender<u64>, seq: u64) {
    commits.send_if_modified(|last| {
        let higher = seq > *last;
        if higher {
            *last = seq;
        }
        higher
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_wakes_subscribers_only_for_a_higher_sequence_number() {
        let (commits, mut seen) = watch::channel(5);
        seen.mark_unchanged();
        advance(&commits, 4);
        advance(&commits, 5);
        assert!(!seen.has_changed().unwrap());
        advance(&commits, 7);
        assert!(seen.has_changed().unwrap());
        assert_eq!(*seen.borrow_and_update(), 7);
    }
}
