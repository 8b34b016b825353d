//! Reading a snapshot file through a memory map: the edge's only `unsafe`.

use std::fs::File;
use std::path::Path;

use adcast_shared::snapshot::SnapshotError;
use adcast_shared::timestamp::Timestamp;

use crate::state::LoadedSnapshot;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot open {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a usable snapshot: {source}")]
    Invalid { path: String, source: SnapshotError },
}

/// Maps `path`, verifies and decodes it into an index, and unmaps it again.
pub fn load_snapshot(path: &Path) -> Result<LoadedSnapshot, LoadError> {
    let shown = || path.display().to_string();
    let file = File::open(path).map_err(|source| LoadError::Io {
        path: shown(),
        source,
    })?;
    let length = file
        .metadata()
        .map_err(|source| LoadError::Io {
            path: shown(),
            source,
        })?
        .len();
    if length == 0 {
        // An empty file cannot be mapped; report it as the truncation it is.
        return Err(LoadError::Invalid {
            path: shown(),
            source: SnapshotError::TruncatedHeader(0),
        });
    }
    // SAFETY: the map is read-only and lives only for this function. Snapshot
    // files are never modified in place: writers (the writer's producer, this
    // edge's persister, the downloader) write a temporary file and rename it
    // over the old name, which leaves an existing mapping pointing at the old,
    // unchanged inode. Only an outside process truncating the file while we
    // read could break that (SIGBUS); operators must not edit these files in
    // place, which docs/operations.md states.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| LoadError::Io {
        path: shown(),
        source,
    })?;
    LoadedSnapshot::decode(&map, Timestamp::now()).map_err(|source| LoadError::Invalid {
        path: shown(),
        source,
    })
}
