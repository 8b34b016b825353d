//! Reading files: through a memory map (the edge's only `unsafe`), or a
//! header's first bytes. A snapshot file is mapped while it is decoded; the
//! edge's index image ([`crate::image`]) stays mapped for as long as ads read
//! from it live.

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

/// The bytes of a file: mapped, or (in tests and fuzzing) read into memory.
pub struct FileBytes(Backing);

enum Backing {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Backing::Mapped(map) => map,
            Backing::Read(bytes) => bytes,
        }
    }
}

impl FileBytes {
    /// Drops this process's page mappings of a mapped file, so that its
    /// pages count in the resident set again only once read again (a load
    /// reads every page once, to check it; most are not read after). The
    /// page cache keeps them; the kernel can evict them under memory
    /// pressure as it can any clean file page. A no-op for bytes read into
    /// memory, or where the kernel refuses the advice.
    pub fn release_resident_pages(&self) {
        if let Backing::Mapped(map) = &self.0 {
            // SAFETY: `map` is a read-only MAP_SHARED mapping of a file that
            // is never modified in place (see `map_file`). For such a
            // mapping MADV_DONTNEED only removes page table entries: a later
            // read faults the page back from the page cache (or the file),
            // with the same bytes, so data borrowed from the map never
            // changes. (The hazard the advice carries, pages reading back
            // as zeros, applies to private and anonymous mappings, which
            // this is not.)
            #[allow(unsafe_code)]
            let result = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
            if let Err(error) = result {
                tracing::debug!(error = %error, "the kernel refused MADV_DONTNEED");
            }
        }
    }
}

impl FileBytes {
    /// Whether these are a mapped file's bytes.
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Backing::Mapped(_))
    }
}

impl From<Vec<u8>> for FileBytes {
    fn from(bytes: Vec<u8>) -> FileBytes {
        FileBytes(Backing::Read(bytes))
    }
}

impl std::fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileBytes({} bytes)", self.len())
    }
}

/// The first `N` bytes of the file `path` (a header, read without mapping
/// the file); `None` when it cannot be read or is shorter.
pub fn file_start<const N: usize>(path: &Path) -> Option<[u8; N]> {
    use std::io::Read;
    let mut start = [0u8; N];
    File::open(path).ok()?.read_exact(&mut start).ok()?;
    Some(start)
}

/// Maps the file `path` read-only. An empty file (which cannot be mapped)
/// gives no bytes.
pub fn map_file(path: &Path) -> std::io::Result<FileBytes> {
    let file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(FileBytes::from(Vec::new()));
    }
    // SAFETY: the map is read-only, and the files mapped are never modified
    // in place: their writers (the writer's snapshot producer, this edge's
    // persister, the downloader) write a temporary file and rename it over
    // the old name, and old files are removed by unlinking them. Either
    // leaves an existing mapping on the old, unchanged inode, which lives
    // until the map is dropped. Only an outside process truncating or
    // rewriting such a file in place could break that (SIGBUS, or bytes
    // changing under a reader); operators must not edit these files in
    // place, which docs/operations.md states.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }?;
    Ok(FileBytes(Backing::Mapped(map)))
}

/// Maps `path`, verifies and decodes it into an index, and unmaps it again.
pub fn load_snapshot(path: &Path) -> Result<LoadedSnapshot, LoadError> {
    let shown = || path.display().to_string();
    let map = map_file(path).map_err(|source| LoadError::Io {
        path: shown(),
        source,
    })?;
    if map.is_empty() {
        // Report an empty file as the truncation it is.
        return Err(LoadError::Invalid {
            path: shown(),
            source: SnapshotError::TruncatedHeader(0),
        });
    }
    LoadedSnapshot::decode(&map, Timestamp::now()).map_err(|source| LoadError::Invalid {
        path: shown(),
        source,
    })
}
