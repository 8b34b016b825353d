//! The Admin API's JSON: parsing request bodies and rendering stored ads.
//!
//! Input is checked rule by rule in a fixed order (unknown or repeated keys,
//! `title`, `startAt`, `endAt`, `conditions`), and the first broken rule is
//! reported with the path of the field that broke it. Output is always the
//! canonical form of docs/api.md.

use serde::Serialize;
use serde_json::json;

use crate::ad::{
    Ad, AdDraft, AgeRange, ConditionGroup, ConditionGroupParts, Gender, GroupError, Platform,
    Targeting, TimeWindow, Title,
};
use crate::country::Country;
use crate::error::ValidationError;
use crate::json::Json;
use crate::matching::Explanation;
use crate::timestamp::Timestamp;

const AD_FIELDS: [&str; 4] = ["title", "startAt", "endAt", "conditions"];
const GROUP_FIELDS: [&str; 5] = ["ageStart", "ageEnd", "gender", "country", "platform"];

/// Parses a create or replace body. `now` enforces "`endAt` in the future".
pub fn parse_ad_draft(body: &Json, now: Timestamp) -> Result<AdDraft, ValidationError> {
    parse_draft(body, Some(now), &AD_FIELDS)
}

/// Parses one ad of an import: the rules of a create, except that an `id`
/// is ignored (export output carries one; import assigns new ids) and an
/// `endAt` in the past is accepted (a restored catalog keeps its ended ads).
/// Errors name fields as for a create; the caller prefixes the ad's index.
pub fn parse_import_draft(body: &Json) -> Result<AdDraft, ValidationError> {
    parse_draft(body, None, &IMPORT_FIELDS)
}

const IMPORT_FIELDS: [&str; 5] = ["title", "startAt", "endAt", "conditions", "id"];

fn parse_draft(
    body: &Json,
    now: Option<Timestamp>,
    fields: &[&str],
) -> Result<AdDraft, ValidationError> {
    let Json::Object(entries) = body else {
        return Err(ValidationError::whole(format!(
            "an ad must be a JSON object, got {}",
            body.kind()
        )));
    };
    check_keys(entries, fields, "")?;
    let get = |name: &str| entries.iter().find(|(key, _)| key == name).map(|(_, v)| v);

    let title = match get("title") {
        None | Some(Json::Null) => {
            return Err(ValidationError::field("title", "title is required"))
        }
        Some(Json::String(text)) => Title::parse(text.clone())
            .map_err(|message| ValidationError::field("title", message))?,
        Some(other) => {
            return Err(ValidationError::field(
                "title",
                format!("title must be a string, got {}", other.kind()),
            ))
        }
    };
    let start = parse_timestamp(get("startAt"), "startAt")?;
    let end = parse_timestamp(get("endAt"), "endAt")?;
    let window = TimeWindow::new(start, end)
        .ok_or_else(|| ValidationError::field("endAt", "endAt must be after startAt"))?;
    if now.is_some_and(|now| end <= now) {
        return Err(ValidationError::field(
            "endAt",
            "endAt must be in the future",
        ));
    }
    let targeting = parse_conditions(get("conditions").unwrap_or(&Json::Null))?;
    Ok(AdDraft {
        title,
        window,
        targeting,
    })
}

/// Parses `conditions` in any accepted form (absent/null, one group, an array
/// of groups) into canonical targeting. Also reads back what the writer stored.
pub fn parse_conditions(value: &Json) -> Result<Targeting, ValidationError> {
    let mut groups = Vec::new();
    let mut targets_everyone = false;
    let mut take = |group: Option<ConditionGroup>| match group {
        Some(group) => groups.push(group),
        None => targets_everyone = true,
    };
    match value {
        Json::Null => return Ok(Targeting::everyone()),
        Json::Object(entries) => take(parse_group(entries, "conditions")?),
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("conditions[{i}]");
                let Json::Object(entries) = item else {
                    return Err(ValidationError::field(
                        path,
                        format!("a condition group must be an object, got {}", item.kind()),
                    ));
                };
                take(parse_group(entries, &path)?);
            }
        }
        other => {
            return Err(ValidationError::field(
                "conditions",
                format!(
                    "conditions must be an object, an array of objects or null, got {}",
                    other.kind()
                ),
            ))
        }
    }
    Ok(if targets_everyone {
        Targeting::everyone()
    } else {
        Targeting::any_of(groups)
    })
}

/// One group; `None` when it restricts nothing (it targets everyone).
fn parse_group(
    entries: &[(String, Json)],
    path: &str,
) -> Result<Option<ConditionGroup>, ValidationError> {
    check_keys(entries, &GROUP_FIELDS, path)?;
    let get = |name: &str| entries.iter().find(|(key, _)| key == name).map(|(_, v)| v);
    let field = |name: &str| format!("{path}.{name}");

    // Field paths are built only for an error: this also reads back every
    // stored ad (snapshots, lists), where none fails.
    let age_start = parse_age(get("ageStart"), path, "ageStart")?;
    let age_end = parse_age(get("ageEnd"), path, "ageEnd")?;
    let age = match (age_start, age_end) {
        (None, None) => None,
        (start, end) => {
            let start = start.unwrap_or(AgeRange::MIN);
            let end = end.unwrap_or(AgeRange::MAX);
            Some(AgeRange::new(start, end).ok_or_else(|| {
                ValidationError::field(
                    field("ageEnd"),
                    "ageEnd must be greater than or equal to ageStart",
                )
            })?)
        }
    };
    let genders = parse_list(
        get("gender"),
        path,
        "gender",
        "\"M\" or \"F\"",
        Gender::parse,
    )?;
    let countries = parse_list(
        get("country"),
        path,
        "country",
        "ISO 3166-1 alpha-2 codes",
        Country::parse,
    )?;
    let platforms = parse_list(
        get("platform"),
        path,
        "platform",
        "\"android\", \"ios\" or \"web\"",
        Platform::parse,
    )?;
    // Canonical form keeps only dimensions that restrict: an age range of
    // 1–100, or a list naming every value, allows everyone and is dropped.
    let age = age.filter(|range| (range.start(), range.end()) != (AgeRange::MIN, AgeRange::MAX));
    let genders = drop_if_complete(genders, Gender::ALL.len());
    let countries = drop_if_complete(countries, Country::COUNT);
    let platforms = drop_if_complete(platforms, Platform::ALL.len());
    let parts = ConditionGroupParts {
        age,
        genders,
        countries,
        platforms,
    };
    match ConditionGroup::try_from(parts) {
        Ok(group) => Ok(Some(group)),
        Err(GroupError::Unrestricted) => Ok(None),
        // parse_list merged repeats, so only bytes that bypassed it could
        // hold one; still an error with a field rather than a panic.
        Err(error) => {
            let name = match error {
                GroupError::DuplicateGender => "gender",
                GroupError::DuplicateCountry => "country",
                _ => "platform",
            };
            Err(ValidationError::field(field(name), error.to_string()))
        }
    }
}

/// Empties a list that names all `all` values (it restricts nothing); the
/// list holds no repeats by now.
fn drop_if_complete<T>(values: Vec<T>, all: usize) -> Vec<T> {
    if values.len() == all {
        Vec::new()
    } else {
        values
    }
}

/// Rejects repeated and unknown keys, naming the first offender.
fn check_keys(
    entries: &[(String, Json)],
    known: &[&str],
    path: &str,
) -> Result<(), ValidationError> {
    let at = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    for (i, (key, _)) in entries.iter().enumerate() {
        if entries[..i].iter().any(|(earlier, _)| earlier == key) {
            return Err(ValidationError::field(
                at(key),
                format!("{key} appears more than once"),
            ));
        }
        if !known.contains(&key.as_str()) {
            return Err(ValidationError::field(
                at(key),
                format!("unknown field {key}"),
            ));
        }
    }
    Ok(())
}

fn parse_timestamp(value: Option<&Json>, name: &str) -> Result<Timestamp, ValidationError> {
    match value {
        None | Some(Json::Null) => Err(ValidationError::field(name, format!("{name} is required"))),
        Some(Json::String(text)) => Timestamp::parse_rfc3339(text).ok_or_else(|| {
            ValidationError::field(
                name,
                format!("{name} must be an RFC 3339 timestamp such as 2023-12-22T01:00:00Z"),
            )
        }),
        Some(other) => Err(ValidationError::field(
            name,
            format!(
                "{name} must be an RFC 3339 timestamp string, got {}",
                other.kind()
            ),
        )),
    }
}

/// An age of the group at `group` (`name` is the field, for the error's path).
fn parse_age(value: Option<&Json>, group: &str, name: &str) -> Result<Option<u8>, ValidationError> {
    let error = || {
        ValidationError::field(
            format!("{group}.{name}"),
            format!("{name} must be an integer from 1 to 100"),
        )
    };
    // `null` is not "absent": SPEC allows it for `conditions` as a whole only.
    match value {
        None => Ok(None),
        Some(Json::Number(number)) => {
            let age = number
                .as_u64()
                .filter(|age| (1..=100).contains(age))
                .ok_or_else(error)?;
            Ok(Some(age as u8))
        }
        Some(_) => Err(error()),
    }
}

/// A `gender`, `country` or `platform` list: an array of values, or one
/// value alone (`"F"` means `["F"]`). A value given twice is kept once, at
/// its first place (docs/api.md, "Accepted variants").
fn parse_list<T: PartialEq>(
    value: Option<&Json>,
    group: &str,
    name: &str,
    allowed: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, ValidationError> {
    let items = match value {
        None => return Ok(Vec::new()),
        Some(Json::Array(items)) => items.as_slice(),
        Some(one @ Json::String(_)) => std::slice::from_ref(one),
        Some(other) => {
            return Err(ValidationError::field(
                format!("{group}.{name}"),
                format!(
                    "{name} must be an array of {allowed} (or one of them), got {}",
                    other.kind()
                ),
            ))
        }
    };
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        let parsed = match item {
            Json::String(text) => parse(text),
            _ => None,
        };
        let Some(parsed) = parsed else {
            let shown = serde_json::to_string(&item_for_message(item)).unwrap_or_default();
            return Err(ValidationError::field(
                format!("{group}.{name}"),
                format!("{name} values must be {allowed}, got {shown}"),
            ));
        };
        if !values.contains(&parsed) {
            values.push(parsed);
        }
    }
    Ok(values)
}

/// A short rendering of an offending value for an error message.
fn item_for_message(item: &Json) -> serde_json::Value {
    match item {
        Json::String(text) => json!(text.chars().take(16).collect::<String>()),
        Json::Number(number) => json!(number),
        other => json!(other.kind()),
    }
}

/// The canonical JSON of one stored ad.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdView<'a> {
    pub id: i64,
    pub title: &'a str,
    pub start_at: String,
    pub end_at: String,
    pub conditions: Vec<GroupView>,
}

/// The canonical JSON of one condition group: only restricting dimensions.
#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_start: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_end: Option<u8>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gender: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub country: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platform: Vec<&'static str>,
}

impl<'a> AdView<'a> {
    pub fn new(ad: &'a Ad) -> AdView<'a> {
        AdView {
            id: ad.id.get(),
            title: ad.title.as_str(),
            start_at: ad.window.start().to_string(),
            end_at: ad.window.end().to_string(),
            conditions: conditions_view(&ad.targeting),
        }
    }
}

/// Canonical `conditions`: always an array; `[]` targets everyone.
pub fn conditions_view(targeting: &Targeting) -> Vec<GroupView> {
    targeting
        .groups()
        .iter()
        .map(|group| GroupView {
            age_start: group.age().map(AgeRange::start),
            age_end: group.age().map(AgeRange::end),
            gender: group.genders().iter().map(|g| g.as_str()).collect(),
            country: group.countries().iter().map(|c| c.as_str()).collect(),
            platform: group.platforms().iter().map(|p| p.as_str()).collect(),
        })
        .collect()
}

/// One item of a Public API answer, `{"title":…,"endAt":…}`: exactly the two
/// fields, the title JSON-escaped.
pub fn public_item_json(ad: &Ad) -> String {
    let title = serde_json::to_string(ad.title.as_str()).expect("a string serialises");
    format!("{{\"title\":{title},\"endAt\":\"{}\"}}", ad.window.end())
}

/// A Public API answer body, `{"items":[…]}`, for ads already in answer order.
pub fn public_answer_body<'a>(ads: impl IntoIterator<Item = &'a Ad>) -> Vec<u8> {
    let mut body = String::from("{\"items\":[");
    for (i, ad) in ads.into_iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&public_item_json(ad));
    }
    body.push_str("]}");
    body.into_bytes()
}

/// The body of `GET /api/v1/admin/ad/{id}/explain`, fields in the order
/// docs/api.md shows them.
#[derive(Serialize, Debug)]
pub struct ExplainView {
    pub id: i64,
    pub at: String,
    pub served: bool,
    pub state: &'static str,
    pub audience: bool,
    /// The 0-based place in the Public API's answer; `null` unless served.
    pub position: Option<u64>,
    pub groups: Vec<GroupVerdictView>,
}

#[derive(Serialize, Debug)]
pub struct GroupVerdictView {
    pub matches: bool,
    pub failed: Vec<&'static str>,
}

impl ExplainView {
    pub fn new(
        ad: &Ad,
        at: Timestamp,
        explanation: &Explanation,
        position: Option<u64>,
    ) -> ExplainView {
        ExplainView {
            id: ad.id.get(),
            at: at.to_string(),
            served: explanation.served,
            state: explanation.state.as_str(),
            audience: explanation.audience,
            position: position.filter(|_| explanation.served),
            groups: explanation
                .groups
                .iter()
                .map(|group| GroupVerdictView {
                    matches: group.matches,
                    failed: group.failed.iter().map(|d| d.as_str()).collect(),
                })
                .collect(),
        }
    }
}
