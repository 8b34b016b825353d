//! Where the first state comes from, and newer snapshots after a gap.
//!
//! With `--snapshot s3://bucket/prefix`, the object store comes first
//! (unless the edge's own index image is at least as new): the object its
//! `latest` pointer names, or, when the pointer is missing or that
//! object does not match it or does not verify, every snapshot object newest
//! first. A snapshot from the store is verified in full before use and saved
//! into `--data-dir`.
//!
//! Then the local files, tried from the highest sequence number down: the
//! edge's index image in `--data-dir` ([`crate::image`]; before a snapshot
//! file of the same sequence number), every snapshot file given with
//! `--snapshot` (a file, or every snapshot file of a directory), and the
//! edge's own snapshot files in `--data-dir`; a refused file is logged and
//! skipped. With `--writer-url`, the writer's newest snapshot is downloaded into `--data-dir` when nothing else is usable (at boot), or
//! after the store when it is newer than what the edge has (after a gap).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use adcast_shared::snapshot::{self, SnapshotHeader};
use adcast_shared::snapshot_store::{Pointer, SnapshotStore, StoreError};
use adcast_shared::timestamp::Timestamp;
use anyhow::Context;
use bytes::Bytes;

use crate::data_dir::DataDir;
use crate::image;
use crate::mmap::{file_start, load_snapshot};
use crate::state::LoadedSnapshot;
use crate::writer_client::WriterClient;

/// Files this edge could start from, newest first.
pub fn local_candidates(snapshot: Option<&Path>, data_dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut candidates = Vec::new();
    if let Some(path) = snapshot {
        if path.is_dir() {
            candidates.extend(snapshot::list_files(path).unwrap_or_default());
        } else {
            // A named file is used whatever its name; its header says its seq.
            let seq = read_header(path).map_or(0, |header| header.seq);
            candidates.push((seq, path.to_path_buf()));
        }
    }
    candidates.extend(snapshot::list_files(data_dir).unwrap_or_default());
    candidates.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
    candidates.dedup_by(|a, b| a.1 == b.1);
    candidates
}

/// The header of a snapshot file, reading only its first bytes.
fn read_header(path: &Path) -> Option<SnapshotHeader> {
    SnapshotHeader::decode(&file_start::<{ snapshot::HEADER_LEN }>(path)?).ok()
}

/// The newest valid local state with a sequence number above `above`,
/// from the index image `image` and the snapshot files, tried newest
/// first (the image before a snapshot file of the same sequence number: it
/// holds the same state, and loads faster). A refused one is logged and
/// the next one tried.
pub fn newest_local(
    snapshot: Option<&Path>,
    data_dir: &Path,
    image: Option<&Path>,
    above: Option<u64>,
) -> Option<LoadedSnapshot> {
    let newer = |seq: u64| above.is_none_or(|above| seq > above);
    let mut image = image
        .and_then(|path| Some((image::seq_of(path)?, path)))
        .filter(|&(seq, _)| newer(seq));
    for (seq, path) in local_candidates(snapshot, data_dir) {
        if !newer(seq) {
            break;
        }
        if let Some((_, path)) = image.take_if(|(image_seq, _)| *image_seq >= seq) {
            if let Some(state) = load_image(path) {
                return Some(state);
            }
        }
        match load_snapshot(&path) {
            Ok(snapshot) => {
                tracing::info!(path = %path.display(), seq = snapshot.seq, ads = snapshot.ads, "loaded snapshot");
                return Some(snapshot);
            }
            Err(error) => {
                tracing::error!(error = %error, "refusing snapshot file; trying the next one")
            }
        }
    }
    image.and_then(|(_, path)| load_image(path))
}

/// The index image at `path`, or `None` (logged) when it is refused.
fn load_image(path: &Path) -> Option<LoadedSnapshot> {
    match image::load(path) {
        Ok(state) => {
            tracing::info!(path = %path.display(), seq = state.seq, ads = state.ads, "loaded index image");
            Some(state)
        }
        Err(error) => {
            tracing::error!(path = %path.display(), error = %error, "refusing the index image; trying the snapshot files");
            None
        }
    }
}

/// Where snapshots come from: the object store or the files given with
/// `--snapshot`, the edge's own `--data-dir`, and the writer.
pub struct SnapshotSources {
    /// `--snapshot`: a file, or a directory of them; only ever read.
    snapshot: Option<PathBuf>,
    /// `--snapshot s3://…`: only ever read.
    store: Option<SnapshotStore>,
    /// The edge's own files; downloads are saved here.
    data_dir: Arc<DataDir>,
    /// The writer, when `--writer-url` is given.
    writer: Option<Arc<WriterClient>>,
}

impl SnapshotSources {
    pub fn new(
        snapshot: Option<PathBuf>,
        data_dir: Arc<DataDir>,
        writer: Option<Arc<WriterClient>>,
    ) -> SnapshotSources {
        SnapshotSources {
            snapshot,
            store: None,
            data_dir,
            writer,
        }
    }

    /// Snapshots come from this object store first.
    pub fn with_store(mut self, store: Option<SnapshotStore>) -> SnapshotSources {
        self.store = store;
        self
    }

    pub fn has_store(&self) -> bool {
        self.store.is_some()
    }

    /// The first state: the store's newest valid snapshot, unless the
    /// edge's own index image is as new; else the newest valid local file.
    /// (The writer comes after, from the sync task.)
    pub async fn boot(&self) -> Option<LoadedSnapshot> {
        let image = self.data_dir.index_image();
        let image_seq = image.as_deref().and_then(image::seq_of);
        if let Some(snapshot) = self.from_store(image_seq).await {
            return Some(snapshot);
        }
        let local = self.newest_local(None).await;
        let local_seq = local.as_ref().map(|state| state.seq);
        if image_seq.is_some() && local_seq < image_seq {
            // The image was refused: the store may still hold something
            // newer than what is left here.
            if let Some(snapshot) = self.from_store(local_seq).await {
                return Some(snapshot);
            }
        }
        local
    }

    /// The store's newest valid snapshot above `above`, if a store is
    /// configured and reachable: the pointer's object, else the listed
    /// objects newest first. Every object is verified in full; an invalid
    /// one is refused (logged) and the next older one tried.
    pub async fn from_store(&self, above: Option<u64>) -> Option<LoadedSnapshot> {
        let store = self.store.as_ref()?;
        let started = Instant::now();
        let newer = |seq: u64| above.is_none_or(|above| seq > above);
        let mut tried = None;
        match store.pointer().await {
            Ok(Some(pointer)) if !newer(pointer.seq) => return None,
            Ok(Some(pointer)) => match self.fetch(store, pointer.seq, Some(&pointer)).await {
                Ok(snapshot) => return Some(self.keep(store, snapshot, started)),
                Err(error) => {
                    tracing::error!(store = %store.url(), seq = pointer.seq, error = format!("{error:#}"), "refusing the snapshot the store's pointer names; trying older objects");
                    tried = Some(pointer.seq);
                }
            },
            Ok(None) => {
                tracing::warn!(store = %store.url(), "the snapshot store has no pointer object (latest); listing its snapshots")
            }
            Err(error @ StoreError::BadPointer(..)) => {
                tracing::error!(error = %error, "ignoring the store's pointer; listing its snapshots")
            }
            Err(error) => {
                tracing::warn!(error = %error, "the snapshot store cannot be read");
                return None;
            }
        }
        let seqs = match store.list().await {
            Ok(seqs) => seqs,
            Err(error) => {
                tracing::warn!(error = %error, "listing the snapshot store failed");
                return None;
            }
        };
        for seq in seqs.into_iter().filter(|seq| Some(*seq) != tried) {
            if !newer(seq) {
                break;
            }
            match self.fetch(store, seq, None).await {
                Ok(snapshot) => return Some(self.keep(store, snapshot, started)),
                Err(error) => {
                    tracing::error!(store = %store.url(), seq, error = format!("{error:#}"), "refusing snapshot object; trying the next older one")
                }
            }
        }
        tracing::warn!(store = %store.url(), "the snapshot store holds no usable snapshot");
        None
    }

    /// Downloads and verifies the object of `seq` (against `pointer` too).
    async fn fetch(
        &self,
        store: &SnapshotStore,
        seq: u64,
        pointer: Option<&Pointer>,
    ) -> anyhow::Result<(LoadedSnapshot, Bytes)> {
        let file = store.fetch(seq).await?;
        if pointer.is_some_and(|pointer| !pointer.matches(&file)) {
            anyhow::bail!(
                "{} bytes that do not match the pointer's size and checksum",
                file.len()
            );
        }
        let (snapshot, file) = tokio::task::spawn_blocking(move || {
            LoadedSnapshot::decode(&file, Timestamp::now()).map(|snapshot| (snapshot, file))
        })
        .await?
        .context("not a usable snapshot")?;
        anyhow::ensure!(
            snapshot.seq == seq,
            "the object of seq {seq} holds the snapshot of seq {}",
            snapshot.seq
        );
        Ok((snapshot, file))
    }

    /// Logs the snapshot taken from the store and saves it into the data
    /// directory in the background (for a restart without the store).
    fn keep(
        &self,
        store: &SnapshotStore,
        (snapshot, file): (LoadedSnapshot, Bytes),
        started: Instant,
    ) -> LoadedSnapshot {
        tracing::info!(store = %store.url(), seq = snapshot.seq, ads = snapshot.ads, bytes = file.len(), elapsed_ms = started.elapsed().as_millis() as u64, "loaded snapshot from the object store");
        let data_dir = self.data_dir.clone();
        let seq = snapshot.seq;
        tokio::spawn(async move {
            let saved = data_dir
                .write(move |dir| {
                    snapshot::write_atomically(&dir.join(snapshot::file_name(seq)), &file)
                })
                .await;
            if let Err(error) = saved {
                tracing::warn!(error = %error, "saving the store's snapshot into the data directory failed");
            }
        });
        snapshot
    }

    /// The newest valid local snapshot above `above` (read off the runtime).
    pub async fn newest_local(&self, above: Option<u64>) -> Option<LoadedSnapshot> {
        let snapshot = self.snapshot.clone();
        let data_dir = self.data_dir.path().to_path_buf();
        let image = self.data_dir.index_image();
        tokio::task::spawn_blocking(move || {
            newest_local(snapshot.as_deref(), &data_dir, image.as_deref(), above)
        })
        .await
        .ok()
        .flatten()
    }

    /// The writer's newest snapshot, saved into the data directory, unless
    /// it is not newer than `have`. An error without a writer configured.
    pub async fn download(&self, have: Option<u64>) -> anyhow::Result<Option<LoadedSnapshot>> {
        let writer = self
            .writer
            .as_ref()
            .context("no writer URL is configured")?;
        writer.download_newer(have, &self.data_dir).await
    }

    pub fn has_writer(&self) -> bool {
        self.writer.is_some()
    }

    /// A snapshot newer than `have`: from the object store when configured,
    /// else (or when it has none) from the writer when configured, else from
    /// the local snapshot locations.
    pub async fn newer_than(&self, have: u64) -> Option<LoadedSnapshot> {
        if let Some(snapshot) = self.from_store(Some(have)).await {
            return Some(snapshot);
        }
        if self.has_writer() {
            match self.download(Some(have)).await {
                Ok(Some(snapshot)) => return Some(snapshot),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "snapshot download failed")
                }
            }
        }
        self.newest_local(Some(have)).await
    }
}
