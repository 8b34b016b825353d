//! The Admin API: create, read, replace, delete and list ads.

use adcast_shared::ad::AdId;
use adcast_shared::api_error::validation_error_body;
use adcast_shared::error::ValidationError;
use adcast_shared::json::Json;
use adcast_shared::protocol::headers::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
use adcast_shared::timestamp::Timestamp;
use adcast_shared::wire::{parse_ad_draft, AdView};
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, Request, StatusCode};
use serde::Serialize;

use super::RequestBody;
use crate::body::ReadError;
use crate::response::{json_response, with_seq, ApiError, HttpResponse};
use crate::state::AppState;
use crate::store::{ad_json, AdState, CreateOutcome, IdempotencyKey, ListFilter, StoredResponse};

/// Largest accepted request body (docs/api.md).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 100;
/// Longest admin-list title search (`q`), as long as the longest title.
const MAX_TITLE_QUERY_CHARS: usize = 256;

/// `by` is the caller's label, recorded with every change.
pub async fn create(
    state: &AppState,
    request: Request<RequestBody>,
    by: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(request.headers())?.map(str::to_owned);
    let body = read_json(request).await?;
    let request_json = body.canonical_text();
    let idempotency = key.as_deref().map(|key| IdempotencyKey {
        key,
        request_json: &request_json,
    });
    if let Some(idempotency) = &idempotency {
        match state.store.idempotent_outcome(idempotency).await? {
            Some(CreateOutcome::Replayed(stored)) => return Ok(replay(stored)),
            Some(CreateOutcome::KeyReused) => return Err(key_reused()),
            Some(CreateOutcome::Created(_)) | None => {}
        }
    }
    let draft = match parse_ad_draft(&body, Timestamp::now()) {
        Ok(draft) => draft,
        Err(invalid) => return refuse(state, idempotency.as_ref(), invalid).await,
    };
    let outcome = state
        .store
        .create(draft, idempotency, by, |ad, seq| StoredResponse {
            status: StatusCode::CREATED.as_u16(),
            body: ad_json(ad),
            location: Some(format!("/api/v1/ad/{}", ad.id)),
            seq: Some(seq),
        })
        .await?;
    match outcome {
        CreateOutcome::Created(written) => {
            state.committed(written.seq);
            let mut response = json_response(StatusCode::CREATED, ad_json(&written.value));
            set_location(&mut response, &format!("/api/v1/ad/{}", written.value.id));
            Ok(with_seq(response, written.seq))
        }
        CreateOutcome::Replayed(stored) => Ok(replay(stored)),
        CreateOutcome::KeyReused => Err(key_reused()),
    }
}

/// Answers a create whose body is invalid. With a key, the 400 is
/// remembered as the key's first answer (SPEC: "status included"), so the
/// refused body cannot be swapped for another under the same key.
pub(crate) async fn refuse(
    state: &AppState,
    idempotency: Option<&IdempotencyKey<'_>>,
    invalid: ValidationError,
) -> Result<HttpResponse, ApiError> {
    if let Some(idempotency) = idempotency {
        let refusal = StoredResponse {
            status: StatusCode::BAD_REQUEST.as_u16(),
            body: validation_error_body(&invalid),
            location: None,
            seq: None,
        };
        match state.store.remember_refusal(idempotency, &refusal).await? {
            Some(CreateOutcome::Replayed(stored)) => return Ok(replay(stored)),
            Some(CreateOutcome::KeyReused) => return Err(key_reused()),
            Some(CreateOutcome::Created(_)) | None => {}
        }
    }
    Err(invalid.into())
}

pub async fn get(state: &AppState, id: &str) -> Result<HttpResponse, ApiError> {
    let id = parse_id(id)?;
    match state.store.get(id).await? {
        Some(ad) => Ok(json_response(StatusCode::OK, ad_json(&ad))),
        None => Err(not_found(id)),
    }
}

pub async fn replace(
    state: &AppState,
    id: &str,
    request: Request<RequestBody>,
    by: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(id)?;
    let body = read_json(request).await?;
    let draft = parse_ad_draft(&body, Timestamp::now())?;
    match state.store.replace(id, draft, by).await? {
        Some(written) => {
            state.committed(written.seq);
            Ok(with_seq(
                json_response(StatusCode::OK, ad_json(&written.value)),
                written.seq,
            ))
        }
        None => Err(not_found(id)),
    }
}

pub async fn delete(
    state: &AppState,
    id: &str,
    by: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(id)?;
    match state.store.delete(id, by).await? {
        Some(written) => {
            state.committed(written.seq);
            let mut response = json_response(StatusCode::NO_CONTENT, Bytes::new());
            response.headers_mut().remove(CONTENT_TYPE);
            Ok(with_seq(response, written.seq))
        }
        None => Err(not_found(id)),
    }
}

/// `GET /api/v1/admin/ad?after=&limit=&state=&q=`: keyset pages by id,
/// optionally only the ads in one state now and/or whose title contains `q`.
pub async fn list(state: &AppState, query: Option<&str>) -> Result<HttpResponse, ApiError> {
    let mut after = None;
    let mut limit = None;
    let mut in_state = None;
    let mut title_query = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let slot = match name.as_ref() {
            "after" => &mut after,
            "limit" => &mut limit,
            "state" => &mut in_state,
            "q" => &mut title_query,
            _ => continue,
        };
        if slot.is_some() {
            return Err(ValidationError::field(
                name.as_ref(),
                format!("{name} must be given at most once"),
            )
            .into());
        }
        *slot = Some(value.into_owned());
    }
    // `after=0` is the same as no cursor: ids start at 1.
    let after = after
        .filter(|text| text != "0")
        .map(|text| {
            AdId::parse(&text).ok_or_else(|| {
                ValidationError::field("after", "after must be a non-negative integer ad id")
            })
        })
        .transpose()?;
    let limit = limit
        .map(|text| {
            Some(text.as_str())
                .filter(|text| {
                    !text.is_empty() && text.len() <= 3 && text.bytes().all(|b| b.is_ascii_digit())
                })
                .and_then(|text| text.parse::<u32>().ok())
                .filter(|limit| (1..=MAX_PAGE).contains(limit))
                .ok_or_else(|| {
                    ValidationError::field("limit", "limit must be an integer from 1 to 100")
                })
        })
        .transpose()?
        .unwrap_or(DEFAULT_PAGE);
    let in_state = in_state
        .map(|text| {
            AdState::parse(&text).ok_or_else(|| {
                ValidationError::field("state", "state must be scheduled, active or ended")
            })
        })
        .transpose()?;
    if let Some(text) = &title_query {
        let chars = text.chars().count();
        if !(1..=MAX_TITLE_QUERY_CHARS).contains(&chars) || text.chars().any(char::is_control) {
            return Err(ValidationError::field(
                "q",
                "q must be 1 to 256 characters with no control characters",
            )
            .into());
        }
    }
    let filter = ListFilter {
        state: in_state.map(|in_state| (in_state, Timestamp::now())),
        title_contains: title_query.as_deref(),
    };
    let mut ads = state.store.list_matching(after, limit + 1, &filter).await?;
    let more = ads.len() > limit as usize;
    ads.truncate(limit as usize);
    let next = if more {
        ads.last().map(|ad| ad.id.get())
    } else {
        None
    };
    let page = AdPage {
        items: ads.iter().map(AdView::new).collect(),
        next,
    };
    let body = serde_json::to_vec(&page).map_err(anyhow::Error::from)?;
    Ok(json_response(StatusCode::OK, body))
}

/// One page of the admin list; `next` is the `after` for the following page.
#[derive(Serialize)]
struct AdPage<'a> {
    items: Vec<AdView<'a>>,
    next: Option<i64>,
}

pub(crate) fn parse_id(text: &str) -> Result<AdId, ApiError> {
    AdId::parse(text)
        .ok_or_else(|| ValidationError::field("id", "ad id must be a positive integer").into())
}

pub(crate) fn key_reused() -> ApiError {
    ApiError::Conflict("Idempotency-Key was already used with a different request body".into())
}

pub(crate) fn not_found(id: AdId) -> ApiError {
    ApiError::NotFound(format!("no ad with id {id}"))
}

pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let invalid = || {
        ValidationError::field(
            "Idempotency-Key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )
    };
    let text = value.to_str().map_err(|_| invalid())?;
    let valid = (1..=255).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(invalid().into());
    }
    if headers.get_all(IDEMPOTENCY_KEY).iter().count() > 1 {
        return Err(ValidationError::field(
            "Idempotency-Key",
            "Idempotency-Key must be given at most once",
        )
        .into());
    }
    Ok(Some(text))
}

/// Checks the media type, reads at most [`MAX_BODY_BYTES`], parses JSON.
/// A declared length over the limit is refused before anything is read.
async fn read_json(request: Request<RequestBody>) -> Result<Json, ApiError> {
    if !is_json(request.headers()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let too_large = ApiError::PayloadTooLarge {
        limit: MAX_BODY_BYTES,
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large);
    }
    let bytes = match request.body().read(MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(ReadError::TooLarge) => return Err(too_large),
        Err(ReadError::Broken(error)) => {
            return Err(
                ValidationError::whole(format!("could not read the request body: {error}")).into(),
            )
        }
    };
    Json::parse(&bytes).map_err(|error| {
        ValidationError::whole(format!("request body is not valid JSON: {error}")).into()
    })
}

/// `application/json`, with or without parameters such as `charset`.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}

fn set_location(response: &mut HttpResponse, location: &str) {
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
}

pub(crate) fn replay(stored: StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::CREATED);
    let mut response = json_response(status, stored.body);
    if let Some(location) = &stored.location {
        set_location(&mut response, location);
    }
    response
        .headers_mut()
        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    match stored.seq {
        Some(seq) => with_seq(response, seq),
        None => response,
    }
}
