//! `GET /internal/v1/snapshot/latest`: the newest snapshot file, with an
//! `ETag` of its sequence number so an edge can ask "anything newer?" cheaply.

use adcast_shared::protocol::headers::ADCAST_SNAPSHOT_SEQ;
use adcast_shared::protocol::snapshot_etag;
use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use http::{HeaderMap, StatusCode};

use crate::response::{json_response, ApiError, HttpResponse};
use crate::snapshots;
use crate::state::AppState;

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
    let etag = snapshot_etag::for_seq(header.seq);
    let unchanged = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| snapshot_etag::matches(value, header.seq));
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
    headers.insert(ADCAST_SNAPSHOT_SEQ, HeaderValue::from(header.seq));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}
