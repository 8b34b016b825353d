//! `adcast-writer import` and `export`: the real binary against a real
//! writer, exit statuses included, and an import killed mid-way and run
//! again creates every ad exactly once.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use adcast_testing::processes::KillOnDrop;
use adcast_testing::writer::TestWriter;
use adcast_testing::TempDir;
use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_adcast-writer");

fn ad(i: usize) -> Value {
    json!({"title": format!("AD {i}"), "startAt": "2024-01-01T00:00:00Z",
           "endAt": "2099-01-01T00:00:00Z", "conditions": {"gender": "F"}})
}

fn write_ndjson(path: &Path, count: usize) {
    let text: String = (0..count).map(|i| format!("{}\n", ad(i))).collect();
    std::fs::write(path, text).unwrap();
}

fn command(app: &TestWriter, args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .env("ADCAST_WRITER_URL", app.url())
        .env_remove("ADCAST_TOKEN")
        .env_remove("ADCAST_TOKEN_FILE")
        .stdin(Stdio::null());
    command
}

async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn distinct_titles(app: &TestWriter) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), count(DISTINCT title) FROM ads")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_import_killed_mid_way_and_run_again_creates_every_ad_once() {
    let app = TestWriter::spawn().await;
    let dir = TempDir::new("adcast-cli");
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.path().join("ads.ndjson");
    write_ndjson(&file, 30_000);
    let file_arg = file.to_str().unwrap();

    let mut first = command(&app, &["import", file_arg, "--chunk-size", "500"]);
    first.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = KillOnDrop::new(first.spawn().unwrap());
    // Kill it once some chunks are in, well before the end.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let stored = app.count("ads").await;
        if stored >= 2_000 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the import made no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill();
    let at_kill = app.count("ads").await;
    assert!(
        at_kill < 30_000,
        "killed mid-way, not after the end ({at_kill})"
    );

    let second = run(command(&app, &["import", file_arg, "--chunk-size", "500"])).await;
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("already imported"),
        "{}",
        stderr(&second)
    );
    assert_eq!(distinct_titles(&app).await, (30_000, 30_000));
    // And a third run creates nothing at all.
    let third = run(command(&app, &["import", file_arg, "--chunk-size", "500"])).await;
    assert!(third.status.success());
    assert_eq!(app.count("ads").await, 30_000);
}

#[tokio::test]
async fn import_then_export_round_trips_through_the_commands() {
    let app = TestWriter::spawn().await;
    let dir = TempDir::new("adcast-cli");
    std::fs::create_dir_all(dir.path()).unwrap();
    let array = dir.path().join("ads.json");
    let ads: Vec<Value> = (0..120).map(ad).collect();
    std::fs::write(&array, serde_json::to_string_pretty(&ads).unwrap()).unwrap();
    let imported = run(command(
        &app,
        &["import", array.to_str().unwrap(), "--chunk-size", "50"],
    ))
    .await;
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert!(
        stderr(&imported).contains("import: 120/120 ads (100%)"),
        "plain progress lines when not a terminal: {}",
        stderr(&imported)
    );
    assert_eq!(app.count("ads").await, 120);

    let out = dir.path().join("export.ndjson");
    let exported = run(command(&app, &["export", "--out", out.to_str().unwrap()])).await;
    assert!(exported.status.success(), "{}", stderr(&exported));
    let file = std::fs::read_to_string(&out).unwrap();
    assert_eq!(file.lines().count(), 120);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let to_stdout = run(command(&app, &["export"])).await;
    assert!(to_stdout.status.success());
    assert_eq!(String::from_utf8(to_stdout.stdout).unwrap(), file);

    // The export imports again unchanged into another writer.
    let other = TestWriter::spawn().await;
    let again = run(command(&other, &["import", out.to_str().unwrap()])).await;
    assert!(again.status.success(), "{}", stderr(&again));
    let reexported = run(command(&other, &["export"])).await;
    let strip = |text: &str| -> Vec<Value> {
        text.lines()
            .map(|line| {
                let mut ad: Value = serde_json::from_str(line).unwrap();
                ad.as_object_mut().unwrap().remove("id");
                ad
            })
            .collect()
    };
    assert_eq!(
        strip(&String::from_utf8(reexported.stdout).unwrap()),
        strip(&file)
    );
}

#[tokio::test]
async fn the_first_invalid_line_is_reported_with_its_number_and_exit_1() {
    let app = TestWriter::spawn().await;
    let dir = TempDir::new("adcast-cli");
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.path().join("ads.ndjson");
    let mut text: String = (0..30).map(|i| format!("{}\n", ad(i))).collect();
    text.push('\n'); // a blank line 31, skipped
    text.push_str(
        r#"{"title":"late","startAt":"2025-01-01T00:00:00Z","endAt":"2024-01-01T00:00:00Z"}"#,
    );
    text.push('\n');
    std::fs::write(&file, text).unwrap();
    let output = run(command(
        &app,
        &["import", file.to_str().unwrap(), "--chunk-size", "10"],
    ))
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("line 32"), "{message}");
    assert!(message.contains("endAt must be after startAt"), "{message}");
    assert!(message.contains("field endAt"), "{message}");
    assert_eq!(app.count("ads").await, 30, "the chunks before it are in");

    let syntax = dir.path().join("broken.ndjson");
    std::fs::write(&syntax, format!("{}\n{{\"title\": \n", ad(0))).unwrap();
    let output = run(command(&app, &["import", syntax.to_str().unwrap()])).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("line 2"), "{}", stderr(&output));
    assert_eq!(app.count("ads").await, 30, "a syntax error sends nothing");
}

#[tokio::test]
async fn exit_statuses_tell_usage_from_an_unreachable_writer() {
    let app =
        TestWriter::spawn_with(|settings| settings.admin_tokens = vec!["secret".into()]).await;
    let dir = TempDir::new("adcast-cli");
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.path().join("ads.ndjson");
    write_ndjson(&file, 3);
    let path = file.to_str().unwrap();

    let no_token = run(command(&app, &["import", path])).await;
    assert_eq!(no_token.status.code(), Some(2), "{}", stderr(&no_token));
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "secret\n").unwrap();
    let with_file = run(command(
        &app,
        &["import", path, "--token-file", token_file.to_str().unwrap()],
    ))
    .await;
    assert!(with_file.status.success(), "{}", stderr(&with_file));
    let mut with_env = command(&app, &["export"]);
    with_env.env("ADCAST_TOKEN", "secret");
    assert!(run(with_env).await.status.success());

    let bad_flag = run(command(&app, &["import", path, "--chunk-size", "0"])).await;
    assert_eq!(bad_flag.status.code(), Some(2));
    let missing = run(command(&app, &["import", "/nonexistent/ads.ndjson"])).await;
    assert_eq!(missing.status.code(), Some(1));

    let port = adcast_testing::processes::free_port();
    let mut unreachable = Command::new(BINARY);
    unreachable
        .args([
            "export",
            "--writer-url",
            &format!("http://127.0.0.1:{port}"),
        ])
        .stdin(Stdio::null());
    let output = run(unreachable).await;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));

    let help = run({
        let mut help = Command::new(BINARY);
        help.args(["import", "--help"]);
        help
    })
    .await;
    assert!(String::from_utf8_lossy(&help.stdout).contains("Exit status"));
}
