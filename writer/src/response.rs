//! Building responses, and the one place an error becomes a status code.

use adcast_shared::api_error::{error_body, validation_error_body, ErrorCode};
use adcast_shared::error::ValidationError;
use adcast_shared::protocol::headers::ADCAST_SEQ;
use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A response body: a whole buffer for almost every answer, a stream for
/// the export (which must not hold the catalog in memory).
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;
pub type HttpResponse = Response<ResponseBody>;

/// Everything a route can fail with. The last arm is for bugs and surprises:
/// logged in full, answered without internals.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// A valid token whose scope does not cover the request.
    #[error("a {scope} token may not {what}")]
    Forbidden {
        scope: &'static str,
        what: &'static str,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// A body within the byte limit holding more items than a route takes.
    #[error("{0}")]
    TooManyItems(String),
    #[error("request body must be JSON (Content-Type: application/json; the import also takes application/x-ndjson)")]
    UnsupportedMediaType,
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    pub fn into_response(self, request_id: &str) -> HttpResponse {
        let (code, body) = match &self {
            ApiError::Invalid(error) => (ErrorCode::InvalidArgument, validation_error_body(error)),
            ApiError::Unauthorized => (
                ErrorCode::Unauthorized,
                body_of(ErrorCode::Unauthorized, &self),
            ),
            ApiError::Forbidden { .. } => {
                (ErrorCode::Forbidden, body_of(ErrorCode::Forbidden, &self))
            }
            ApiError::NotFound(_) => (ErrorCode::NotFound, body_of(ErrorCode::NotFound, &self)),
            ApiError::MethodNotAllowed { .. } => (
                ErrorCode::MethodNotAllowed,
                body_of(ErrorCode::MethodNotAllowed, &self),
            ),
            ApiError::Conflict(_) => (ErrorCode::Conflict, body_of(ErrorCode::Conflict, &self)),
            ApiError::PayloadTooLarge { .. } | ApiError::TooManyItems(_) => (
                ErrorCode::PayloadTooLarge,
                body_of(ErrorCode::PayloadTooLarge, &self),
            ),
            ApiError::UnsupportedMediaType => (
                ErrorCode::UnsupportedMediaType,
                body_of(ErrorCode::UnsupportedMediaType, &self),
            ),
            ApiError::Unavailable(reason) => {
                tracing::warn!(request_id, reason = %reason, "answering 503");
                (
                    ErrorCode::Unavailable,
                    body_of(ErrorCode::Unavailable, &self),
                )
            }
            ApiError::Unexpected(error) => {
                tracing::error!(request_id, error = ?error, "internal error");
                let message = format!("internal error (request id {request_id})");
                (
                    ErrorCode::Internal,
                    error_body(ErrorCode::Internal, &message, None),
                )
            }
        };
        let mut response = json_response(status_of(code), body);
        let headers = response.headers_mut();
        match self {
            ApiError::MethodNotAllowed { allow } => {
                headers.insert(ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::Unavailable(_) => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::Unauthorized => {
                headers.insert(
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer"),
                );
            }
            _ => {}
        }
        response
    }
}

/// Classifies a database failure: PostgreSQL unreachable or overloaded is a
/// 503 the client may retry; anything else is a bug or a surprise (500).
impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> ApiError {
        let unavailable = match &error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => true,
            sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08") || code.starts_with("57P") || code == "53300"
            }),
            _ => false,
        };
        if unavailable {
            tracing::warn!(error = %error, "PostgreSQL unavailable");
            ApiError::Unavailable("the database is unavailable; retry shortly".into())
        } else {
            ApiError::Unexpected(anyhow::Error::new(error).context("database query failed"))
        }
    }
}

fn body_of(code: ErrorCode, error: &ApiError) -> Vec<u8> {
    error_body(code, &error.to_string(), None)
}

pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.status()).expect("error codes map to valid statuses")
}

/// A response whose body is one buffer, in the type every route answers with.
pub fn whole(response: Response<Full<Bytes>>) -> HttpResponse {
    response.map(|body| body.map_err(|never| match never {}).boxed_unsync())
}

/// A JSON response; errors are never cached.
pub fn json_response(status: StatusCode, body: impl Into<Bytes>) -> HttpResponse {
    let mut response = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn with_seq(mut response: HttpResponse, seq: u64) -> HttpResponse {
    response
        .headers_mut()
        .insert(ADCAST_SEQ, HeaderValue::from(seq));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_unavailable() {
        for error in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed] {
            assert!(matches!(ApiError::from(error), ApiError::Unavailable(_)));
        }
    }

    #[test]
    fn any_other_database_error_is_unexpected() {
        assert!(matches!(
            ApiError::from(sqlx::Error::RowNotFound),
            ApiError::Unexpected(_)
        ));
    }
}
