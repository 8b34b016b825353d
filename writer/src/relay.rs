//! The outbox relay: copies committed change events to the Redis Stream, in
//! order, as entries `<seq>-0`.
//!
//! It is the only publisher in the process. Requests never touch Redis: after
//! a commit they advance the committed sequence number (a `watch` channel the
//! relay subscribes to) and answer. The relay asks the stream for its
//! last id and publishes every outbox row after it, so the same loop handles
//! a fresh commit, a crash between commit and publish, a Redis that lost its
//! data, and a second writer publishing the same rows (Redis refuses an id
//! that is not above the last one, so a duplicate publish is a no-op).

use std::sync::Arc;
use std::time::Duration;

use adcast_shared::backoff::Backoff;
use adcast_shared::protocol::stream;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamInfoStreamReply;
use redis::AsyncConnectionConfig;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::store::Store;

/// Rows read from the outbox and sent to Redis per round trip.
const BATCH: u32 = 256;
/// Bound on any single Redis command, so a hung server cannot stall the relay.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// First retry delay after a failed round; it doubles (with jitter) up to
/// the relay interval.
const RETRY_BASE: Duration = Duration::from_millis(100);

pub struct OutboxRelay {
    store: Store,
    redis: redis::Client,
    stream_key: String,
    /// The write path's highest committed sequence number; a change wakes
    /// the relay.
    committed: watch::Receiver<u64>,
    /// The highest committed sequence number read from the database, which
    /// another writer process sharing it may have moved past `committed`.
    committed_elsewhere: u64,
    metrics: Arc<Metrics>,
    /// Pause between rounds when nothing wakes the relay.
    interval: Duration,
    /// Reused between rounds; dropped after any error and reopened next round.
    connection: Option<MultiplexedConnection>,
}

impl OutboxRelay {
    pub fn new(
        store: Store,
        redis: redis::Client,
        stream_key: String,
        committed: watch::Receiver<u64>,
        metrics: Arc<Metrics>,
        interval: Duration,
    ) -> OutboxRelay {
        OutboxRelay {
            store,
            redis,
            stream_key,
            committed,
            committed_elsewhere: 0,
            metrics,
            interval,
            connection: None,
        }
    }

    /// Publishes until `shutdown` resolves, then makes one last attempt.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        // Back off while Redis is down, but never beyond the interval; the
        // jitter spreads the retries of writers that lost Redis together.
        let mut backoff = Backoff::new(RETRY_BASE, self.interval);
        // Dropped only when the server stops; then commits cannot wake us.
        let mut commits_open = true;
        loop {
            let pause = match self.publish_pending().await {
                Ok(_) => {
                    backoff.reset();
                    self.interval
                }
                Err(error) => {
                    self.metrics.publish_failed();
                    self.connection = None;
                    tracing::warn!(error = %error, "publishing to the stream failed; will retry");
                    backoff.next_delay()
                }
            };
            tokio::select! {
                _ = &mut shutdown => break,
                changed = self.committed.changed(), if commits_open => {
                    commits_open = changed.is_ok();
                }
                _ = tokio::time::sleep(pause) => {}
            }
        }
        if let Err(error) = self.publish_pending().await {
            tracing::warn!(error = %error, "final publish before shutdown failed; the next start publishes it");
        }
    }

    /// One round: publish every outbox row the stream lacks. Returns how many
    /// entries were added.
    pub async fn publish_pending(&mut self) -> anyhow::Result<usize> {
        // Seen now: a commit from here on wakes the next round.
        let mut committed = (*self.committed.borrow_and_update()).max(self.committed_elsewhere);
        let mut connection = self.connection().await?;
        let mut last = stream_last_seq(&mut connection, &self.stream_key).await?;
        if last > committed {
            // Another writer process may have committed since; ask the database.
            committed = self.store.last_seq().await?;
            self.committed_elsewhere = committed;
            self.metrics.note_committed(committed);
        }
        if last > committed {
            // The stream holds history this database never wrote (the
            // database was reset, or two deployments share a stream key).
            // Publishing would be refused; say so loudly instead of quietly.
            tracing::error!(
                stream_last = last,
                committed,
                stream_key = %self.stream_key,
                "the stream is ahead of the database; use a fresh --stream-key or delete the stream"
            );
        }
        let mut added = 0;
        loop {
            let rows = self.store.outbox_after(last, BATCH).await?;
            let Some((batch_last, _)) = rows.last() else {
                break;
            };
            let batch_last = *batch_last;
            let mut pipe = redis::pipe();
            for (seq, payload) in &rows {
                pipe.cmd("XADD")
                    .arg(&self.stream_key)
                    .arg(stream::entry_id(*seq))
                    .arg(stream::EVENT_FIELD)
                    .arg(payload.as_slice());
            }
            match pipe.query_async::<Vec<String>>(&mut connection).await {
                Ok(ids) => added += ids.len(),
                // Another publisher got some of these ids in first; what it
                // wrote is the same events, so carry on from the stream's end.
                Err(error) if is_id_too_small(&error) => {
                    last = stream_last_seq(&mut connection, &self.stream_key).await?;
                    self.metrics.note_published(last);
                    continue;
                }
                Err(error) => return Err(error.into()),
            }
            last = batch_last;
            self.metrics.note_published(last);
            if rows.len() < BATCH as usize {
                // The outbox had no more rows; a commit since then has woken
                // the next round already (`committed` changed).
                break;
            }
        }
        // The stream may be behind what this process saw (Redis lost data):
        // report the stream's truth, not the maximum ever seen.
        self.metrics.note_published(last);
        Ok(added)
    }

    async fn connection(&mut self) -> anyhow::Result<MultiplexedConnection> {
        if let Some(connection) = &self.connection {
            return Ok(connection.clone());
        }
        let connection = connect(&self.redis).await?;
        self.connection = Some(connection.clone());
        Ok(connection)
    }
}

/// A connection whose every command is bounded in time.
pub async fn connect(client: &redis::Client) -> redis::RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(REDIS_TIMEOUT)
        .set_response_timeout(REDIS_TIMEOUT);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// The sequence number of the stream's last generated id; 0 when the stream
/// does not exist (never written, or Redis lost its data).
pub async fn stream_last_seq(
    connection: &mut MultiplexedConnection,
    stream_key: &str,
) -> redis::RedisResult<u64> {
    let info: redis::RedisResult<StreamInfoStreamReply> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(stream_key)
        .query_async(connection)
        .await;
    let info = match info {
        Ok(info) => info,
        Err(error) if error.to_string().to_lowercase().contains("no such key") => return Ok(0),
        Err(error) => return Err(error),
    };
    stream::parse_entry_id(&info.last_generated_id).ok_or_else(|| {
        redis::RedisError::from((
            redis::ErrorKind::TypeError,
            "the stream's last id is not of the form <seq>-0",
            info.last_generated_id,
        ))
    })
}

fn is_id_too_small(error: &redis::RedisError) -> bool {
    error
        .to_string()
        .contains("equal or smaller than the target stream top item")
}

#[cfg(test)]
mod tests {
    #[test]
    fn tls_redis_urls_are_supported() {
        // Without a TLS feature compiled in, redis-rs refuses these at once.
        assert!(redis::Client::open("rediss://:secret@127.0.0.1:6380/").is_ok());
    }
}
