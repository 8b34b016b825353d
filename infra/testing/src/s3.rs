//! A private S3-compatible server for one test: `moto` in server mode (from
//! PyPI; `bash infra/moto.sh` installs it and prints its path, which
//! `infra/test.sh` exports as `ADCAST_TEST_MOTO`). It keeps everything in
//! memory: stopping it is a store that is down, and a restart comes back
//! empty. Killed when dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adcast_shared::snapshot_store::{SnapshotStore, StoreUrl};
use http::{Method, StatusCode};
use object_store::aws::AmazonS3Builder;

use crate::processes::free_port;

/// Where moto's default install puts its server (infra/moto.sh).
const DEFAULT_MOTO: &str = "/var/tmp/adcast-ci-tools/moto/bin/moto_server";
/// The credentials and region every test store uses (moto checks none).
const ACCESS_KEY: &str = "adcast-test";
const SECRET_KEY: &str = "adcast-test-secret";
const REGION: &str = "us-east-1";

/// The `moto_server` binary: `ADCAST_TEST_MOTO`, else the default install.
/// Panics, saying how to install it, when there is none: these tests need a
/// real S3-compatible server and must not pass without one.
pub fn moto_binary() -> PathBuf {
    let path = std::env::var_os("ADCAST_TEST_MOTO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MOTO));
    assert!(
        path.is_file(),
        "the object-storage tests need moto's S3 server, not found at {}: install it with \
         `bash infra/moto.sh` (a venv with PyPI's moto[server]) and set ADCAST_TEST_MOTO to the \
         path it prints (infra/test.sh does both)",
        path.display()
    );
    path
}

pub struct MotoServer {
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl MotoServer {
    /// Starts one on a free port and waits until it answers.
    pub fn start() -> MotoServer {
        let mut server = MotoServer {
            binary: moto_binary(),
            port: free_port(),
            child: None,
        };
        server.restart();
        server
    }

    pub fn address(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// `http://127.0.0.1:<port>`, what `AWS_ENDPOINT_URL` is set to.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address())
    }

    /// Starts (again) on the same port: empty, as moto keeps nothing.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(&self.binary)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", self.binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect_timeout(&self.address(), Duration::from_millis(200))
            .is_err()
        {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "moto_server exited at start ({status}); is port {} taken?",
                    self.port
                );
            }
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the store is down (connections refused) until [`restart`].
    ///
    /// [`restart`]: MotoServer::restart
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Creates the bucket `name` (moto's path-style API: `PUT /<bucket>`).
    pub async fn create_bucket(&self, name: &str) {
        let response =
            crate::http::send(self.address(), Method::PUT, &format!("/{name}"), &[], None).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "creating bucket {name}: {}",
            String::from_utf8_lossy(&response.body)
        );
    }

    /// A fresh bucket of its own, as an `s3://bucket/prefix` URL.
    pub async fn fresh_store_url(&self, prefix: &str) -> StoreUrl {
        let bucket = crate::unique("adcast-test")
            .to_ascii_lowercase()
            .replace('_', "-");
        self.create_bucket(&bucket).await;
        format!("s3://{bucket}/{prefix}")
            .parse()
            .expect("a valid store URL")
    }

    /// A client of the store at `url` on this server.
    pub fn store(&self, url: &StoreUrl) -> SnapshotStore {
        let builder = AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .with_region(REGION);
        SnapshotStore::with_builder(url, builder).expect("a store client")
    }

    /// The standard AWS environment for a process using this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", REGION.into()),
        ]
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}
