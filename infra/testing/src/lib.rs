//! adcast-testing: what the integration tests of every crate share, and the
//! system tests that run a writer and edges together.
//!
//! Everything here is real: PostgreSQL databases, Redis servers, processes
//! and HTTP on sockets. Every helper that creates something removes it when
//! dropped (a database, a stream key, a directory, a process), also when the
//! test panics, so a test run leaves nothing behind and never touches what a
//! concurrent run created.
//!
//! - [`processes`]: child processes killed on drop, free ports, binaries
//!   started on a port that must stay up.
//! - [`databases`]: a fresh PostgreSQL database per test, and private
//!   PostgreSQL servers a test may stop (optionally with TLS).
//! - [`redis`]: unique stream keys deleted on drop, private `redis-server`
//!   processes, reading a stream.
//! - [`s3`]: a private S3-compatible server (moto) per test, stopped to
//!   make the store unreachable.
//! - [`http`]: a one-request HTTP/1.1 client and its response type.
//! - [`writer`] and [`edge`]: the two services in-process on random ports,
//!   with their settings for tests.
//! - [`netns`] and [`faults`]: regions as network namespaces, silent
//!   partitions with `iptables`, and a fault proxy for the links between
//!   regions (latency, jitter, bandwidth, black holes, resets, switching
//!   the upstream); the region scenarios in `tests/regions/` use them.
//!
//! Names of what a test creates carry the creating process's id
//! ([`unique`]): `infra/test.sh` removes leftovers only of processes that are
//! no longer running (a test binary killed before its guards ran).

#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]

pub mod databases;
pub mod edge;
pub mod faults;
pub mod http;
pub mod netns;
pub mod processes;
pub mod redis;
pub mod s3;
pub mod writer;

use rand::Rng;

/// `<prefix>_<pid>_<random>`: unique, and tells which process made it.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{:012x}",
        std::process::id(),
        rand::thread_rng().gen::<u64>() & 0xffff_ffff_ffff
    )
}

/// A temporary directory removed when dropped.
#[derive(Debug)]
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// A new, not yet existing path under the system temp directory.
    pub fn new(prefix: &str) -> TempDir {
        TempDir(std::env::temp_dir().join(unique(prefix)))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// Keeps the directory after this guard is dropped; returns its path.
    pub fn keep(mut self) -> std::path::PathBuf {
        std::mem::take(&mut self.0)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
