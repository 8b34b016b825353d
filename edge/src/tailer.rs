//! The stream tailer: keeps the serving state current from the Redis Stream.
//!
//! One dedicated connection runs `XREAD BLOCK` from the applied sequence
//! number; each reply is applied as one batch and the new state swapped in.
//! Entries must continue the state exactly (`seq + 1`, …). A gap — the stream
//! was trimmed past us, or an entry cannot be decoded — means a newer
//! snapshot is fetched (from the writer, or from the local snapshot
//! locations) and tailing restarts from it; events are never skipped. The
//! XREAD is never cancelled midway: shutdown waits for it to return, and the
//! connection's response timeout sits above the block time.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adcast_shared::backoff::Backoff;
use adcast_shared::event::Change;
use adcast_shared::protocol::stream;
use adcast_shared::snapshot::Snapshot;
use adcast_shared::timestamp::Timestamp;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamInfoStreamReply, StreamReadReply};
use redis::AsyncConnectionConfig;
use tokio::sync::watch;

use crate::bootstrap;
use crate::node::Node;
use crate::state::ServingState;

/// Entries read per XREAD.
const BATCH: usize = 1_000;
/// How often the stream's length is looked at for the lag metric.
const LAG_CHECK: Duration = Duration::from_secs(5);

pub struct StreamTailer {
    pub node: Arc<Node>,
    pub redis: redis::Client,
}

/// Why a batch could not be applied as read.
#[derive(Debug)]
enum BatchProblem {
    Gap(String),
}

impl StreamTailer {
    /// Tails until `stop` turns true (checked between XREADs).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut connection: Option<MultiplexedConnection> = None;
        let mut last_lag_check = Instant::now() - LAG_CHECK;
        while !*stop.borrow() {
            let mut conn = match &connection {
                Some(conn) => conn.clone(),
                None => match self.connect().await {
                    Ok(conn) => {
                        tracing::info!("connected to the stream");
                        connection = Some(conn.clone());
                        conn
                    }
                    Err(error) => {
                        self.stream_error(&format!("cannot connect to Redis: {error}"));
                        pause(&mut stop, backoff.next_delay()).await;
                        continue;
                    }
                },
            };
            let from = self.node.state().seq;
            match self.read(&mut conn, from).await {
                Ok(entries) => {
                    self.node.note_stream_contact();
                    backoff.reset();
                    if entries.is_empty() || last_lag_check.elapsed() >= LAG_CHECK {
                        last_lag_check = Instant::now();
                        self.check_lag(&mut conn).await;
                    }
                    if entries.is_empty() {
                        if self.trimmed_past(&mut conn, from).await {
                            tracing::warn!(
                                applied = from,
                                "the stream was trimmed past this edge; fetching a newer snapshot"
                            );
                            self.resync(&mut stop).await;
                        }
                        continue;
                    }
                    if let Err(BatchProblem::Gap(reason)) = self.apply(entries) {
                        tracing::warn!(
                            reason,
                            applied = self.node.state().seq,
                            "gap in the stream; fetching a newer snapshot"
                        );
                        self.resync(&mut stop).await;
                    }
                }
                Err(error) => {
                    connection = None;
                    self.stream_error(&format!("reading the stream failed: {error}"));
                    pause(&mut stop, backoff.next_delay()).await;
                }
            }
        }
    }

    async fn connect(&self) -> redis::RedisResult<MultiplexedConnection> {
        let block = self.node.settings.xread_block();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Duration::from_secs(3))
            .set_response_timeout(block + Duration::from_secs(5));
        self.redis
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// `XREAD COUNT … BLOCK … STREAMS key <from>-0`: entries after `from`.
    async fn read(
        &self,
        conn: &mut MultiplexedConnection,
        from: u64,
    ) -> redis::RedisResult<Vec<(String, Option<Vec<u8>>)>> {
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(self.node.settings.xread_block().as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.node.settings.stream_key)
            .arg(stream::entry_id(from))
            .query_async(conn)
            .await?;
        Ok(reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids)
            .map(|entry| {
                let payload = entry.get::<Vec<u8>>(stream::EVENT_FIELD);
                (entry.id, payload)
            })
            .collect())
    }

    /// Decodes and applies one batch, or reports why it cannot continue
    /// the current state.
    fn apply(&self, entries: Vec<(String, Option<Vec<u8>>)>) -> Result<(), BatchProblem> {
        let mut events = Vec::with_capacity(entries.len());
        for (id, payload) in entries {
            let seq = stream::parse_entry_id(&id)
                .ok_or_else(|| BatchProblem::Gap(format!("entry id {id} is not <seq>-0")))?;
            let payload = payload
                .ok_or_else(|| BatchProblem::Gap(format!("entry {id} has no event field")))?;
            let change = Change::decode(&payload).map_err(|error| {
                self.node
                    .metrics
                    .stream_errors
                    .fetch_add(1, Ordering::Relaxed);
                BatchProblem::Gap(format!("entry {id} cannot be decoded: {error}"))
            })?;
            events.push((seq, change));
        }
        let state = self.node.state();
        let next = state
            .apply(&events, Timestamp::now())
            .map_err(|gap| BatchProblem::Gap(gap.to_string()))?;
        self.node
            .metrics
            .events_applied
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        tracing::debug!(from = state.seq, to = next.seq, "applied events");
        self.node.install(next);
        Ok(())
    }

    /// Finds a snapshot newer than the applied state and restarts from it;
    /// retries with backoff until one exists, serving the stale state
    /// (a true prefix of history) meanwhile.
    async fn resync(&self, stop: &mut watch::Receiver<bool>) {
        self.node.metrics.resyncs.fetch_add(1, Ordering::Relaxed);
        self.node.resync_pending.store(true, Ordering::Relaxed);
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        while !*stop.borrow() {
            let have = self.node.state().seq;
            if let Some(snapshot) = newer_snapshot(&self.node, have).await {
                install_snapshot(&self.node, snapshot);
                self.node.resync_pending.store(false, Ordering::Relaxed);
                return;
            }
            tracing::warn!(
                have,
                "no snapshot newer than the applied state yet; retrying"
            );
            pause(stop, backoff.next_delay()).await;
        }
    }

    /// After an empty read: true when the stream went past `from` but holds
    /// nothing after it any more (trimmed behind a snapshot while this edge
    /// was behind), which no future entry would reveal as a gap.
    async fn trimmed_past(&self, conn: &mut MultiplexedConnection, from: u64) -> bool {
        let key = &self.node.settings.stream_key;
        let next: redis::RedisResult<redis::streams::StreamRangeReply> = redis::cmd("XRANGE")
            .arg(key)
            .arg(stream::after(from))
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await;
        match next {
            // An entry arrived since the read: the next XREAD takes it.
            Ok(reply) if !reply.ids.is_empty() => return false,
            Ok(_) => {}
            Err(_) => return false,
        }
        let info: redis::RedisResult<StreamInfoStreamReply> = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(key)
            .query_async(conn)
            .await;
        let Ok(info) = info else { return false }; // no such stream: nothing was trimmed
        stream::parse_entry_id(&info.last_generated_id).is_some_and(|last| last > from)
    }

    /// Records the stream's end for the lag metric.
    async fn check_lag(&self, conn: &mut MultiplexedConnection) {
        let reply: redis::RedisResult<Vec<redis::streams::StreamId>> = redis::cmd("XREVRANGE")
            .arg(&self.node.settings.stream_key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async::<redis::streams::StreamRangeReply>(conn)
            .await
            .map(|reply| reply.ids);
        if let Ok(ids) = reply {
            let last = ids
                .first()
                .and_then(|entry| stream::parse_entry_id(&entry.id))
                .unwrap_or(0);
            self.node
                .metrics
                .stream_last_seq
                .store(last, Ordering::Relaxed);
        }
    }

    fn stream_error(&self, message: &str) {
        self.node
            .metrics
            .stream_errors
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(message);
    }
}

/// A snapshot newer than `have`: from the writer when configured, else from
/// the local snapshot locations.
pub async fn newer_snapshot(node: &Node, have: u64) -> Option<Snapshot> {
    if let Some(writer) = &node.writer {
        let data_dir = &node.settings.data_dir;
        match bootstrap::download_newer(
            &writer.client,
            &writer.url,
            writer.token.as_deref(),
            Some(have),
            data_dir,
        )
        .await
        {
            Ok(Some(snapshot)) => return Some(snapshot),
            Ok(None) => {}
            Err(error) => tracing::warn!(error = format!("{error:#}"), "snapshot download failed"),
        }
    }
    let settings = node.settings.clone();
    tokio::task::spawn_blocking(move || {
        bootstrap::newest_local(settings.snapshot.as_deref(), &settings.data_dir, Some(have))
    })
    .await
    .ok()
    .flatten()
}

/// Replaces the serving state with one built from `snapshot`.
pub fn install_snapshot(node: &Node, snapshot: Snapshot) {
    let (seq, created_at, ads) = (snapshot.seq, snapshot.created_at, snapshot.ads.len());
    node.install(ServingState::from_snapshot(snapshot, Timestamp::now()));
    node.note_snapshot_loaded(created_at);
    tracing::info!(seq, ads, "serving from snapshot");
}

/// Sleeps, waking early on stop.
async fn pause(stop: &mut watch::Receiver<bool>, delay: Duration) {
    tokio::select! {
        _ = stop.wait_for(|stop| *stop) => {}
        _ = tokio::time::sleep(delay) => {}
    }
}
