//! Where the serving state lives, and the compaction of its overlay.
//!
//! [`StateCell`] holds the current [`ServingState`] behind an `ArcSwap`:
//! queries load it without a lock. Installs (from the tailer or a snapshot)
//! are serialised by a mutex that queries never take. When an installed
//! state's overlay has grown past the policy's bound, a compaction merges
//! base and overlay into a new base — on a background thread (or inline,
//! for tests) — and the result is swapped in together with everything
//! applied meanwhile: the changes after the compaction's sequence number
//! stay in a fresh overlay on the new base. An install that raced with the
//! swap (built on the old base) is moved onto the new base the same way.
//!
//! Priority: the compaction thread runs at a lower CPU priority (nice
//! 10) than the threads that apply changes and answer queries, so on a
//! busy machine it takes their idle time instead of delaying them; the
//! overlay meanwhile keeps absorbing changes.
//!
//! Memory: a compaction builds one new base beside the current one (the
//! ads themselves are shared, not copied); the old base is freed when the
//! last query holding it finishes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use adcast_shared::background;
use arc_swap::ArcSwap;

use crate::state::ServingState;

/// When and how overlays are compacted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// Compact once an eighth of the base's ads changed since it was built,
    /// but at least `min_overlay` and at most `max_overlay`: the overlay
    /// stays small (each apply rebuilds it), and compactions of a small
    /// base are cheap.
    pub min_overlay: usize,
    pub max_overlay: usize,
    /// Compact on a background thread (the default), or inline in the
    /// install (tests).
    pub background: bool,
}

impl Default for CompactionPolicy {
    fn default() -> CompactionPolicy {
        CompactionPolicy {
            min_overlay: 64,
            max_overlay: 1024,
            background: true,
        }
    }
}

impl CompactionPolicy {
    fn wants_compaction(&self, state: &ServingState) -> bool {
        let overlay = state.index.overlay_len();
        let bound = (state.index.base_len() / 8)
            .max(self.min_overlay)
            .min(self.max_overlay);
        overlay > 0 && overlay >= bound
    }
}

struct Inner {
    current: ArcSwap<ServingState>,
    /// Held by installs and by the swap of a compaction result, never by
    /// queries; the flag says a compaction is running.
    installing: Mutex<bool>,
    policy: CompactionPolicy,
    compactions: AtomicU64,
    last_compaction: Mutex<Duration>,
}

/// The current serving state, lock-free to read.
#[derive(Clone)]
pub struct StateCell(Arc<Inner>);

impl StateCell {
    pub fn new(initial: ServingState, policy: CompactionPolicy) -> StateCell {
        StateCell(Arc::new(Inner {
            current: ArcSwap::from_pointee(initial),
            installing: Mutex::new(false),
            policy,
            compactions: AtomicU64::new(0),
            last_compaction: Mutex::new(Duration::ZERO),
        }))
    }

    /// The current state; cheap, lock-free.
    pub fn load(&self) -> Arc<ServingState> {
        self.0.current.load_full()
    }

    /// The current state, borrowed for a moment (no reference count taken:
    /// cheaper than [`StateCell::load`]; not to be held across an await).
    pub fn peek(&self) -> arc_swap::Guard<Arc<ServingState>> {
        self.0.current.load()
    }

    /// Compactions swapped in so far.
    pub fn compactions(&self) -> u64 {
        self.0.compactions.load(Ordering::Relaxed)
    }

    /// Whether a background compaction is running.
    pub fn compacting(&self) -> bool {
        *self.lock()
    }

    fn lock(&self) -> MutexGuard<'_, bool> {
        // A panic while holding it left no half-done state (stores are
        // whole), so a poisoned lock is still usable.
        self.0
            .installing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes `state` current. If a compaction of the base `state` was built
    /// on has been swapped in since, `state` is moved onto the new base
    /// first; if `state`'s overlay is large, a compaction starts.
    pub fn install(&self, state: ServingState) {
        let mut compacting = self.lock();
        let current = self.0.current.load();
        let state = match state.index.is_compacted_by(current.index.base()) {
            Some(through) if state.seq >= through => state.rebased(current.index.base(), through),
            _ => state,
        };
        drop(current);
        let policy = self.0.policy;
        if !policy.wants_compaction(&state) || *compacting {
            self.0.current.store(Arc::new(state));
            return;
        }
        if !policy.background {
            let base = state.index.compact(state.seq);
            let compacted = state.rebased(&base, state.seq);
            self.0.current.store(Arc::new(compacted));
            self.0.compactions.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let state = Arc::new(state);
        self.0.current.store(Arc::clone(&state));
        *compacting = true;
        let cell = self.clone();
        let spawned = background::spawn("index-compaction", move || {
            cell.compact_in_background(state)
        });
        if let Err(error) = spawned {
            *compacting = false;
            tracing::warn!(%error, "cannot start an index compaction; serving from the overlay");
        }
    }

    fn compact_in_background(&self, from: Arc<ServingState>) {
        let started = Instant::now();
        let through = from.seq;
        let base = from.index.compact(through);
        let old_base = Arc::clone(from.index.base());
        drop(from);
        {
            let mut compacting = self.lock();
            *compacting = false;
            let current = self.0.current.load_full();
            // Adopted only by the lineage it was built from (a snapshot
            // installed meanwhile makes it useless), never by an older state.
            if current.index.is_compacted_by(&base) == Some(through) && current.seq >= through {
                let next = current.rebased(&base, through);
                self.0.current.store(Arc::new(next));
                self.0.compactions.fetch_add(1, Ordering::Relaxed);
                *self
                    .0
                    .last_compaction
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = started.elapsed();
                tracing::debug!(
                    ads = base.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "index compacted"
                );
            }
        }
        // Free the old base here, not on the apply path: wait (briefly)
        // until the states still using it (queries in flight, an apply
        // being installed) have let go.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&old_base) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// How long the last compaction swapped in took to build.
    pub fn last_compaction_time(&self) -> Duration {
        *self
            .0
            .last_compaction
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
