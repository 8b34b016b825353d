//! Instants at millisecond precision, and their one text form.
//!
//! Every time the system stores or sends is a [`Timestamp`]: milliseconds since
//! the Unix epoch, in UTC. Input accepts any RFC 3339 offset and any number of
//! fractional digits (truncated, never rounded); output is always
//! `YYYY-MM-DDTHH:MM:SS.mmmZ`.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since 1970-01-01T00:00:00Z, limited to years 0000–9999 so that
/// every value has an RFC 3339 form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Timestamp(i64);

/// 0000-01-01T00:00:00.000Z
const MIN_MILLIS: i64 = -62_167_219_200_000;
/// 9999-12-31T23:59:59.999Z
const MAX_MILLIS: i64 = 253_402_300_799_999;

impl Timestamp {
    /// Parses RFC 3339 (any offset), truncating to whole milliseconds.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        // The `time` crate accepts any byte between date and time; RFC 3339
        // allows `T`, `t`, or (its note) a space.
        if !matches!(text.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
            return None;
        }
        let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let millis = parsed.unix_timestamp_nanos().div_euclid(1_000_000);
        Timestamp::from_millis(i64::try_from(millis).ok()?)
    }

    /// `None` outside years 0000–9999.
    pub fn from_millis(millis: i64) -> Option<Timestamp> {
        (MIN_MILLIS..=MAX_MILLIS)
            .contains(&millis)
            .then_some(Timestamp(millis))
    }

    /// The current wall-clock time, truncated to milliseconds.
    pub fn now() -> Timestamp {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as i64);
        Timestamp(millis.clamp(MIN_MILLIS, MAX_MILLIS))
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// This instant as a `time` value (always representable).
    pub fn to_offset_date_time(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .expect("Timestamp is limited to years 0000-9999")
    }

    /// Converts from a `time` value, truncating to milliseconds.
    pub fn from_offset_date_time(value: OffsetDateTime) -> Option<Timestamp> {
        let millis = value.unix_timestamp_nanos().div_euclid(1_000_000);
        Timestamp::from_millis(i64::try_from(millis).ok()?)
    }
}

impl TryFrom<i64> for Timestamp {
    type Error = String;

    fn try_from(millis: i64) -> Result<Self, Self::Error> {
        Timestamp::from_millis(millis).ok_or_else(|| format!("timestamp {millis} out of range"))
    }
}

impl From<Timestamp> for i64 {
    fn from(timestamp: Timestamp) -> Self {
        timestamp.0
    }
}

/// Writes `YYYY-MM-DDTHH:MM:SS.mmmZ`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let utc = self.to_offset_date_time();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            utc.year(),
            u8::from(utc.month()),
            utc.day(),
            utc.hour(),
            utc.minute(),
            utc.second(),
            utc.millisecond()
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> String {
        Timestamp::parse_rfc3339(text).unwrap().to_string()
    }

    #[test]
    fn output_is_utc_with_three_fraction_digits() {
        assert_eq!(parse("2023-12-22T01:00:00Z"), "2023-12-22T01:00:00.000Z");
        assert_eq!(
            parse("2023-12-22T09:00:00+08:00"),
            "2023-12-22T01:00:00.000Z"
        );
        assert_eq!(
            parse("2023-12-21T20:30:00.5-04:30"),
            "2023-12-22T01:00:00.500Z"
        );
    }

    #[test]
    fn extra_fraction_digits_are_truncated_not_rounded() {
        assert_eq!(
            parse("2023-12-22T01:00:00.123999Z"),
            "2023-12-22T01:00:00.123Z"
        );
        assert_eq!(
            parse("1969-12-31T23:59:59.9999Z"),
            "1969-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn rejects_text_that_is_not_rfc3339() {
        for text in [
            "",
            "2023-12-22",
            "2023-12-22T01:00:00",
            "2023-12-22x01:00:00Z",
            "2023-12-22_01:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-02-30T00:00:00Z",
            "yesterday",
            "1703206800",
        ] {
            assert!(
                Timestamp::parse_rfc3339(text).is_none(),
                "{text:?} must be rejected"
            );
        }
    }

    #[test]
    fn range_is_years_0000_to_9999() {
        assert!(Timestamp::from_millis(MAX_MILLIS).is_some());
        assert!(Timestamp::from_millis(MAX_MILLIS + 1).is_none());
        assert_eq!(
            Timestamp::from_millis(MIN_MILLIS).unwrap().to_string(),
            "0000-01-01T00:00:00.000Z"
        );
    }
}
