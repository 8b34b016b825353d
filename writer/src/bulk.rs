//! Many ads in one text: a JSON array of create bodies, or NDJSON with one
//! per line. The import route and the `import` command split their input
//! here, so a file and a request body are read by the same rules.
//!
//! - NDJSON: lines end with `\n` (a `\r` before it is dropped); a line of
//!   only whitespace is skipped and is not an ad, so ads are numbered in
//!   order of the lines that hold one.
//! - A JSON array is split into its elements without building them, so a
//!   large body costs its own size plus a small record per element.
//! - Every ad is at most [`MAX_AD_BYTES`] of JSON, which bounds what
//!   parsing one ad can cost.

use std::cell::Cell;
use std::fmt;

use adcast_shared::ad::AdDraft;
use adcast_shared::error::ValidationError;
use adcast_shared::json::Json;
use adcast_shared::wire::parse_import_draft;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::error::Category;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// Most ads in one import request.
pub const MAX_ADS: usize = 10_000;
/// Largest import request body.
pub const MAX_BYTES: usize = 16 * 1024 * 1024;
/// Largest single ad in an import, as JSON text (a single create takes at
/// most 64 KiB; the canonical form an export writes can be a few times
/// longer, and must import again).
pub const MAX_AD_BYTES: usize = 1024 * 1024;

/// How a text lists its ads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    JsonArray,
    Ndjson,
}

impl Format {
    /// A file's format from its first byte that is not whitespace: `[`
    /// starts a JSON array, anything else is NDJSON.
    pub fn detect(text: &[u8]) -> Format {
        match text.iter().find(|byte| !byte.is_ascii_whitespace()) {
            Some(b'[') => Format::JsonArray,
            _ => Format::Ndjson,
        }
    }
}

/// One ad's JSON text, and the 1-based line it starts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawAd<'a> {
    pub text: &'a str,
    pub line: usize,
}

/// Why a text could not be split into ads.
#[derive(Debug, PartialEq, Eq)]
pub enum SplitError {
    /// More than the limit given.
    TooMany { limit: usize },
    /// The text is not what its format says; `index` is the ad where it
    /// went wrong, when that is known, and `line` its 1-based line.
    Malformed {
        index: Option<usize>,
        line: usize,
        message: String,
    },
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::TooMany { limit } => write!(f, "more than {limit} ads"),
            SplitError::Malformed { line, message, .. } => write!(f, "line {line}: {message}"),
        }
    }
}

impl SplitError {
    /// As a `400`: the field is the ad's index when known.
    pub fn into_validation_error(self) -> ValidationError {
        match self {
            SplitError::Malformed {
                index: Some(index),
                message,
                ..
            } => ValidationError::field(format!("[{index}]"), message),
            other => ValidationError::whole(other.to_string()),
        }
    }
}

/// Splits `text` into its ads, refusing more than `limit`.
pub fn split(text: &[u8], format: Format, limit: usize) -> Result<Vec<RawAd<'_>>, SplitError> {
    match format {
        Format::Ndjson => split_lines(text, limit),
        Format::JsonArray => split_array(text, limit),
    }
}

fn split_lines(text: &[u8], limit: usize) -> Result<Vec<RawAd<'_>>, SplitError> {
    let mut ads = Vec::new();
    for (i, line) in text.split(|&byte| byte == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            continue;
        }
        let number = i + 1;
        let text = std::str::from_utf8(line).map_err(|_| SplitError::Malformed {
            index: Some(ads.len()),
            line: number,
            message: "the line is not UTF-8".into(),
        })?;
        if ads.len() == limit {
            return Err(SplitError::TooMany { limit });
        }
        ads.push(RawAd { text, line: number });
    }
    Ok(ads)
}

fn split_array(text: &[u8], limit: usize) -> Result<Vec<RawAd<'_>>, SplitError> {
    let seen = Cell::new(0usize);
    let entered = Cell::new(false);
    let too_many = Cell::new(false);
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let elements = match deserializer.deserialize_seq(Elements {
        limit,
        seen: &seen,
        entered: &entered,
        too_many: &too_many,
    }) {
        Ok(elements) => elements,
        Err(_) if too_many.get() => return Err(SplitError::TooMany { limit }),
        Err(error) if !entered.get() || error.classify() == Category::Data => {
            return Err(SplitError::Malformed {
                index: None,
                line: error.line(),
                message: format!(
                    "the ads must be a JSON array of objects (or NDJSON, one per line): {error}"
                ),
            })
        }
        // Inside the array: the element after the last complete one.
        Err(error) => {
            return Err(SplitError::Malformed {
                index: Some(seen.get()),
                line: error.line(),
                message: format!("not valid JSON: {error}"),
            })
        }
    };
    if let Err(error) = deserializer.end() {
        return Err(SplitError::Malformed {
            index: None,
            line: error.line(),
            message: format!("text after the array: {error}"),
        });
    }
    // Each element's line, from its place in the text.
    let base = text.as_ptr() as usize;
    let mut line = 1;
    let mut counted_to = 0;
    Ok(elements
        .into_iter()
        .map(|raw| {
            let element = raw.get();
            let offset = element.as_ptr() as usize - base;
            line += text[counted_to..offset]
                .iter()
                .filter(|&&byte| byte == b'\n')
                .count();
            counted_to = offset;
            RawAd {
                text: element,
                line,
            }
        })
        .collect())
}

/// Collects the elements of a JSON array as unparsed text, stopping past
/// `limit`.
struct Elements<'c> {
    limit: usize,
    /// Elements read so far.
    seen: &'c Cell<usize>,
    /// The text is an array (as opposed to not starting with one).
    entered: &'c Cell<bool>,
    too_many: &'c Cell<bool>,
}

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of ads")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        self.entered.set(true);
        let mut elements = Vec::new();
        while let Some(element) = seq.next_element::<&'de RawValue>()? {
            if elements.len() == self.limit {
                self.too_many.set(true);
                return Err(de::Error::custom("too many ads"));
            }
            elements.push(element);
            self.seen.set(elements.len());
        }
        Ok(elements)
    }
}

/// The ads of an import, checked, and the digest that identifies the
/// request for `Idempotency-Key`.
#[derive(Debug)]
pub struct ParsedImport {
    /// Every draft, in order; or the first invalid ad's error, its field
    /// prefixed with the ad's index (`[12].endAt`, `[3]`).
    pub drafts: Result<Vec<AdDraft>, ValidationError>,
    /// `import:sha256:<hex>` of the canonical JSON of the whole list: the
    /// same ads give the same digest whatever the format, spacing or key
    /// order they came in.
    pub digest: String,
}

/// Parses and validates every ad (all of them, also after an invalid one,
/// so the digest covers the whole request). Each ad's JSON tree is dropped
/// as soon as it is checked.
pub fn parse(ads: &[RawAd<'_>]) -> ParsedImport {
    let mut hasher = Sha256::new();
    hasher.update(b"[");
    let mut drafts = Ok(Vec::with_capacity(ads.len()));
    for (index, raw) in ads.iter().enumerate() {
        if index > 0 {
            hasher.update(b",");
        }
        let checked = if raw.text.len() > MAX_AD_BYTES {
            hasher.update(Sha256::digest(raw.text.as_bytes()));
            Err(ValidationError::whole("an ad may be at most 1 MiB of JSON"))
        } else {
            match Json::parse(raw.text.as_bytes()) {
                Ok(json) => {
                    hasher.update(json.canonical_text().as_bytes());
                    parse_import_draft(&json)
                }
                Err(error) => {
                    hasher.update(raw.text.as_bytes());
                    Err(ValidationError::whole(format!("not valid JSON: {error}")))
                }
            }
        };
        match (&mut drafts, checked) {
            (Ok(list), Ok(draft)) => list.push(draft),
            (Ok(_), Err(error)) => drafts = Err(at_index(index, error)),
            (Err(_), _) => {}
        }
    }
    hasher.update(b"]");
    let digest = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<String>();
    ParsedImport {
        drafts,
        digest: format!("import:sha256:{digest}"),
    }
}

/// `endAt` of ad 12 → `[12].endAt`; the ad as a whole → `[12]`.
fn at_index(index: usize, error: ValidationError) -> ValidationError {
    let field = match error.field {
        Some(field) => format!("[{index}].{field}"),
        None => format!("[{index}]"),
    };
    ValidationError::field(field, error.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(ads: &[RawAd<'_>]) -> Vec<(String, usize)> {
        ads.iter().map(|ad| (ad.text.to_owned(), ad.line)).collect()
    }

    const AD: &str =
        r#"{"title":"a","startAt":"2020-01-01T00:00:00Z","endAt":"2021-01-01T00:00:00Z"}"#;

    #[test]
    fn the_format_comes_from_the_first_character() {
        assert_eq!(Format::detect(b"  \n[{}]"), Format::JsonArray);
        assert_eq!(Format::detect(b"{}\n{}"), Format::Ndjson);
        assert_eq!(Format::detect(b""), Format::Ndjson);
    }

    #[test]
    fn ndjson_skips_blank_lines_and_numbers_lines_from_one() {
        let text = b"{\"a\":1}\r\n\n   \n{\"b\":2}\n";
        let ads = split(text, Format::Ndjson, 10).unwrap();
        assert_eq!(
            texts(&ads),
            [("{\"a\":1}".into(), 1), ("{\"b\":2}".into(), 4)]
        );
    }

    #[test]
    fn a_json_array_splits_into_its_elements_with_their_lines() {
        let text = b"[\n {\"a\": [1, 2]},\n\n \"x\", {\"b\":\n 2}\n]";
        let ads = split(text, Format::JsonArray, 10).unwrap();
        assert_eq!(
            texts(&ads),
            [
                ("{\"a\": [1, 2]}".into(), 2),
                ("\"x\"".into(), 4),
                ("{\"b\":\n 2}".into(), 4)
            ]
        );
    }

    #[test]
    fn more_than_the_limit_is_refused_in_both_formats() {
        assert_eq!(
            split(b"{}\n{}\n{}", Format::Ndjson, 2),
            Err(SplitError::TooMany { limit: 2 })
        );
        assert_eq!(
            split(b"[{}, {}, {}]", Format::JsonArray, 2),
            Err(SplitError::TooMany { limit: 2 })
        );
        assert_eq!(split(b"[{}, {}]", Format::JsonArray, 2).unwrap().len(), 2);
    }

    #[test]
    fn a_body_that_is_not_an_array_is_malformed_as_a_whole() {
        for text in [&b"{\"title\":\"a\"}"[..], b"1", b"\"x\""] {
            let Err(SplitError::Malformed { index, .. }) = split(text, Format::JsonArray, 10)
            else {
                panic!("{text:?} must be refused")
            };
            assert_eq!(index, None);
        }
    }

    #[test]
    fn a_syntax_error_names_the_element_it_is_in() {
        let Err(SplitError::Malformed { index, line, .. }) =
            split(b"[{},\n{},\n{\"a\" 1}]", Format::JsonArray, 10)
        else {
            panic!("must be refused")
        };
        assert_eq!((index, line), (Some(2), 3));
        assert!(
            split(b"[{}] x", Format::JsonArray, 10).is_err(),
            "trailing text"
        );
    }

    #[test]
    fn an_invalid_ad_is_named_by_its_index() {
        let bad =
            r#"{"title":"a","startAt":"2021-01-01T00:00:00Z","endAt":"2020-01-01T00:00:00Z"}"#;
        let text = format!("{AD}\n\n{bad}\n5\n");
        let ads = split(text.as_bytes(), Format::Ndjson, 10).unwrap();
        let error = parse(&ads).drafts.unwrap_err();
        assert_eq!(error.field.as_deref(), Some("[1].endAt"));
        let ads = split(b"{}x\n", Format::Ndjson, 10).unwrap();
        assert_eq!(
            parse(&ads).drafts.unwrap_err().field.as_deref(),
            Some("[0]")
        );
        let text = format!("{AD}\n5");
        let ads = split(text.as_bytes(), Format::Ndjson, 10).unwrap();
        assert_eq!(
            parse(&ads).drafts.unwrap_err().field.as_deref(),
            Some("[1]")
        );
    }

    #[test]
    fn ids_and_past_ends_are_accepted() {
        let with_id = r#"{"id":7,"title":"a","startAt":"2020-01-01T00:00:00Z","endAt":"2021-01-01T00:00:00Z","conditions":[]}"#;
        let ads = split(with_id.as_bytes(), Format::Ndjson, 10).unwrap();
        assert_eq!(parse(&ads).drafts.unwrap().len(), 1);
    }

    #[test]
    fn the_digest_is_the_same_for_the_same_ads_in_either_format() {
        let spaced =
            r#"{ "endAt":"2021-01-01T00:00:00Z", "title":"a", "startAt":"2020-01-01T00:00:00Z" }"#;
        let ndjson = format!("{AD}\n{AD}\n");
        let array = format!("[{spaced},\n{AD}]");
        let a = parse(&split(ndjson.as_bytes(), Format::Ndjson, 10).unwrap());
        let b = parse(&split(array.as_bytes(), Format::JsonArray, 10).unwrap());
        assert_eq!(a.digest, b.digest);
        let c = parse(&split(AD.as_bytes(), Format::Ndjson, 10).unwrap());
        assert_ne!(a.digest, c.digest);
    }
}
