//! The OpenAPI document and the routers describe the same API: a route
//! missing from either side fails here.

use std::collections::BTreeSet;

/// `(path, method)` pairs under `paths:` in `openapi.yaml`. The document is
/// kept in block style with two-space indentation (paths at 2, operations
/// at 4), which this reads directly rather than pulling in a YAML parser.
fn documented() -> BTreeSet<(String, String)> {
    let text = adcast_shared::protocol::OPENAPI_YAML;
    let mut pairs = BTreeSet::new();
    let mut in_paths = false;
    let mut path = None;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            in_paths = line.trim_end() == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(key) = line
            .strip_prefix("  ")
            .and_then(|rest| rest.strip_suffix(':'))
        {
            if key.starts_with('/') {
                path = Some(key.trim_matches(|c| c == '"' || c == '\'').to_owned());
                continue;
            }
        }
        if let Some(key) = line
            .strip_prefix("    ")
            .and_then(|rest| rest.strip_suffix(':'))
        {
            let method = key.trim();
            if ["get", "put", "post", "delete", "patch", "options", "trace"].contains(&method) {
                pairs.insert((
                    path.clone().expect("an operation belongs to a path"),
                    method.to_uppercase(),
                ));
            }
        }
    }
    pairs
}

/// What the two routers serve (HEAD goes with GET and is not compared).
fn served() -> BTreeSet<(String, String)> {
    let writer = adcast_writer::routes::route_table();
    let edge = adcast_edge::server::ROUTE_TABLE;
    writer
        .into_iter()
        .chain(edge)
        .flat_map(|(path, methods)| {
            methods
                .split(", ")
                .map(move |method| (path.to_owned(), method.to_owned()))
        })
        .filter(|(_, method)| method != "HEAD")
        .collect()
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let documented = documented();
    let served = served();
    assert!(
        documented.len() >= 10,
        "the document was not read: {documented:?}"
    );
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let phantom: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in openapi.yaml: {undocumented:?}"
    );
    assert!(
        phantom.is_empty(),
        "in openapi.yaml but not served: {phantom:?}"
    );
}
