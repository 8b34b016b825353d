//! The heartbeat: about once a second the writer tells every edge how
//! current the stream is, through the stream's own Redis.
//!
//! Each beat reads the writer's clock, then the last committed sequence
//! number from PostgreSQL, waits (briefly) until the stream holds that
//! change, and only then sets the heartbeat key
//! ([`adcast_shared::protocol::heartbeat`]). The key is written after the
//! entries it covers on the same Redis, so it reaches every replica after
//! them, in order: an edge that applied the beat's sequence number has every
//! write acknowledged before the beat's instant, however many replicas lie
//! between. A beat is skipped, never faked, when PostgreSQL or Redis does
//! not answer or the relay has not published yet: edges then see their
//! staleness grow, which is the truth (they cannot know they are current).
//!
//! It needs no coordination with a second writer process: both beat, and an
//! edge keeps the newest beat it can use.

use std::future::Future;
use std::time::Duration;

use adcast_shared::protocol::heartbeat::{self, Heartbeat};
use adcast_shared::timestamp::Timestamp;
use anyhow::Context;
use redis::aio::MultiplexedConnection;

use crate::config::Settings;
use crate::relay;
use crate::store::Store;

/// How often a beat looks again for its change in the stream, and how many
/// times, before it gives up until the next beat.
const PUBLISHED_CHECK: Duration = Duration::from_millis(20);
const PUBLISHED_CHECKS: u32 = 15;

pub struct HeartbeatPublisher {
    store: Store,
    redis: redis::Client,
    stream_key: String,
    /// The key the beat is written to (`<stream-key>:heartbeat`).
    key: String,
    /// Pause between beats; zero turns the heartbeat off.
    interval: Duration,
    /// Reused between beats; dropped after any error and reopened next beat.
    connection: Option<MultiplexedConnection>,
}

/// What one beat did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beat {
    /// The key now holds this heartbeat.
    Published(Heartbeat),
    /// The stream did not hold `committed` within the wait; nothing written.
    NotYetPublished { committed: u64, stream_last: u64 },
}

impl HeartbeatPublisher {
    pub fn new(settings: &Settings, store: Store) -> anyhow::Result<HeartbeatPublisher> {
        let redis = redis::Client::open(settings.redis_url()?).context("invalid Redis URL")?;
        Ok(HeartbeatPublisher {
            store,
            redis,
            stream_key: settings.stream_key.clone(),
            key: heartbeat::key(&settings.stream_key),
            interval: settings.heartbeat_interval(),
            connection: None,
        })
    }

    /// Beats every interval until `shutdown` resolves.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        if self.interval.is_zero() {
            tracing::info!(
                "heartbeat off (--heartbeat-interval-ms 0): edges cannot measure their staleness"
            );
            return;
        }
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = ticks.tick() => {}
            }
            match self.beat().await {
                Ok(Beat::Published(_)) => {
                    if failing {
                        tracing::info!("heartbeat published again");
                    }
                    failing = false;
                }
                Ok(Beat::NotYetPublished {
                    committed,
                    stream_last,
                }) => tracing::debug!(
                    committed,
                    stream_last,
                    "heartbeat skipped: the stream does not hold the last commit yet"
                ),
                Err(error) => {
                    self.connection = None;
                    if !failing {
                        tracing::warn!(error = format!("{error:#}"), "heartbeat failed; edges will see their staleness grow until it works again");
                    }
                    failing = true;
                }
            }
        }
    }

    /// One beat (see the module documentation).
    pub async fn beat(&mut self) -> anyhow::Result<Beat> {
        // The clock first: every write acknowledged before this instant has
        // committed before the query below starts, so its number is ≤ committed.
        let at = Timestamp::now().as_millis().max(0) as u64;
        let committed = self
            .store
            .last_seq()
            .await
            .context("reading the last committed change")?;
        let mut connection = self.connection().await?;
        let mut stream_last = 0;
        for check in 0..PUBLISHED_CHECKS {
            if check > 0 {
                tokio::time::sleep(PUBLISHED_CHECK).await;
            }
            stream_last = relay::stream_last_seq(&mut connection, &self.stream_key)
                .await
                .context("reading the stream's last id")?;
            if stream_last >= committed {
                let beat = Heartbeat {
                    writer_unix_ms: at,
                    seq: committed,
                };
                redis::cmd("SET")
                    .arg(&self.key)
                    .arg(beat.encode())
                    .query_async::<()>(&mut connection)
                    .await
                    .context("setting the heartbeat key")?;
                return Ok(Beat::Published(beat));
            }
        }
        Ok(Beat::NotYetPublished {
            committed,
            stream_last,
        })
    }

    async fn connection(&mut self) -> anyhow::Result<MultiplexedConnection> {
        if let Some(connection) = &self.connection {
            return Ok(connection.clone());
        }
        let connection = relay::connect(&self.redis)
            .await
            .context("connecting to Redis")?;
        self.connection = Some(connection.clone());
        Ok(connection)
    }
}
