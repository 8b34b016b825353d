//! Ad operations that read: explain one ad for one user at one instant, and
//! preview the Public API's answer at any instant, from the writer's data.
//!
//! Both take the Public API's user parameters under the Public API's own
//! rules (`adcast_shared::query`, the parser the edges run) plus `at`, and
//! decide with `adcast_shared::matching`, the definition the edges' index is
//! tested against.

use adcast_shared::error::ValidationError;
use adcast_shared::matching::explain as explain_ad;
use adcast_shared::query::{parse_audience, single_value, PublicQuery};
use adcast_shared::timestamp::Timestamp;
use adcast_shared::wire::{public_answer_body, ExplainView};
use http::StatusCode;

use super::ads::{not_found, parse_id};
use crate::response::{json_response, with_seq, ApiError, HttpResponse};
use crate::state::AppState;

/// `GET /api/v1/admin/ad/{id}/explain?age=&gender=&country=&platform=&at=`
pub async fn explain(
    state: &AppState,
    id: &str,
    query: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(id)?;
    let query = query.unwrap_or("");
    let audience = parse_audience(query)?;
    let at = parse_at(query)?;
    let Some(found) = state.store.ad_at(id, &audience, at).await? else {
        return Err(not_found(id));
    };
    let explanation = explain_ad(&found.ad, &audience, at);
    let view = ExplainView::new(&found.ad, at, &explanation, found.position);
    let body = serde_json::to_vec(&view).map_err(anyhow::Error::from)?;
    Ok(with_seq(json_response(StatusCode::OK, body), found.seq))
}

/// `GET /api/v1/admin/preview?offset=&limit=&age=&gender=&country=&platform=&at=`:
/// exactly the Public API's body for that query at `at`.
pub async fn preview(state: &AppState, query: Option<&str>) -> Result<HttpResponse, ApiError> {
    let query = query.unwrap_or("");
    let params = PublicQuery::parse(query)?;
    let at = parse_at(query)?;
    let (ads, seq) = state
        .store
        .preview(&params.audience, params.offset, params.limit, at)
        .await?;
    Ok(with_seq(
        json_response(StatusCode::OK, public_answer_body(&ads)),
        seq,
    ))
}

/// `at`: an RFC 3339 instant, default now (the writer's clock).
fn parse_at(query: &str) -> Result<Timestamp, ApiError> {
    let Some(text) = single_value(query, "at")? else {
        return Ok(Timestamp::now());
    };
    Timestamp::parse_rfc3339(&text).ok_or_else(|| {
        ValidationError::field(
            "at",
            "at must be an RFC 3339 timestamp such as 2026-12-01T10:00:00Z (a + in an offset is written %2B)",
        )
        .into()
    })
}
