//! The web console: the hand-written files of `writer/console/`, compiled
//! into the binary and served at `/admin/` without a token (they hold no
//! data; every call they make to the Admin API carries the user's token).
//!
//! Caching: file names stay fixed (the modules import each other by name,
//! with no build step to rename them), so every answer has
//! `Cache-Control: no-cache` and an `ETag` from the file's SHA-256. A browser
//! revalidates on each load, gets a bodiless 304 while nothing changed, and
//! never runs files of two versions mixed after an upgrade.
//! Every answer carries a Content-Security-Policy that allows only these
//! files: no inline script or style, no other origin.

use std::sync::LazyLock;

use adcast_shared::protocol::routes;
use bytes::Bytes;
use http::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    LOCATION, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;
use sha2::{Digest, Sha256};

use crate::response::{whole, ApiError, HttpResponse};

/// The paths the console answers, with their methods, as
/// `routes::route_table` lists them (and `openapi.yaml` describes them).
pub const ROUTES: [(&str, &str); 3] = [
    ("/admin", "GET, HEAD"),
    ("/admin/", "GET, HEAD"),
    ("/admin/{asset}", "GET, HEAD"),
];

const ALLOW: &str = "GET, HEAD";

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// One file of the console.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../console/", $name)),
        }
    };
}

/// Every file, by the name it is served under (`/admin/<name>`); `/admin/`
/// is `index.html`.
const ASSETS: [Asset; 12] = [
    asset!("index.html", HTML),
    asset!("style.css", CSS),
    asset!("icon.svg", SVG),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("time.js", JS),
    asset!("countries.js", JS),
    asset!("list.js", JS),
    asset!("form.js", JS),
    asset!("picker.js", JS),
    asset!("tools.js", JS),
];

/// The names of every file, for tests and documentation.
pub fn asset_names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|asset| asset.name)
}

/// `"<first 128 bits of SHA-256, hex>"`, per asset, computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = Sha256::digest(asset.body);
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("\"{hex}\"")
        })
        .collect()
});

/// Whether `path` is the console's: `/admin` and everything under `/admin/`.
pub fn owns(path: &str) -> bool {
    path == routes::CONSOLE || path.starts_with(routes::CONSOLE_PREFIX)
}

/// Answers a request for a path the console [`owns`]; returns the route
/// label for metrics with the answer. No token is needed.
pub fn handle<B>(request: &Request<B>) -> (&'static str, Result<HttpResponse, ApiError>) {
    let path = request.uri().path();
    let read = request.method() == Method::GET || request.method() == Method::HEAD;
    if path == routes::CONSOLE {
        return ("/admin", if read { Ok(redirect()) } else { not_allowed() });
    }
    let name = match path.strip_prefix(routes::CONSOLE_PREFIX) {
        Some("") => "index.html",
        Some(name) => name,
        None => "",
    };
    let Some(index) = ASSETS.iter().position(|asset| asset.name == name) else {
        return (
            "unknown",
            Err(ApiError::NotFound(format!("no route for {path}"))),
        );
    };
    let label = if name == "index.html" && path == "/admin/" {
        "/admin/"
    } else {
        "/admin/{asset}"
    };
    if !read {
        return (label, not_allowed());
    }
    (label, Ok(serve(index, request.headers())))
}

fn not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed { allow: ALLOW })
}

/// `/admin` → `/admin/`, so the files' relative references resolve. The
/// target is relative too: it stays right behind a proxy that adds a prefix.
fn redirect() -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
    let headers = response.headers_mut();
    headers.insert(LOCATION, HeaderValue::from_static("admin/"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    whole(response)
}

fn serve(index: usize, request_headers: &HeaderMap) -> HttpResponse {
    let asset = &ASSETS[index];
    let etag = &ETAGS[index];
    let unchanged = if_none_match(request_headers, etag);
    let mut response = if unchanged {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = Response::new(Full::new(Bytes::from_static(asset.body)));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        response
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(ETAG, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    whole(response)
}

/// RFC 9110 §13.1.2: `*` or any listed tag equal to ours under the weak
/// comparison (a `W/` prefix is ignored).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(if_none_match: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(IF_NONE_MATCH, HeaderValue::from_str(if_none_match).unwrap());
        headers
    }

    #[test]
    fn a_listed_weak_or_wildcard_tag_matches() {
        let etag = "\"abc\"";
        assert!(if_none_match(&headers("\"abc\""), etag));
        assert!(if_none_match(&headers("\"x\", W/\"abc\""), etag));
        assert!(if_none_match(&headers("*"), etag));
    }

    #[test]
    fn another_tag_or_none_does_not_match() {
        let etag = "\"abc\"";
        assert!(!if_none_match(&headers("\"abd\""), etag));
        assert!(!if_none_match(&headers("abc"), etag));
        assert!(!if_none_match(&HeaderMap::new(), etag));
    }

    #[test]
    fn the_country_table_lists_exactly_the_codes_the_api_accepts() {
        let asset = ASSETS
            .iter()
            .find(|asset| asset.name == "countries.js")
            .unwrap();
        let text = std::str::from_utf8(asset.body).unwrap();
        let listed: Vec<[u8; 2]> = text
            .lines()
            .filter_map(|line| line.trim().strip_prefix("[\""))
            .map(|rest| [rest.as_bytes()[0], rest.as_bytes()[1]])
            .collect();
        assert_eq!(listed, adcast_shared::country::CODES.to_vec());
    }

    #[test]
    fn asset_names_are_unique_and_flat() {
        let mut names: Vec<_> = asset_names().collect();
        assert!(names.iter().all(|name| !name.contains('/')));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ASSETS.len());
    }
}
