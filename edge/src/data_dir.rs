//! The edge's own snapshot directory (`--data-dir`) and the file writes in
//! flight into it.
//!
//! Writes (a persisted state, a downloaded snapshot) run on the blocking
//! pool, where cancelling their task does not stop them. So that shutdown
//! and whoever removes the directory afterwards can know when the last one
//! is done, every write goes through [`DataDir::write`], and
//! [`DataDir::close`] waits for those in flight and refuses new ones.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::RwLock;

pub struct DataDir {
    path: PathBuf,
    /// Whether this edge keeps an index image here (`--index-image`).
    index_image: bool,
    /// `true` while writes are allowed. Each write holds a read guard for as
    /// long as its blocking work runs; `close` takes the write guard, which
    /// waits for all of them, and flips it.
    open: Arc<RwLock<bool>>,
}

impl DataDir {
    /// Creates the directory if needed, and removes the temporary files
    /// of writes a crash interrupted (hidden `*.tmp` files: an index image's
    /// is as large as the image).
    pub fn open(path: PathBuf) -> std::io::Result<DataDir> {
        std::fs::create_dir_all(&path)?;
        for entry in std::fs::read_dir(&path)?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {
                        tracing::info!(file = %name, "removed the temporary file of an interrupted write")
                    }
                    Err(error) => {
                        tracing::warn!(file = %name, error = %error, "cannot remove a stale temporary file")
                    }
                }
            }
        }
        Ok(DataDir {
            path,
            index_image: true,
            open: Arc::new(RwLock::new(true)),
        })
    }

    /// Keeps an index image here (the default) or not.
    pub fn with_index_image(mut self, index_image: bool) -> DataDir {
        self.index_image = index_image;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the index image is read from and saved to, unless this edge
    /// keeps none (see [`crate::image`]).
    pub fn index_image(&self) -> Option<PathBuf> {
        self.index_image.then(|| crate::image::path_in(&self.path))
    }

    /// Runs `work` (given the directory) on the blocking pool; an error once
    /// the directory is closed.
    pub async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Path) -> std::io::Result<T> + Send + 'static,
    ) -> std::io::Result<T> {
        let open = self.open.clone().read_owned().await;
        if !*open {
            return Err(std::io::Error::other(
                "the data directory is closed: the edge is shutting down",
            ));
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            // Released when the work ends, even if this task was cancelled.
            let _open = open;
            work(&path)
        })
        .await
        .map_err(|error| std::io::Error::other(format!("a data directory write failed: {error}")))?
    }

    /// Waits for the writes in flight and refuses every later one: after
    /// this, nothing of this edge touches the directory.
    pub async fn close(&self) {
        *self.open.write().await = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "adcast-edge-data-dir-{name}-{}",
            std::process::id()
        ))
    }

    #[test]
    fn opening_removes_the_temporary_files_of_interrupted_writes() {
        let path = temp_path("stale");
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        for name in [
            ".index.adimage.77-0.tmp",
            "snapshot-00000000000000000001.adsnap",
            "notes.tmp",
        ] {
            std::fs::write(path.join(name), b"x").unwrap();
        }
        DataDir::open(path.clone()).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["notes.tmp", "snapshot-00000000000000000001.adsnap"]);
        std::fs::remove_dir_all(&path).unwrap();
    }

    #[tokio::test]
    async fn close_waits_for_a_write_in_flight_and_refuses_later_ones() {
        let path = temp_path("close");
        let dir = Arc::new(DataDir::open(path.clone()).unwrap());
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let writing = {
            let dir = dir.clone();
            tokio::spawn(async move {
                dir.write(move |path| {
                    started_tx.send(()).unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    std::fs::write(path.join("late"), b"x")
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        // Cancelling the task does not stop its blocking work; close waits.
        writing.abort();
        dir.close().await;
        assert!(
            path.join("late").exists(),
            "close returned before the write ended"
        );
        assert!(dir.write(|_| Ok(())).await.is_err());
        std::fs::remove_dir_all(&path).unwrap();
    }
}
