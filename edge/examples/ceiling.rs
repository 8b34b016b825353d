//! The HTTP ceiling for the load benchmark: a bare hyper server, configured
//! like the edge (HTTP/1, keep-alive, same runtime shape), answering every
//! request with a fixed body and the edge's headers. Whatever the edge does
//! beyond this is the cost of adcast itself.
//!
//! `cargo run --release -p adcast-edge --example ceiling -- 127.0.0.1:18090 300 1`
//! (address, body size in bytes, worker threads)

use std::convert::Infallible;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::Response;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};

fn main() {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:18090".into());
    let body_size: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(300);
    let threads: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1);
    let body = Bytes::from(format!(
        "{{\"items\":[{}]}}",
        "x".repeat(body_size.saturating_sub(12))
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&address).await.expect("bind");
        eprintln!("ceiling listening on {address}, body {} bytes", body.len());
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_request| {
                    let mut response = Response::new(Full::new(body.clone()));
                    let headers = response.headers_mut();
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=5"));
                    headers.insert("adcast-seq", HeaderValue::from(1000u64));
                    async move { Ok::<_, Infallible>(response) }
                });
                // The same HTTP/1 settings as the edge's server.
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(5))
                    .max_buf_size(16 * 1024)
                    .max_headers(64)
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
