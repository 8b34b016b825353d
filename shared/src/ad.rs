//! The ad and its parts, as types that can only hold valid values.
//!
//! Constructors check every rule of docs/api.md once; code that holds an [`Ad`]
//! never re-checks. The serde derives here are the binary form used by change
//! events and snapshots (bincode); they go through the same constructors, so
//! decoding bytes can never produce an invalid value. The JSON forms of the
//! Admin API live in [`crate::wire`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::country::Country;
use crate::timestamp::Timestamp;

mod encoded;
pub use encoded::{EncodedAd, EncodedGroup};

/// An ad's id: assigned by the writer, positive, never reused.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct AdId(i64);

impl AdId {
    /// Parses a path segment such as `"42"`; `None` unless it is a positive
    /// integer that fits a Postgres `bigint`.
    pub fn parse(text: &str) -> Option<AdId> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse::<i64>().ok().and_then(AdId::new)
    }

    pub fn new(id: i64) -> Option<AdId> {
        (id > 0).then_some(AdId(id))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for AdId {
    type Error = String;

    fn try_from(id: i64) -> Result<Self, Self::Error> {
        AdId::new(id).ok_or_else(|| format!("ad id must be positive, got {id}"))
    }
}

impl From<AdId> for i64 {
    fn from(id: AdId) -> Self {
        id.0
    }
}

impl fmt::Debug for AdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AdId({})", self.0)
    }
}

impl fmt::Display for AdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// 1–256 Unicode scalar values, at least one not whitespace, no control characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Title(String);

impl Title {
    pub const MAX_CHARS: usize = 256;

    pub fn parse(text: String) -> Result<Title, &'static str> {
        Title::check(&text)?;
        Ok(Title(text))
    }

    /// The rules, on borrowed text: a decoder checks before it allocates.
    fn check(text: &str) -> Result<(), &'static str> {
        const EMPTY: &str = "title must not be empty";
        const TOO_LONG: &str = "title must be at most 256 characters";
        const CONTROL: &str = "title must not contain control characters";
        const BLANK: &str = "title must contain a non-whitespace character";
        if text.is_ascii() {
            // Most titles, checked bytewise (a boot checks one title per
            // ad): the printable test has no early exit, so it compiles to
            // vector instructions. An ASCII whitespace character other than
            // the space is a control character, refused first.
            let bytes = text.as_bytes();
            if bytes.is_empty() {
                return Err(EMPTY);
            }
            if bytes.len() > Self::MAX_CHARS {
                return Err(TOO_LONG);
            }
            let printable = bytes
                .iter()
                .fold(true, |all, byte| all & (0x20..0x7f).contains(byte));
            if !printable {
                return Err(CONTROL);
            }
            if bytes.iter().all(|&byte| byte == b' ') {
                return Err(BLANK);
            }
            return Ok(());
        }
        let chars = text.chars().count();
        if chars == 0 {
            return Err(EMPTY);
        }
        if chars > Self::MAX_CHARS {
            return Err(TOO_LONG);
        }
        if text.chars().any(char::is_control) {
            return Err(CONTROL);
        }
        if text.chars().all(char::is_whitespace) {
            return Err(BLANK);
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Title {
    type Error = &'static str;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Title::parse(text)
    }
}

impl From<Title> for String {
    fn from(title: Title) -> Self {
        title.0
    }
}

/// A string, like `String`'s own form, written without a copy.
impl Serialize for Title {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A string, checked before it is copied: from a borrowing decoder (a
/// snapshot's bytes) the title is allocated once, at its exact size, and
/// only when valid.
impl<'de> Deserialize<'de> for Title {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TitleVisitor;

        impl serde::de::Visitor<'_> for TitleVisitor {
            type Value = Title;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a title string")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Title, E> {
                Title::check(text).map_err(E::custom)?;
                Ok(Title(text.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Title, E> {
                Title::parse(text).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(TitleVisitor)
    }
}

impl fmt::Debug for Title {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// When an ad may be shown: strictly between `start` and `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "(Timestamp, Timestamp)", into = "(Timestamp, Timestamp)")]
pub struct TimeWindow {
    start: Timestamp,
    end: Timestamp,
}

impl TimeWindow {
    /// `None` unless `end > start`.
    pub fn new(start: Timestamp, end: Timestamp) -> Option<TimeWindow> {
        (end > start).then_some(TimeWindow { start, end })
    }

    pub fn start(self) -> Timestamp {
        self.start
    }

    pub fn end(self) -> Timestamp {
        self.end
    }
}

impl TryFrom<(Timestamp, Timestamp)> for TimeWindow {
    type Error = &'static str;

    fn try_from((start, end): (Timestamp, Timestamp)) -> Result<Self, Self::Error> {
        TimeWindow::new(start, end).ok_or("endAt must be after startAt")
    }
}

impl From<TimeWindow> for (Timestamp, Timestamp) {
    fn from(window: TimeWindow) -> Self {
        (window.start, window.end)
    }
}

/// An inclusive age range within 1–100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "(u8, u8)", into = "(u8, u8)")]
pub struct AgeRange {
    start: u8,
    end: u8,
}

impl AgeRange {
    pub const MIN: u8 = 1;
    pub const MAX: u8 = 100;

    pub fn new(start: u8, end: u8) -> Option<AgeRange> {
        let valid = (Self::MIN..=Self::MAX).contains(&start)
            && (Self::MIN..=Self::MAX).contains(&end)
            && start <= end;
        valid.then_some(AgeRange { start, end })
    }

    pub fn start(self) -> u8 {
        self.start
    }

    pub fn end(self) -> u8 {
        self.end
    }

    pub fn contains(self, age: u8) -> bool {
        (self.start..=self.end).contains(&age)
    }
}

impl TryFrom<(u8, u8)> for AgeRange {
    type Error = &'static str;

    fn try_from((start, end): (u8, u8)) -> Result<Self, Self::Error> {
        AgeRange::new(start, end).ok_or("age range must satisfy 1 <= start <= end <= 100")
    }
}

impl From<AgeRange> for (u8, u8) {
    fn from(range: AgeRange) -> Self {
        (range.start, range.end)
    }
}

/// `M` or `F`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Gender {
    M,
    F,
}

impl Gender {
    pub const ALL: [Gender; 2] = [Gender::M, Gender::F];

    /// Case-insensitive.
    pub fn parse(text: &str) -> Option<Gender> {
        Self::ALL
            .into_iter()
            .find(|gender| gender.as_str().eq_ignore_ascii_case(text))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Gender::M => "M",
            Gender::F => "F",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// `android`, `ios` or `web`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Platform {
    Android,
    Ios,
    Web,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::Android, Platform::Ios, Platform::Web];

    /// Case-insensitive.
    pub fn parse(text: &str) -> Option<Platform> {
        Self::ALL
            .into_iter()
            .find(|platform| platform.as_str().eq_ignore_ascii_case(text))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Android => "android",
            Platform::Ios => "ios",
            Platform::Web => "web",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One audience: a user matches when every restricted dimension allows them.
///
/// An empty list means "no restriction" on that dimension. Lists hold no
/// duplicates and keep the order they were given in. A group always restricts
/// at least one dimension: an unrestricted group would target everyone, which
/// [`Targeting`] represents as having no groups at all.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "ConditionGroupParts")]
pub struct ConditionGroup {
    age: Option<AgeRange>,
    genders: Vec<Gender>,
    countries: Vec<Country>,
    platforms: Vec<Platform>,
}

/// The fields of a [`ConditionGroup`] before the group's rules are checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionGroupParts {
    pub age: Option<AgeRange>,
    pub genders: Vec<Gender>,
    pub countries: Vec<Country>,
    pub platforms: Vec<Platform>,
}

/// Why a [`ConditionGroupParts`] is not a valid group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupError {
    DuplicateGender,
    DuplicateCountry,
    DuplicatePlatform,
    /// Restricts nothing: the caller should treat it as "targets everyone".
    Unrestricted,
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GroupError::DuplicateGender => "gender must not repeat a value",
            GroupError::DuplicateCountry => "country must not repeat a value",
            GroupError::DuplicatePlatform => "platform must not repeat a value",
            GroupError::Unrestricted => "a condition group must restrict something",
        })
    }
}

fn has_duplicates<T: PartialEq>(values: &[T]) -> bool {
    values
        .iter()
        .enumerate()
        .any(|(i, value)| values[..i].contains(value))
}

impl TryFrom<ConditionGroupParts> for ConditionGroup {
    type Error = GroupError;

    fn try_from(parts: ConditionGroupParts) -> Result<Self, Self::Error> {
        if has_duplicates(&parts.genders) {
            return Err(GroupError::DuplicateGender);
        }
        if has_duplicates(&parts.countries) {
            return Err(GroupError::DuplicateCountry);
        }
        if has_duplicates(&parts.platforms) {
            return Err(GroupError::DuplicatePlatform);
        }
        if parts.age.is_none()
            && parts.genders.is_empty()
            && parts.countries.is_empty()
            && parts.platforms.is_empty()
        {
            return Err(GroupError::Unrestricted);
        }
        Ok(ConditionGroup {
            age: parts.age,
            genders: parts.genders,
            countries: parts.countries,
            platforms: parts.platforms,
        })
    }
}

impl From<ConditionGroup> for ConditionGroupParts {
    fn from(group: ConditionGroup) -> Self {
        ConditionGroupParts {
            age: group.age,
            genders: group.genders,
            countries: group.countries,
            platforms: group.platforms,
        }
    }
}

/// The form of [`ConditionGroupParts`], written from borrowed fields: no
/// copy of the lists per group written (a snapshot writes every ad's, an
/// edge every ad it indexes).
impl Serialize for ConditionGroup {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename = "ConditionGroupParts")]
        struct Parts<'a> {
            age: &'a Option<AgeRange>,
            genders: &'a [Gender],
            countries: &'a [Country],
            platforms: &'a [Platform],
        }
        Parts {
            age: &self.age,
            genders: &self.genders,
            countries: &self.countries,
            platforms: &self.platforms,
        }
        .serialize(serializer)
    }
}

impl ConditionGroup {
    /// `None` means no age restriction.
    pub fn age(&self) -> Option<AgeRange> {
        self.age
    }

    /// Empty means no gender restriction.
    pub fn genders(&self) -> &[Gender] {
        &self.genders
    }

    /// Empty means no country restriction.
    pub fn countries(&self) -> &[Country] {
        &self.countries
    }

    /// Empty means no platform restriction.
    pub fn platforms(&self) -> &[Platform] {
        &self.platforms
    }
}

/// Who an ad is for: any of its groups. No groups means everyone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Targeting {
    groups: Vec<ConditionGroup>,
}

impl Targeting {
    /// Targets every user.
    pub fn everyone() -> Targeting {
        Targeting::default()
    }

    /// Builds the canonical targeting from groups that each restrict something.
    pub fn any_of(groups: Vec<ConditionGroup>) -> Targeting {
        Targeting { groups }
    }

    /// Empty means everyone.
    pub fn groups(&self) -> &[ConditionGroup] {
        &self.groups
    }
}

/// A user as the Public API describes them: each field absent means "do not filter".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AudienceQuery {
    pub age: Option<u8>,
    pub gender: Option<Gender>,
    pub country: Option<Country>,
    pub platform: Option<Platform>,
}

/// The content of an ad, as an Admin API client writes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AdDraft {
    pub title: Title,
    pub window: TimeWindow,
    pub targeting: Targeting,
}

/// A stored ad: a draft with the id the writer gave it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ad {
    pub id: AdId,
    pub title: Title,
    pub window: TimeWindow,
    pub targeting: Targeting,
}

impl Ad {
    pub fn from_draft(id: AdId, draft: AdDraft) -> Ad {
        Ad {
            id,
            title: draft.title,
            window: draft.window,
            targeting: draft.targeting,
        }
    }
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        /// The ASCII fast path decides exactly as the per-char rules do.
        #[test]
        fn title_rules_match_the_per_char_definition(text in proptest::prop_oneof![
            "(\\PC|[\\x00-\\x7f]| ){0,300}",
            "[\\x00-\\x7f]{0,300}",
            "[ \\x7fa]{0,4}",
        ]) {
            let reference = {
                let chars = text.chars().count();
                if chars == 0 {
                    Err("title must not be empty")
                } else if chars > super::Title::MAX_CHARS {
                    Err("title must be at most 256 characters")
                } else if text.chars().any(char::is_control) {
                    Err("title must not contain control characters")
                } else if text.chars().all(char::is_whitespace) {
                    Err("title must contain a non-whitespace character")
                } else {
                    Ok(text.clone())
                }
            };
            let parsed = super::Title::parse(text.clone()).map(|title| title.as_str().to_owned());
            proptest::prop_assert_eq!(parsed, reference);
        }
    }

    use super::*;

    #[test]
    fn ad_id_accepts_only_positive_decimal_integers() {
        assert_eq!(AdId::parse("42").unwrap().get(), 42);
        for text in [
            "",
            "0",
            "-1",
            "+1",
            "1.0",
            "abc",
            " 1",
            "9223372036854775808",
        ] {
            assert!(AdId::parse(text).is_none(), "{text:?} must be rejected");
        }
    }

    #[test]
    fn title_rules() {
        assert!(Title::parse("AD 1".into()).is_ok());
        assert!(Title::parse("x".repeat(256)).is_ok());
        assert!(
            Title::parse("é".repeat(256)).is_ok(),
            "limit counts scalar values, not bytes"
        );
        assert!(Title::parse("x".repeat(257)).is_err());
        assert!(Title::parse(String::new()).is_err());
        assert!(Title::parse("   \u{3000}".into()).is_err());
        assert!(Title::parse("a\nb".into()).is_err());
        assert!(Title::parse("a\u{7f}".into()).is_err());
        assert!(Title::parse("  padded  ".into()).is_ok());
    }

    /// The hand-written serde forms are the derived ones they replaced: a
    /// title is its string, a group its parts, in bincode and in JSON; and
    /// a title is checked whether the decoder borrows or owns its text.
    #[test]
    fn titles_and_groups_keep_their_serde_forms() {
        let config = bincode::config::standard();
        fn bincode_of<T: Serialize>(value: &T) -> Vec<u8> {
            bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap()
        }
        let title = Title::parse("Sale \"now\" é".into()).unwrap();
        assert_eq!(bincode_of(&title), bincode_of(&title.as_str().to_owned()));
        assert_eq!(
            serde_json::to_string(&title).unwrap(),
            serde_json::to_string(title.as_str()).unwrap()
        );
        let parts = ConditionGroupParts {
            age: AgeRange::new(18, 30),
            genders: vec![Gender::F],
            countries: vec![Country::parse("TW").unwrap(), Country::parse("JP").unwrap()],
            platforms: vec![Platform::Web, Platform::Ios],
        };
        let group = ConditionGroup::try_from(parts.clone()).unwrap();
        assert_eq!(bincode_of(&group), bincode_of(&parts));
        assert_eq!(
            serde_json::to_string(&group).unwrap(),
            serde_json::to_string(&parts).unwrap()
        );

        let borrowed = |bytes: &[u8]| {
            bincode::serde::decode_from_slice::<Title, _>(bytes, config).map(|(title, _)| title)
        };
        let owned = |bytes: &[u8]| {
            bincode::serde::decode_from_std_read::<Title, _, _>(&mut &bytes[..], config)
        };
        assert_eq!(borrowed(&bincode_of(&title)).unwrap(), title);
        assert_eq!(owned(&bincode_of(&title)).unwrap(), title);
        for invalid in ["", "   ", "a\u{7}b"] {
            let bytes = bincode_of(&invalid.to_owned());
            assert!(borrowed(&bytes).is_err(), "{invalid:?}");
            assert!(owned(&bytes).is_err(), "{invalid:?}");
            let json = serde_json::to_string(invalid).unwrap();
            assert!(serde_json::from_str::<Title>(&json).is_err(), "{invalid:?}");
        }
        assert_eq!(
            serde_json::from_str::<Title>(r#""a \u00e9\"""#)
                .unwrap()
                .as_str(),
            "a é\""
        );
    }

    #[test]
    fn window_requires_end_after_start() {
        let t = |ms| Timestamp::from_millis(ms).unwrap();
        assert!(TimeWindow::new(t(1), t(2)).is_some());
        assert!(TimeWindow::new(t(2), t(2)).is_none());
        assert!(TimeWindow::new(t(3), t(2)).is_none());
    }

    #[test]
    fn age_range_rules() {
        assert!(AgeRange::new(1, 100).is_some());
        assert!(AgeRange::new(30, 30).is_some());
        assert!(AgeRange::new(0, 10).is_none());
        assert!(AgeRange::new(10, 101).is_none());
        assert!(AgeRange::new(31, 30).is_none());
    }

    #[test]
    fn enums_parse_case_insensitively() {
        assert_eq!(Gender::parse("m"), Some(Gender::M));
        assert_eq!(Platform::parse("iOS"), Some(Platform::Ios));
        assert_eq!(Platform::parse("ANDROID"), Some(Platform::Android));
        assert_eq!(Gender::parse("X"), None);
        assert_eq!(Platform::parse("windows"), None);
    }

    #[test]
    fn group_rejects_duplicates_and_emptiness() {
        let dup = ConditionGroupParts {
            genders: vec![Gender::M, Gender::M],
            ..Default::default()
        };
        assert_eq!(
            ConditionGroup::try_from(dup),
            Err(GroupError::DuplicateGender)
        );
        assert_eq!(
            ConditionGroup::try_from(ConditionGroupParts::default()),
            Err(GroupError::Unrestricted)
        );
    }
}
