//! Routing: which handler answers a request, and the checks every admin call
//! goes through first: authentication (`401`), method (`405`), then the
//! token's scope (`403`).

pub(crate) mod ads;
mod history;
mod operations;
mod ops;

mod snapshot;
mod transfer;

use std::sync::Arc;

use adcast_shared::protocol::routes;
use http::{Method, Request};

use crate::auth::{Access, Authentication, Caller};
use crate::response::{ApiError, HttpResponse};
use crate::state::AppState;

/// Handlers that read a body bound it (after authentication, so an
/// anonymous caller learns nothing but 401); the server drains the rest.
pub use crate::body::RequestBody;

pub use ads::MAX_BODY_BYTES;

/// The routes, named as they appear in metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Ads,
    Ad,
    AdminAds,
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    SnapshotLatest,
    Explain,
    Preview,
    Import,
    Export,
    History,
    WhoAmI,
    Unknown,
}

/// Ad operations (docs/api.md, "Ad operations").
const PREVIEW: &str = "/api/v1/admin/preview";
const IMPORT: &str = "/api/v1/admin/ad/import";
const EXPORT: &str = "/api/v1/admin/ad/export";
/// Who the caller is (docs/api.md, "Tokens, scopes and history").
const WHOAMI: &str = "/api/v1/admin/whoami";

impl Route {
    fn of(path: &str) -> Route {
        match path {
            routes::ADS => Route::Ads,
            "/api/v1/admin/ad" => Route::AdminAds,
            "/healthz" => Route::Healthz,
            "/readyz" => Route::Readyz,
            "/metrics" => Route::Metrics,
            "/openapi.yaml" => Route::OpenApi,
            routes::SNAPSHOT_LATEST => Route::SnapshotLatest,
            PREVIEW => Route::Preview,
            IMPORT => Route::Import,
            EXPORT => Route::Export,
            WHOAMI => Route::WhoAmI,
            _ if ad_id_segment(path).is_some() => Route::Ad,
            _ if explain_id_segment(path).is_some() => Route::Explain,
            _ if history_id_segment(path).is_some() => Route::History,
            _ => Route::Unknown,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Route::Ads => routes::ADS,
            Route::Ad => "/api/v1/ad/{id}",
            Route::AdminAds => "/api/v1/admin/ad",
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::OpenApi => "/openapi.yaml",
            Route::SnapshotLatest => routes::SNAPSHOT_LATEST,
            Route::Explain => "/api/v1/admin/ad/{id}/explain",
            Route::Preview => PREVIEW,
            Route::Import => IMPORT,
            Route::Export => EXPORT,
            Route::History => "/api/v1/admin/ad/{id}/history",
            Route::WhoAmI => WHOAMI,
            Route::Unknown => "unknown",
        }
    }

    /// Whether the route takes a token when tokens are configured.
    fn needs_token(self) -> bool {
        !matches!(
            self,
            Route::Healthz | Route::Readyz | Route::Metrics | Route::OpenApi | Route::Unknown
        )
    }

    /// What a caller needs for `method` on this route; `None` when the
    /// route does not take the method (`405`).
    fn access(self, method: &Method) -> Option<Access> {
        let read = method == Method::GET || method == Method::HEAD;
        match self {
            Route::Healthz | Route::Readyz | Route::Metrics | Route::OpenApi => {
                read.then_some(Access::Open)
            }
            Route::SnapshotLatest => read.then_some(Access::Internal),
            Route::WhoAmI => read.then_some(Access::AnyToken),
            Route::AdminAds | Route::Explain | Route::Preview | Route::Export | Route::History => {
                read.then_some(Access::Read)
            }
            Route::Ad if read => Some(Access::Read),
            Route::Ad => {
                (method == Method::PUT || method == Method::DELETE).then_some(Access::Write)
            }
            Route::Ads | Route::Import => (method == Method::POST).then_some(Access::Write),
            Route::Unknown => None,
        }
    }

    /// The `Allow` header value.
    fn allowed(self) -> &'static str {
        match self {
            Route::Ads | Route::Import => "POST",
            Route::Ad => "GET, HEAD, PUT, DELETE",
            Route::AdminAds
            | Route::Healthz
            | Route::Readyz
            | Route::Metrics
            | Route::OpenApi
            | Route::SnapshotLatest
            | Route::Explain
            | Route::Preview
            | Route::Export
            | Route::History
            | Route::WhoAmI => "GET, HEAD",
            Route::Unknown => "",
        }
    }
}

impl Route {
    const ALL: [Route; 14] = [
        Route::Ads,
        Route::Ad,
        Route::AdminAds,
        Route::Healthz,
        Route::Readyz,
        Route::Metrics,
        Route::OpenApi,
        Route::SnapshotLatest,
        Route::Explain,
        Route::Preview,
        Route::Import,
        Route::Export,
        Route::History,
        Route::WhoAmI,
    ];
}

/// Every route the writer serves with its methods, as `(path template,
/// "GET, HEAD")`: what the OpenAPI document must describe.
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    Route::ALL
        .iter()
        .map(|route| (route.label(), route.allowed()))
        .chain(crate::console::ROUTES)
        .collect()
}

/// `/api/v1/ad/{id}` → the id segment (not yet validated).
fn ad_id_segment(path: &str) -> Option<&str> {
    path.strip_prefix(routes::AD_PREFIX)
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
}

/// `/api/v1/admin/ad/{id}/explain` → the id segment (not yet validated).
fn explain_id_segment(path: &str) -> Option<&str> {
    path.strip_prefix("/api/v1/admin/ad/")
        .and_then(|rest| rest.strip_suffix("/explain"))
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// `/api/v1/admin/ad/{id}/history` → the id segment (not yet validated).
fn history_id_segment(path: &str) -> Option<&str> {
    path.strip_prefix("/api/v1/admin/ad/")
        .and_then(|rest| rest.strip_suffix("/history"))
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// Answers one request; returns the route label for metrics.
pub async fn handle(
    state: Arc<AppState>,
    request: Request<RequestBody>,
) -> (&'static str, Result<HttpResponse, ApiError>) {
    let path = request.uri().path().to_owned();
    // The console's files need no token: they hold no data.
    if crate::console::owns(&path) {
        return crate::console::handle(&request);
    }
    let route = Route::of(&path);
    (route.label(), dispatch(state, route, &path, request).await)
}

async fn dispatch(
    state: Arc<AppState>,
    route: Route,
    path: &str,
    request: Request<RequestBody>,
) -> Result<HttpResponse, ApiError> {
    if route == Route::Unknown {
        return Err(ApiError::NotFound(format!("no route for {path}")));
    }
    let caller = if route.needs_token() {
        let authorization = request.headers().get(http::header::AUTHORIZATION);
        match state
            .tokens
            .authenticate(authorization.map(|value| value.as_bytes()))
        {
            Authentication::Caller(caller) => caller,
            Authentication::Refused => return Err(ApiError::Unauthorized),
        }
    } else {
        Caller::Open
    };
    let Some(access) = route.access(request.method()) else {
        return Err(ApiError::MethodNotAllowed {
            allow: route.allowed(),
        });
    };
    if !caller.may(access) {
        tracing::info!(
            scope = caller.scope_name(),
            label = caller.label(),
            method = %request.method(),
            route = route.label(),
            "refused: outside the token's scope"
        );
        return Err(ApiError::Forbidden {
            scope: caller.scope_name(),
            what: match access {
                Access::Write => "change ads",
                Access::Internal => "use internal routes",
                _ => "use admin routes",
            },
        });
    }
    if route.needs_token() {
        tracing::debug!(
            scope = caller.scope_name(),
            label = caller.label(),
            "caller"
        );
    }
    let method = request.method().clone();
    let read = method == Method::GET || method == Method::HEAD;
    // The label recorded with a change (docs/api.md, "Labels and history").
    let by = caller.label();
    match route {
        Route::Ads if method == Method::POST => ads::create(&state, request, by).await,
        Route::Ad => {
            let id = ad_id_segment(path).unwrap_or_default();
            match method {
                _ if read => ads::get(&state, id).await,
                Method::PUT => ads::replace(&state, id, request, by).await,
                Method::DELETE => ads::delete(&state, id, by).await,
                _ => Err(ApiError::MethodNotAllowed {
                    allow: route.allowed(),
                }),
            }
        }
        Route::AdminAds if read => ads::list(&state, request.uri().query()).await,
        Route::Healthz if read => Ok(ops::healthz()),
        Route::Readyz if read => ops::readyz(&state).await,
        Route::Metrics if read => Ok(ops::metrics(&state)),
        Route::OpenApi if read => Ok(ops::openapi()),
        Route::SnapshotLatest if read => snapshot::latest(&state, request.headers()).await,
        Route::Explain if read => {
            let id = explain_id_segment(path).unwrap_or_default();
            operations::explain(&state, id, request.uri().query()).await
        }
        Route::Preview if read => operations::preview(&state, request.uri().query()).await,
        Route::Import if method == Method::POST => transfer::import(&state, request, by).await,
        Route::Export if read => transfer::export(&state, method == Method::HEAD).await,
        Route::History if read => {
            let id = history_id_segment(path).unwrap_or_default();
            history::history(&state, id).await
        }
        Route::WhoAmI if read => Ok(history::whoami(&caller)),
        _ => Err(ApiError::MethodNotAllowed {
            allow: route.allowed(),
        }),
    }
}
