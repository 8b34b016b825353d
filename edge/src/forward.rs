//! Forwarding Admin API calls to the writer, with read-your-writes.
//!
//! The request goes to the writer unchanged (method, path, query, headers,
//! body). A successful write answer carries `Adcast-Seq`; the edge holds it
//! until it has applied that change itself (bounded by `--min-seq-wait-ms`),
//! so a client that writes and then reads through the same edge sees its write.

use std::time::Duration;

use adcast_shared::protocol::headers;
use bytes::Bytes;
use http::header::HOST;
use http::{HeaderMap, Request, Response, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::node::Node;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type HttpClient = Client<HttpConnector, UnsyncBoxBody<Bytes, BoxError>>;

/// Longest a forwarded call may take at the writer.
const WRITER_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest writer answer relayed (ads are small; lists are 100 ads at most).
const MAX_ANSWER_BYTES: usize = 4 << 20;

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

fn remove_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Sends `request` to the writer and relays its answer, after waiting for
/// a successful write's `Adcast-Seq` to be applied here.
pub async fn forward(
    node: &Node,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ForwardError> {
    let writer = node
        .writer
        .as_ref()
        .expect("forward is only routed when a writer is configured");
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let uri: Uri = format!("{}{path}", writer.url.trim_end_matches('/'))
        .parse()
        .map_err(|error| ForwardError::Unreachable(format!("bad writer URL: {error}")))?;
    parts.uri = uri;
    parts.headers.remove(HOST);
    remove_hop_by_hop(&mut parts.headers);
    let body = body.map_err(BoxError::from).boxed_unsync();
    let response = tokio::time::timeout(
        WRITER_TIMEOUT,
        writer.client.request(Request::from_parts(parts, body)),
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
    if parts.status.is_success() {
        let seq = parts
            .headers
            .get(headers::ADCAST_SEQ)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if let Some(seq) = seq {
            if !node.wait_for_seq(seq, node.settings.min_seq_wait()).await {
                // The write is done; failing it now would invite a duplicate
                // retry. Answer, and say the read may not see it yet.
                tracing::warn!(
                    seq,
                    "forwarded write not applied here within the wait bound"
                );
                parts.headers.insert(
                    headers::ADCAST_APPLIED,
                    http::HeaderValue::from_static("false"),
                );
                // Adcast-Seq on an edge answer is what this edge has applied;
                // the write's own number moves to Adcast-Write-Seq.
                let answer = &mut parts.headers;
                answer.insert(headers::ADCAST_WRITE_SEQ, http::HeaderValue::from(seq));
                answer.insert(
                    headers::ADCAST_SEQ,
                    http::HeaderValue::from(node.state().seq),
                );
            }
        }
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}
