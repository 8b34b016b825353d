//! The snapshot producer: compacted state files for edges to start from.
//!
//! A snapshot is every live, not-yet-ended ad as of change `S`, read in one
//! consistent transaction and streamed into the file ([`Store::write_snapshot`]:
//! neither the rows nor the file are held in memory whole), written atomically into
//! the snapshot directory. After each one the producer keeps the newest
//! `keep` files and trims what nobody can need any more: stream entries at or
//! below the oldest kept snapshot's `S`, and outbox rows at or below both
//! that `S` and the last published entry. An edge holding any kept snapshot
//! can therefore always catch up from the stream, and every committed change
//! still reaches the stream.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adcast_shared::protocol::stream;
use adcast_shared::snapshot::{self, Snapshot, SnapshotHeader};
use anyhow::Context;

use crate::metrics::Metrics;
use crate::relay;
use crate::store::Store;

/// How often the producer looks at the sequence counter.
const POLL: Duration = Duration::from_secs(1);

pub struct SnapshotProducer {
    pub store: Store,
    pub dir: PathBuf,
    /// Files kept in `dir`; the oldest bounds stream and outbox trimming.
    pub keep: usize,
    /// Produce once this many changes accumulated since the last snapshot.
    pub every_changes: u64,
    /// Produce when anything changed and this long passed since the last one.
    pub interval: Duration,
    pub redis: redis::Client,
    pub stream_key: String,
    pub metrics: Arc<Metrics>,
}

/// What one round produced.
#[derive(Debug, Clone, Copy)]
pub struct Produced {
    pub seq: u64,
    pub bytes: usize,
    /// The oldest snapshot still kept: nothing at or below it is needed.
    pub oldest_kept: u64,
}

impl SnapshotProducer {
    /// Produces at start-up, then whenever enough changed or enough time
    /// passed with some change, until `stop` resolves.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut last_seq = newest_seq(&self.dir);
        let mut last_at = Instant::now();
        let mut force = true;
        loop {
            match self.store.last_seq().await {
                Ok(seq) => {
                    let changed = last_seq.is_none_or(|last| seq > last);
                    let pending = seq.saturating_sub(last_seq.unwrap_or(0));
                    let due = force
                        || pending >= self.every_changes
                        || (changed && last_at.elapsed() >= self.interval);
                    if changed && due {
                        match self.produce().await {
                            Ok(produced) => {
                                last_seq = Some(produced.seq);
                                last_at = Instant::now();
                                force = false;
                            }
                            Err(error) => {
                                self.metrics.snapshot_failed();
                                tracing::warn!(
                                    error = format!("{error:#}"),
                                    "producing a snapshot failed; will retry"
                                );
                            }
                        }
                    } else {
                        force = false;
                    }
                }
                Err(error) => {
                    tracing::debug!(error = %error, "snapshot producer cannot read the sequence")
                }
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// One snapshot: capture, write, keep the newest `keep`, trim behind the
    /// oldest kept one.
    pub async fn produce(&self) -> anyhow::Result<Produced> {
        let started = Instant::now();
        let dir = self.dir.clone();
        let written = self
            .store
            .write_snapshot(move |seq| dir.join(snapshot::file_name(seq)))
            .await?;
        let (seq, path, bytes) = (written.seq, written.path, written.bytes as usize);
        let dir = self.dir.clone();
        let keep = self.keep;
        let kept = tokio::task::spawn_blocking(move || snapshot::prune(&dir, keep))
            .await?
            .context("pruning old snapshots")?;
        let oldest_kept = kept.last().copied().unwrap_or(seq);
        self.metrics.record_snapshot(seq, bytes, started.elapsed());
        tracing::info!(seq, bytes, path = %path.display(), elapsed_ms = started.elapsed().as_millis() as u64, "snapshot written");

        // Trimming is housekeeping: a failure here is retried next time.
        match self.trim_stream(oldest_kept).await {
            // Outbox rows not yet in the stream stay, even when a snapshot
            // covers them: the relay must still publish them, or an edge
            // tailing the stream would wait for them without seeing a gap.
            Ok(published) => {
                if let Err(error) = self.store.prune_outbox(oldest_kept.min(published)).await {
                    tracing::warn!(error = %error, "pruning the outbox failed");
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "trimming the stream failed; the outbox is kept")
            }
        }
        Ok(Produced {
            seq,
            bytes,
            oldest_kept,
        })
    }

    /// `XTRIM MINID <oldest_kept + 1>`: entries at or below a kept snapshot
    /// are covered by it; everything after it stays. Returns the sequence
    /// number of the stream's last entry (what has been published).
    async fn trim_stream(&self, oldest_kept: u64) -> redis::RedisResult<u64> {
        let mut connection = relay::connect(&self.redis).await?;
        let published = relay::stream_last_seq(&mut connection, &self.stream_key).await?;
        redis::cmd("XTRIM")
            .arg(&self.stream_key)
            .arg("MINID")
            .arg(stream::entry_id(oldest_kept + 1))
            .query_async::<i64>(&mut connection)
            .await?;
        Ok(published)
    }
}

/// Encodes and writes a snapshot atomically off the async threads; returns
/// the file size.
pub async fn save(snapshot: Snapshot, path: PathBuf) -> anyhow::Result<usize> {
    tokio::task::spawn_blocking(move || {
        let bytes = snapshot.encode();
        snapshot::write_atomically(&path, &bytes)
            .with_context(|| format!("writing snapshot {}", path.display()))?;
        Ok(bytes.len())
    })
    .await?
}

/// The newest snapshot file in `dir` with a valid header, as `(header, bytes)`.
pub async fn latest(dir: &Path) -> std::io::Result<Option<(SnapshotHeader, Vec<u8>)>> {
    let files = match snapshot::list_files(dir) {
        Ok(files) => files,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    for (_, path) in files {
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            // Pruned between listing and reading: try the next one.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        match SnapshotHeader::decode(&bytes) {
            Ok(header) => return Ok(Some((header, bytes))),
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %error, "skipping invalid snapshot file")
            }
        }
    }
    Ok(None)
}

fn newest_seq(dir: &Path) -> Option<u64> {
    snapshot::list_files(dir).ok()?.first().map(|(seq, _)| *seq)
}
