//! HTTP for tests: one request per connection, over a real socket.

use std::net::SocketAddr;
use std::time::Duration;

use adcast_shared::protocol::headers;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "body is not JSON: {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn seq(&self) -> u64 {
        self.header(headers::ADCAST_SEQ)
            .expect("Adcast-Seq header")
            .parse()
            .unwrap()
    }

    /// Asserts the error shape of docs/api.md and returns `(code, field)`.
    pub fn error(&self) -> (String, Option<String>) {
        let json = self.json();
        let error = &json["error"];
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error needs a message: {json}"
        );
        (
            error["code"].as_str().expect("error code").to_owned(),
            error["field"].as_str().map(str::to_owned),
        )
    }
}

/// POSTs `size` bytes to `path` the way simple clients do: the whole body
/// first, then the answer. Returns the raw answer, or what went wrong
/// (a reset connection when the server answered without reading the body).
pub async fn post_whole_body_then_read(
    address: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    size: usize,
) -> Result<String, std::io::Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {size}\r\nconnection: close\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    // The body comes a little later, as over a real network: a server that
    // answers from the head alone has answered (and closed) by then.
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(&vec![b'x'; size]).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// One HTTP/1.1 request on a new connection; panics if it fails.
pub async fn send(
    address: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Bytes>,
) -> TestResponse {
    try_send(address, method, path, headers, body)
        .await
        .unwrap_or_else(|error| panic!("request to {address} failed: {error}"))
}

/// Like [`send`], but a connection failure is an error, not a panic (for
/// tests that kill the server mid-request).
pub async fn try_send(
    address: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Bytes>,
) -> Result<TestResponse, Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", address.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.unwrap_or_default()))?;
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(TestResponse {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}
