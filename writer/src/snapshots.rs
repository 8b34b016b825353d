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
//!
//! With an object store (`--snapshot-store`), every kept snapshot is also
//! uploaded there, then the store's pointer moves to it, then the store's
//! objects beyond `keep` are deleted, and only then is the stream trimmed
//! (behind the oldest snapshot kept in either place). While the store cannot
//! be written, nothing is trimmed; the newest snapshot is uploaded again at
//! every poll until it succeeds.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adcast_shared::protocol::stream;
use adcast_shared::snapshot::{self, Snapshot, SnapshotHeader};
use adcast_shared::snapshot_store::{Pointer, SnapshotStore};
use anyhow::Context;

use crate::metrics::Metrics;
use crate::relay;
use crate::store::Store;

/// How often the producer looks at the sequence counter.
const POLL: Duration = Duration::from_secs(1);

pub struct SnapshotProducer {
    pub store: Store,
    /// `--snapshot-store`: every kept snapshot is uploaded there before the
    /// stream is trimmed behind it.
    pub object_store: Option<SnapshotStore>,
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
    /// Whether the snapshot is in the object store (always true without
    /// one); when false, the stream was not trimmed.
    pub stored: bool,
}

impl SnapshotProducer {
    /// Produces at start-up, then whenever enough changed or enough time
    /// passed with some change, until `stop` resolves.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut last_seq = newest_seq(&self.dir);
        let mut last_at = Instant::now();
        let mut force = true;
        // The newest snapshot is not in the object store yet: upload it again.
        let mut store_behind = self.object_store.is_some();
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
                                store_behind = !produced.stored;
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
                        if store_behind {
                            store_behind = !self.store_newest_and_trim().await;
                        }
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
        let stored = self.store_and_trim(seq, &path, oldest_kept).await;
        Ok(Produced {
            seq,
            bytes,
            oldest_kept,
            stored,
        })
    }

    /// Uploads the newest snapshot file of the directory to the object
    /// store, then trims: the retry after a failed upload. True when done.
    pub async fn store_newest_and_trim(&self) -> bool {
        let files = snapshot::list_files(&self.dir).unwrap_or_default();
        let Some((seq, path)) = files.first().cloned() else {
            return false;
        };
        let oldest_kept = files[..files.len().min(self.keep.max(1))]
            .last()
            .map_or(seq, |(seq, _)| *seq);
        self.store_and_trim(seq, &path, oldest_kept).await
    }

    /// Uploads the snapshot `seq` (file `path`) to the object store, if one
    /// is configured, and then trims the stream and the outbox behind the
    /// oldest snapshot kept locally and in the store. Nothing is trimmed if
    /// the upload fails. True when the snapshot is stored (or no store).
    async fn store_and_trim(&self, seq: u64, path: &Path, oldest_kept_locally: u64) -> bool {
        let mut oldest_kept = oldest_kept_locally;
        if let Some(object_store) = &self.object_store {
            match self.upload(object_store, seq, path).await {
                Ok(oldest_in_store) => oldest_kept = oldest_kept.min(oldest_in_store),
                Err(error) => {
                    self.metrics.snapshot_store_failed();
                    tracing::warn!(
                        seq,
                        store = %object_store.url(),
                        error = format!("{error:#}"),
                        "uploading the snapshot to the object store failed; the stream is not trimmed until it succeeds (retried every second)"
                    );
                    return false;
                }
            }
        }
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
        true
    }

    /// The object, then the pointer to it, then retention; returns the
    /// oldest sequence number the store keeps.
    async fn upload(
        &self,
        object_store: &SnapshotStore,
        seq: u64,
        path: &Path,
    ) -> anyhow::Result<u64> {
        let started = Instant::now();
        let file = bytes::Bytes::from(
            tokio::fs::read(path)
                .await
                .with_context(|| format!("reading {}", path.display()))?,
        );
        let pointer = Pointer::for_snapshot(seq, &file);
        object_store.upload(seq, file).await?;
        object_store.publish_pointer(&pointer).await?;
        self.metrics.record_snapshot_stored(seq);
        // Retention failing is not a reason to hold the stream back: the
        // store keeps more than it needs until the next attempt.
        let oldest = match object_store.keep_newest(self.keep).await {
            Ok(kept) => kept.last().copied().unwrap_or(seq),
            Err(error) => {
                tracing::warn!(error = %error, "deleting old snapshots from the object store failed");
                seq
            }
        };
        tracing::info!(seq, bytes = pointer.bytes, store = %object_store.url(), elapsed_ms = started.elapsed().as_millis() as u64, "snapshot uploaded");
        Ok(oldest)
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
