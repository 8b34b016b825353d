//! The HTTP front: the Public API, operations endpoints and forwarding.
//!
//! `serve(listener, node, shutdown)` accepts HTTP/1 connections (keep-alive,
//! header-read timeout) until `shutdown` resolves, then lets in-flight
//! requests finish. The query path takes no lock: it loads the current
//! state's `Arc`, asks its index, and copies pre-rendered items into the body.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adcast_shared::ad::AudienceQuery;
use adcast_shared::api_error::{error_body, validation_error_body, ErrorCode};
use adcast_shared::protocol::{headers, routes, OPENAPI_YAML};
use adcast_shared::timestamp::Timestamp;
use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{HeaderName, HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::forward::{self, ForwardError};
use crate::index::{AdIndex, Page};
use crate::metrics::RouteLabel;
use crate::node::Node;
use crate::query::QueryParams;

type HttpResponse = Response<Full<Bytes>>;

// Header names as constants: no parsing of the name on every request.
pub const ADCAST_SEQ: HeaderName = HeaderName::from_static(headers::ADCAST_SEQ);
pub const ADCAST_MIN_SEQ: HeaderName = HeaderName::from_static(headers::ADCAST_MIN_SEQ);
/// Largest request head (request line with the query string, and headers);
/// beyond it hyper answers 431.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header fields in one request.
const MAX_HEADERS: usize = 64;
/// How long in-flight requests may run after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(listener: TcpListener, node: Arc<Node>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(node.settings.header_read_timeout())
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let connections = Arc::new(Semaphore::new(node.settings.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        // At the connection limit, stop accepting: new clients wait in the
        // kernel's backlog instead of starving the ones being served.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(error = %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let node = node.clone();
        let service = service_fn(move |request| {
            let node = node.clone();
            async move { Ok::<_, std::convert::Infallible>(answer(&node, request).await) }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within the shutdown grace period");
    }
}

/// Every response passes here: panics become a 500, and every answer gets
/// `Adcast-Seq` and is counted.
async fn answer(node: &Node, request: Request<Incoming>) -> HttpResponse {
    let started = Instant::now();
    let (route, mut response) = match AssertUnwindSafe(route(node, request)).catch_unwind().await {
        Ok(answer) => answer,
        Err(_) => {
            tracing::error!("request handler panicked");
            (
                RouteLabel::Unknown,
                error(ErrorCode::Internal, "internal error", None),
            )
        }
    };
    // A public 200 already carries the sequence of the state it was computed
    // from; skipping the header-map lookup for it is measurable at full load.
    if route != RouteLabel::Ads || response.status() != StatusCode::OK {
        response
            .headers_mut()
            .entry(ADCAST_SEQ)
            .or_insert_with(|| HeaderValue::from(node.state().seq));
    }
    node.metrics
        .record(route, response.status().as_u16(), started.elapsed());
    response
}

async fn route(node: &Node, request: Request<Incoming>) -> (RouteLabel, HttpResponse) {
    let path = request.uri().path();
    let method = request.method();
    let read = method == Method::GET || method == Method::HEAD;
    let forwarding = node.writer.is_some();
    match path {
        routes::ADS if read => (RouteLabel::Ads, public_query(node, &request).await),
        routes::ADS if forwarding && method == Method::POST => {
            (RouteLabel::Forwarded, forward(node, request).await)
        }
        routes::ADS => {
            let allow = if forwarding {
                "GET, HEAD, POST"
            } else {
                "GET, HEAD"
            };
            (RouteLabel::Ads, method_not_allowed(allow))
        }
        "/healthz" if read => (
            RouteLabel::Operations,
            json(StatusCode::OK, r#"{"status":"ok"}"#),
        ),
        "/readyz" if read => (RouteLabel::Operations, readyz(node)),
        "/metrics" if read => (RouteLabel::Operations, metrics(node)),
        "/openapi.yaml" if read => (RouteLabel::Operations, openapi()),
        "/healthz" | "/readyz" | "/metrics" | "/openapi.yaml" => {
            (RouteLabel::Operations, method_not_allowed("GET, HEAD"))
        }
        _ if forwarding
            && (path.starts_with(routes::AD_PREFIX) || path.starts_with(routes::ADMIN_PREFIX)) =>
        {
            (RouteLabel::Forwarded, forward(node, request).await)
        }
        _ => (
            RouteLabel::Unknown,
            error(ErrorCode::NotFound, &format!("no route for {path}"), None),
        ),
    }
}

/// `GET /api/v1/ad`: the active ads matching the query, by `(endAt, id)`.
async fn public_query(node: &Node, request: &Request<Incoming>) -> HttpResponse {
    let params = match QueryParams::parse(request.uri().query().unwrap_or("")) {
        Ok(params) => params,
        Err(invalid) => {
            return with_status(StatusCode::BAD_REQUEST, validation_error_body(&invalid))
        }
    };
    if let Some(value) = request.headers().get(ADCAST_MIN_SEQ) {
        let min_seq = value
            .to_str()
            .ok()
            .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|text| text.parse::<u64>().ok());
        let Some(min_seq) = min_seq else {
            return error(
                ErrorCode::InvalidArgument,
                "Adcast-Min-Seq must be a non-negative integer",
                Some("Adcast-Min-Seq"),
            );
        };
        if !node
            .wait_for_seq(min_seq, node.settings.min_seq_wait())
            .await
        {
            let mut response = error(
                ErrorCode::Unavailable,
                &format!("this edge has not applied change {min_seq} yet; retry shortly"),
                None,
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
    }
    let state = node.state();
    if !state.loaded {
        // Nothing loaded yet (the writer's snapshot has not arrived): an
        // empty answer would be wrong, and cacheable.
        let mut response = error(
            ErrorCode::Unavailable,
            "this edge has not loaded its state yet; retry shortly",
            None,
        );
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    let now = Timestamp::now();
    let body = render_matches(&state.index, &params.audience, params.page, now);
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        CACHE_CONTROL,
        cache_control(max_age(&state.index, now, node.settings.cache_max_age_secs)),
    );
    headers.insert(ADCAST_SEQ, HeaderValue::from(state.seq));
    node.freshness
        .mark_if_stale(headers, now, node.settings.ready_max_lag());
    response
}

/// `{"items":[…]}`: the matching pre-rendered items, copied straight into
/// the body (one allocation, sized for typical items).
pub fn render_matches(
    index: &AdIndex,
    audience: &AudienceQuery,
    page: Page,
    now: Timestamp,
) -> Bytes {
    const OPEN: &[u8] = b"{\"items\":[";
    let mut body = Vec::with_capacity(OPEN.len() + 2 + page.limit.min(32) * 128);
    body.extend_from_slice(OPEN);
    index.for_each_match(audience, page, now, |item| {
        if body.len() > OPEN.len() {
            body.push(b',');
        }
        body.extend_from_slice(item.as_bytes());
    });
    body.extend_from_slice(b"]}");
    Bytes::from(body)
}

/// Seconds an answer computed at `now` stays right: never past the next
/// start or end of any ad, never past `cap`.
pub fn max_age(index: &AdIndex, now: Timestamp, cap: u64) -> u64 {
    match index.next_change_after(now) {
        Some(next) => (((next.as_millis() - now.as_millis()) / 1000) as u64).min(cap),
        None => cap,
    }
}

fn cache_control(max_age: u64) -> HeaderValue {
    // Built at compile time: `from_static` checks its text when it runs.
    const PRE_RENDERED: [HeaderValue; 6] = [
        HeaderValue::from_static("public, max-age=0"),
        HeaderValue::from_static("public, max-age=1"),
        HeaderValue::from_static("public, max-age=2"),
        HeaderValue::from_static("public, max-age=3"),
        HeaderValue::from_static("public, max-age=4"),
        HeaderValue::from_static("public, max-age=5"),
    ];
    match PRE_RENDERED.get(max_age as usize) {
        Some(value) => value.clone(),
        None => HeaderValue::from_str(&format!("public, max-age={max_age}")).expect("ASCII header"),
    }
}

/// Every route an edge serves itself, with its methods, as `(path, "GET,
/// HEAD")`; with a writer configured it also forwards the Admin API.
pub const ROUTE_TABLE: [(&str, &str); 5] = [
    (routes::ADS, "GET, HEAD"),
    ("/healthz", "GET, HEAD"),
    ("/readyz", "GET, HEAD"),
    ("/metrics", "GET, HEAD"),
    ("/openapi.yaml", "GET, HEAD"),
];

fn openapi() -> HttpResponse {
    let mut response = json(StatusCode::OK, OPENAPI_YAML);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
    response
}

fn readyz(node: &Node) -> HttpResponse {
    let state = node.state();
    if node.is_ready() {
        return json(
            StatusCode::OK,
            format!(r#"{{"status":"ready","seq":{}}}"#, state.seq),
        );
    }
    let reason = if !state.loaded {
        "no state loaded yet".to_owned()
    } else if node
        .resync_pending
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        format!(
            "a gap after change {} is waiting for a newer snapshot",
            state.seq
        )
    } else if let Some(reason) = node
        .freshness
        .unready_reason(node.settings.ready_max_lag(), Timestamp::now())
    {
        reason
    } else {
        match node.stream_silence() {
            Some(silence) => format!("no contact with the stream for {} ms", silence.as_millis()),
            None => "the stream has not been reached yet".to_owned(),
        }
    };
    let mut response = error(
        ErrorCode::Unavailable,
        &format!("not ready: {reason}"),
        None,
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn metrics(node: &Node) -> HttpResponse {
    let mut response = json(StatusCode::OK, node.render_metrics());
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn forward(node: &Node, request: Request<Incoming>) -> HttpResponse {
    match forward::forward(node, request).await {
        Ok(response) => response,
        Err(failure @ (ForwardError::Unreachable(_) | ForwardError::Timeout)) => {
            tracing::warn!(error = %failure, "forwarding to the writer failed");
            let mut response = error(
                ErrorCode::Unavailable,
                "the writer is unavailable; retry shortly",
                None,
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut response = error(ErrorCode::MethodNotAllowed, "method not allowed", None);
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

fn error(code: ErrorCode, message: &str, field: Option<&str>) -> HttpResponse {
    let status = StatusCode::from_u16(code.status()).expect("error codes are valid statuses");
    with_status(status, error_body(code, message, field))
}

/// A JSON error answer: never cached.
fn with_status(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let mut response = json(status, body);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> HttpResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
