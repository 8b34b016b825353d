//! The writer as seen from an edge: one client for the calls it forwards and
//! the snapshots it downloads.
//!
//! The writer URL is parsed and checked once, when the client is built; the
//! token for the writer's internal routes is turned into its header then too.
//! Forwarded calls pass the client's own credentials through unchanged; the
//! edge's token goes only on snapshot downloads.

use std::time::Duration;

use adcast_shared::protocol::{routes, snapshot_etag};
use adcast_shared::snapshot;
use adcast_shared::timestamp::Timestamp;
use anyhow::Context;
use bytes::Bytes;
use http::header::{AUTHORIZATION, ETAG, HOST, IF_NONE_MATCH};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::data_dir::DataDir;
use crate::state::LoadedSnapshot;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type HttpClient = Client<HttpConnector, UnsyncBoxBody<Bytes, BoxError>>;

/// Longest a forwarded call may take at the writer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest a snapshot download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest writer answer relayed (ads are small; lists are 100 ads at most).
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// Hop-by-hop headers, which a proxy must not pass on (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The hyper client the edge reaches the writer with: pooled keep-alive
/// connections, a short connect timeout.
pub fn http_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(3)));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// Why a call could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("the writer could not be reached: {0}")]
    Unreachable(String),
    #[error("the writer did not answer in time")]
    Timeout,
}

pub struct WriterClient {
    /// `host:port` of the writer, checked at build.
    authority: Authority,
    /// Path the writer is mounted under (`""` for the root), without a
    /// trailing slash: every request path is appended to it.
    prefix: String,
    /// `Bearer <token>` for the writer's internal routes, if configured.
    authorization: Option<HeaderValue>,
    /// Pooled connections, shared by forwarding and downloads.
    client: HttpClient,
}

impl WriterClient {
    /// Checks `url` (`http://host:port`, optionally with a path prefix) and
    /// `token` once, so that no request later fails on either.
    pub fn new(url: &str, token: Option<String>) -> anyhow::Result<WriterClient> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("invalid writer URL {url}"))?;
        anyhow::ensure!(
            uri.scheme_str() == Some("http") && uri.host().is_some(),
            "the writer URL must be http://host:port (put TLS in front of both services if needed)"
        );
        anyhow::ensure!(
            uri.query().is_none(),
            "the writer URL must not have a query string"
        );
        let authority = uri
            .authority()
            .cloned()
            .context("the writer URL has no host")?;
        let authorization = token
            .map(|token| {
                let mut value = HeaderValue::try_from(format!("Bearer {token}"))
                    .context("the writer token must be printable ASCII")?;
                value.set_sensitive(true);
                anyhow::Ok(value)
            })
            .transpose()?;
        Ok(WriterClient {
            authority,
            prefix: uri.path().trim_end_matches('/').to_owned(),
            authorization,
            client: http_client(),
        })
    }

    /// The writer's URI for `path_and_query` (which starts with `/`).
    fn uri(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        let path_and_query: PathAndQuery = format!("{}{path_and_query}", self.prefix).parse()?;
        Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }

    /// Sends `request` to the writer unchanged (method, path, query, headers
    /// but hop-by-hop ones, body) and reads its whole answer. The client's
    /// own `Authorization` (or none) goes with it, never the edge's token,
    /// so the writer's `401` and `403` come back as they are.
    pub async fn forward(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, ForwardError> {
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        parts.uri = self
            .uri(path)
            .map_err(|error| ForwardError::Unreachable(format!("bad writer URI: {error}")))?;
        parts.headers.remove(HOST);
        remove_hop_by_hop(&mut parts.headers);
        let body = body.map_err(BoxError::from).boxed_unsync();
        let response = tokio::time::timeout(
            FORWARD_TIMEOUT,
            self.client.request(Request::from_parts(parts, body)),
        )
        .await
        .map_err(|_| ForwardError::Timeout)?
        .map_err(|error| ForwardError::Unreachable(error.to_string()))?;
        let (mut parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|error| {
                ForwardError::Unreachable(format!("reading the writer's answer: {error}"))
            })?
            .to_bytes();
        remove_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, Full::new(body)))
    }

    /// Asks the writer for its newest snapshot; when it is newer than `have`,
    /// verifies it, saves it atomically into `data_dir` and returns it.
    pub async fn download_newer(
        &self,
        have: Option<u64>,
        data_dir: &DataDir,
    ) -> anyhow::Result<Option<LoadedSnapshot>> {
        let uri = self.uri(routes::SNAPSHOT_LATEST)?;
        let mut request = Request::get(uri.clone());
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        if let Some(seq) = have {
            request = request.header(IF_NONE_MATCH, snapshot_etag::for_seq(seq));
        }
        let request = request.body(
            Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        )?;
        let response = tokio::time::timeout(DOWNLOAD_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| anyhow::anyhow!("snapshot download from {uri} timed out"))??;
        match response.status() {
            StatusCode::NOT_MODIFIED => return Ok(None),
            StatusCode::OK => {}
            status => anyhow::bail!("snapshot download from {uri} answered {status}"),
        }
        let etag = response.headers().get(ETAG).cloned();
        let bytes = response.into_body().collect().await?.to_bytes();
        // Decoding a large catalog takes a while: off the runtime's threads.
        let decoded = {
            let bytes = bytes.clone();
            tokio::task::spawn_blocking(move || LoadedSnapshot::decode(&bytes, Timestamp::now()))
                .await?
        };
        let snapshot = decoded.map_err(|error| {
            anyhow::anyhow!("downloaded snapshot (ETag {etag:?}) is invalid: {error}")
        })?;
        if have.is_some_and(|have| snapshot.seq <= have) {
            return Ok(None);
        }
        let (seq, to_write) = (snapshot.seq, bytes.clone());
        data_dir
            .write(move |dir| {
                snapshot::write_atomically(&dir.join(snapshot::file_name(seq)), &to_write)
            })
            .await
            .context("saving the downloaded snapshot")?;
        tracing::info!(
            seq = snapshot.seq,
            ads = snapshot.ads,
            bytes = bytes.len(),
            "downloaded snapshot from the writer"
        );
        Ok(Some(snapshot))
    }
}

fn remove_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_must_be_plain_http_with_a_host() {
        for bad in [
            "https://writer:8081",
            "writer:8081",
            "/just/a/path",
            "http://writer:8081/?x=1",
            "not a url",
        ] {
            assert!(WriterClient::new(bad, None).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn request_uris_keep_the_writers_path_prefix() {
        let root = WriterClient::new("http://writer:8081/", None).unwrap();
        assert_eq!(
            root.uri("/api/v1/ad?x=1").unwrap(),
            "http://writer:8081/api/v1/ad?x=1"
        );
        let mounted = WriterClient::new("http://writer:8081/adcast/", None).unwrap();
        assert_eq!(
            mounted.uri(routes::SNAPSHOT_LATEST).unwrap(),
            "http://writer:8081/adcast/internal/v1/snapshot/latest"
        );
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_refused_at_build() {
        assert!(WriterClient::new("http://writer:8081", Some("a\nb".into())).is_err());
    }
}
