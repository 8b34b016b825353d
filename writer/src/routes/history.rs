//! `GET /api/v1/admin/ad/{id}/history` (who changed an ad, oldest first)
//! and `GET /api/v1/admin/whoami` (the caller's scope and label).

use http::StatusCode;
use serde::Serialize;

use super::ads::parse_id;
use crate::auth::Caller;
use crate::response::{json_response, ApiError, HttpResponse};
use crate::state::AppState;

#[derive(Serialize)]
struct History {
    items: Vec<Item>,
}

#[derive(Serialize)]
struct Item {
    seq: u64,
    at: String,
    action: &'static str,
    by: Option<String>,
}

pub async fn history(state: &AppState, id: &str) -> Result<HttpResponse, ApiError> {
    let id = parse_id(id)?;
    let Some(changes) = state.store.history(id).await? else {
        return Err(ApiError::NotFound(format!(
            "no ad with id {id} was ever created"
        )));
    };
    let body = History {
        items: changes
            .into_iter()
            .map(|change| Item {
                seq: change.seq,
                at: change.at.to_string(),
                action: change.action.as_str(),
                by: change.by,
            })
            .collect(),
    };
    let body = serde_json::to_vec(&body).map_err(anyhow::Error::from)?;
    Ok(json_response(StatusCode::OK, body))
}

#[derive(Serialize)]
struct WhoAmI<'a> {
    scope: &'static str,
    label: Option<&'a str>,
}

/// `{"scope":"admin|read|internal","label":…}`; with tokens off
/// `{"scope":"open","label":null}` (anyone may do everything).
pub fn whoami(caller: &Caller) -> HttpResponse {
    let body = serde_json::to_vec(&WhoAmI {
        scope: caller.scope_name(),
        label: caller.label(),
    })
    .expect("strings serialise");
    json_response(StatusCode::OK, body)
}
