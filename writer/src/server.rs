//! The HTTP server: a tower stack around the router, on hyper's HTTP/1.
//!
//! Layers, outermost first: JSON bodies for errors made by middleware, panic
//! catching (a panic is a logged 500, never a dropped connection), request id
//! (`x-request-id`, set if absent and echoed back), tracing, request timeout
//! (503). hyper enforces the header-read timeout and the head size; handlers
//! bound the body (64 KiB) when they read one, after authentication.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adcast_shared::api_error::{error_body, ErrorCode};
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::response::{json_response, status_of, HttpResponse};
use crate::routes::{self, RequestBody};
use crate::state::AppState;

use crate::response::{BoxError, ResponseBody};

/// Largest request head (request line and headers); beyond it hyper answers 431.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header fields in one request.
const MAX_HEADERS: usize = 64;

/// Bounds on what one client can make the server hold.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// How long in-flight requests may run after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let app_state = state.clone();
    let service = ServiceBuilder::new()
        .map_response(json_errors_from_middleware)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(SetRequestIdLayer::x_request_id(RequestCounter::default()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let request_id = request
                .headers()
                .get("x-request-id")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            tracing::debug_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TimeoutLayer::with_status_code(
            http::StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .service_fn(move |request: Request<Incoming>| answer(app_state.clone(), request));

    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
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
                    // Usually EMFILE: wait for connections to close instead of spinning.
                    tracing::warn!(error = %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(service.clone()),
        );
        let connection = graceful.watch(connection);
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

async fn answer(
    state: Arc<AppState>,
    request: Request<Incoming>,
) -> Result<HttpResponse, Infallible> {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let (parts, body) = request.into_parts();
    let body = RequestBody::new(body);
    let request = Request::from_parts(parts, body.clone());
    let (route, result) = routes::handle(state.clone(), request).await;
    // An answer given without reading the body must still reach a client
    // that is sending it.
    body.drain().await;
    let response = result.unwrap_or_else(|error| error.into_response(&request_id));
    state
        .metrics
        .record_request(route, response.status().as_u16(), started.elapsed());
    Ok(response)
}

/// Middleware answers (503 from the timeout) come with plain bodies; give
/// every error the JSON shape of docs/api.md.
fn json_errors_from_middleware(
    response: Response<tower_http::body::UnsyncBoxBody<Bytes, BoxError>>,
) -> Response<ResponseBody> {
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !status.is_client_error() && !status.is_server_error() || is_json {
        return response.map(|body| body.boxed_unsync());
    }
    let code = ErrorCode::from_status(status.as_u16());
    let message = match code {
        ErrorCode::Unavailable => "the request took too long; retry shortly".to_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let mut json = json_response(status_of(code), error_body(code, &message, None));
    if code == ErrorCode::Unavailable {
        json.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if let Some(request_id) = response.headers().get("x-request-id") {
        json.headers_mut()
            .insert("x-request-id", request_id.clone());
    }
    json
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> HttpResponse {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "request handler panicked");
    json_response(
        http::StatusCode::INTERNAL_SERVER_ERROR,
        error_body(ErrorCode::Internal, "internal error", None),
    )
}

/// Request ids: a per-process prefix and a counter; unique, cheap, sortable.
#[derive(Clone, Default)]
struct RequestCounter {
    next: Arc<AtomicU64>,
}

impl MakeRequestId for RequestCounter {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:x}-{n}", std::process::id());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}
