//! The HTTP front: the Public API, operations endpoints and forwarding.
//!
//! `serve(listener, server, shutdown)` accepts HTTP/1 connections
//! (keep-alive, header-read timeout) until `shutdown` resolves, then lets
//! in-flight requests finish. This file is HTTP only: a query is parsed
//! here, goes down to the index once
//! ([`AdIndex::answer`](crate::index::AdIndex::answer)) and comes back
//! as the body and its cache lifetime, which are written out as they are.
//! A query string whose answer the answer cache keeps is answered before
//! that, from the connection's request handler ([`Server::kept_answer`]).
//! The query path takes no lock: it loads the current state's `Arc`. (In
//! poll mode a request that finds the state stale first joins a catch-up,
//! bounded: see `poll`.)

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adcast_shared::api_error::{error_body, validation_error_body, ErrorCode};
use adcast_shared::protocol::{headers, routes, OPENAPI_YAML};
use adcast_shared::timestamp::Timestamp;
use bytes::Bytes;
use futures_util::future::Either;
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

use crate::answer::Answer;
use crate::answer_cache::AnswerCache;
use crate::config::Settings;
use crate::forward;
use crate::metrics::{Metrics, RouteLabel};
use crate::node::{Node, Readiness};
use crate::poll::PollSync;
use crate::query::QueryParams;
use crate::writer_client::WriterClient;

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

/// What answering a request needs.
pub struct Server {
    /// The state queries read, and readiness.
    node: Arc<Node>,
    /// Every answer is counted here.
    metrics: Arc<Metrics>,
    /// Admin calls are forwarded to it; without one, they are 404.
    writer: Option<Arc<WriterClient>>,
    /// Poll mode: requests catch up with the stream through it; `None` in
    /// stream mode, where the tailer keeps the state current.
    poll: Option<Arc<PollSync>>,
    /// `--min-seq-wait-ms`: longest wait for `Adcast-Min-Seq` and for a
    /// forwarded write to be applied.
    min_seq_wait: Duration,
    /// `--cache-max-age-secs`: the cap of `Cache-Control: max-age`.
    cache_max_age_secs: u64,
    /// Recent answers, reused while exactly right.
    answers: AnswerCache,
    /// `--header-read-timeout-ms`, against clients that never finish.
    header_read_timeout: Duration,
    /// `--max-connections`: beyond it, new clients wait to be accepted.
    max_connections: usize,
}

impl Server {
    pub fn new(
        settings: &Settings,
        node: Arc<Node>,
        metrics: Arc<Metrics>,
        writer: Option<Arc<WriterClient>>,
        poll: Option<Arc<PollSync>>,
    ) -> Server {
        Server {
            node,
            metrics,
            writer,
            poll,
            min_seq_wait: settings.min_seq_wait(),
            cache_max_age_secs: settings.cache_max_age_secs,
            answers: AnswerCache::new(settings.answer_cache_entries),
            header_read_timeout: settings.header_read_timeout(),
            max_connections: settings.max_connections.max(1),
        }
    }
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(listener: TcpListener, server: Arc<Server>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(server.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let connections = Arc::new(Semaphore::new(server.max_connections));
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
        let server = server.clone();
        let service = service_fn(move |request| {
            // A kept answer is written at once, without building and
            // copying the async state machine. Every other request goes the
            // full way.
            match server.kept_answer(&request) {
                Some(response) => Either::Left(std::future::ready(Ok(response))),
                None => {
                    let server = server.clone();
                    Either::Right(async move {
                        Ok::<_, std::convert::Infallible>(server.answer(request).await)
                    })
                }
            }
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

impl Server {
    /// The fast path of `GET /api/v1/ad`: the answer the answer cache keeps
    /// for this very query string at the current state (so a valid query),
    /// when there is nothing to wait for (no `Adcast-Min-Seq`, stream
    /// mode). Counted like every answer. `None` sends the request the full
    /// way ([`Server::answer`]), which answers it the same or says what is
    /// wrong with it; so does a panic here.
    fn kept_answer(&self, request: &Request<Incoming>) -> Option<HttpResponse> {
        let method = request.method();
        if !self.answers.is_on()
            || self.poll.is_some()
            || request.uri().path() != routes::ADS
            || !(method == Method::GET || method == Method::HEAD)
        {
            return None;
        }
        let started = Instant::now();
        let kept = std::panic::catch_unwind(AssertUnwindSafe(|| {
            if min_seq_header(request).is_some() {
                return None;
            }
            let state = self.node.peek_state();
            if !state.loaded {
                return None;
            }
            let now = Timestamp::now();
            let raw_query = request.uri().query().unwrap_or("");
            let kept = self
                .answers
                .get(&state, raw_query, now, self.cache_max_age_secs)?;
            Some(self.answered(kept.answer, kept.seq_header, now))
        }));
        let response = kept.ok().flatten()?;
        self.metrics.record(
            RouteLabel::Ads,
            response.status().as_u16(),
            started.elapsed(),
        );
        Some(response)
    }

    /// Every response passes here: panics become a 500, and every answer
    /// gets `Adcast-Seq` and is counted.
    async fn answer(&self, request: Request<Incoming>) -> HttpResponse {
        let started = Instant::now();
        let (route, mut response) = match AssertUnwindSafe(self.route(request)).catch_unwind().await
        {
            Ok(answer) => answer,
            Err(_) => {
                tracing::error!("request handler panicked");
                (
                    RouteLabel::Unknown,
                    error(ErrorCode::Internal, "internal error", None),
                )
            }
        };
        // A public 200 already carries the sequence of the state it was
        // computed from; skipping the header-map lookup for it is measurable
        // at full load.
        if route != RouteLabel::Ads || response.status() != StatusCode::OK {
            response
                .headers_mut()
                .entry(ADCAST_SEQ)
                .or_insert_with(|| HeaderValue::from(self.node.state().seq));
        }
        self.metrics
            .record(route, response.status().as_u16(), started.elapsed());
        response
    }

    async fn route(&self, request: Request<Incoming>) -> (RouteLabel, HttpResponse) {
        let path = request.uri().path();
        let method = request.method();
        let read = method == Method::GET || method == Method::HEAD;
        match (path, &self.writer) {
            (routes::ADS, _) if read => (RouteLabel::Ads, self.public_query(&request).await),
            (routes::ADS, Some(writer)) if method == Method::POST => {
                (RouteLabel::Forwarded, self.forward(writer, request).await)
            }
            (routes::ADS, writer) => {
                let allow = if writer.is_some() {
                    "GET, HEAD, POST"
                } else {
                    "GET, HEAD"
                };
                (RouteLabel::Ads, method_not_allowed(allow))
            }
            (HEALTHZ, _) if read => (
                RouteLabel::Operations,
                json(StatusCode::OK, r#"{"status":"ok"}"#),
            ),
            (SERVINGZ, _) if read => (RouteLabel::Operations, self.servingz()),
            (READYZ, _) if read => (RouteLabel::Operations, self.readyz().await),
            (METRICS, _) if read => (RouteLabel::Operations, self.metrics()),
            (OPENAPI, _) if read => (RouteLabel::Operations, openapi()),
            (HEALTHZ | SERVINGZ | READYZ | METRICS | OPENAPI, _) => {
                (RouteLabel::Operations, method_not_allowed("GET, HEAD"))
            }
            (_, Some(writer))
                if path.starts_with(routes::AD_PREFIX)
                    || path.starts_with(routes::ADMIN_PREFIX)
                    || path == routes::CONSOLE
                    || path.starts_with(routes::CONSOLE_PREFIX) =>
            {
                (RouteLabel::Forwarded, self.forward(writer, request).await)
            }
            _ => (
                RouteLabel::Unknown,
                error(ErrorCode::NotFound, &format!("no route for {path}"), None),
            ),
        }
    }

    /// `GET /api/v1/ad`: the active ads matching the query, by `(endAt, id)`.
    async fn public_query(&self, request: &Request<Incoming>) -> HttpResponse {
        let raw_query = request.uri().query().unwrap_or("");
        let params = match QueryParams::parse(raw_query) {
            Ok(params) => params,
            Err(invalid) => {
                return with_status(StatusCode::BAD_REQUEST, validation_error_body(&invalid))
            }
        };
        if let Some(value) = min_seq_header(request) {
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
            if !self.wait_applied(min_seq).await {
                return unavailable(&format!(
                    "this edge has not applied change {min_seq} yet; retry shortly"
                ));
            }
        }
        if let Some(poll) = &self.poll {
            poll.refresh().await;
        }
        let state = self.node.state();
        if !state.loaded {
            // Nothing loaded yet (the writer's snapshot has not arrived): an
            // empty answer would be wrong, and cacheable.
            return unavailable("this edge has not loaded its state yet; retry shortly");
        }
        let now = Timestamp::now();
        let cap = self.cache_max_age_secs;
        // With nothing waited for, `kept_answer` has just looked this query
        // up: compute it without a second lookup (a state installed since
        // then costs at most a recomputation).
        let waited = self.poll.is_some() || min_seq_header(request).is_some();
        let answer = if waited {
            self.answers.answer(&state, raw_query, &params, now, cap)
        } else {
            self.answers.compute(&state, raw_query, &params, now, cap)
        };
        self.answered(answer, HeaderValue::from(state.seq), now)
    }

    /// A Public API answer with its headers; `seq_header` is the
    /// sequence number of the state it was computed from.
    fn answered(&self, answer: Answer, seq_header: HeaderValue, now: Timestamp) -> HttpResponse {
        let mut response = Response::new(Full::new(answer.body));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, cache_control(answer.max_age));
        headers.insert(ADCAST_SEQ, seq_header);
        self.node
            .freshness()
            .mark_if_stale(headers, now, self.node.ready_max_lag());
        response
    }

    /// "Can serve": a state is loaded, however fresh. What load balancers
    /// and container health checks ask.
    fn servingz(&self) -> HttpResponse {
        let state = self.node.state();
        if !state.loaded {
            return unavailable("not serving: no state loaded yet");
        }
        json(
            StatusCode::OK,
            format!(r#"{{"status":"serving","seq":{}}}"#, state.seq),
        )
    }

    /// "Loaded and fresh": see [`Node::readiness`]. In poll mode the
    /// request first catches up like a Public API request (bounded), so it
    /// says whether this edge can answer currently now, not whether a
    /// request happened to come by lately.
    async fn readyz(&self) -> HttpResponse {
        if let Some(poll) = &self.poll {
            poll.refresh().await;
        }
        let reason = match self.node.readiness() {
            Readiness::Ready => {
                return json(
                    StatusCode::OK,
                    format!(r#"{{"status":"ready","seq":{}}}"#, self.node.state().seq),
                )
            }
            Readiness::NotLoaded => "no state loaded yet".to_owned(),
            Readiness::ResyncPending { seq } => {
                format!("a gap after change {seq} is waiting for a newer snapshot")
            }
            Readiness::StreamSilent(silence) => {
                format!("no contact with the stream for {} ms", silence.as_millis())
            }
            Readiness::StreamNotReached => "the stream has not been reached yet".to_owned(),
            Readiness::Stale(staleness) => format!(
                "stale: the newest writer heartbeat applied here is {} ms old (the writer, or the path from it, is not getting through)",
                staleness.as_millis()
            ),
        };
        unavailable(&format!("not ready: {reason}"))
    }

    fn metrics(&self) -> HttpResponse {
        let mut response = json(
            StatusCode::OK,
            self.metrics.render(&self.node, &self.answers),
        );
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    }

    async fn forward(&self, writer: &WriterClient, request: Request<Incoming>) -> HttpResponse {
        let applied = |seq| self.wait_applied(seq);
        match forward::forward(writer, &self.node, applied, request).await {
            Ok(response) => response,
            Err(failure) => {
                tracing::warn!(error = %failure, "forwarding to the writer failed");
                unavailable("the writer is unavailable; retry shortly")
            }
        }
    }
}

impl Server {
    /// Waits, at most `--min-seq-wait-ms`, until change `seq` is applied:
    /// in poll mode by catching up until it is. True if it is.
    async fn wait_applied(&self, seq: u64) -> bool {
        match &self.poll {
            Some(poll) => poll.reach(seq, self.min_seq_wait).await,
            None => self.node.wait_for_seq(seq, self.min_seq_wait).await,
        }
    }
}

/// The request's `Adcast-Min-Seq`. A scan, not `HeaderMap::get`: hashing
/// the name cost more than comparing it with the few headers a request
/// carries (at most MAX_HEADERS); the first one found, as `get` would.
fn min_seq_header(request: &Request<Incoming>) -> Option<&HeaderValue> {
    request
        .headers()
        .iter()
        .find_map(|(name, value)| (*name == ADCAST_MIN_SEQ).then_some(value))
}

fn cache_control(max_age: u64) -> HeaderValue {
    // Built at compile time (`from_static` checks its text then), and a
    // static, so a call clones one value instead of building the array.
    static PRE_RENDERED: [HeaderValue; 6] = [
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

const HEALTHZ: &str = "/healthz";
const SERVINGZ: &str = "/servingz";
const READYZ: &str = "/readyz";
const METRICS: &str = "/metrics";
const OPENAPI: &str = "/openapi.yaml";

/// Every route an edge serves itself, with its methods, as `(path, "GET,
/// HEAD")`; with a writer configured it also forwards the Admin API.
pub const ROUTE_TABLE: [(&str, &str); 6] = [
    (routes::ADS, "GET, HEAD"),
    (HEALTHZ, "GET, HEAD"),
    (SERVINGZ, "GET, HEAD"),
    (READYZ, "GET, HEAD"),
    (METRICS, "GET, HEAD"),
    (OPENAPI, "GET, HEAD"),
];

fn openapi() -> HttpResponse {
    let mut response = json(StatusCode::OK, OPENAPI_YAML);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
    response
}

/// A 503 that asks the client to come back in a second.
fn unavailable(message: &str) -> HttpResponse {
    let mut response = error(ErrorCode::Unavailable, message, None);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
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
