//! `adcast-writer export [--out FILE]`: every live ad, as NDJSON, from a
//! running writer's export route, to standard output or to a file written
//! atomically (a temporary file beside it, synced, then renamed: `FILE` is
//! either the old one or the whole new export, never half of one).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use http::{Method, StatusCode};
use http_body_util::BodyExt;

use super::client::{read_body, refusal, ClientArgs, WriterClient};
use super::{Exit, Failure};

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Write to this file (atomically) instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub client: ClientArgs,
}

/// Longest wait for the writer's answer, and then for each piece of it.
const STALL: Duration = Duration::from_secs(60);

pub async fn run(args: ExportArgs) -> Result<(), Failure> {
    let client = WriterClient::new(&args.client)?;
    let response = client
        .send(Method::GET, "/api/v1/admin/ad/export", None, None, STALL)
        .await
        .map_err(|error| Failure::new(Exit::Unavailable, error))?;
    if response.status() != StatusCode::OK {
        let (status, body) = read_body(response)
            .await
            .map_err(|error| Failure::new(Exit::Unavailable, error))?;
        return Err(refusal(status, &body));
    }
    let seq = response
        .headers()
        .get(adcast_shared::protocol::headers::ADCAST_SEQ)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("?")
        .to_owned();
    let mut output = Output::open(args.out.as_deref())?;
    let mut body = response.into_body();
    let mut lines = 0u64;
    loop {
        let frame = match tokio::time::timeout(STALL, body.frame()).await {
            Err(_) => return Err(output.abandon("the writer sent nothing for 60 s")),
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                return Err(output.abandon(&format!("the export was cut short: {error}")))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            lines += data.iter().filter(|&&byte| byte == b'\n').count() as u64;
            if let Err(error) = output.write(&data) {
                let failure = output_failure(&args.out, error);
                let _ = output.abandon("");
                return Err(failure);
            }
        }
    }
    let place = output
        .commit()
        .map_err(|error| output_failure(&args.out, error))?;
    eprintln!("adcast-writer export: {lines} ads (as of change {seq}) written to {place}");
    Ok(())
}

fn output_failure(out: &Option<PathBuf>, error: std::io::Error) -> Failure {
    let place = out.as_ref().map_or("standard output".to_owned(), |path| {
        path.display().to_string()
    });
    Failure::new(Exit::Invalid, format!("writing {place}: {error}"))
}

/// Standard output, or a temporary file renamed over `FILE` at the end.
enum Output {
    Stdout(std::io::BufWriter<std::io::Stdout>),
    File {
        file: std::io::BufWriter<std::fs::File>,
        temp: PathBuf,
        path: PathBuf,
    },
}

impl Output {
    fn open(path: Option<&Path>) -> Result<Output, Failure> {
        let Some(path) = path else {
            return Ok(Output::Stdout(std::io::BufWriter::new(std::io::stdout())));
        };
        let name = path.file_name().ok_or_else(|| {
            Failure::new(
                Exit::Usage,
                format!("--out {} names no file", path.display()),
            )
        })?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".tmp-{}", std::process::id()));
        let temp = path.with_file_name(temp_name);
        let file = std::fs::File::create(&temp).map_err(|error| {
            Failure::new(
                Exit::Invalid,
                format!("creating {}: {error}", temp.display()),
            )
        })?;
        Ok(Output::File {
            file: std::io::BufWriter::new(file),
            temp,
            path: path.to_owned(),
        })
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Output::Stdout(out) => out.write_all(data),
            Output::File { file, .. } => file.write_all(data),
        }
    }

    /// Flushes (file: syncs, renames into place, syncs the directory).
    fn commit(self) -> std::io::Result<String> {
        match self {
            Output::Stdout(mut out) => {
                out.flush()?;
                Ok("standard output".into())
            }
            Output::File { file, temp, path } => {
                let file = file.into_inner().map_err(|error| error.into_error())?;
                file.sync_all()?;
                drop(file);
                std::fs::rename(&temp, &path)?;
                if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                    if let Ok(dir) = std::fs::File::open(dir) {
                        let _ = dir.sync_all();
                    }
                }
                Ok(path.display().to_string())
            }
        }
    }

    /// Gives up: a file export leaves `FILE` as it was.
    fn abandon(self, reason: &str) -> Failure {
        if let Output::File { temp, .. } = &self {
            let _ = std::fs::remove_file(temp);
        }
        Failure::new(Exit::Unavailable, reason.to_owned())
    }
}
