//! PostgreSQL stopped under the writer: 503 within seconds, nothing
//! half-written, and recovery without a restart.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::helpers::{ad_body, redis_url, settings, TestApp};

/// A private PostgreSQL cluster on a free port, so stopping it disturbs no
/// other test. Runs as the `postgres` user when the tests run as root.
struct PostgresServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl PostgresServer {
    fn start() -> PostgresServer {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql (see README)")
            .filter_map(Result::ok)
            .map(|entry| entry.path().join("bin"))
            .max()
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("adcast-pg-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let server = PostgresServer { bin, dir, port };
        server.chown();
        server.run(
            "initdb",
            &[
                "-A",
                "trust",
                "-U",
                "postgres",
                "-D",
                server.data().to_str().unwrap(),
            ],
        );
        server.start_again();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn chown(&self) {
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&self.dir)
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    /// A PostgreSQL tool, run as `postgres` when we are root (initdb refuses root).
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
        let status = self.command(tool, args).status().unwrap();
        assert!(status.success(), "{tool} {args:?} failed");
    }

    fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
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
                &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
            )
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout == b"0\n")
        .unwrap_or(false)
}

#[tokio::test]
async fn postgres_down_is_a_fast_503_and_the_writer_recovers_by_itself() {
    let postgres = PostgresServer::start();
    let mut config = settings(
        &postgres.url(),
        &redis_url(),
        &format!("adcast:test:pgdown:{}", postgres.port),
    );
    config.db_acquire_timeout_ms = 2_000;
    let app = TestApp::start(config).await;
    assert_eq!(
        app.post_ad(&ad_body("before")).await.status,
        StatusCode::CREATED
    );

    postgres.stop();
    let started = Instant::now();
    let response = app.post_ad(&ad_body("during")).await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(response.error().0, "unavailable");
    assert!(response.header("retry-after").is_some());
    assert_eq!(
        app.get("/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);

    postgres.start_again();
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let response = app.post_ad(&ad_body("after")).await;
        if response.status == StatusCode::CREATED || Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        after.status,
        StatusCode::CREATED,
        "the writer recovers without a restart"
    );
    assert_eq!(
        after.seq(),
        2,
        "the failed write consumed no sequence number"
    );
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM ads ORDER BY id")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(titles, ["before", "after"]);
    app.wait_for_stream_len(2).await;
}

#[tokio::test]
async fn the_database_url_can_require_tls() {
    // Debian's PostgreSQL offers TLS with its snake-oil certificate;
    // `sslmode=require` fails outright if the writer was built without TLS.
    let database_url = crate::helpers::fresh_database().await + "?sslmode=require";
    let mut config = settings(&database_url, &redis_url(), "adcast:test:tls");
    config.listen = "127.0.0.1:0".parse().unwrap();
    let app = TestApp::start(config).await;
    assert_eq!(
        app.post_ad(&ad_body("over TLS")).await.status,
        StatusCode::CREATED
    );
    // This test's own connection is one of them; the writer holds the others.
    let (encrypted, plain): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE ssl), count(*) FILTER (WHERE NOT ssl)
         FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE datname = current_database()",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        encrypted >= 2,
        "the writer's connections use TLS ({encrypted} encrypted)"
    );
    assert_eq!(plain, 0);
}
