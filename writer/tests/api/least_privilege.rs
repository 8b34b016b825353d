//! Least privilege: `adcast-writer migrate --grant-to ROLE` as a role that
//! owns the schema, then the writer as `ROLE` with `--skip-migrations`.

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use http::{Method, StatusCode};
use sqlx::{Connection, PgConnection};

use adcast_testing::databases::{TestDatabase, TestRole};
use adcast_testing::processes::KillOnDrop;
use adcast_testing::redis::{redis_url, StreamKey};
use adcast_testing::writer::{ad_body, settings, TestWriter};

/// Runs the real binary's `migrate` with `DATABASE_URL` and `args`.
fn migrate(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adcast-writer"))
        .arg("migrate")
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("ADCAST_LOG", "warn")
        .output()
        .expect("running adcast-writer migrate")
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A database migrated by the test server's own (schema-owning) user, and a
/// role granted what the writer needs by `migrate --grant-to`.
async fn migrated_with_role() -> (TestDatabase, TestRole) {
    let database = TestDatabase::create().await;
    let role = TestRole::create().await;
    assert_success(&migrate(&database.url(), &["--grant-to", role.name()]));
    (database, role)
}

async fn has_migrations_table(database: &TestDatabase) -> bool {
    let mut connection = PgConnection::connect(&database.url()).await.unwrap();
    sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut connection)
        .await
        .unwrap()
}

/// What `role` may do, per table and sequence of the public schema, on the
/// schema itself and on the database: `name → "PRIV,PRIV"`.
async fn privileges(database: &TestDatabase, role: &str) -> BTreeMap<String, String> {
    let mut connection = PgConnection::connect(&database.url()).await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, array_to_string(ARRAY(
             SELECT p FROM unnest(CASE WHEN c.relkind = 'S'
                 THEN ARRAY['USAGE', 'SELECT', 'UPDATE']
                 ELSE ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'] END) AS p
             WHERE CASE WHEN c.relkind = 'S' THEN has_sequence_privilege($1, c.oid, p)
                        ELSE has_table_privilege($1, c.oid, p) END), ',')
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S')
         UNION ALL
         SELECT 'schema public', concat_ws(',',
             CASE WHEN has_schema_privilege($1, 'public', 'USAGE') THEN 'USAGE' END,
             CASE WHEN has_schema_privilege($1, 'public', 'CREATE') THEN 'CREATE' END)
         UNION ALL
         SELECT 'database', concat_ws(',',
             CASE WHEN has_database_privilege($1, current_database(), 'CREATE') THEN 'CREATE' END)",
    )
    .bind(role)
    .fetch_all(&mut connection)
    .await
    .unwrap();
    rows.into_iter().collect()
}

#[tokio::test]
async fn a_role_granted_by_migrate_runs_the_writer_with_skip_migrations() {
    let (database, role) = migrated_with_role().await;
    let key = StreamKey::new();
    let mut config = settings(&role.url_for(&database), &redis_url(), key.as_str());
    config.skip_migrations = true;
    // Start-up writes a snapshot; `start` waits for it.
    let app = TestWriter::start(config).await;
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(user, role.name(), "the writer runs as the granted role");

    let created = app.post_ad(&ad_body("least privilege")).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let path = format!("/api/v1/ad/{}", created.json()["id"]);
    assert_eq!(app.get(&path).await.status, StatusCode::OK);
    let replaced = app
        .request(
            Method::PUT,
            &path,
            &[("content-type", "application/json")],
            Some(&ad_body("replaced").to_string()),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/admin/ad").await.json()["items"][0]["title"],
        "replaced"
    );
    let remembered = app
        .request(
            Method::POST,
            "/api/v1/ad",
            &[
                ("content-type", "application/json"),
                ("idempotency-key", "least-privilege-1"),
            ],
            Some(&ad_body("keyed").to_string()),
        )
        .await;
    assert_eq!(remembered.status, StatusCode::CREATED);
    let deleted = app.request(Method::DELETE, &path, &[], None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.wait_for_stream_len(4).await;
    assert_eq!(
        app.count("ad_history").await,
        4,
        "the role records every change"
    );

    // A snapshot as the role: read the state, trim the stream, prune the outbox.
    let produced = app.producer(1).produce().await.unwrap();
    assert_eq!(produced.seq, 4);
    assert_eq!(app.count("outbox").await, 0, "the outbox was pruned");
    let purged = adcast_writer::store::Store::new(app.db.clone())
        .purge_idempotency_keys(0)
        .await;
    assert!(purged.is_ok(), "{purged:?}");
}

#[tokio::test]
async fn migrate_grants_exactly_what_the_writer_needs_and_repeating_it_changes_nothing() {
    let (database, role) = migrated_with_role().await;
    let rows = "SELECT,INSERT,UPDATE,DELETE";
    let expected: BTreeMap<String, String> = [
        ("_sqlx_migrations", "SELECT"),
        // The audit trail is append-only for the writer.
        ("ad_history", "SELECT,INSERT"),
        ("ad_id_seq", "USAGE,SELECT,UPDATE"),
        ("ads", rows),
        ("change_sequence", rows),
        ("database", ""),
        ("idempotency_keys", rows),
        ("outbox", rows),
        ("schema public", "USAGE"),
    ]
    .into_iter()
    .map(|(name, granted)| (name.to_owned(), granted.to_owned()))
    .collect();
    assert_eq!(privileges(&database, role.name()).await, expected);

    assert_success(&migrate(&database.url(), &["--grant-to", role.name()]));
    assert_eq!(
        privileges(&database, role.name()).await,
        expected,
        "after a second run"
    );
}

#[tokio::test]
async fn a_role_granted_by_migrate_cannot_change_the_schema() {
    let (database, role) = migrated_with_role().await;
    let mut connection = PgConnection::connect(&role.url_for(&database))
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM ads")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(rows, 0, "the role can read");
    for statement in [
        "CREATE TABLE intruder (x int)",
        "DROP TABLE ads",
        "ALTER TABLE ads ADD COLUMN x int",
        "TRUNCATE outbox",
        "DELETE FROM _sqlx_migrations",
        // The audit trail: appended to, never rewritten.
        "DELETE FROM ad_history",
        "UPDATE ad_history SET by_label = 'x'",
    ] {
        let error = sqlx::query(statement)
            .execute(&mut connection)
            .await
            .expect_err(statement);
        let code = error
            .as_database_error()
            .and_then(|error| error.code())
            .map(|code| code.into_owned());
        // 42501 insufficient_privilege; 42501 too for "must be owner".
        assert_eq!(code.as_deref(), Some("42501"), "{statement}: {error}");
    }
}

#[tokio::test]
async fn without_skip_migrations_a_granted_role_is_told_to_use_it() {
    let (database, role) = migrated_with_role().await;
    let key = StreamKey::new();
    let config = settings(&role.url_for(&database), &redis_url(), key.as_str());
    let error = match adcast_writer::startup::Application::build(config).await {
        Ok(_) => panic!("a role without schema rights cannot apply migrations"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("--skip-migrations"), "{error}");
}

#[tokio::test]
async fn skip_migrations_refuses_to_start_on_an_unmigrated_database() {
    let database = TestDatabase::create().await;
    let key = StreamKey::new();
    let snapshot_dir = adcast_testing::TempDir::new("adcast-skip-migrations");
    let mut writer = KillOnDrop::new(
        Command::new(env!("CARGO_BIN_EXE_adcast-writer"))
            .args(["--skip-migrations", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", database.url())
            .env("REDIS_URL", redis_url())
            .env("ADCAST_STREAM_KEY", key.as_str())
            .env("ADCAST_SNAPSHOT_DIR", snapshot_dir.path())
            .env("ADCAST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let status = writer
        .wait_exit(Duration::from_secs(60))
        .expect("the writer refuses to start instead of serving");
    let stderr = String::from_utf8_lossy(&writer.kill_with_output().stderr).into_owned();
    assert!(!status.success());
    assert!(
        stderr.contains("run `adcast-writer migrate` first"),
        "{stderr}"
    );
    assert!(
        !has_migrations_table(&database).await,
        "nothing was migrated"
    );
}

#[tokio::test]
async fn migrate_refuses_a_role_name_that_is_not_a_plain_identifier() {
    let database = TestDatabase::create().await;
    let output = migrate(&database.url(), &["--grant-to", "w; DROP TABLE ads"]);
    assert_eq!(output.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a PostgreSQL role name"));
    assert!(!has_migrations_table(&database).await, "nothing was done");
}

#[tokio::test]
async fn migrate_refuses_a_role_that_does_not_exist() {
    let database = TestDatabase::create().await;
    let output = migrate(&database.url(), &["--grant-to", "adcast_no_such_role"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("role adcast_no_such_role does not exist"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
