//! Saving the current state as a snapshot file in `--data-dir`, so that a
//! restart is a cold start from a recent file even with the writer down,
//! and as the index image beside it ([`crate::image`]), which makes that
//! restart a mapping instead of a decode.

use std::sync::Arc;
use std::time::Duration;

use adcast_shared::snapshot;
use adcast_shared::timestamp::Timestamp;
use tokio::sync::watch;

use crate::data_dir::DataDir;
use crate::image;
use crate::node::Node;

/// Own snapshot files kept in the data directory.
const KEEP: usize = 3;

/// Saves every `interval` when the state moved, and once more when `stop`
/// turns true.
pub async fn run(
    node: Arc<Node>,
    data_dir: Arc<DataDir>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut saved = on_disk(&node, &data_dir);
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            _ = tokio::time::sleep(interval) => {}
        }
        saved = save_if_changed(&node, &data_dir, saved).await;
    }
    save_if_changed(&node, &data_dir, saved).await;
}

/// The sequence number of the loaded state when the data directory holds
/// it already, as a snapshot file and (when kept) as the index image: a
/// restart from its own files does not write them again.
fn on_disk(node: &Node, data_dir: &DataDir) -> Option<u64> {
    let state = node.state();
    let snapshot = data_dir.path().join(snapshot::file_name(state.seq));
    let image_current = data_dir
        .index_image()
        .is_none_or(|path| image::seq_of(&path) == Some(state.seq));
    (state.loaded && snapshot.exists() && image_current).then_some(state.seq)
}

/// Writes the current state unless `saved` already has its sequence number;
/// returns the sequence number on disk now.
pub async fn save_if_changed(node: &Node, data_dir: &DataDir, saved: Option<u64>) -> Option<u64> {
    let state = node.state();
    if !state.loaded || saved == Some(state.seq) {
        return saved;
    }
    let seq = state.seq;
    let image = data_dir.index_image();
    let result = data_dir
        .write(move |dir| {
            let now = Timestamp::now();
            let snapshot = state
                .write_snapshot(&dir.join(snapshot::file_name(seq)), now)
                .and_then(|_| snapshot::prune(dir, KEEP));
            // Saved whether or not the snapshot was: either is a start.
            let image = image.map(|image| image::write(&image, seq, &state.index, now));
            Ok((snapshot, image))
        })
        .await;
    let (snapshot, image) = match result {
        Ok(results) => results,
        Err(error) => (Err(error), None),
    };
    if let Some(Err(error)) = image {
        tracing::warn!(error = %error, "saving the index image failed");
    }
    match snapshot {
        Ok(_) => {
            tracing::debug!(seq, "saved local snapshot");
            Some(seq)
        }
        Err(error) => {
            tracing::warn!(error = %error, "saving a local snapshot failed");
            saved
        }
    }
}
