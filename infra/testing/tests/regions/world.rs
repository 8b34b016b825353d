//! The world of one scenario: two regions, the real binaries in them, and
//! the fault proxy's links between them.
//!
//! ```text
//!  region "primary" (10.77.P.2)         root namespace (the test)          region "remote" (10.77.R.2)
//!  ┌───────────────────────────┐                                          ┌─────────────────────────────┐
//!  │ redis primary :6379  ◀────┼── replication ◀───────────────────────── ┼─ redis replica :6379        │
//!  │                      ◀────┼── primary-for-remote ◀────────────────── ┼─ edge "far"   :8090         │
//!  │ writer(s) :8081/:8082 ◀───┼── writer-for-remote ◀───────────────────┼─ edge "local" :8080 ─▶ replica
//!  │   ─▶ redis-for-writer ────┼─▶ primary (or a promoted replica)        └─────────────────────────────┘
//!  │   ─▶ postgres ────────────┼─▶ 127.0.0.1:5432 (the host's PostgreSQL)
//!  └───────────────────────────┘   writer (127.0.0.1): the test's own writes
//! ```
//!
//! The writer runs in the primary region, next to the Redis primary, as in
//! production. PostgreSQL stays on the host (the scenarios need no database
//! of their own): the writer reaches it through the `postgres` link, which
//! carries no faults. Every link a region uses to reach another is a link of
//! the proxy, listening on that region's root-side address; the test
//! process talks to every server directly, as an observer, and writes
//! through the `writer` link, the one address behind which a scenario may
//! switch writers.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adcast_shared::protocol::routes;
use adcast_testing::databases::{postgres_base_url, TestDatabase};
use adcast_testing::faults::{FaultProxy, Link};
use adcast_testing::http::TestResponse;
use adcast_testing::netns::Region;
use adcast_testing::processes::KillOnDrop;
use adcast_testing::TempDir;
use http::StatusCode;
use sqlx::PgPool;

use crate::clients::{get, items, redis_info, wait_for_redis, Admin};

pub const STREAM_KEY: &str = "adcast:events";
pub const ADMIN_TOKEN: &str = "regions-admin-token";
pub const REDIS_PORT: u16 = 6379;
pub const WRITER_PORTS: [u16; 2] = [8081, 8082];
pub const LOCAL_EDGE_PORT: u16 = 8080;
pub const FAR_EDGE_PORT: u16 = 8090;
/// `--ready-max-lag-ms` of every edge: short, so scenarios stay short.
pub const READY_MAX_LAG: Duration = Duration::from_millis(3_000);

/// What a scenario needs besides the defaults.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Extra `redis-server` arguments for the primary (e.g. a small backlog).
    pub primary_redis_args: Vec<String>,
    /// Start a second writer (standby) on the same database and Redis.
    pub two_writers: bool,
}

/// A process of the world, with its log file.
pub struct Service {
    pub name: String,
    pub address: SocketAddr,
    process: KillOnDrop,
    log: PathBuf,
}

impl Service {
    fn spawn(
        name: &str,
        address: SocketAddr,
        mut command: std::process::Command,
        log: PathBuf,
    ) -> Service {
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("creating a log file");
        let err = out.try_clone().expect("cloning a log file handle");
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let process = KillOnDrop::new(
            command
                .spawn()
                .unwrap_or_else(|error| panic!("starting {name}: {error}")),
        );
        Service {
            name: name.to_owned(),
            address,
            process,
            log,
        }
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    /// Still running (not exited, not killed).
    pub fn is_running(&mut self) -> bool {
        self.process.id().is_some() && self.process.exit_status().is_none()
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// One answer an edge process gave to the sampler, in the order given.
#[derive(Clone, Debug)]
pub struct Sample {
    pub seq: u64,
    /// `(title, endAt)` of `GET /api/v1/ad?limit=100` (no filter); `None`
    /// for an answer to another query (its seq still counts).
    pub items: Option<Vec<(String, String)>>,
}

/// Every answer one edge process gave to a sequential observer: a sampler
/// asking every 100 ms, and the checker. `Adcast-Seq` must never decrease
/// within one process, and each answer must equal the model at its seq.
#[derive(Clone, Default)]
pub struct Samples(Arc<Mutex<Vec<Sample>>>);

impl Samples {
    pub fn push(&self, sample: Sample) {
        self.0.lock().unwrap().push(sample);
    }

    pub fn all(&self) -> Vec<Sample> {
        self.0.lock().unwrap().clone()
    }
}

/// The sampler's query: the first page of everything active.
pub const SAMPLE_QUERY: &str = "limit=100";

pub struct Edge {
    pub service: Service,
    pub data_dir: PathBuf,
    pub samples: Samples,
    sampler: tokio::task::JoinHandle<()>,
    command: Vec<String>,
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.sampler.abort();
    }
}

impl Edge {
    pub fn address(&self) -> SocketAddr {
        self.service.address
    }

    pub async fn get(&self, path: &str) -> Result<TestResponse, String> {
        get(self.address(), path, &[]).await
    }

    pub async fn ready(&self) -> bool {
        matches!(self.get("/readyz").await, Ok(response) if response.status == StatusCode::OK)
    }

    /// One gauge from `/metrics`.
    pub async fn gauge(&self, name: &str) -> Option<f64> {
        let response = self.get("/metrics").await.ok()?;
        let text = String::from_utf8_lossy(&response.body).into_owned();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    /// `Adcast-Seq` of a public answer right now.
    pub async fn seq(&self) -> Option<u64> {
        let response = self.get(&format!("{}?limit=1", routes::ADS)).await.ok()?;
        (response.status == StatusCode::OK).then(|| response.seq())
    }
}

/// Asks `address` for [`SAMPLE_QUERY`] every 100 ms, one request at a time.
fn start_sampler(address: SocketAddr, samples: Samples) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Ok(response) =
                get(address, &format!("{}?{SAMPLE_QUERY}", routes::ADS), &[]).await
            {
                if response.status == StatusCode::OK {
                    samples.push(Sample {
                        seq: response.seq(),
                        items: Some(items(&response)),
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// The binaries under test, built by `infra/regions.sh`.
fn binary(variable: &str) -> PathBuf {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("{variable} is not set: run the scenarios with infra/regions.sh")
        });
    assert!(
        path.is_file(),
        "{variable}={} is not a file",
        path.display()
    );
    path
}

pub struct World {
    // Fields drop in this order: processes first, then the links, then the
    // regions (which kill whatever is left inside), then database and files.
    pub edges: BTreeMap<&'static str, Edge>,
    /// Samples of edge processes that were replaced (restarts), still checked.
    pub retired: Vec<(String, Samples)>,
    pub writers: Vec<Service>,
    pub redis: BTreeMap<&'static str, Service>,
    pub proxy: FaultProxy,
    pub primary: Region,
    pub remote: Region,
    /// A pool on the writer's database, for the checker (direct, no link).
    pub db: PgPool,
    /// Dropped (with its connections) after everything that used it.
    _database: TestDatabase,
    pub admin: Admin,
    pub dir: TempDir,
    writer_bin: PathBuf,
    edge_bin: PathBuf,
    writer_database_url: String,
}

impl World {
    /// Both regions, Redis primary and replica, the writer (and a standby),
    /// the links, and two edges in the remote region ("local" on the
    /// replica, "far" on the primary across the link), every edge ready.
    pub async fn start(options: Options) -> World {
        let writer_bin = binary("ADCAST_WRITER_BIN");
        let edge_bin = binary("ADCAST_EDGE_BIN");
        let dir = TempDir::new("adcast-regions");
        std::fs::create_dir_all(dir.path()).expect("creating the scenario directory");
        let primary = Region::create("primary");
        let remote = Region::create("remote");
        let database = TestDatabase::create().await;
        let db = PgPool::connect(&database.url())
            .await
            .expect("connecting to the test database");
        let mut proxy = FaultProxy::new();

        let (credentials, postgres) = postgres_endpoint();
        let primary_redis = SocketAddr::from((primary.address(), REDIS_PORT));
        let writer = SocketAddr::from((primary.address(), WRITER_PORTS[0]));
        let any = |region: &Region| SocketAddr::from((region.root_address(), 0));
        let pg_link = proxy
            .add("postgres", any(&primary), postgres)
            .await
            .address();
        let writer_redis = proxy
            .add("redis-for-writer", any(&primary), primary_redis)
            .await
            .address();
        let admin = proxy
            .add("writer", "127.0.0.1:0".parse().unwrap(), writer)
            .await
            .address();
        proxy.add("writer-for-remote", any(&remote), writer).await;
        let replication = proxy
            .add("replication", any(&remote), primary_redis)
            .await
            .address();
        proxy
            .add("primary-for-remote", any(&remote), primary_redis)
            .await;
        let writer_database_url = format!("postgres://{credentials}@{pg_link}/{}", database.name());

        let mut world = World {
            edges: BTreeMap::new(),
            retired: Vec::new(),
            writers: Vec::new(),
            redis: BTreeMap::new(),
            proxy,
            primary,
            remote,
            db,
            _database: database,
            admin: Admin { address: admin },
            dir,
            writer_bin,
            edge_bin,
            writer_database_url,
        };
        // Diskless full syncs start at once (the default waits 5 s for more replicas).
        let mut primary_args = vec!["--repl-diskless-sync-delay".to_owned(), "0".to_owned()];
        primary_args.extend(options.primary_redis_args.iter().cloned());
        let redis_primary = world.start_redis("redis-primary", true, &primary_args);
        world.redis.insert("primary", redis_primary);
        let replica_args = vec![
            "--replicaof".to_owned(),
            replication.ip().to_string(),
            replication.port().to_string(),
        ];
        let redis_replica = world.start_redis("redis-replica", false, &replica_args);
        world.redis.insert("replica", redis_replica);
        wait_for_redis(world.redis["primary"].address).await;
        wait_for_redis(world.redis["replica"].address).await;
        wait_until(
            "the replica is in sync with the primary",
            Duration::from_secs(20),
            || async {
                redis_info(world.redis["replica"].address)
                    .await
                    .get("master_link_status")
                    .map(String::as_str)
                    == Some("up")
            },
        )
        .await;

        let first = world.start_writer(0, writer_redis);
        world.writers.push(first);
        if options.two_writers {
            let second = world.start_writer(1, writer_redis);
            world.writers.push(second);
        }
        for writer in &world.writers {
            let address = writer.address;
            wait_until(&format!("{} is ready", writer.name), Duration::from_secs(60), || async move {
                matches!(get(address, "/readyz", &[]).await, Ok(response) if response.status == StatusCode::OK)
            })
            .await;
        }
        let local_redis = format!("redis://127.0.0.1:{REDIS_PORT}");
        let far_redis = format!(
            "redis://{}",
            world.proxy.link("primary-for-remote").address()
        );
        let local = world.start_edge("local", LOCAL_EDGE_PORT, &local_redis, None);
        world.edges.insert("local", local);
        let far = world.start_edge("far", FAR_EDGE_PORT, &far_redis, None);
        world.edges.insert("far", far);
        world.wait_all_ready(Duration::from_secs(60)).await;
        world
    }

    pub fn link(&self, name: &str) -> &Link {
        self.proxy.link(name)
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    fn start_redis(&self, name: &str, in_primary: bool, extra: &[String]) -> Service {
        let region = if in_primary {
            &self.primary
        } else {
            &self.remote
        };
        let data = self.dir.path().join(name);
        std::fs::create_dir_all(&data).expect("creating a Redis directory");
        let mut command = region.command("redis-server");
        command
            .args([
                "--port",
                &REDIS_PORT.to_string(),
                "--bind",
                "0.0.0.0",
                "--protected-mode",
                "no",
            ])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&data)
            .args(extra);
        Service::spawn(
            name,
            SocketAddr::from((region.address(), REDIS_PORT)),
            command,
            self.log(name),
        )
    }

    fn start_writer(&self, index: usize, redis: SocketAddr) -> Service {
        let name = format!("writer-{}", ["a", "b"][index]);
        let address = SocketAddr::from((self.primary.address(), WRITER_PORTS[index]));
        let snapshots = self.dir.path().join(format!("{name}-snapshots"));
        let mut command = self.primary.command(&self.writer_bin);
        command
            .arg("--listen")
            .arg(address.to_string())
            .arg("--database-url")
            .arg(&self.writer_database_url)
            .arg("--redis-url")
            .arg(format!("redis://{redis}"))
            .args(["--stream-key", STREAM_KEY, "--admin-token", ADMIN_TOKEN])
            .arg("--snapshot-dir")
            .arg(snapshots)
            // Snapshots only at start-up: nothing is trimmed or pruned
            // during a scenario, so the outbox holds all history (the model).
            .args([
                "--snapshot-interval-secs",
                "3600",
                "--snapshot-every-changes",
                "100000",
            ])
            .args([
                "--relay-interval-ms",
                "200",
                "--heartbeat-interval-ms",
                "1000",
            ])
            .args(["--log", "info"]);
        Service::spawn(&name, address, command, self.log(&name))
    }

    fn edge_command(&self, port: u16, redis_url: &str, data_dir: &Path) -> Vec<String> {
        let writer = self.proxy.link("writer-for-remote").address();
        [
            "--listen".to_owned(),
            SocketAddr::from((self.remote.address(), port)).to_string(),
            "--redis-url".to_owned(),
            redis_url.to_owned(),
            "--stream-key".to_owned(),
            STREAM_KEY.to_owned(),
            "--writer-url".to_owned(),
            format!("http://{writer}"),
            "--writer-token".to_owned(),
            ADMIN_TOKEN.to_owned(),
            "--data-dir".to_owned(),
            data_dir.display().to_string(),
            "--xread-block-ms".to_owned(),
            "500".to_owned(),
            "--ready-max-lag-ms".to_owned(),
            READY_MAX_LAG.as_millis().to_string(),
            "--min-seq-wait-ms".to_owned(),
            "5000".to_owned(),
            "--persist-interval-secs".to_owned(),
            "1".to_owned(),
            "--worker-threads".to_owned(),
            "1".to_owned(),
            "--log".to_owned(),
            "info".to_owned(),
        ]
        .into()
    }

    fn start_edge(
        &self,
        name: &'static str,
        port: u16,
        redis_url: &str,
        command: Option<Vec<String>>,
    ) -> Edge {
        let data_dir = self.dir.path().join(format!("edge-{name}"));
        let args = command.unwrap_or_else(|| self.edge_command(port, redis_url, &data_dir));
        let mut process = self.remote.command(&self.edge_bin);
        process.args(&args);
        let address = SocketAddr::from((self.remote.address(), port));
        let service = Service::spawn(
            &format!("edge-{name}"),
            address,
            process,
            self.log(&format!("edge-{name}")),
        );
        let samples = Samples::default();
        let sampler = start_sampler(address, samples.clone());
        Edge {
            service,
            data_dir,
            samples,
            sampler,
            command: args,
        }
    }

    /// SIGKILLs an edge and starts it again with the same flags and data
    /// directory; its earlier answers stay recorded for the checks.
    pub fn restart_edge(&mut self, name: &'static str) {
        let mut old = self.edges.remove(name).expect("an edge of that name");
        old.service.kill();
        old.sampler.abort();
        self.retired
            .push((format!("{name} (before restart)"), old.samples.clone()));
        let command = old.command.clone();
        let port = old.address().port();
        drop(old);
        let edge = self.start_edge(name, port, "", Some(command));
        self.edges.insert(name, edge);
    }

    pub fn edge(&self, name: &str) -> &Edge {
        &self.edges[name]
    }

    pub async fn wait_all_ready(&self, bound: Duration) {
        for edge in self.edges.values() {
            wait_until(&format!("{} is ready", edge.service.name), bound, || {
                edge.ready()
            })
            .await;
        }
    }

    /// Waits until every edge serves at least `seq`.
    pub async fn wait_all_at(&self, seq: u64, bound: Duration) {
        for edge in self.edges.values() {
            wait_until(
                &format!("{} serves change {seq}", edge.service.name),
                bound,
                || async { edge.seq().await.is_some_and(|served| served >= seq) },
            )
            .await;
        }
    }

    /// The last change committed, from the database.
    pub async fn committed(&self) -> u64 {
        let seq: i64 = sqlx::query_scalar("SELECT last_seq FROM change_sequence")
            .fetch_one(&self.db)
            .await
            .expect("reading the committed sequence number");
        seq as u64
    }

    pub fn redis_address(&self, name: &str) -> SocketAddr {
        self.redis[name].address
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let services = self
                .writers
                .iter()
                .chain(self.redis.values())
                .chain(self.edges.values().map(|edge| &edge.service));
            for service in services {
                eprintln!(
                    "--- last lines of {} ---\n{}",
                    service.name,
                    service.log_tail(25)
                );
            }
        }
    }
}

/// The host PostgreSQL: `(user[:password], address)` from the test URL.
fn postgres_endpoint() -> (String, SocketAddr) {
    let base = postgres_base_url();
    let rest = base
        .split_once("://")
        .map_or(base.as_str(), |(_, rest)| rest);
    let (credentials, host) = rest.rsplit_once('@').unwrap_or(("postgres", rest));
    let address = host
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.find(SocketAddr::is_ipv4))
        .unwrap_or_else(|| panic!("cannot resolve the PostgreSQL address {host}"));
    (credentials.to_owned(), address)
}

/// Waits until `check` holds, at most `bound`; panics naming `what`.
pub async fn wait_until<F, Fut>(what: &str, bound: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < bound,
            "timed out after {bound:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// The socket address as the `iptables` helpers want it.
pub fn v4(address: SocketAddr) -> SocketAddrV4 {
    match address {
        SocketAddr::V4(address) => address,
        SocketAddr::V6(_) => panic!("regions are IPv4"),
    }
}
