//! Liveness, readiness and metrics.

use std::time::Duration;

use adcast_shared::protocol::OPENAPI_YAML;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;

use crate::response::{json_response, ApiError, HttpResponse};
use crate::state::AppState;

/// Readiness gives PostgreSQL this long to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn healthz() -> HttpResponse {
    json_response(StatusCode::OK, r#"{"status":"ok"}"#)
}

/// Ready when PostgreSQL answers: the writer can take writes.
pub async fn readyz(state: &AppState) -> Result<HttpResponse, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(json_response(StatusCode::OK, r#"{"status":"ready"}"#)),
        Ok(Err(error)) => Err(error.into()),
        Err(_) => Err(ApiError::Unavailable(
            "PostgreSQL did not answer in time".into(),
        )),
    }
}

pub fn openapi() -> HttpResponse {
    let mut response = json_response(StatusCode::OK, OPENAPI_YAML);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
    response
}

pub fn metrics(state: &AppState) -> HttpResponse {
    let mut response = json_response(StatusCode::OK, state.metrics.render());
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    response
}
