//! adcast-edge: a read node of the Public API.
//!
//! Data moves like this:
//!
//! 1. **Boot** (`bootstrap`, `mmap`): with `--snapshot s3://…`, the object
//!    store's newest valid snapshot is downloaded and verified; else (or when
//!    the store has none or is down) the newest valid snapshot among
//!    `--snapshot` and `--data-dir` is memory-mapped, verified and decoded;
//!    with `--writer-url` and nothing usable, the writer's newest is
//!    downloaded first. No network is needed to start from a file.
//! 2. **State** (`state`, `index`, `segment`, `catalog`, `compaction`,
//!    `node`): a [`state::ServingState`] holds an immutable
//!    [`index::AdIndex`]: a base [`segment`] (ads sorted by `(endAt, id)`,
//!    one bitset per condition value, each ad held once in compact form
//!    with its answer item pre-rendered) plus a small overlay of the ads
//!    changed since, merged at query time. A boot builds the base straight
//!    from the snapshot's bytes (`catalog`). Applying a batch rebuilds only
//!    the overlay; [`compaction::StateCell`] folds a grown overlay into a
//!    new base on a background thread. The [`node::Node`] swaps whole
//!    states atomically (queries never lock), publishes the applied
//!    sequence number, and says whether the edge can serve (`/servingz`)
//!    and is current (`/readyz`).
//! 3. **Tail** (`tailer`): a first `XREAD` without blocking, then
//!    `XREAD BLOCK`, from the applied sequence number; each batch becomes a
//!    new state. A gap loads a newer snapshot. Next to it, `freshness`
//!    reads the writer's heartbeat and measures how stale the applied state
//!    is, end to end. With `--sync poll` (`poll`) neither runs: a request
//!    that finds the state older than `--max-staleness-ms` first catches up
//!    with one bounded, non-blocking read shared by concurrent requests.
//! 4. **Serve** (`server`, `query`, `answer`): the server parses
//!    `GET /api/v1/ad`, the index answers it with the body and its cache
//!    lifetime, and the server writes them out; `forward` relays admin calls
//!    to the writer and waits for their change to be applied here
//!    (read-your-writes).
//! 5. **The writer** (`writer_client`): one client for everything the edge
//!    asks of the writer, forwarded calls and snapshot downloads.
//! 6. **Persist** (`persist`, `data_dir`): the state is saved to
//!    `--data-dir` from time to time and at shutdown, for the next cold
//!    start; shutdown waits for every file write in flight.
//! 7. **Metrics** (`metrics`): counters on the request and stream paths,
//!    and the rendering of every edge metric.
//!
//! [`Application`] wires these together; `main.rs` only parses flags.

#![deny(rust_2018_idioms)]
#![deny(unsafe_code)] // allowed in `mmap` alone, with its SAFETY note

pub mod answer;
pub mod answer_cache;
pub mod bootstrap;
mod catalog;
pub mod compaction;
pub mod config;
pub mod data_dir;
pub mod forward;
pub mod freshness;
pub mod image;
pub mod index;
pub mod metrics;
pub mod mmap;
pub mod node;
pub mod persist;
pub mod poll;
pub mod query;
pub mod segment;
pub mod server;
pub mod state;
pub mod tailer;
pub mod telemetry;
pub mod writer_client;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use adcast_shared::backoff::Backoff;
use adcast_shared::snapshot_store::SnapshotStore;
use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bootstrap::SnapshotSources;
use crate::config::{Settings, SnapshotLocation, SyncMode};
use crate::data_dir::DataDir;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::poll::PollSync;
use crate::server::Server;
use crate::tailer::StreamTailer;
use crate::writer_client::WriterClient;

/// A built edge: everything constructed and checked, the listener bound,
/// the local snapshot loaded; nothing running yet.
pub struct Application {
    listener: TcpListener,
    node: Arc<Node>,
    metrics: Arc<Metrics>,
    server: Arc<Server>,
    /// Stream mode: the tailer; `None` in poll mode, where requests catch
    /// up and nothing runs between them.
    tailer: Option<StreamTailer>,
    /// For the first snapshot when boot found none.
    sources: Arc<SnapshotSources>,
    data_dir: Arc<DataDir>,
    /// `--persist-interval-secs`.
    persist_interval: Duration,
    /// Where the writer's heartbeat is read: Redis and the stream key.
    heartbeat: (redis::Client, String),
}

impl Application {
    /// Loads the newest local snapshot (if any) and binds the listener. A
    /// node with nothing to load yet still starts: it answers 503 on
    /// `/servingz` and `/readyz` until the writer's snapshot arrives.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let redis =
            redis::Client::open(settings.redis_url.as_str()).context("invalid Redis URL")?;
        let writer = match &settings.writer_url {
            Some(url) => Some(Arc::new(WriterClient::new(
                url,
                settings.load_writer_token()?,
            )?)),
            None => None,
        };
        let data_dir = DataDir::open(settings.data_dir.clone()).with_context(|| {
            format!(
                "creating the data directory {}",
                settings.data_dir.display()
            )
        })?;
        let data_dir = Arc::new(data_dir.with_index_image(settings.index_image));
        let (snapshot_path, store) = match settings.snapshot_location()? {
            Some(SnapshotLocation::Path(path)) => (Some(path), None),
            Some(SnapshotLocation::Store(url)) => (None, Some(SnapshotStore::from_env(&url)?)),
            None => (None, None),
        };
        let sources = Arc::new(
            SnapshotSources::new(snapshot_path, data_dir.clone(), writer.clone()).with_store(store),
        );
        let node = Node::new(settings.ready_max_lag());
        match sources.boot().await {
            Some(snapshot) => node.install_snapshot(snapshot),
            None if settings.snapshot.is_some() => {
                tracing::warn!("no usable snapshot was found; waiting for one from the store, the writer or the stream")
            }
            None => {}
        }
        let metrics = Arc::new(Metrics::default());
        let heartbeat = (redis.clone(), settings.stream_key.clone());
        let (tailer, poll) = match settings.sync {
            SyncMode::Stream => (
                Some(StreamTailer::new(
                    &settings,
                    node.clone(),
                    metrics.clone(),
                    redis,
                    sources.clone(),
                )),
                None,
            ),
            SyncMode::Poll => (
                None,
                Some(PollSync::new(
                    &settings,
                    node.clone(),
                    metrics.clone(),
                    redis,
                    sources.clone(),
                )),
            ),
        };
        let server = Arc::new(Server::new(
            &settings,
            node.clone(),
            metrics.clone(),
            writer,
            poll,
        ));
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        Ok(Application {
            listener,
            node,
            metrics,
            server,
            tailer,
            sources,
            data_dir,
            persist_interval: settings.persist_interval(),
            heartbeat,
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

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The edge's own snapshot directory; closing it waits for the edge's
    /// file writes in flight (for whoever removes the directory afterwards).
    pub fn data_dir(&self) -> Arc<DataDir> {
        self.data_dir.clone()
    }

    /// Serves, tails and persists until `shutdown` resolves; then stops
    /// accepting, finishes in-flight requests, saves the state and waits
    /// for every file write in flight. Dropping this future stops the
    /// background tasks too.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tracing::info!(address = %self.local_addr(), seq = self.node.state().seq, "adcast-edge listening");
        let (stop_tx, stop_rx) = watch::channel(false);
        // Poll mode runs neither: requests catch up, and read the heartbeat
        // as they do.
        let (sync, freshness) = match self.tailer {
            Some(tailer) => {
                let sync = Background(tokio::spawn(sync_forever(
                    self.node.clone(),
                    tailer,
                    self.sources,
                    stop_rx.clone(),
                )));
                let (redis, stream_key) = self.heartbeat;
                let freshness = Background(tokio::spawn(freshness::run(
                    self.node.clone(),
                    redis,
                    stream_key,
                    stop_rx.clone(),
                )));
                (Some(sync), Some(freshness))
            }
            None => (None, None),
        };
        let persister = Background(tokio::spawn(persist::run(
            self.node.clone(),
            self.data_dir.clone(),
            self.persist_interval,
            stop_rx,
        )));
        server::serve(self.listener, self.server, shutdown).await;
        let _ = stop_tx.send(true);
        persister.join().await;
        // The tailer may sit in an XREAD for up to the block time (and the
        // heartbeat reader in a bounded GET); the state is saved already, so
        // they are not waited for, only a snapshot download the tailer may
        // be writing to disk.
        drop((sync, freshness));
        self.data_dir.close().await;
        tracing::info!(seq = self.node.state().seq, "adcast-edge stopped");
        Ok(())
    }
}

/// A background task that lives no longer than its owner: dropping the
/// guard (also when the owning future is cancelled) aborts the task.
struct Background(JoinHandle<()>);

impl Background {
    async fn join(mut self) {
        let _ = (&mut self.0).await;
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Gets a first state if boot found none, then tails until stopped.
async fn sync_forever(
    node: Arc<Node>,
    tailer: StreamTailer,
    sources: Arc<SnapshotSources>,
    mut stop: watch::Receiver<bool>,
) {
    if !node.state().loaded {
        if sources.has_writer() || sources.has_store() {
            if !first_snapshot(&node, &sources, &mut stop).await {
                return;
            }
        } else {
            // Nothing to start from: begin at the start of history. If the
            // stream no longer holds it, the first entry shows a gap and the
            // node waits, unready, for a snapshot file.
            tracing::info!("no snapshot: starting from an empty state at sequence 0");
            node.install(state::ServingState::start_of_history());
        }
    }
    tailer.run(stop).await;
}

/// Takes the store's newest snapshot, else the writer's, retrying until one
/// arrives or `stop`; true when a state was installed.
async fn first_snapshot(
    node: &Node,
    sources: &SnapshotSources,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        if let Some(snapshot) = sources.from_store(None).await {
            node.install_snapshot(snapshot);
            return true;
        }
        if !sources.has_writer() {
            tracing::warn!("no snapshot in the store yet");
        } else {
            match sources.download(None).await {
                Ok(Some(snapshot)) => {
                    node.install_snapshot(snapshot);
                    return true;
                }
                Ok(None) => tracing::warn!("the writer has no snapshot yet"),
                Err(error) => tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot download a first snapshot yet"
                ),
            }
        }
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return false,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}
