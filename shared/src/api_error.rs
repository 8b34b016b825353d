//! The error body both services answer with, and the codes of docs/api.md.

use serde::Serialize;

use crate::error::ValidationError;

/// docs/api.md's error codes with their HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidArgument => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The code that goes with an error status, for responses made by
    /// middleware that only knows the status.
    pub fn from_status(status: u16) -> ErrorCode {
        match status {
            400 => ErrorCode::InvalidArgument,
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotAllowed,
            409 => ErrorCode::Conflict,
            413 => ErrorCode::PayloadTooLarge,
            415 => ErrorCode::UnsupportedMediaType,
            503 | 408 | 504 => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

/// `{"error":{"code":…,"message":…,"field":…}}`; `field` only when given.
pub fn error_body(code: ErrorCode, message: &str, field: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        error: Detail {
            code: code.as_str(),
            message,
            field,
        },
    })
    .expect("serialising plain strings cannot fail")
}

/// The body of a `400 invalid_argument` for a validation error.
pub fn validation_error_body(error: &ValidationError) -> Vec<u8> {
    error_body(
        ErrorCode::InvalidArgument,
        &error.message,
        error.field.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_spec_shape() {
        let body = error_body(
            ErrorCode::InvalidArgument,
            "age must be an integer from 1 to 100",
            Some("age"),
        );
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"error": {"code": "invalid_argument", "message": "age must be an integer from 1 to 100", "field": "age"}})
        );
    }

    #[test]
    fn field_is_omitted_when_absent() {
        let body = error_body(ErrorCode::NotFound, "no ad 5", None);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"error":{"code":"not_found","message":"no ad 5"}}"#
        );
    }
}
