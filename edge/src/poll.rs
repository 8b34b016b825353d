//! Poll mode (`--sync poll`): requests keep the state current; nothing has
//! to run between them, so the process may be frozen (a function platform,
//! a request-billed container) for any length of time.
//!
//! A Public API request (and `/readyz`) that finds the state synced longer
//! than `--max-staleness-ms` ago first asks for a **catch-up**: one read of
//! the stream without `BLOCK`, page by page of at most
//! [`BATCH`](crate::tailer::BATCH) entries, applying each, until a page
//! comes back short (the end of the stream: the state is synced now) or
//! `--catch-up-timeout-ms` has passed. Concurrent requests share it: the
//! first one starts it, the others wait for the same one (single flight),
//! and each waits at most the bound, then answers from the state there is,
//! stale but a true prefix of history, with its `Adcast-Seq`.
//!
//! The catch-up runs as a task of its own, so a request that stops waiting
//! never cuts it short between reading and applying; Redis calls inside it
//! are bounded by the same timeout, so it ends soon after the bound too.
//! Only two things outlive the bound: downloading a first snapshot when the
//! edge booted with none, and loading a newer snapshot after a gap (the
//! stream was trimmed past the applied state, or an entry cannot be
//! decoded) — both through [`SnapshotSources`], like the stream tailer.
//! Requests never wait for them longer than the bound.
//!
//! A catch-up that fails (Redis unreachable, or too slow) is not retried
//! for `--max-staleness-ms`: meanwhile requests answer at once from the
//! state they have, rather than each paying the bound again. Asking the
//! snapshot sources again, after a gap no snapshot resolved yet or with no
//! first snapshot to be had, waits a second.
//!
//! "Synced" is the wall-clock time of the last catch-up that reached the
//! end of the stream ([`Node::note_stream_contact`]): wall clock, because a
//! frozen micro-VM's monotonic clock may not advance while frozen. Each
//! catch-up also reads the writer's heartbeat once, before the stream, so
//! `Adcast-Staleness-Ms` and the staleness metric mean what they mean in
//! stream mode (the `freshness` task does not run in poll mode).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adcast_shared::protocol::heartbeat::{self, Heartbeat};
use adcast_shared::timestamp::Timestamp;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use tokio::time::Instant;

use crate::bootstrap::SnapshotSources;
use crate::config::Settings;
use crate::freshness::{read_heartbeat, HeartbeatTracker};
use crate::metrics::Metrics;
use crate::node::Node;
use crate::state::ServingState;
use crate::tailer::{BatchProblem, StreamReader, BATCH};

/// A connection unused for longer than this is replaced before the next
/// catch-up rather than trusted: after a long freeze, a NAT or load
/// balancer on the way may have dropped it silently, and a read on it would
/// only time out.
const IDLE_RECONNECT: Duration = Duration::from_secs(60);
/// While waiting for a change to be applied (`Adcast-Min-Seq`, forwarded
/// writes), the pause between catch-ups that found nothing new yet.
const REACH_PAUSE: Duration = Duration::from_millis(20);
/// After a gap that no newer snapshot resolved yet (or a first snapshot
/// that could not be had), the least time before a request asks the
/// snapshot sources again, so that an edge waiting for a snapshot does not
/// ask the writer for one with every request.
const SNAPSHOT_RETRY: Duration = Duration::from_secs(1);

/// A catch-up in flight, shared by every request waiting on it.
type Flight = Shared<BoxFuture<'static, ()>>;

pub struct PollSync {
    /// Reads the stream and installs what it reads.
    reader: StreamReader,
    redis: redis::Client,
    /// Where the first state, and a newer snapshot after a gap, come from.
    sources: Arc<SnapshotSources>,
    /// `<stream-key>:heartbeat`.
    heartbeat_key: String,
    /// `--max-staleness-ms`.
    max_staleness: Duration,
    /// `--catch-up-timeout-ms`: the longest a request waits for a catch-up,
    /// and the bound of the catch-up's Redis calls.
    bound: Duration,
    /// The connection catch-ups use (one catch-up at a time touches it),
    /// with the wall-clock time (ms) it was last used.
    connection: Mutex<Option<(MultiplexedConnection, i64)>>,
    /// Heartbeats read so far, against the applied state.
    heartbeats: Mutex<HeartbeatTracker>,
    /// The current or last catch-up.
    flight: Mutex<Option<Flight>>,
    /// After a failed catch-up: no new one is started before this wall-clock
    /// time (ms), unless a request needs a given change.
    retry_not_before_ms: AtomicI64,
}

/// How far a catch-up got.
enum Progress {
    /// It read up to the end of the stream.
    Current,
    /// The time ran out between pages; the next request goes on.
    Behind,
    /// The stream does not continue the state.
    Gap(String),
}

impl PollSync {
    pub fn new(
        settings: &Settings,
        node: Arc<Node>,
        metrics: Arc<Metrics>,
        redis: redis::Client,
        sources: Arc<SnapshotSources>,
    ) -> Arc<PollSync> {
        Arc::new(PollSync {
            reader: StreamReader::new(settings, node, metrics),
            redis,
            sources,
            heartbeat_key: heartbeat::key(&settings.stream_key),
            max_staleness: settings.max_staleness(),
            bound: settings.catch_up_timeout(),
            connection: Mutex::new(None),
            heartbeats: Mutex::new(HeartbeatTracker::default()),
            flight: Mutex::new(None),
            retry_not_before_ms: AtomicI64::new(0),
        })
    }

    /// Before answering: when the state was synced longer than
    /// `--max-staleness-ms` ago, catches up first (or joins the catch-up in
    /// flight), waiting at most the bound.
    pub async fn refresh(self: &Arc<Self>) {
        // The common case, a synced state, takes no lock.
        if self.is_synced() {
            return;
        }
        if let Some(flight) = self.flight(false) {
            let _ = tokio::time::timeout(self.bound, flight).await;
        }
    }

    /// Waits (at most `wait`) until change `seq` is applied, catching up
    /// until it is: for `Adcast-Min-Seq` and for a forwarded write, whose
    /// entry the writer may publish a moment after answering. True if it is.
    pub async fn reach(self: &Arc<Self>, seq: u64, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if self.node().state().seq >= seq {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            if let Some(flight) = self.flight(true) {
                let _ = tokio::time::timeout_at(deadline.min(now + self.bound), flight).await;
            }
            if self.node().state().seq < seq {
                tokio::time::sleep_until(deadline.min(Instant::now() + REACH_PAUSE)).await;
            }
        }
    }

    fn node(&self) -> &Node {
        &self.reader.node
    }

    /// Synced recently enough: loaded, no gap pending, and the end of the
    /// stream reached less than `--max-staleness-ms` ago.
    fn is_synced(&self) -> bool {
        let node = self.node();
        node.state().loaded
            && !node.resync_pending()
            && node
                .stream_silence()
                .is_some_and(|silence| silence <= self.max_staleness)
    }

    /// The catch-up to wait for: the one in flight, or a new one when the
    /// state needs it (always with `force`); `None` when it does not.
    fn flight(self: &Arc<Self>, force: bool) -> Option<Flight> {
        let mut slot = self
            .flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(flight) = slot.as_ref() {
            if flight.peek().is_none() {
                return Some(flight.clone());
            }
        }
        // Looked at under the lock: a catch-up that just ended has synced
        // the state already, and the requests that waited on it start none.
        if !force
            && (self.is_synced()
                || Timestamp::now().as_millis() < self.retry_not_before_ms.load(Ordering::Relaxed))
        {
            return None;
        }
        let this = self.clone();
        let task = tokio::spawn(async move { this.catch_up().await });
        let flight = async move {
            let _ = task.await;
        }
        .boxed()
        .shared();
        *slot = Some(flight.clone());
        Some(flight)
    }

    /// One catch-up: a first state if there is none, then the stream read to
    /// its end (or for the bound), a newer snapshot on a gap.
    async fn catch_up(self: Arc<Self>) {
        self.reader.metrics.count_poll_read();
        if !self.node().state().loaded && !self.first_state().await {
            self.pause_retries(SNAPSHOT_RETRY);
            return;
        }
        match self.read_bounded().await {
            Some(Progress::Current | Progress::Behind) => {}
            Some(Progress::Gap(reason)) => {
                if self.recover(&reason).await {
                    // Go on from the snapshot, within a bound of its own
                    // (whoever waited has likely been answered already).
                    if let Some(Progress::Gap(reason)) = self.read_bounded().await {
                        tracing::warn!(
                            reason,
                            "the newer snapshot does not continue into the stream either"
                        );
                        self.node().note_gap();
                        self.pause_retries(SNAPSHOT_RETRY);
                    }
                } else {
                    self.pause_retries(SNAPSHOT_RETRY);
                }
            }
            None => self.pause_retries(self.max_staleness),
        }
    }

    /// The stream read within the bound; `None` when Redis failed or did
    /// not answer in time (the connection is then replaced next time).
    async fn read_bounded(&self) -> Option<Progress> {
        let deadline = Instant::now() + self.bound;
        let failure = match tokio::time::timeout_at(deadline, self.read_to_end(deadline)).await {
            Ok(Ok(progress)) => return Some(progress),
            Ok(Err(error)) => format!("catching up with the stream failed: {error}"),
            Err(_) => format!(
                "catching up with the stream took longer than {} ms; answering from the state held",
                self.bound.as_millis()
            ),
        };
        *self.lock_connection() = None;
        self.reader.metrics.count_stream_error();
        tracing::warn!(message = failure);
        None
    }

    /// Reads pages until one comes back short (the end of the stream) or
    /// the deadline passes between pages.
    async fn read_to_end(&self, deadline: Instant) -> redis::RedisResult<Progress> {
        let mut conn = self.connection().await?;
        // Read before the stream: whatever it covers that exists, the reads
        // below take.
        let beat = read_heartbeat(&mut conn, &self.heartbeat_key).await?;
        loop {
            let from = self.node().state().seq;
            let entries = self.reader.read(&mut conn, from, None).await?;
            let full = entries.len() >= BATCH;
            if entries.is_empty() {
                if self.reader.trimmed_past(&mut conn, from).await {
                    return Ok(Progress::Gap(
                        "the stream was trimmed past this edge".to_owned(),
                    ));
                }
            } else if let Err(BatchProblem::Gap(reason)) = self.reader.apply(entries) {
                return Ok(Progress::Gap(reason));
            }
            if !full {
                self.synced(beat);
                return Ok(Progress::Current);
            }
            if Instant::now() >= deadline {
                return Ok(Progress::Behind);
            }
        }
    }

    /// The end of the stream was reached: the state is synced as of now.
    fn synced(&self, beat: Option<Heartbeat>) {
        let node = self.node();
        let applied = node.state().seq;
        self.reader.metrics.note_stream_last_seq(applied);
        let mut heartbeats = self
            .heartbeats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        heartbeats.applied(applied);
        if let Some(beat) = beat {
            heartbeats.observe(beat, applied);
        }
        node.freshness().note(heartbeats.fresh_as_of_ms());
        node.note_stream_contact();
        self.retry_not_before_ms.store(0, Ordering::Relaxed);
    }

    /// The cached connection, or a new one (bounded by the catch-up bound).
    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        let now = Timestamp::now().as_millis();
        if let Some((conn, last_used)) = self.lock_connection().as_mut() {
            if now.saturating_sub(*last_used) <= IDLE_RECONNECT.as_millis() as i64 {
                *last_used = now;
                return Ok(conn.clone());
            }
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(self.bound)
            .set_response_timeout(self.bound);
        let conn = self
            .redis
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *self.lock_connection() = Some((conn.clone(), now));
        Ok(conn)
    }

    fn lock_connection(&self) -> std::sync::MutexGuard<'_, Option<(MultiplexedConnection, i64)>> {
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A first state when boot found no snapshot: the writer's newest, or
    /// without a writer the empty state at sequence 0 (a trimmed stream then
    /// shows a gap, and a snapshot file is waited for). True when one is
    /// installed.
    async fn first_state(&self) -> bool {
        if !self.sources.has_writer() {
            tracing::info!("no snapshot: starting from an empty state at sequence 0");
            self.node().install(ServingState::start_of_history());
            return true;
        }
        match self.sources.download(None).await {
            Ok(Some(snapshot)) => {
                self.node().install_snapshot(snapshot);
                true
            }
            Ok(None) => {
                tracing::warn!("the writer has no snapshot yet");
                false
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot download a first snapshot yet"
                );
                false
            }
        }
    }

    /// A gap: loads a snapshot newer than the applied state, as the stream
    /// tailer does. True when one is installed; otherwise the edge stays
    /// unready, serving its state, and a later catch-up tries again.
    async fn recover(&self, reason: &str) -> bool {
        let node = self.node();
        let have = node.state().seq;
        tracing::warn!(
            reason,
            applied = have,
            "gap in the stream; fetching a newer snapshot"
        );
        if !node.resync_pending() {
            self.reader.metrics.count_resync();
        }
        node.note_gap();
        match self.sources.newer_than(have).await {
            Some(snapshot) => {
                node.install_snapshot(snapshot); // ends the gap
                true
            }
            None => {
                tracing::warn!(
                    have,
                    "no snapshot newer than the applied state yet; a later request tries again"
                );
                false
            }
        }
    }

    /// After a failure: requests answer from the state they have for
    /// `pause` before one tries again.
    fn pause_retries(&self, pause: Duration) {
        let until = Timestamp::now().as_millis() + pause.as_millis() as i64;
        self.retry_not_before_ms.store(until, Ordering::Relaxed);
    }
}
