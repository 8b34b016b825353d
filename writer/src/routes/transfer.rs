//! Import and export: many ads in one request, and every ad in one stream.
//!
//! `POST /api/v1/admin/ad/import` checks every ad before it stores any, then
//! stores them all in one transaction (`Store::import`). `GET
//! /api/v1/admin/ad/export` streams every live ad as NDJSON from one
//! consistent read, a page at a time, so memory stays bounded whatever the
//! size of the catalog; its output imports again unchanged.

use std::time::Duration;

use adcast_shared::ad::AdId;
use adcast_shared::error::ValidationError;
use adcast_shared::wire::AdView;
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde::Serialize;
use tokio::sync::mpsc;

use super::ads::{idempotency_key, is_json, key_reused, refuse, replay};
use super::RequestBody;
use crate::body::ReadError;
use crate::bulk::{self, Format, MAX_ADS, MAX_BYTES};
use crate::catalog::ImportOutcome;
use crate::response::{json_response, with_seq, ApiError, BoxError, HttpResponse};
use crate::state::AppState;
use crate::store::{IdempotencyKey, StoredResponse};

/// The media type of NDJSON bodies, in and out.
pub const NDJSON: &str = "application/x-ndjson";
/// Ads per page read from PostgreSQL and per chunk written by the export.
const EXPORT_PAGE: i64 = 1_000;
/// Chunks rendered ahead of a slow client: what bounds the export's memory.
const EXPORT_AHEAD: usize = 2;
/// A client that takes nothing for this long loses its export (and the
/// database connection it holds is freed).
const EXPORT_STALL: Duration = Duration::from_secs(60);

/// The `201` body of an import.
#[derive(Serialize)]
struct Imported<'a> {
    created: usize,
    ids: &'a [i64],
    seq: u64,
}

pub async fn import(
    state: &AppState,
    request: Request<RequestBody>,
    by: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(request.headers())?.map(str::to_owned);
    let format = import_format(request.headers())?;
    let too_large = ApiError::PayloadTooLarge { limit: MAX_BYTES };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BYTES as u64) {
        return Err(too_large);
    }
    let bytes = match request.body().read(MAX_BYTES).await {
        Ok(bytes) => bytes,
        Err(ReadError::TooLarge) => return Err(too_large),
        Err(ReadError::Broken(error)) => {
            return Err(
                ValidationError::whole(format!("could not read the request body: {error}")).into(),
            )
        }
    };
    let ads = bulk::split(&bytes, format, MAX_ADS).map_err(|error| match error {
        bulk::SplitError::TooMany { limit } => {
            ApiError::TooManyItems(format!("an import holds at most {limit} ads"))
        }
        malformed => malformed.into_validation_error().into(),
    })?;
    if ads.is_empty() {
        return Err(ValidationError::whole("the import holds no ads").into());
    }
    let parsed = bulk::parse(&ads);
    let idempotency = key.as_deref().map(|key| IdempotencyKey {
        key,
        request_json: &parsed.digest,
    });
    if let Some(idempotency) = &idempotency {
        match state.store.idempotent_outcome(idempotency).await? {
            Some(crate::store::CreateOutcome::Replayed(stored)) => return Ok(replay(stored)),
            Some(crate::store::CreateOutcome::KeyReused) => return Err(key_reused()),
            Some(crate::store::CreateOutcome::Created(_)) | None => {}
        }
    }
    let drafts = match parsed.drafts {
        Ok(drafts) => drafts,
        Err(invalid) => return refuse(state, idempotency.as_ref(), invalid).await,
    };
    let outcome = state
        .store
        .import(drafts, idempotency, by, |ids, seq| StoredResponse {
            status: StatusCode::CREATED.as_u16(),
            body: imported_body(ids, seq),
            location: None,
            seq: Some(seq),
        })
        .await?;
    match outcome {
        ImportOutcome::Created(written) => {
            state.committed(written.seq);
            Ok(with_seq(
                json_response(
                    StatusCode::CREATED,
                    imported_body(&written.value, written.seq),
                ),
                written.seq,
            ))
        }
        ImportOutcome::Replayed(stored) => Ok(replay(stored)),
        ImportOutcome::KeyReused => Err(key_reused()),
    }
}

fn imported_body(ids: &[AdId], seq: u64) -> Vec<u8> {
    let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    serde_json::to_vec(&Imported {
        created: ids.len(),
        ids: &ids,
        seq,
    })
    .expect("numbers serialise")
}

/// `application/json` is a JSON array, `application/x-ndjson` NDJSON
/// (parameters such as `charset` allowed); anything else is a 415.
fn import_format(headers: &HeaderMap) -> Result<Format, ApiError> {
    if is_json(headers) {
        return Ok(Format::JsonArray);
    }
    let ndjson = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case(NDJSON));
    if ndjson {
        Ok(Format::Ndjson)
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// `GET /api/v1/admin/ad/export`. `head`: answer the headers only, without
/// reading the catalog.
pub async fn export(state: &AppState, head: bool) -> Result<HttpResponse, ApiError> {
    let mut reader = state.store.export_reader().await?;
    let seq = reader.seq;
    let (chunks, receiver) = mpsc::channel::<Result<Bytes, BoxError>>(EXPORT_AHEAD);
    if !head {
        tokio::spawn(async move {
            loop {
                let item = match reader.next_page(EXPORT_PAGE).await {
                    Ok(ads) if ads.is_empty() => return,
                    Ok(ads) => Ok(ndjson_chunk(&ads)),
                    Err(error) => {
                        tracing::error!(error = %error, "export stopped: reading the catalog failed");
                        // An error frame makes hyper cut the response short, so
                        // the client sees an incomplete export, never a short one.
                        Err(BoxError::from(format!(
                            "reading the catalog failed: {error}"
                        )))
                    }
                };
                let failed = item.is_err();
                match tokio::time::timeout(EXPORT_STALL, chunks.send(item)).await {
                    Ok(Ok(())) if !failed => {}
                    Ok(_) => return, // the client went away, or the error is sent
                    Err(_) => {
                        tracing::warn!("export stopped: the client took nothing for 60 s");
                        return;
                    }
                }
            }
        });
    }
    let frames = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let item = receiver.recv().await?;
        Some((item.map(Frame::data), receiver))
    });
    let mut response = Response::new(StreamBody::new(frames).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    Ok(with_seq(response, seq))
}

/// One canonical ad per line.
fn ndjson_chunk(ads: &[adcast_shared::ad::Ad]) -> Bytes {
    let mut chunk = Vec::with_capacity(ads.len() * 200);
    for ad in ads {
        serde_json::to_writer(&mut chunk, &AdView::new(ad)).expect("ads serialise to JSON");
        chunk.push(b'\n');
    }
    Bytes::from(chunk)
}
