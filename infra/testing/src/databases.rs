//! PostgreSQL for tests: a fresh database per test, dropped afterwards, a
//! login role without privileges, dropped afterwards, and private servers a
//! test may stop and start (optionally with TLS).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use sqlx::{Connection, PgConnection};

use crate::processes::{free_port, is_root};

/// The server the tests use, without a database name:
/// `ADCAST_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432`.
pub fn postgres_base_url() -> String {
    std::env::var("ADCAST_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
        .trim_end_matches('/')
        .to_owned()
}

/// A database created for one test and dropped (with its connections) when
/// this guard is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    base_url: String,
    name: String,
}

impl TestDatabase {
    /// A new empty database `adcast_test_<pid>_<random>` on the test server.
    pub async fn create() -> TestDatabase {
        Self::create_on(&postgres_base_url()).await
    }

    /// A new empty database on the server at `base_url` (no database name).
    pub async fn create_on(base_url: &str) -> TestDatabase {
        let name = crate::unique("adcast_test");
        let mut admin = PgConnection::connect(&format!("{base_url}/postgres"))
            .await
            .expect("PostgreSQL must be reachable for integration tests (see README)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("creating a test database");
        TestDatabase {
            base_url: base_url.to_owned(),
            name,
        }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", self.base_url, self.name)
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on:
        // drop the database from a thread with a runtime of its own.
        let admin_url = format!("{}/postgres", self.base_url);
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(&statement).execute(&mut admin).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!(
                "warning: could not drop test database {} (infra/test.sh removes it later)",
                self.name
            );
        }
    }
}

/// A login role created for one test on the test server, with a random
/// password and no privileges beyond what every role has. Dropped, with
/// every privilege granted to it in any database, when this guard is
/// dropped (whichever of it and the databases goes first).
#[derive(Debug)]
pub struct TestRole {
    base_url: String,
    name: String,
    password: String,
}

impl TestRole {
    /// A new role `adcast_test_role_<pid>_<random>` on the test server.
    pub async fn create() -> TestRole {
        let base_url = postgres_base_url();
        let name = crate::unique("adcast_test_role");
        let password = crate::unique("pw");
        let mut admin = PgConnection::connect(&format!("{base_url}/postgres"))
            .await
            .expect("PostgreSQL must be reachable for integration tests (see README)");
        // Both are lower case letters, digits and `_`: nothing to quote.
        sqlx::query(&format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
            .execute(&mut admin)
            .await
            .expect("creating a test role");
        TestRole {
            base_url,
            name,
            password,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of `database`, logging in as this role.
    pub fn url_for(&self, database: &TestDatabase) -> String {
        let (scheme, rest) = self
            .base_url
            .split_once("://")
            .expect("the test server URL has a scheme");
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        format!(
            "{scheme}://{}:{}@{host}/{}",
            self.name,
            self.password,
            database.name()
        )
    }
}

impl Drop for TestRole {
    fn drop(&mut self) {
        // As for TestDatabase: a thread with a runtime of its own.
        let base_url = self.base_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(drop_role(&base_url, &name))
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop test role {}", self.name);
        }
    }
}

/// A role cannot be dropped while any database grants it something: drop
/// those grants (`DROP OWNED BY`, run in each such database) first.
async fn drop_role(base_url: &str, name: &str) -> Option<()> {
    let mut admin = PgConnection::connect(&format!("{base_url}/postgres"))
        .await
        .ok()?;
    let databases: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT d.datname FROM pg_shdepend s
         JOIN pg_database d ON d.oid = s.dbid
         JOIN pg_roles r ON r.oid = s.refobjid
         WHERE s.refclassid = 'pg_authid'::regclass AND r.rolname = $1",
    )
    .bind(name)
    .fetch_all(&mut admin)
    .await
    .ok()?;
    for database in databases {
        // The database may be dropped meanwhile; then so are its grants.
        if let Ok(mut connection) = PgConnection::connect(&format!("{base_url}/{database}")).await {
            let _ = sqlx::query(&format!("DROP OWNED BY {name}"))
                .execute(&mut connection)
                .await;
        }
    }
    sqlx::query(&format!("DROP ROLE IF EXISTS {name}"))
        .execute(&mut admin)
        .await
        .ok()
        .map(drop)
}

/// A private PostgreSQL cluster on a free port, so stopping it disturbs no
/// other test. Runs as the `postgres` user when the tests run as root
/// (initdb refuses root). Removed when dropped.
pub struct PostgresServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    tls: bool,
}

/// Why a private server cannot be started here (the test should skip).
#[derive(Debug)]
pub struct Unavailable(pub String);

impl PostgresServer {
    /// A cluster listening on 127.0.0.1 with trust authentication.
    pub fn start() -> PostgresServer {
        Self::try_start(false).unwrap_or_else(|Unavailable(why)| panic!("{why}"))
    }

    /// A cluster that also accepts TLS, with a fresh self-signed certificate
    /// (needs `openssl`); `Err` says why it cannot be made on this machine.
    pub fn start_with_tls() -> Result<PostgresServer, Unavailable> {
        Self::try_start(true)
    }

    fn try_start(tls: bool) -> Result<PostgresServer, Unavailable> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|_| {
                Unavailable("no PostgreSQL server binaries under /usr/lib/postgresql".into())
            })?
            .filter_map(Result::ok)
            .map(|entry| entry.path().join("bin"))
            .max()
            .ok_or_else(|| Unavailable("no PostgreSQL version under /usr/lib/postgresql".into()))?;
        let port = free_port();
        let dir = std::env::temp_dir().join(crate::unique("adcast-pg"));
        std::fs::create_dir_all(&dir).expect("creating the cluster directory");
        let server = PostgresServer {
            bin,
            dir,
            port,
            tls,
        };
        if tls {
            let made = Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args(["-subj", "/CN=localhost", "-keyout"])
                .arg(server.dir.join("server.key"))
                .arg("-out")
                .arg(server.dir.join("server.crt"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if !made.is_ok_and(|status| status.success()) {
                return Err(Unavailable(
                    "openssl is needed to make a test certificate".into(),
                ));
            }
            // PostgreSQL refuses a key others can read.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                server.dir.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .expect("restricting the test key");
        }
        server.chown();
        server.run(
            "initdb",
            &[
                "-A",
                "trust",
                "-U",
                "postgres",
                "-D",
                server.data().to_str().expect("UTF-8 temp path"),
            ],
        );
        server.start_again();
        Ok(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's URL without a database name.
    pub fn base_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("{}/postgres", self.base_url())
    }

    fn chown(&self) {
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&self.dir)
                .status()
                .expect("running chown");
            assert!(status.success(), "chown of the cluster directory failed");
        }
    }

    /// A PostgreSQL tool, run as `postgres` when we are root.
    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let program = self.bin.join(tool);
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let status = self.command(tool, args).status().expect("running a tool");
        assert!(status.success(), "{tool} {args:?} failed");
    }

    /// Starts the cluster (again, after [`PostgresServer::stop`]).
    pub fn start_again(&self) {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        if self.tls {
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
                self.dir.display()
            ));
        }
        let log = self.dir.join("log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().expect("UTF-8 temp path"),
                "-o",
                &options,
                "-l",
                log.to_str().expect("UTF-8 temp path"),
                "-w",
                "start",
            ],
        );
    }

    /// Stops it at once (`immediate`: as a crash would).
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().expect("UTF-8 temp path"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command(
                "pg_ctl",
                &["-D", &data.to_string_lossy(), "-m", "immediate", "stop"],
            )
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
