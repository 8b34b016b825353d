//! adcast-edge: a read node of the Public API.
//!
//! Data moves like this:
//!
//! 1. **Boot** (`bootstrap`, `mmap`): the newest valid snapshot among
//!    `--snapshot` and `--data-dir` is memory-mapped, verified and decoded;
//!    with `--writer-url` and nothing usable on disk, the writer's newest is
//!    downloaded first. No network is needed to start from a file.
//! 2. **State** (`state`, `index`): a [`state::ServingState`] holds the ads
//!    and an immutable [`index::AdIndex`] (ads sorted by `(endAt, id)`, one
//!    bitset per condition value, pre-rendered answer items). The running
//!    [`node::Node`] swaps whole states atomically; queries never lock.
//! 3. **Tail** (`tailer`): `XREAD BLOCK` from the applied sequence number;
//!    each batch becomes a new state. A gap loads a newer snapshot. Next to
//!    it, `freshness` reads the writer's heartbeat and measures how stale
//!    the applied state is, end to end.
//! 4. **Serve** (`server`, `query`): hyper answers `GET /api/v1/ad` from the
//!    current index; `forward` relays admin calls to the writer and waits for
//!    their change to be applied here (read-your-writes).
//! 5. **Persist** (`persist`): the state is saved to `--data-dir` from time
//!    to time and at shutdown, for the next cold start.
//!
//! [`Application`] wires these together; `main.rs` only parses flags.

#![deny(rust_2018_idioms)]
#![deny(unsafe_code)] // allowed in `mmap` alone, with its SAFETY note

pub mod backoff;
pub mod bootstrap;
pub mod config;
pub mod forward;
pub mod freshness;
pub mod index;
pub mod metrics;
pub mod mmap;
pub mod node;
pub mod persist;
pub mod query;
pub mod server;
pub mod state;
pub mod tailer;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use adcast_shared::snapshot::Snapshot;
use adcast_shared::timestamp::Timestamp;
use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backoff::Backoff;
use crate::config::Settings;
use crate::node::{Node, WriterLink};
use crate::tailer::StreamTailer;

pub struct Application {
    listener: TcpListener,
    node: Arc<Node>,
    redis: redis::Client,
}

impl Application {
    /// Loads the newest local snapshot (if any) and binds the listener. A
    /// node with nothing to load yet still starts: it answers 503 on
    /// `/readyz` until the writer's snapshot arrives.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let redis =
            redis::Client::open(settings.redis_url.as_str()).context("invalid Redis URL")?;
        let writer = match &settings.writer_url {
            Some(url) => {
                let uri: http::Uri = url
                    .parse()
                    .with_context(|| format!("invalid writer URL {url}"))?;
                anyhow::ensure!(
                    uri.scheme_str() == Some("http") && uri.host().is_some(),
                    "the writer URL must be http://host:port (put TLS in front of both services if needed)"
                );
                Some(WriterLink {
                    url: url.trim_end_matches('/').to_owned(),
                    token: settings.load_writer_token()?,
                    client: forward::http_client(),
                })
            }
            None => None,
        };
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "creating the data directory {}",
                settings.data_dir.display()
            )
        })?;
        let node = Node::new(settings.clone(), writer);
        let local = {
            let settings = settings.clone();
            tokio::task::spawn_blocking(move || {
                bootstrap::newest_local(settings.snapshot.as_deref(), &settings.data_dir, None)
            })
            .await?
        };
        match local {
            Some(snapshot) => tailer::install_snapshot(&node, snapshot),
            None if settings.snapshot.is_some() => {
                tracing::warn!("no usable snapshot file was found; waiting for one from the writer or the stream")
            }
            None => {}
        }
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        Ok(Application {
            listener,
            node,
            redis,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn node(&self) -> Arc<Node> {
        self.node.clone()
    }

    /// Serves, tails and persists until `shutdown` resolves; then stops
    /// accepting, finishes in-flight requests and saves the state.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tracing::info!(address = %self.local_addr(), seq = self.node.state().seq, "adcast-edge listening");
        let (stop_tx, stop_rx) = watch::channel(false);
        let node = self.node.clone();
        let freshness = tokio::spawn(freshness::run(
            node.clone(),
            self.redis.clone(),
            stop_rx.clone(),
        ));
        let sync = tokio::spawn(sync_forever(node.clone(), self.redis, stop_rx.clone()));
        let persister = tokio::spawn(persist::run(node.clone(), stop_rx));
        server::serve(self.listener, node.clone(), shutdown).await;
        let _ = stop_tx.send(true);
        let _ = persister.await;
        // The tailer may sit in an XREAD for up to the block time (and the
        // heartbeat reader in a bounded GET); the state is already saved, so
        // do not wait for them.
        sync.abort();
        freshness.abort();
        tracing::info!(seq = node.state().seq, "adcast-edge stopped");
        Ok(())
    }
}

/// Gets a first state if boot found none, then tails until stopped.
async fn sync_forever(node: Arc<Node>, redis: redis::Client, mut stop: watch::Receiver<bool>) {
    if !node.state().loaded {
        if node.writer.is_some() {
            if !first_snapshot_from_writer(&node, &mut stop).await {
                return;
            }
        } else {
            // Nothing to start from: begin at the start of history. If the
            // stream no longer holds it, the first entry shows a gap and the
            // node waits, unready, for a snapshot file.
            tracing::info!("no snapshot: starting from an empty state at sequence 0");
            let now = Timestamp::now();
            let empty = Snapshot {
                seq: 0,
                created_at: now,
                ads: Vec::new(),
            };
            node.install(state::ServingState::from_snapshot(empty, now));
        }
    }
    StreamTailer { node, redis }.run(stop).await;
}

/// Downloads the writer's newest snapshot, retrying until it arrives or
/// `stop`; true when a state was installed.
async fn first_snapshot_from_writer(node: &Node, stop: &mut watch::Receiver<bool>) -> bool {
    let writer = node
        .writer
        .as_ref()
        .expect("called only with a writer configured");
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        let data_dir = &node.settings.data_dir;
        match bootstrap::download_newer(
            &writer.client,
            &writer.url,
            writer.token.as_deref(),
            None,
            data_dir,
        )
        .await
        {
            Ok(Some(snapshot)) => {
                tailer::install_snapshot(node, snapshot);
                return true;
            }
            Ok(None) => tracing::warn!("the writer has no snapshot yet"),
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "cannot download a first snapshot yet"
            ),
        }
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return false,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}
