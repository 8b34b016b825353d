//! The Public API's query string. The rules (and their tests) live in
//! `adcast_shared::query`, shared with the writer's preview and explain so
//! that both refuse the same inputs; this adapts the result to the index's
//! [`Page`].

use adcast_shared::ad::AudienceQuery;
use adcast_shared::error::ValidationError;
use adcast_shared::query::PublicQuery;

use crate::index::Page;

pub use adcast_shared::query::{DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET};

/// A checked Public API query, normalised (`tw` and `TW` are one query).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueryParams {
    pub audience: AudienceQuery,
    pub page: Page,
}

impl QueryParams {
    /// Parses a raw query string (without `?`); see [`PublicQuery::parse`].
    #[inline]
    pub fn parse(query: &str) -> Result<QueryParams, ValidationError> {
        let PublicQuery {
            audience,
            offset,
            limit,
        } = PublicQuery::parse(query)?;
        Ok(QueryParams {
            audience,
            page: Page { offset, limit },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_becomes_the_index_page() {
        let params = QueryParams::parse("offset=10&limit=3&country=uk").unwrap();
        assert_eq!(
            params.page,
            Page {
                offset: 10,
                limit: 3
            }
        );
        assert_eq!(params.audience.country.unwrap().as_str(), "GB");
    }
}
