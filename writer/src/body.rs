//! Request bodies: read by at most one handler, bounded, and drained when a
//! handler answered without reading them.
//!
//! Answering early (401, 404, 413, 415, …) while the client is still sending
//! is normal, but closing a socket with unread data makes the kernel reset
//! the connection, and a client (or an edge forwarding for one) that is still
//! writing may then never see the answer. So after the handler, the server
//! reads and discards what is left, within [`DRAIN_LIMIT`] bytes and
//! [`DRAIN_TIME`]; past those it gives up and the connection closes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};

/// Most bytes read and discarded after an early answer.
pub const DRAIN_LIMIT: usize = 1 << 20;
/// Longest time spent discarding after an early answer.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);

/// The body of one request, shared between the handler (which may take it)
/// and the server (which drains whatever the handler left).
#[derive(Clone, Debug)]
pub struct RequestBody(Arc<Mutex<Option<Incoming>>>);

/// Why a body could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// More than the limit; the rest is left for the server to drain.
    TooLarge,
    /// The connection failed while reading.
    Broken(hyper::Error),
}

impl RequestBody {
    pub fn new(body: Incoming) -> RequestBody {
        RequestBody(Arc::new(Mutex::new(Some(body))))
    }

    fn take(&self) -> Option<Incoming> {
        self.0.lock().expect("body lock poisoned").take()
    }

    fn put_back(&self, body: Incoming) {
        *self.0.lock().expect("body lock poisoned") = Some(body);
    }

    /// Reads the whole body, refusing more than `limit` bytes. A body
    /// already read (or taken) reads as empty.
    pub async fn read(&self, limit: usize) -> Result<Bytes, ReadError> {
        let Some(mut body) = self.take() else {
            return Ok(Bytes::new());
        };
        let mut bytes = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(ReadError::Broken)?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > limit {
                    self.put_back(body);
                    return Err(ReadError::TooLarge);
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(bytes.freeze())
    }

    /// Discards what the handler left unread (bounded; see the module docs).
    pub async fn drain(&self) {
        let Some(mut body) = self.take() else {
            return;
        };
        if body.is_end_stream() {
            return;
        }
        let discard = async {
            let mut discarded = 0;
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    discarded += data.len();
                    if discarded > DRAIN_LIMIT {
                        return;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
    }
}
