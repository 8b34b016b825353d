//! Saving the current state as a snapshot file in `--data-dir`, so that a
//! restart is a cold start from a recent file even with the writer down.

use std::sync::Arc;

use adcast_shared::snapshot;
use adcast_shared::timestamp::Timestamp;
use tokio::sync::watch;

use crate::node::Node;

/// Own snapshot files kept in the data directory.
const KEEP: usize = 3;

/// Saves every `--persist-interval-secs` when the state moved, and once more
/// when `stop` turns true.
pub async fn run(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let mut saved = None;
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            _ = tokio::time::sleep(node.settings.persist_interval()) => {}
        }
        saved = save_if_changed(&node, saved).await;
    }
    save_if_changed(&node, saved).await;
}

/// Writes the current state unless `saved` already has its sequence number;
/// returns the sequence number on disk now.
pub async fn save_if_changed(node: &Arc<Node>, saved: Option<u64>) -> Option<u64> {
    let state = node.state();
    if !state.loaded || saved == Some(state.seq) {
        return saved;
    }
    let dir = node.settings.data_dir.clone();
    let seq = state.seq;
    let result = tokio::task::spawn_blocking(move || {
        let bytes = state.to_snapshot(Timestamp::now()).encode();
        snapshot::write_atomically(&dir.join(snapshot::file_name(seq)), &bytes)?;
        snapshot::prune(&dir, KEEP)
    })
    .await;
    match result {
        Ok(Ok(_)) => {
            tracing::debug!(seq, "saved local snapshot");
            Some(seq)
        }
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "saving a local snapshot failed");
            saved
        }
        Err(error) => {
            tracing::warn!(error = %error, "saving a local snapshot panicked");
            saved
        }
    }
}
