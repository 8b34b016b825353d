//! Forwarding Admin API calls to the writer, with read-your-writes.
//!
//! The [`WriterClient`] relays the request unchanged. A successful write
//! answer carries `Adcast-Seq`; the edge holds it until it has applied that
//! change itself (bounded by `--min-seq-wait-ms`), so a client that writes
//! and then reads through the same edge sees its write.

use std::future::Future;

use adcast_shared::protocol::headers;
use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::node::Node;
use crate::writer_client::{ForwardError, WriterClient};

/// Sends `request` to the writer and relays its answer, after waiting for
/// a successful write's `Adcast-Seq` to be applied here: `applied(seq)`
/// waits, bounded, and says whether it is (in stream mode it watches the
/// tailer; in poll mode it catches up).
pub async fn forward<Wait>(
    writer: &WriterClient,
    node: &Node,
    applied: impl FnOnce(u64) -> Wait,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ForwardError>
where
    Wait: Future<Output = bool>,
{
    let mut response = writer.forward(request).await?;
    if !response.status().is_success() {
        return Ok(response);
    }
    let seq = response
        .headers()
        .get(headers::ADCAST_SEQ)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(seq) = seq {
        if !applied(seq).await {
            // The write is done; failing it now would invite a duplicate
            // retry. Answer, and say the read may not see it yet.
            tracing::warn!(
                seq,
                "forwarded write not applied here within the wait bound"
            );
            let answer = response.headers_mut();
            answer.insert(headers::ADCAST_APPLIED, HeaderValue::from_static("false"));
            // Adcast-Seq on an edge answer is what this edge has applied;
            // the write's own number moves to Adcast-Write-Seq.
            answer.insert(headers::ADCAST_WRITE_SEQ, HeaderValue::from(seq));
            answer.insert(headers::ADCAST_SEQ, HeaderValue::from(node.state().seq));
        }
    }
    Ok(response)
}
