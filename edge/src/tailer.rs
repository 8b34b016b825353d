//! The stream tailer: keeps the serving state current from the Redis Stream.
//!
//! One dedicated connection runs `XREAD BLOCK` from the applied sequence
//! number; each reply is applied as one batch and the new state swapped in.
//! The first read on a new connection does not block: when the stream holds
//! nothing after the applied state, that answer is the confirmation that
//! the node is current, so it is ready at once rather than after a block.
//! Entries must continue the state exactly (`seq + 1`, …). A gap — the stream
//! was trimmed past us, or an entry cannot be decoded — means a newer
//! snapshot is fetched (from the writer, or from the local snapshot
//! locations) and tailing restarts from it; events are never skipped. An
//! XREAD is never cancelled on a connection that stays in use: `stop` is
//! checked between reads, shutdown drops the tailer with its connection,
//! and the connection's response timeout sits above the block time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adcast_shared::backoff::Backoff;
use adcast_shared::event::Change;
use adcast_shared::protocol::stream;
use adcast_shared::timestamp::Timestamp;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamInfoStreamReply, StreamReadReply};
use redis::AsyncConnectionConfig;
use tokio::sync::watch;

use crate::bootstrap::SnapshotSources;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::node::Node;

/// Entries read per XREAD.
pub(crate) const BATCH: usize = 1_000;
/// How often the stream's length is looked at for the lag metric.
const LAG_CHECK: Duration = Duration::from_secs(5);

pub struct StreamTailer {
    /// Reads the stream and installs what it reads.
    reader: StreamReader,
    redis: redis::Client,
    /// Where a newer snapshot comes from after a gap.
    sources: Arc<SnapshotSources>,
    /// `--xread-block-ms`: how long one read waits for new entries.
    xread_block: Duration,
}

/// Reading the stream and applying what it holds, the same in both sync
/// modes (the tailer here, the requests' catch-up in `poll`).
pub(crate) struct StreamReader {
    /// Where batches are installed and stream contact is reported.
    pub(crate) node: Arc<Node>,
    pub(crate) metrics: Arc<Metrics>,
    /// `--stream-key`.
    pub(crate) stream_key: String,
}

impl StreamReader {
    pub(crate) fn new(settings: &Settings, node: Arc<Node>, metrics: Arc<Metrics>) -> StreamReader {
        StreamReader {
            node,
            metrics,
            stream_key: settings.stream_key.clone(),
        }
    }
}

/// One stream entry as read: its id and its event field, if any.
pub(crate) type Entry = (String, Option<Vec<u8>>);

/// Why a batch could not be applied as read.
#[derive(Debug)]
pub(crate) enum BatchProblem {
    Gap(String),
}

impl StreamTailer {
    pub fn new(
        settings: &Settings,
        node: Arc<Node>,
        metrics: Arc<Metrics>,
        redis: redis::Client,
        sources: Arc<SnapshotSources>,
    ) -> StreamTailer {
        StreamTailer {
            reader: StreamReader::new(settings, node, metrics),
            redis,
            sources,
            xread_block: settings.xread_block(),
        }
    }

    /// Tails until `stop` turns true (checked between XREADs).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut connection: Option<MultiplexedConnection> = None;
        let mut last_lag_check = Instant::now() - LAG_CHECK;
        // The first read on a connection asks without waiting, so that a
        // quiet stream confirms at once that nothing newer exists.
        let mut block = false;
        while !*stop.borrow() {
            let mut conn = match &connection {
                Some(conn) => conn.clone(),
                None => match self.connect().await {
                    Ok(conn) => {
                        tracing::info!("connected to the stream");
                        block = false;
                        connection = Some(conn.clone());
                        conn
                    }
                    Err(error) => {
                        self.reader
                            .stream_error(&format!("cannot connect to Redis: {error}"));
                        pause(&mut stop, backoff.next_delay()).await;
                        continue;
                    }
                },
            };
            let from = self.reader.node.state().seq;
            let wait = block.then_some(self.xread_block);
            match self.reader.read(&mut conn, from, wait).await {
                Ok(entries) => {
                    block = true;
                    backoff.reset();
                    if entries.is_empty() || last_lag_check.elapsed() >= LAG_CHECK {
                        last_lag_check = Instant::now();
                        self.reader.check_lag(&mut conn).await;
                    }
                    let gap = if entries.is_empty() {
                        self.reader
                            .trimmed_past(&mut conn, from)
                            .await
                            .then(|| "the stream was trimmed past this edge".to_owned())
                    } else {
                        self.reader
                            .apply(entries)
                            .err()
                            .map(|BatchProblem::Gap(reason)| reason)
                    };
                    // Contact is noted once the answer is known to continue
                    // the state (or the gap is noted first), so readiness
                    // never reports a stale state as current.
                    match gap {
                        None => self.reader.node.note_stream_contact(),
                        Some(reason) => {
                            tracing::warn!(
                                reason,
                                applied = self.reader.node.state().seq,
                                "gap in the stream; fetching a newer snapshot"
                            );
                            self.reader.node.note_gap();
                            self.reader.node.note_stream_contact();
                            self.resync(&mut stop).await;
                        }
                    }
                }
                Err(error) => {
                    connection = None;
                    self.reader
                        .stream_error(&format!("reading the stream failed: {error}"));
                    pause(&mut stop, backoff.next_delay()).await;
                }
            }
        }
    }

    async fn connect(&self) -> redis::RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Duration::from_secs(3))
            .set_response_timeout(self.xread_block + Duration::from_secs(5));
        self.redis
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Finds a snapshot newer than the applied state and restarts from it;
    /// retries with backoff until one exists, serving the stale state
    /// (a true prefix of history) meanwhile.
    async fn resync(&self, stop: &mut watch::Receiver<bool>) {
        self.reader.metrics.count_resync();
        self.reader.node.note_gap();
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        while !*stop.borrow() {
            let have = self.reader.node.state().seq;
            if let Some(snapshot) = self.sources.newer_than(have).await {
                self.reader.node.install_snapshot(snapshot); // ends the gap
                return;
            }
            tracing::warn!(
                have,
                "no snapshot newer than the applied state yet; retrying"
            );
            pause(stop, backoff.next_delay()).await;
        }
    }
}

impl StreamReader {
    /// `XREAD COUNT … [BLOCK …] STREAMS key <from>-0`: at most [`BATCH`]
    /// entries after `from`, waiting up to `block` for some when given.
    pub(crate) async fn read(
        &self,
        conn: &mut MultiplexedConnection,
        from: u64,
        block: Option<Duration>,
    ) -> redis::RedisResult<Vec<Entry>> {
        let mut command = redis::cmd("XREAD");
        command.arg("COUNT").arg(BATCH);
        if let Some(block) = block {
            command.arg("BLOCK").arg(block.as_millis() as u64);
        }
        let reply: Option<StreamReadReply> = command
            .arg("STREAMS")
            .arg(&self.stream_key)
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
    pub(crate) fn apply(&self, entries: Vec<Entry>) -> Result<(), BatchProblem> {
        let mut events = Vec::with_capacity(entries.len());
        for (id, payload) in entries {
            let seq = stream::parse_entry_id(&id)
                .ok_or_else(|| BatchProblem::Gap(format!("entry id {id} is not <seq>-0")))?;
            let payload = payload
                .ok_or_else(|| BatchProblem::Gap(format!("entry {id} has no event field")))?;
            let change = Change::decode(&payload).map_err(|error| {
                self.metrics.count_stream_error();
                BatchProblem::Gap(format!("entry {id} cannot be decoded: {error}"))
            })?;
            events.push((seq, change));
        }
        let state = self.node.state();
        let next = state
            .apply(&events, Timestamp::now())
            .map_err(|gap| BatchProblem::Gap(gap.to_string()))?;
        self.metrics.count_events_applied(events.len());
        tracing::debug!(from = state.seq, to = next.seq, "applied events");
        self.node.install(next);
        Ok(())
    }

    /// After an empty read: true when the stream went past `from` but holds
    /// nothing after it any more (trimmed behind a snapshot while this edge
    /// was behind), which no future entry would reveal as a gap.
    ///
    /// The stream's last id is asked first, then whether anything after
    /// `from` is left. Asked the other way round, an entry added between the
    /// two answers would look like a trim (nothing left after `from`, yet an
    /// id past it) and send an edge that is current to wait for a snapshot.
    /// In this order the id seen was generated before the range was read, so
    /// an empty range means it was removed: the stream only grows and trims.
    pub(crate) async fn trimmed_past(&self, conn: &mut MultiplexedConnection, from: u64) -> bool {
        let key = &self.stream_key;
        let info: redis::RedisResult<StreamInfoStreamReply> = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(key)
            .query_async(conn)
            .await;
        let Ok(info) = info else { return false }; // no such stream: nothing was trimmed
        let went_past =
            stream::parse_entry_id(&info.last_generated_id).is_some_and(|last| last > from);
        if !went_past {
            return false;
        }
        let next: redis::RedisResult<redis::streams::StreamRangeReply> = redis::cmd("XRANGE")
            .arg(key)
            .arg(stream::after(from))
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await;
        // An entry after `from` is left: the next XREAD takes it (and shows
        // a gap if it does not continue the state).
        matches!(next, Ok(reply) if reply.ids.is_empty())
    }

    /// Records the stream's end for the lag metric.
    pub(crate) async fn check_lag(&self, conn: &mut MultiplexedConnection) {
        let reply: redis::RedisResult<Vec<redis::streams::StreamId>> = redis::cmd("XREVRANGE")
            .arg(&self.stream_key)
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
            self.metrics.note_stream_last_seq(last);
        }
    }

    pub(crate) fn stream_error(&self, message: &str) {
        self.metrics.count_stream_error();
        tracing::warn!(message);
    }
}

/// Sleeps, waking early on stop.
async fn pause(stop: &mut watch::Receiver<bool>, delay: Duration) {
    tokio::select! {
        _ = stop.wait_for(|stop| *stop) => {}
        _ = tokio::time::sleep(delay) => {}
    }
}

#[cfg(test)]
mod tests {
    //! `trimmed_past` against a real Redis (`ADCAST_TEST_REDIS_URL`).

    use super::*;
    use crate::node::Node;

    async fn reader_on_fresh_stream() -> (StreamReader, MultiplexedConnection) {
        let client = redis::Client::open(adcast_testing::redis::redis_url()).unwrap();
        let conn = client.get_multiplexed_async_connection().await.unwrap();
        let reader = StreamReader {
            node: Node::new(Duration::from_secs(15)),
            metrics: Arc::new(Metrics::default()),
            stream_key: adcast_testing::unique("adcast-test-trimmed"),
        };
        (reader, conn)
    }

    async fn xadd(conn: &mut MultiplexedConnection, key: &str, seq: u64) {
        let _: String = redis::cmd("XADD")
            .arg(key)
            .arg(stream::entry_id(seq))
            .arg(stream::EVENT_FIELD)
            .arg(b"x".as_slice())
            .query_async(conn)
            .await
            .unwrap();
    }

    async fn delete(conn: &mut MultiplexedConnection, key: &str) {
        let _: i64 = redis::cmd("DEL").arg(key).query_async(conn).await.unwrap();
    }

    #[tokio::test]
    async fn a_trim_past_the_state_is_seen_and_a_stream_that_continues_it_is_not() {
        let (reader, mut conn) = reader_on_fresh_stream().await;
        let key = reader.stream_key.clone();
        assert!(!reader.trimmed_past(&mut conn, 0).await, "no stream yet");
        xadd(&mut conn, &key, 1).await;
        xadd(&mut conn, &key, 2).await;
        assert!(!reader.trimmed_past(&mut conn, 0).await, "1 and 2 are left");
        assert!(!reader.trimmed_past(&mut conn, 2).await, "nothing after 2");
        let _: i64 = redis::cmd("XTRIM")
            .arg(&key)
            .arg("MAXLEN")
            .arg(0)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(reader.trimmed_past(&mut conn, 0).await, "1 and 2 trimmed");
        assert!(!reader.trimmed_past(&mut conn, 2).await, "caught up with 2");
        delete(&mut conn, &key).await;
    }

    /// The race behind an edge that stayed at sequence 0 forever: the first
    /// entry published while the check ran must never look like a trim.
    #[tokio::test]
    async fn an_entry_added_during_the_check_is_not_a_trim() {
        let (reader, mut conn) = reader_on_fresh_stream().await;
        let client = redis::Client::open(adcast_testing::redis::redis_url()).unwrap();
        let mut publisher = client.get_multiplexed_async_connection().await.unwrap();
        for round in 0..300u64 {
            let key = reader.stream_key.clone();
            let publish = tokio::spawn({
                let mut publisher = publisher.clone();
                async move {
                    // Spread the publish over the check's round trips.
                    for _ in 0..round % 7 {
                        tokio::task::yield_now().await;
                    }
                    xadd(&mut publisher, &key, 1).await;
                }
            });
            assert!(
                !reader.trimmed_past(&mut conn, 0).await,
                "round {round}: a new entry was taken for a trim"
            );
            publish.await.unwrap();
            delete(&mut publisher, &reader.stream_key).await;
        }
    }
}
