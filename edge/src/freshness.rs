//! Staleness measured end to end, from the writer's heartbeat.
//!
//! The writer sets a heartbeat key next to the stream about once a second:
//! its clock and a sequence number such that every write it acknowledged
//! before that instant is at most that number
//! ([`adcast_shared::protocol::heartbeat`]). The key replicates with the
//! stream, so it reaches this edge's Redis (a replica, or a replica of a
//! replica) no earlier than the entries it covers.
//!
//! A task here reads the key once a second over its own connection, next to
//! the tailer, and remembers the newest heartbeat whose sequence number this
//! edge has applied. Its instant is the edge's **fresh-as-of** time: this
//! edge holds every write acknowledged before it. Staleness is the edge's
//! clock minus that instant (never below zero). Writer and edge clocks are
//! assumed synchronised (NTP); a skew adds to or hides that much staleness.
//!
//! It sees what stream silence cannot: a replica cut off from its primary
//! keeps answering, so the tailer hears a healthy stream, but the heartbeat
//! on it stops advancing. It is also honest about a writer that is down
//! while Redis is up: no heartbeat arrives, so the staleness grows, because
//! the edge cannot know it is current.
//!
//! In poll mode (`--sync poll`) this task does not run: each catch-up reads
//! the key once, before it reads the stream, and feeds the same
//! [`HeartbeatTracker`] (`poll`), so staleness means the same in both modes.
//!
//! The query path reads one atomic: [`Freshness::mark_if_stale`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use adcast_shared::protocol::headers;
use adcast_shared::protocol::heartbeat::{self, Heartbeat};
use adcast_shared::timestamp::Timestamp;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use tokio::sync::watch;

use crate::node::Node;

/// How often the heartbeat key is read.
const READ_EVERY: Duration = Duration::from_secs(1);
/// Bound on connecting and on one read, so a silent Redis cannot stall the
/// task (staleness then grows, as it should).
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// Heartbeats read ahead of the applied state that are remembered until the
/// state reaches them; beyond this the oldest is forgotten (which can only
/// overstate staleness, for a moment).
const WAITING_MAX: usize = 16;

pub const ADCAST_STALENESS_MS: HeaderName = HeaderName::from_static(headers::ADCAST_STALENESS_MS);

/// What the rest of the edge reads: the fresh-as-of instant.
#[derive(Debug, Default)]
pub struct Freshness {
    /// Writer time (ms since the epoch) of the newest heartbeat whose
    /// sequence number is applied here; 0 until there is one.
    fresh_as_of_ms: AtomicI64,
}

impl Freshness {
    /// Staleness at `now`; `None` before any usable heartbeat.
    pub fn staleness(&self, now: Timestamp) -> Option<Duration> {
        staleness(self.fresh_as_of_ms.load(Ordering::Relaxed), now.as_millis())
    }

    /// The `adcast_edge_staleness_seconds` gauge: −1 before any heartbeat.
    pub fn staleness_seconds(&self, now: Timestamp) -> f64 {
        self.staleness(now)
            .map_or(-1.0, |staleness| staleness.as_secs_f64())
    }

    /// The staleness when it is beyond `bound` (the readiness rule).
    pub fn stale_beyond(&self, bound: Duration, now: Timestamp) -> Option<Duration> {
        self.staleness(now).filter(|staleness| *staleness > bound)
    }

    /// Adds `Adcast-Staleness-Ms` to an answer computed at `now` when this
    /// edge is staler than `bound`. Fresh answers carry no header, which
    /// keeps the common case to one atomic load and a comparison.
    pub fn mark_if_stale(&self, headers: &mut HeaderMap, now: Timestamp, bound: Duration) {
        if let Some(staleness) = self.stale_beyond(bound, now) {
            headers.insert(
                ADCAST_STALENESS_MS,
                HeaderValue::from(staleness.as_millis() as u64),
            );
        }
    }

    pub(crate) fn note(&self, fresh_as_of_ms: Option<u64>) {
        if let Some(ms) = fresh_as_of_ms {
            self.fresh_as_of_ms
                .fetch_max(ms.min(i64::MAX as u64) as i64, Ordering::Relaxed);
        }
    }
}

/// `now − fresh_as_of`, clamped at zero (clock skew); `None` for "never".
pub fn staleness(fresh_as_of_ms: i64, now_ms: i64) -> Option<Duration> {
    (fresh_as_of_ms > 0)
        .then(|| Duration::from_millis(now_ms.saturating_sub(fresh_as_of_ms).max(0) as u64))
}

/// Which heartbeats count: the newest one covered by the applied state, and
/// those read ahead of it, waiting for the state to reach them.
#[derive(Debug, Default)]
pub struct HeartbeatTracker {
    /// Writer time of the newest heartbeat whose sequence number is applied.
    fresh_as_of_ms: Option<u64>,
    /// Heartbeats not applied yet, by increasing sequence number.
    waiting: VecDeque<Heartbeat>,
}

impl HeartbeatTracker {
    pub fn fresh_as_of_ms(&self) -> Option<u64> {
        self.fresh_as_of_ms
    }

    /// A heartbeat was read while `applied` is the applied sequence number.
    pub fn observe(&mut self, beat: Heartbeat, applied: u64) {
        if beat.seq <= applied {
            self.use_beat(beat);
            return;
        }
        // A later beat for the same or a lower number says more (all writes
        // before a later instant): it replaces those it covers.
        while self
            .waiting
            .back()
            .is_some_and(|last| last.seq >= beat.seq && last.writer_unix_ms <= beat.writer_unix_ms)
        {
            self.waiting.pop_back();
        }
        if self
            .waiting
            .back()
            .is_some_and(|last| last.writer_unix_ms >= beat.writer_unix_ms)
        {
            return; // no newer than what is already waiting
        }
        self.waiting.push_back(beat);
        if self.waiting.len() > WAITING_MAX {
            self.waiting.pop_front();
        }
    }

    /// The state reached `applied`: beats waiting for it now count.
    pub fn applied(&mut self, applied: u64) {
        while let Some(beat) = self.waiting.front().copied() {
            if beat.seq > applied {
                break;
            }
            self.waiting.pop_front();
            self.use_beat(beat);
        }
    }

    fn use_beat(&mut self, beat: Heartbeat) {
        self.fresh_as_of_ms = self.fresh_as_of_ms.max(Some(beat.writer_unix_ms));
    }
}

/// Reads the heartbeat every second and follows the applied state until
/// `stop` turns true.
pub async fn run(
    node: Arc<Node>,
    redis: redis::Client,
    stream_key: String,
    mut stop: watch::Receiver<bool>,
) {
    let key = heartbeat::key(&stream_key);
    let mut applied = node.subscribe_applied();
    let mut tracker = HeartbeatTracker::default();
    let mut connection: Option<MultiplexedConnection> = None;
    let mut ticks = tokio::time::interval(READ_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let read_now = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            changed = applied.changed() => {
                if changed.is_err() {
                    return;
                }
                let seq = *applied.borrow_and_update();
                tracker.applied(seq);
                false
            }
            _ = ticks.tick() => true,
        };
        if read_now {
            match read(&redis, &mut connection, &key).await {
                Ok(Some(beat)) => tracker.observe(beat, node.state().seq),
                Ok(None) => {}
                Err(error) => {
                    connection = None;
                    tracing::debug!(error = %error, "reading the heartbeat failed");
                }
            }
        }
        node.freshness().note(tracker.fresh_as_of_ms());
    }
}

/// `GET <stream-key>:heartbeat`; `None` when there is none (or it is not a
/// heartbeat: a writer that does not beat, or something else's key).
async fn read(
    redis: &redis::Client,
    connection: &mut Option<MultiplexedConnection>,
    key: &str,
) -> redis::RedisResult<Option<Heartbeat>> {
    let mut conn = match connection {
        Some(conn) => conn.clone(),
        None => {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(REDIS_TIMEOUT)
                .set_response_timeout(REDIS_TIMEOUT);
            let conn = redis
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            *connection = Some(conn.clone());
            conn
        }
    };
    read_heartbeat(&mut conn, key).await
}

/// One `GET` of the heartbeat key `key` on `conn` (also what a poll-mode
/// catch-up reads, instead of this task).
pub(crate) async fn read_heartbeat(
    conn: &mut MultiplexedConnection,
    key: &str,
) -> redis::RedisResult<Option<Heartbeat>> {
    let value: Option<String> = redis::cmd("GET").arg(key).query_async(conn).await?;
    Ok(value.as_deref().and_then(Heartbeat::parse))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(writer_unix_ms: u64, seq: u64) -> Heartbeat {
        Heartbeat {
            writer_unix_ms,
            seq,
        }
    }

    #[test]
    fn staleness_is_the_edge_clock_minus_the_fresh_as_of_instant() {
        assert_eq!(
            staleness(10_000, 12_500),
            Some(Duration::from_millis(2_500))
        );
    }

    #[test]
    fn staleness_is_unknown_before_any_heartbeat() {
        assert_eq!(staleness(0, 12_500), None);
        let freshness = Freshness::default();
        let now = Timestamp::from_millis(12_500).unwrap();
        assert_eq!(freshness.staleness_seconds(now), -1.0);
        assert_eq!(freshness.stale_beyond(Duration::ZERO, now), None);
    }

    #[test]
    fn a_writer_clock_ahead_of_the_edge_counts_as_zero_staleness() {
        assert_eq!(staleness(13_000, 12_500), Some(Duration::ZERO));
    }

    #[test]
    fn a_heartbeat_counts_once_its_sequence_number_is_applied() {
        let mut tracker = HeartbeatTracker::default();
        tracker.observe(beat(1_000, 5), 4);
        assert_eq!(
            tracker.fresh_as_of_ms(),
            None,
            "change 5 is not applied yet"
        );
        tracker.applied(5);
        assert_eq!(tracker.fresh_as_of_ms(), Some(1_000));
    }

    #[test]
    fn a_heartbeat_for_an_applied_change_counts_at_once() {
        let mut tracker = HeartbeatTracker::default();
        tracker.observe(beat(1_000, 5), 9);
        assert_eq!(tracker.fresh_as_of_ms(), Some(1_000));
    }

    #[test]
    fn waiting_heartbeats_count_in_order_as_the_state_advances() {
        let mut tracker = HeartbeatTracker::default();
        tracker.observe(beat(1_000, 5), 2);
        tracker.observe(beat(2_000, 8), 2);
        tracker.applied(6);
        assert_eq!(tracker.fresh_as_of_ms(), Some(1_000));
        tracker.applied(8);
        assert_eq!(tracker.fresh_as_of_ms(), Some(2_000));
    }

    #[test]
    fn an_older_heartbeat_never_moves_fresh_as_of_back() {
        let mut tracker = HeartbeatTracker::default();
        tracker.observe(beat(2_000, 5), 5);
        // A second writer process with a clock behind, or a replica that
        // still holds an old value.
        tracker.observe(beat(1_500, 5), 5);
        assert_eq!(tracker.fresh_as_of_ms(), Some(2_000));
    }

    #[test]
    fn an_unchanged_heartbeat_keeps_staleness_growing() {
        // A replica cut off from its primary keeps serving the last beat.
        let mut tracker = HeartbeatTracker::default();
        tracker.observe(beat(10_000, 7), 7);
        tracker.observe(beat(10_000, 7), 7);
        let freshness = Freshness::default();
        freshness.note(tracker.fresh_as_of_ms());
        let later = Timestamp::from_millis(25_000).unwrap();
        assert_eq!(freshness.staleness(later), Some(Duration::from_secs(15)));
    }

    #[test]
    fn a_later_heartbeat_for_the_same_change_replaces_the_waiting_one() {
        let mut tracker = HeartbeatTracker::default();
        tracker.observe(beat(1_000, 5), 2);
        tracker.observe(beat(2_000, 5), 2);
        tracker.applied(5);
        assert_eq!(tracker.fresh_as_of_ms(), Some(2_000));
        assert!(tracker.waiting.is_empty());
    }

    #[test]
    fn the_header_appears_only_beyond_the_bound() {
        let freshness = Freshness::default();
        freshness.note(Some(10_000));
        let bound = Duration::from_secs(3);
        let mut headers = HeaderMap::new();
        freshness.mark_if_stale(&mut headers, Timestamp::from_millis(12_000).unwrap(), bound);
        assert!(headers.is_empty());
        freshness.mark_if_stale(&mut headers, Timestamp::from_millis(14_250).unwrap(), bound);
        assert_eq!(headers[ADCAST_STALENESS_MS], "4250");
    }
}
