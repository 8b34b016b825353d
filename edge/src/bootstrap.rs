//! Where the first state comes from, and newer snapshots after a gap.
//!
//! Candidates are every snapshot file given with `--snapshot` (a file, or
//! every snapshot file of a directory) plus the edge's own files in
//! `--data-dir`, tried from the highest sequence number down; a corrupt file
//! is logged and skipped. With `--writer-url`, the writer's newest snapshot
//! is downloaded into `--data-dir` when it is newer than what is on disk.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use adcast_shared::snapshot::{self, Snapshot, SnapshotHeader};
use anyhow::Context;

use crate::data_dir::DataDir;
use crate::mmap::load_snapshot;
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
    let mut header = [0u8; snapshot::HEADER_LEN];
    std::fs::File::open(path)
        .ok()?
        .read_exact(&mut header)
        .ok()?;
    SnapshotHeader::decode(&header).ok()
}

/// The newest valid local snapshot with a sequence number above `above`.
pub fn newest_local(
    snapshot: Option<&Path>,
    data_dir: &Path,
    above: Option<u64>,
) -> Option<Snapshot> {
    for (seq, path) in local_candidates(snapshot, data_dir) {
        if above.is_some_and(|above| seq <= above) {
            break;
        }
        match load_snapshot(&path) {
            Ok(snapshot) => {
                tracing::info!(path = %path.display(), seq = snapshot.seq, ads = snapshot.ads.len(), "loaded snapshot");
                return Some(snapshot);
            }
            Err(error) => {
                tracing::error!(error = %error, "refusing snapshot file; trying the next one")
            }
        }
    }
    None
}

/// Where snapshots come from: the files given with `--snapshot`, the
/// edge's own `--data-dir`, and the writer.
pub struct SnapshotSources {
    /// `--snapshot`: a file, or a directory of them; only ever read.
    snapshot: Option<PathBuf>,
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
            data_dir,
            writer,
        }
    }

    /// The newest valid local snapshot above `above` (read off the runtime).
    pub async fn newest_local(&self, above: Option<u64>) -> Option<Snapshot> {
        let snapshot = self.snapshot.clone();
        let data_dir = self.data_dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || newest_local(snapshot.as_deref(), &data_dir, above))
            .await
            .ok()
            .flatten()
    }

    /// The writer's newest snapshot, saved into the data directory, unless
    /// it is not newer than `have`. An error without a writer configured.
    pub async fn download(&self, have: Option<u64>) -> anyhow::Result<Option<Snapshot>> {
        let writer = self
            .writer
            .as_ref()
            .context("no writer URL is configured")?;
        writer.download_newer(have, &self.data_dir).await
    }

    pub fn has_writer(&self) -> bool {
        self.writer.is_some()
    }

    /// A snapshot newer than `have`: from the writer when configured, else
    /// (or when it has none) from the local snapshot locations.
    pub async fn newer_than(&self, have: u64) -> Option<Snapshot> {
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
