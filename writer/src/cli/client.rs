//! The commands' HTTP client for a running writer (or an edge forwarding to
//! it): base URL, bearer token, one request at a time, and how an answer
//! becomes an exit status.

use std::path::PathBuf;
use std::time::Duration;

use adcast_shared::protocol::headers::IDEMPOTENCY_KEY;
use bytes::Bytes;
use clap::Args;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{Exit, Failure};

/// Where the writer is, and the token to show it.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The running writer (or an edge started with --writer-url); http:// only.
    #[arg(
        long,
        env = "ADCAST_WRITER_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub writer_url: String,

    /// Bearer token for the writer: admin scope for import, read scope is
    /// enough for export.
    #[arg(long, env = "ADCAST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// File holding the token (its first line); instead of --token.
    #[arg(long, env = "ADCAST_TOKEN_FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
}

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct WriterClient {
    base: String,
    authorization: Option<String>,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl WriterClient {
    pub fn new(args: &ClientArgs) -> Result<WriterClient, Failure> {
        let base = args.writer_url.trim_end_matches('/').to_owned();
        let uri: Uri = base.parse().map_err(|error| {
            Failure::new(Exit::Usage, format!("invalid --writer-url {base}: {error}"))
        })?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(Failure::new(
                Exit::Usage,
                format!("--writer-url must be http://host:port, got {base}"),
            ));
        }
        let token = match &args.token_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|error| {
                    Failure::new(
                        Exit::Usage,
                        format!("reading the token file {}: {error}", path.display()),
                    )
                })?
                .lines()
                .next()
                .map(|line| line.trim().to_owned()),
            None => args.token.clone(),
        };
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        Ok(WriterClient {
            base,
            authorization: token
                .filter(|token| !token.is_empty())
                .map(|token| format!("Bearer {token}")),
            http: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request; `Err` only when no answer came (unreachable,
    /// connection lost, no answer within `timeout`).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
        idempotency_key: Option<&str>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, String> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        if let Some(key) = idempotency_key {
            request = request.header(IDEMPOTENCY_KEY, key);
        }
        let body = match body {
            Some((media_type, bytes)) => {
                request = request.header(CONTENT_TYPE, media_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(body))
            .map_err(|error| format!("building the request: {error}"))?;
        match tokio::time::timeout(timeout, self.http.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(format!("{}: {}", self.base, describe(&error))),
            Err(_) => Err(format!(
                "{} did not answer within {} s",
                self.base,
                timeout.as_secs()
            )),
        }
    }
}

/// The innermost cause of a client error (hyper's outer ones say little).
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// An answer's whole body (bounded: these are error bodies and import
/// answers, never the export).
pub async fn read_body(response: Response<Incoming>) -> Result<(StatusCode, Bytes), String> {
    let status = response.status();
    let body = http_body_util::Limited::new(response.into_body(), 8 << 20)
        .collect()
        .await
        .map_err(|error| format!("reading the writer's answer: {error}"))?
        .to_bytes();
    Ok((status, body))
}

/// `(message, field)` of a JSON error body, or the body as text.
pub fn error_of(body: &[u8]) -> (String, Option<String>) {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().map(|value| &value["error"]);
    match error {
        Some(error) if error["message"].is_string() => (
            error["message"].as_str().unwrap_or_default().to_owned(),
            error["field"].as_str().map(str::to_owned),
        ),
        _ => (
            String::from_utf8_lossy(body).chars().take(200).collect(),
            None,
        ),
    }
}

/// The exit status for an unsuccessful answer that retrying will not fix.
pub fn refusal(status: StatusCode, body: &[u8]) -> Failure {
    let (message, _) = error_of(body);
    let exit = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Exit::Usage,
        status if status.is_server_error() => Exit::Unavailable,
        _ => Exit::Invalid,
    };
    Failure::new(exit, format!("the writer answered {status}: {message}"))
}
