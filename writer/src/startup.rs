//! Building the writer from its settings, and running it until told to stop:
//! the one place that wires store, relay, snapshot producer and server.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use adcast_shared::snapshot_store::SnapshotStore;
use anyhow::{bail, Context};
use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::{Scope, Tokens};
use crate::config::Settings;
use crate::heartbeat::HeartbeatPublisher;
use crate::metrics::Metrics;
use crate::relay::OutboxRelay;
use crate::schema::{self, RoleName};
use crate::server::{self, ServerLimits};
use crate::snapshots::SnapshotProducer;
use crate::state::AppState;
use crate::store::{self, Store};

/// How long start-up waits for PostgreSQL before giving up.
const DATABASE_STARTUP_WAIT: Duration = Duration::from_secs(30);
/// Idempotency keys are kept at least this long (docs/api.md: 24 h).
const IDEMPOTENCY_RETENTION_HOURS: i32 = 24;

pub struct Application {
    listener: TcpListener,
    state: Arc<AppState>,
    /// The background work's own pool (relay, heartbeat, snapshots,
    /// housekeeping), apart from the requests' `state.store`.
    background: Store,
    relay: OutboxRelay,
    snapshots: SnapshotProducer,
    settings: Settings,
}

impl Application {
    /// Checks the settings, connects to PostgreSQL (waiting for it up to
    /// 30 s), applies migrations (or checks them, `--skip-migrations`) and
    /// binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let tokens: Tokens = settings.load_tokens()?;
        if tokens.is_empty()
            && !settings.listen.ip().is_loopback()
            && !settings.allow_insecure_admin
        {
            bail!(
                "refusing to serve the Admin API on non-loopback address {} without tokens; \
                 configure --admin-token / --admin-tokens-file (and read or internal tokens), \
                 or pass --allow-insecure-admin",
                settings.listen
            );
        }
        if tokens.is_empty() {
            tracing::info!("no tokens configured: the Admin API is open");
        } else {
            tracing::info!(
                admin = tokens.count(Scope::Admin),
                read = tokens.count(Scope::Read),
                internal = tokens.count(Scope::Internal),
                "tokens configured"
            );
        }
        let store = connect_store(&settings).await?;
        // The relay, heartbeat, snapshots and housekeeping get a pool of
        // their own: when requests hold every connection of theirs (a burst,
        // a slow query), committed changes still reach the stream, and a
        // snapshot's long read-only transaction takes no request connection.
        let background = Store::new(background_pool(&settings)?);

        let redis = redis::Client::open(settings.redis_url()?).context("invalid Redis URL")?;
        let last_seq = store
            .last_seq()
            .await
            .context("reading the last sequence number")?;
        let metrics = Arc::new(Metrics::default());
        metrics.note_committed(last_seq);
        let (commits, committed) = watch::channel(last_seq);
        let relay = OutboxRelay::new(
            background.clone(),
            redis.clone(),
            settings.stream_key.clone(),
            committed,
            metrics.clone(),
            settings.relay_interval(),
        );
        let object_store = settings
            .snapshot_store
            .as_ref()
            .map(SnapshotStore::from_env)
            .transpose()?;
        let snapshots = SnapshotProducer {
            store: background.clone(),
            object_store,
            dir: settings.snapshot_dir.clone(),
            keep: settings.snapshot_keep as usize,
            every_changes: settings.snapshot_every_changes,
            interval: settings.snapshot_interval(),
            redis,
            stream_key: settings.stream_key.clone(),
            metrics: metrics.clone(),
        };
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let state = Arc::new(AppState {
            store,
            tokens,
            metrics,
            commits,
            snapshot_dir: settings.snapshot_dir.clone(),
        });
        Ok(Application {
            listener,
            state,
            background,
            relay,
            snapshots,
            settings,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves and publishes until `shutdown` resolves; then stops accepting,
    /// finishes in-flight requests and makes a last publish attempt.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        tracing::info!(address = %self.local_addr(), "adcast-writer listening");
        let relay = tokio::spawn(self.relay.run(stopped(stop_rx.clone())));
        let snapshots = tokio::spawn(self.snapshots.run(stopped(stop_rx.clone())));
        let heartbeat = tokio::spawn(
            HeartbeatPublisher::new(&self.settings, self.background.clone())?
                .run(stopped(stop_rx.clone())),
        );
        let housekeeping = tokio::spawn(purge_idempotency_keys(
            self.background.clone(),
            stopped(stop_rx.clone()),
        ));
        server::serve(
            self.listener,
            self.state,
            ServerLimits {
                request_timeout: self.settings.request_timeout(),
                header_read_timeout: self.settings.header_read_timeout(),
                max_connections: self.settings.max_connections,
            },
            shutdown,
        )
        .await;
        let _ = stop_tx.send(true);
        let _ = relay.await;
        let _ = snapshots.await;
        let _ = housekeeping.await;
        let _ = heartbeat.await;
        tracing::info!("adcast-writer stopped");
        Ok(())
    }
}

/// Connects to PostgreSQL (waiting for it up to 30 s) and applies
/// migrations, or with `--skip-migrations` checks that they are applied.
pub async fn connect_store(settings: &Settings) -> anyhow::Result<Store> {
    let pool = connect(settings).await?;
    if settings.skip_migrations {
        schema::check_applied(&pool).await?;
    } else {
        store::migrate(&pool).await.map_err(|error| {
            if schema::lacked_schema_rights(&error) {
                error.context(
                    "this database role may not change the schema: run `adcast-writer migrate` \
                     with one that may, and start the writer with --skip-migrations",
                )
            } else {
                error
            }
        })?;
    }
    Ok(Store::new(pool))
}

/// `adcast-writer migrate [--grant-to ROLE]`: migrations, then the grants.
pub async fn migrate(settings: &Settings, grant_to: Option<&RoleName>) -> anyhow::Result<()> {
    let pool = connect(settings).await?;
    store::migrate(&pool).await?;
    tracing::info!("migrations applied");
    if let Some(role) = grant_to {
        schema::grant_writer_privileges(&pool, role)
            .await
            .with_context(|| format!("granting privileges to {role}"))?;
    }
    Ok(())
}

/// Connections for the writer's background work, beside the requests'
/// `--db-max-connections`: the relay, the heartbeat and a snapshot each hold
/// at most one at a time (housekeeping shares them).
const BACKGROUND_CONNECTIONS: u32 = 3;

/// The background pool: the same database and role as the requests' pool,
/// connected on first use (the requests' pool has waited for the database
/// and applied migrations by then).
fn background_pool(settings: &Settings) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(BACKGROUND_CONNECTIONS)
        .acquire_timeout(settings.db_acquire_timeout())
        .connect_lazy(settings.database_url()?)
        .context("invalid database URL")
}

async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(settings.db_max_connections)
        .acquire_timeout(settings.db_acquire_timeout())
        .connect_lazy(settings.database_url()?)
        .context("invalid database URL")?;
    wait_for_database(&pool).await?;
    Ok(pool)
}

/// `adcast-writer snapshot --out FILE`: one snapshot of the current state.
pub async fn write_snapshot_file(settings: &Settings, out: PathBuf) -> anyhow::Result<()> {
    let store = connect_store(settings).await?;
    let written = store.write_snapshot(move |_| out).await?;
    let (seq, ads, bytes) = (written.seq, written.ads, written.bytes);
    tracing::info!(seq, ads, bytes, path = %written.path.display(), "snapshot written");
    Ok(())
}

async fn wait_for_database(pool: &PgPool) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + DATABASE_STARTUP_WAIT;
    loop {
        match sqlx::query("SELECT 1").execute(pool).await {
            Ok(_) => return Ok(()),
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %error, "waiting for PostgreSQL");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error).context("PostgreSQL is not reachable"),
        }
    }
}

/// Hourly: forget idempotency keys past their retention.
async fn purge_idempotency_keys(store: Store, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = every_hour.tick() => {
                if let Err(error) = store.purge_idempotency_keys(IDEMPOTENCY_RETENTION_HOURS).await {
                    tracing::warn!(error = %error, "purging idempotency keys failed");
                }
            }
        }
    }
}
