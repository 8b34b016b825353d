//! The Public API's query string: `offset`, `limit`, `age`, `gender`,
//! `country`, `platform`, checked exactly as docs/api.md says.
//!
//! One definition for every node that answers those parameters: the edge's
//! `GET /api/v1/ad`, and the writer's preview and explain, which must refuse
//! exactly what the Public API refuses. It sits on the edge's hot path, so it
//! makes one pass over the bytes and borrows instead of allocating.

use std::borrow::Cow;

use crate::ad::{AudienceQuery, Gender, Platform};
use crate::country::Country;
use crate::error::ValidationError;

pub const DEFAULT_LIMIT: usize = 5;
pub const MAX_LIMIT: usize = 100;
pub const MAX_OFFSET: usize = 1_000_000;

/// A checked Public API query: who the user is, and which slice of the
/// answer they want.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicQuery {
    pub audience: AudienceQuery,
    pub offset: usize,
    pub limit: usize,
}

/// The parameters, in slot order.
const NAMES: [&str; 6] = ["offset", "limit", "age", "gender", "country", "platform"];

impl PublicQuery {
    /// Parses a raw query string (without `?`). Unknown parameters are
    /// ignored; a known one that is empty, repeated, malformed or out of range
    /// is an error naming it.
    pub fn parse(query: &str) -> Result<PublicQuery, ValidationError> {
        let [offset, limit, age, gender, country, platform] = raw_values(query, true)?;
        let offset = match offset {
            Some(text) => integer(&text, 0, MAX_OFFSET).ok_or_else(|| {
                ValidationError::field("offset", "offset must be an integer from 0 to 1000000")
            })?,
            None => 0,
        };
        let limit = match limit {
            Some(text) => integer(&text, 1, MAX_LIMIT).ok_or_else(|| {
                ValidationError::field("limit", "limit must be an integer from 1 to 100")
            })?,
            None => DEFAULT_LIMIT,
        };
        Ok(PublicQuery {
            audience: audience(age, gender, country, platform)?,
            offset,
            limit,
        })
    }
}

/// Only the user parameters (`age`, `gender`, `country`, `platform`), by the
/// Public API's rules; everything else, `offset` and `limit` included, is an
/// unknown parameter and ignored. For routes about one ad (explain).
pub fn parse_audience(query: &str) -> Result<AudienceQuery, ValidationError> {
    let [_, _, age, gender, country, platform] = raw_values(query, false)?;
    audience(age, gender, country, platform)
}

/// The value of one parameter outside the Public API's own (the writer's
/// `at`), under the same rules: given at most once, never empty.
pub fn single_value<'q>(
    query: &'q str,
    name: &str,
) -> Result<Option<Cow<'q, str>>, ValidationError> {
    let mut found = None;
    for (key, value) in pairs(query) {
        if key != name {
            continue;
        }
        if found.is_some() {
            return Err(ValidationError::field(
                name,
                format!("{name} must be given at most once"),
            ));
        }
        if value.is_empty() {
            return Err(ValidationError::field(
                name,
                format!("{name} must not be empty"),
            ));
        }
        found = Some(value);
    }
    Ok(found)
}

type RawValues<'q> = [Option<Cow<'q, str>>; 6];

/// The text of each known parameter, checked for "empty" and "repeated";
/// without `paging`, `offset` and `limit` count as unknown.
fn raw_values(query: &str, paging: bool) -> Result<RawValues<'_>, ValidationError> {
    let mut raw: RawValues<'_> = Default::default();
    for (name, value) in pairs(query) {
        let slot = match &*name {
            "offset" if paging => 0,
            "limit" if paging => 1,
            "age" => 2,
            "gender" => 3,
            "country" => 4,
            "platform" => 5,
            _ => continue,
        };
        if raw[slot].is_some() {
            return Err(ValidationError::field(
                NAMES[slot],
                format!("{name} must be given at most once"),
            ));
        }
        if value.is_empty() {
            return Err(ValidationError::field(
                NAMES[slot],
                format!("{name} must not be empty"),
            ));
        }
        raw[slot] = Some(value);
    }
    Ok(raw)
}

fn audience(
    age: Option<Cow<'_, str>>,
    gender: Option<Cow<'_, str>>,
    country: Option<Cow<'_, str>>,
    platform: Option<Cow<'_, str>>,
) -> Result<AudienceQuery, ValidationError> {
    let age = age
        .map(|text| {
            integer(&text, 1, 100).map(|age| age as u8).ok_or_else(|| {
                ValidationError::field("age", "age must be an integer from 1 to 100")
            })
        })
        .transpose()?;
    let gender = gender
        .map(|text| {
            Gender::parse(&text)
                .ok_or_else(|| ValidationError::field("gender", "gender must be M or F"))
        })
        .transpose()?;
    let country = country
        .map(|text| {
            Country::parse(&text).ok_or_else(|| {
                ValidationError::field(
                    "country",
                    "country must be an ISO 3166-1 alpha-2 code such as TW",
                )
            })
        })
        .transpose()?;
    let platform = platform
        .map(|text| {
            Platform::parse(&text).ok_or_else(|| {
                ValidationError::field("platform", "platform must be android, ios or web")
            })
        })
        .transpose()?;
    Ok(AudienceQuery {
        age,
        gender,
        country,
        platform,
    })
}

/// The `name=value` pairs of a query string, decoded as
/// `application/x-www-form-urlencoded` (split at `&`, empty pieces skipped, a
/// piece without `=` has an empty value). One pass over the bytes; a piece
/// with nothing to decode (no `%`, no `+`: nearly all of them) is returned
/// as borrowed slices, without the decoder's work and allocations.
pub struct Pairs<'q> {
    rest: &'q str,
}

impl<'q> Iterator for Pairs<'q> {
    type Item = (Cow<'q, str>, Cow<'q, str>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let bytes = self.rest.as_bytes();
            let mut end = bytes.len();
            let mut equals = None;
            let mut encoded = false;
            for (i, &byte) in bytes.iter().enumerate() {
                match byte {
                    b'&' => {
                        end = i;
                        break;
                    }
                    b'=' if equals.is_none() => equals = Some(i),
                    b'%' | b'+' => encoded = true,
                    _ => {}
                }
            }
            let piece = &self.rest[..end];
            self.rest = self.rest.get(end + 1..).unwrap_or("");
            if piece.is_empty() {
                continue;
            }
            if encoded {
                // A piece holds no `&`: the decoder yields exactly its pair.
                return form_urlencoded::parse(piece.as_bytes()).next();
            }
            let (name, value) = match equals {
                Some(i) => (&piece[..i], &piece[i + 1..]),
                None => (piece, ""),
            };
            return Some((Cow::Borrowed(name), Cow::Borrowed(value)));
        }
    }
}

/// The decoded pairs of `query` (without `?`).
pub fn pairs(query: &str) -> Pairs<'_> {
    Pairs { rest: query }
}

/// Plain decimal digits within `min..=max` (no sign, no spaces, no fraction;
/// at most 12 digits, so leading zeros are fine and nothing overflows).
fn integer(text: &str, min: usize, max: usize) -> Option<usize> {
    if text.is_empty() || text.len() > 12 {
        return None;
    }
    let mut value: u64 = 0;
    for byte in text.bytes() {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(byte - b'0');
    }
    usize::try_from(value)
        .ok()
        .filter(|value| (min..=max).contains(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(query: &str) -> String {
        PublicQuery::parse(query).unwrap_err().field.unwrap()
    }

    #[test]
    fn defaults_apply_when_parameters_are_absent() {
        let params = PublicQuery::parse("").unwrap();
        assert_eq!((params.offset, params.limit), (0, 5));
        assert_eq!(params.audience, AudienceQuery::default());
    }

    #[test]
    fn all_parameters_parse_case_insensitively_where_spec_says() {
        let params =
            PublicQuery::parse("offset=10&limit=3&age=24&gender=f&country=tw&platform=iOS")
                .unwrap();
        assert_eq!((params.offset, params.limit), (10, 3));
        assert_eq!(params.audience.age, Some(24));
        assert_eq!(params.audience.gender, Some(Gender::F));
        assert_eq!(params.audience.country.unwrap().as_str(), "TW");
        assert_eq!(params.audience.platform, Some(Platform::Ios));
    }

    #[test]
    fn country_uk_means_gb() {
        let params = PublicQuery::parse("country=uk").unwrap();
        assert_eq!(params.audience.country.unwrap().as_str(), "GB");
    }

    #[test]
    fn bounds_are_inclusive() {
        assert!(PublicQuery::parse("offset=1000000&limit=100&age=100").is_ok());
        assert!(PublicQuery::parse("offset=0&limit=1&age=1").is_ok());
    }

    #[test]
    fn unknown_parameters_are_ignored() {
        assert!(PublicQuery::parse("foo=bar&foo=baz&x=").is_ok());
    }

    #[test]
    fn empty_repeated_malformed_and_out_of_range_values_name_the_parameter() {
        let cases = [
            ("age=", "age"),
            ("age=1&age=2", "age"),
            ("age=0", "age"),
            ("age=101", "age"),
            ("age=abc", "age"),
            ("age=1.5", "age"),
            ("age=-1", "age"),
            ("age=+5", "age"),
            ("age=%205", "age"),
            ("offset=-1", "offset"),
            ("offset=1000001", "offset"),
            ("offset=", "offset"),
            ("offset=99999999999999999999", "offset"),
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=x", "limit"),
            ("gender=X", "gender"),
            ("gender=", "gender"),
            ("gender=M&gender=F", "gender"),
            ("country=XX", "country"),
            ("country=TWN", "country"),
            ("country=", "country"),
            ("platform=windows", "platform"),
            ("platform=", "platform"),
        ];
        for (query, field) in cases {
            assert_eq!(field_of(query), field, "{query}");
        }
    }

    #[test]
    fn the_audience_alone_ignores_paging_but_keeps_every_user_rule() {
        assert!(parse_audience("offset=-1&limit=0&age=30").is_ok());
        assert_eq!(
            parse_audience("age=30&age=31")
                .unwrap_err()
                .field
                .as_deref(),
            Some("age")
        );
        assert_eq!(
            parse_audience("country=XX").unwrap_err().field.as_deref(),
            Some("country")
        );
        assert_eq!(
            parse_audience("gender=f&country=UK").unwrap(),
            AudienceQuery {
                gender: Some(Gender::F),
                country: Country::parse("GB"),
                ..Default::default()
            }
        );
    }

    #[test]
    fn a_single_value_is_given_once_and_not_empty() {
        assert_eq!(
            single_value("a=1&at=x", "at").unwrap().as_deref(),
            Some("x")
        );
        assert_eq!(single_value("a=1", "at").unwrap(), None);
        assert_eq!(
            single_value("at=", "at").unwrap_err().field.as_deref(),
            Some("at")
        );
        assert_eq!(
            single_value("at=1&at=2", "at")
                .unwrap_err()
                .field
                .as_deref(),
            Some("at")
        );
        assert_eq!(
            single_value("at=2026-01-01T00%3A00%3A00%2B08%3A00", "at")
                .unwrap()
                .as_deref(),
            Some("2026-01-01T00:00:00+08:00"),
            "decoded like the other parameters"
        );
    }

    proptest::proptest! {
        /// The borrowed fast path gives exactly the pairs the full decoder gives.
        #[test]
        fn pairs_match_the_form_urlencoded_decoder(query in "[a-zA-Z0-9=&%+._~-]{0,40}") {
            let fast: Vec<(String, String)> = pairs(&query)
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect();
            let full: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect();
            proptest::prop_assert_eq!(fast, full);
        }
    }
}
