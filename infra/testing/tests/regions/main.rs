//! Region scenarios: the real `adcast-writer`, `adcast-edge` and
//! `redis-server` binaries in network namespaces ("regions"), a real Redis
//! replica per edge region, and every byte between regions through a fault
//! proxy or across `iptables` rules. Each scenario proves the consistency
//! promises of docs/architecture.md under one network failure and prints
//! what it measured; the invariant checker runs after every one.
//!
//! They need root, `ip netns` and `iptables`, so they are `#[ignore]`d in a
//! plain `cargo test` (listed as ignored, never passed). `infra/regions.sh`
//! builds the binaries and runs them (`--ignored --test-threads=1`), or
//! says `SKIPPED` and why where the machine cannot.
//!
//! - `latency`: 100 ms round trips with jitter, write → served.
//! - `partitions`: a replica cut off from its primary; an edge cut off from
//!   its replica for 30 s.
//! - `promotion`: a full resynchronisation, then a promoted replica that
//!   holds less than the writer published.
//! - `failover`: two writers behind one address, the active one SIGKILLed
//!   during a burst.
//! - `isolation`: an edge restarted while its region is cut off.
//!
//! `world` builds the regions, links and processes of one scenario;
//! `clients` is how the test talks to them; `invariants` is the checker.

mod clients;
mod failover;
mod invariants;
mod isolation;
mod latency;
mod partitions;
mod promotion;
mod world;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clients::{Acked, Admin};

/// Runs one scenario within `deadline`: past it, the scenario's future is
/// dropped (which removes everything it made) and the test fails.
pub async fn within(name: &str, deadline: Duration, scenario: impl Future<Output = ()>) {
    if let Some(why) = adcast_testing::netns::unavailable() {
        panic!("scenario {name} cannot run here: {why} (infra/regions.sh skips instead)");
    }
    // The figures depend on what else the machine is doing: say so.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?");
    println!("=== scenario {name} (load average {load})");
    let started = std::time::Instant::now();
    if tokio::time::timeout(deadline, scenario).await.is_err() {
        panic!("scenario {name} did not finish within {deadline:?}");
    }
    println!(
        "=== scenario {name}: passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Writes that continue in the background: a create every `every`, with a
/// replace of an earlier ad every fifth write and a delete every eighth.
pub struct WriteLoad {
    acked: Arc<Mutex<Vec<Acked>>>,
    failures: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WriteLoad {
    pub fn start(admin: Admin, tag: &'static str, every: Duration) -> WriteLoad {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let (acked, failures) = (acked.clone(), failures.clone());
            async move {
                let mut created: Vec<i64> = Vec::new();
                for i in 0.. {
                    let result = if i % 5 == 4 && created.len() > 2 {
                        let id = created[i % created.len()];
                        admin
                            .replace(id, &invariants::ad(tag, i, 0))
                            .await
                            .map(|seq| Acked {
                                seq,
                                id,
                                title: format!("replace of {id}"),
                            })
                    } else if i % 8 == 7 && created.len() > 2 {
                        let id = created.remove(0);
                        admin.delete(id).await.map(|seq| Acked {
                            seq,
                            id,
                            title: format!("delete of {id}"),
                        })
                    } else {
                        admin
                            .create(&invariants::ad(tag, i, 0), None)
                            .await
                            .map(|(acked, _)| {
                                created.push(acked.id);
                                acked
                            })
                    };
                    match result {
                        Ok(done) => acked.lock().unwrap().push(done),
                        Err(error) => failures.lock().unwrap().push(error),
                    }
                    tokio::time::sleep(every).await;
                }
            }
        });
        WriteLoad {
            acked,
            failures,
            task,
        }
    }

    /// The last acknowledged change so far.
    pub fn last_seq(&self) -> u64 {
        self.acked
            .lock()
            .unwrap()
            .iter()
            .map(|acked| acked.seq)
            .max()
            .unwrap_or(0)
    }

    /// Stops writing; every acknowledged write, and every failure.
    pub fn stop(self) -> (Vec<Acked>, Vec<String>) {
        self.task.abort();
        let acked = self.acked.lock().unwrap().clone();
        let failures = self.failures.lock().unwrap().clone();
        (acked, failures)
    }
}

/// The `p`-th percentile (0–100) of `values`, nearest rank.
pub fn percentile(values: &[Duration], p: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// Creates ads `range` of `tag`, `concurrency` at a time; every one must be
/// acknowledged.
pub async fn create_all(
    admin: &Admin,
    tag: &'static str,
    range: std::ops::Range<usize>,
    padding: usize,
    concurrency: usize,
) -> Vec<Acked> {
    let indexes: Vec<usize> = range.collect();
    let mut acked = Vec::new();
    for chunk in indexes.chunks(concurrency.max(1)) {
        let mut tasks = Vec::new();
        for &i in chunk {
            let admin = admin.clone();
            tasks.push(tokio::spawn(async move {
                admin
                    .create(&invariants::ad(tag, i, padding), None)
                    .await
                    .unwrap_or_else(|error| panic!("create {tag} {i}: {error}"))
                    .0
            }));
        }
        for task in tasks {
            acked.push(task.await.expect("a create task"));
        }
    }
    acked
}

/// The highest sequence number among `acked`.
pub fn last_seq(acked: &[Acked]) -> u64 {
    acked.iter().map(|acked| acked.seq).max().unwrap_or(0)
}
