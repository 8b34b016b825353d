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

/// The length of the text form, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub const RFC3339_LEN: usize = 24;

impl Timestamp {
    /// The text form `YYYY-MM-DDTHH:MM:SS.mmmZ` as ASCII bytes, without the
    /// `time` crate or `fmt` machinery: a boot renders one per ad.
    pub fn rfc3339_bytes(self) -> [u8; RFC3339_LEN] {
        let days = self.0.div_euclid(86_400_000);
        // Below a day, and the fields below a year: all fit a u32.
        let in_day = self.0.rem_euclid(86_400_000) as u32;
        let (year, month, day) = civil_from_days(days);
        let year = year as u32; // 0 to 9999 in a timestamp's range
        let mut out = *b"0000-00-00T00:00:00.000Z";
        // Two digits at a time from a table: a boot renders one per ad.
        let mut put_two = |at: usize, value: u32| {
            let at_pair = 2 * value as usize;
            out[at..at + 2].copy_from_slice(&DIGIT_PAIRS[at_pair..at_pair + 2]);
        };
        put_two(0, year / 100);
        put_two(2, year % 100);
        put_two(5, month as u32);
        put_two(8, day as u32);
        put_two(11, in_day / 3_600_000);
        put_two(14, in_day / 60_000 % 60);
        put_two(17, in_day / 1_000 % 60);
        let millis = in_day % 1_000;
        put_two(21, millis % 100);
        out[20] = b'0' + (millis / 100) as u8;
        out
    }
}

/// `"00010203…99"`: the two digits of every number below 100.
const DIGIT_PAIRS: [u8; 200] = {
    let mut pairs = [0u8; 200];
    let mut n = 0;
    while n < 100 {
        pairs[2 * n] = b'0' + (n / 10) as u8;
        pairs[2 * n + 1] = b'0' + (n % 10) as u8;
        n += 1;
    }
    pairs
};

/// `(year, month, day)` of a day count since 1970-01-01 in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Writes `YYYY-MM-DDTHH:MM:SS.mmmZ`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.rfc3339_bytes();
        f.write_str(std::str::from_utf8(&bytes).expect("ASCII digits and separators"))
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

    /// The hand-written formatter against the `time` crate, over the whole
    /// range (both ends, leap days, and random instants).
    #[test]
    fn text_form_matches_the_time_crate() {
        use rand::{Rng, SeedableRng};
        let reference = |millis: i64| {
            let utc = Timestamp(millis).to_offset_date_time();
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                utc.year(),
                u8::from(utc.month()),
                utc.day(),
                utc.hour(),
                utc.minute(),
                utc.second(),
                utc.millisecond()
            )
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let fixed = [
            MIN_MILLIS,
            MAX_MILLIS,
            -1,
            0,
            951_782_400_000,     // 2000-02-29
            4_107_542_399_999,   // 2100-02-28T23:59:59.999
            -62_162_035_200_000, // 0000-02-29 (year 0 is a leap year)
        ];
        let random = (0..200_000).map(|_| rng.gen_range(MIN_MILLIS..=MAX_MILLIS));
        for millis in fixed.into_iter().chain(random) {
            assert_eq!(Timestamp(millis).to_string(), reference(millis), "{millis}");
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
