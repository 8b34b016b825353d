//! `GET /internal/v1/snapshot/latest`: the newest snapshot file, with an
//! `ETag` of its sequence number so an edge can ask "anything newer?" cheaply.

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use http::{HeaderMap, StatusCode};

use crate::response::{json_response, ApiError, HttpResponse};
use crate::snapshots;
use crate::startup::AppState;

/// Response header with the served snapshot's sequence number.
pub const SNAPSHOT_SEQ: &str = "adcast-snapshot-seq";

pub async fn latest(state: &AppState, headers: &HeaderMap) -> Result<HttpResponse, ApiError> {
    let Some((header, bytes)) = snapshots::latest(&state.snapshot_dir)
        .await
        .map_err(|error| {
            ApiError::Unexpected(
                anyhow::Error::new(error).context("reading the snapshot directory"),
            )
        })?
    else {
        return Err(ApiError::NotFound(
            "no snapshot has been written yet".into(),
        ));
    };
    let etag = format!("\"{}\"", header.seq);
    let unchanged = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*");
    let mut response = if unchanged {
        let mut response = json_response(StatusCode::NOT_MODIFIED, Bytes::new());
        response.headers_mut().remove(CONTENT_TYPE);
        response
    } else {
        let mut response = json_response(StatusCode::OK, bytes);
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        response
    };
    let headers = response.headers_mut();
    headers.insert(
        ETAG,
        HeaderValue::from_str(&etag).expect("digits and quotes are a valid header"),
    );
    headers.insert(SNAPSHOT_SEQ, HeaderValue::from(header.seq));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}
