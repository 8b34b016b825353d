//! Where the first state comes from, and newer snapshots after a gap.
//!
//! Candidates are every snapshot file given with `--snapshot` (a file, or
//! every snapshot file of a directory) plus the edge's own files in
//! `--data-dir`, tried from the highest sequence number down; a corrupt file
//! is logged and skipped. With `--writer-url`, the writer's newest snapshot
//! is downloaded into `--data-dir` when it is newer than what is on disk.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use adcast_shared::protocol::{routes, snapshot_etag};
use adcast_shared::snapshot::{self, Snapshot, SnapshotHeader};
use bytes::Bytes;
use http::header::{AUTHORIZATION, ETAG, IF_NONE_MATCH};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};

use crate::forward::HttpClient;
use crate::mmap::load_snapshot;

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

/// Asks the writer for its newest snapshot; when it is newer than `have`,
/// verifies it, saves it atomically into `data_dir` and returns it.
pub async fn download_newer(
    client: &HttpClient,
    writer_url: &str,
    token: Option<&str>,
    have: Option<u64>,
    data_dir: &Path,
) -> anyhow::Result<Option<Snapshot>> {
    let uri = format!(
        "{}{}",
        writer_url.trim_end_matches('/'),
        routes::SNAPSHOT_LATEST
    );
    let mut request = Request::get(&uri);
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(seq) = have {
        request = request.header(IF_NONE_MATCH, snapshot_etag::for_seq(seq));
    }
    let request = request.body(
        Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    )?;
    let response = tokio::time::timeout(Duration::from_secs(60), client.request(request))
        .await
        .map_err(|_| anyhow::anyhow!("snapshot download from {uri} timed out"))??;
    match response.status() {
        StatusCode::NOT_MODIFIED => return Ok(None),
        StatusCode::OK => {}
        status => anyhow::bail!("snapshot download from {uri} answered {status}"),
    }
    let etag = response.headers().get(ETAG).cloned();
    let bytes = response.into_body().collect().await?.to_bytes();
    let snapshot = Snapshot::decode(&bytes).map_err(|error| {
        anyhow::anyhow!("downloaded snapshot (ETag {etag:?}) is invalid: {error}")
    })?;
    if have.is_some_and(|have| snapshot.seq <= have) {
        return Ok(None);
    }
    let path = data_dir.join(snapshot::file_name(snapshot.seq));
    let to_write = bytes.clone();
    tokio::task::spawn_blocking(move || snapshot::write_atomically(&path, &to_write)).await??;
    tracing::info!(
        seq = snapshot.seq,
        ads = snapshot.ads.len(),
        bytes = bytes.len(),
        "downloaded snapshot from the writer"
    );
    Ok(Some(snapshot))
}
