//! docs/api.md's matching rules, defined once: is an ad served to this user
//! at this instant, in which order are served ads answered, and why is an ad
//! served or not.
//!
//! The writer answers preview and explain with these functions; the edge's
//! bitset index is differential-tested against [`answer`], so what the
//! console says and what edges serve cannot drift apart.

use std::borrow::Borrow;

use crate::ad::{Ad, AdId, AudienceQuery, ConditionGroup, Targeting, TimeWindow};
use crate::timestamp::Timestamp;

/// Where an instant falls in an ad's window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdState {
    /// `at ≤ startAt`.
    Scheduled,
    /// `startAt < at < endAt`.
    Active,
    /// `at ≥ endAt`.
    Ended,
}

impl AdState {
    /// The name `as_str` gives, back to the state (`None` for anything else).
    pub fn parse(text: &str) -> Option<AdState> {
        match text {
            "scheduled" => Some(AdState::Scheduled),
            "active" => Some(AdState::Active),
            "ended" => Some(AdState::Ended),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AdState::Scheduled => "scheduled",
            AdState::Active => "active",
            AdState::Ended => "ended",
        }
    }
}

impl TimeWindow {
    /// docs/api.md: active at `t` when `startAt < t < endAt` (strict).
    pub fn is_active_at(self, at: Timestamp) -> bool {
        self.state_at(at) == AdState::Active
    }

    pub fn state_at(self, at: Timestamp) -> AdState {
        if at <= self.start() {
            AdState::Scheduled
        } else if at >= self.end() {
            AdState::Ended
        } else {
            AdState::Active
        }
    }
}

/// A dimension a condition group may restrict, in the order explain lists
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    Age,
    Gender,
    Country,
    Platform,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [
        Dimension::Age,
        Dimension::Gender,
        Dimension::Country,
        Dimension::Platform,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Age => "age",
            Dimension::Gender => "gender",
            Dimension::Country => "country",
            Dimension::Platform => "platform",
        }
    }
}

impl ConditionGroup {
    /// Whether this group rules the user out on `dimension`: the query gives
    /// a value there, the group restricts it, and the value is not allowed.
    /// A dimension the query does not give never rules anyone out.
    pub fn rules_out(&self, dimension: Dimension, query: &AudienceQuery) -> bool {
        fn outside<T: PartialEq>(allowed: &[T], asked: Option<T>) -> bool {
            asked.is_some_and(|value| !allowed.is_empty() && !allowed.contains(&value))
        }
        match dimension {
            Dimension::Age => match (query.age, self.age()) {
                (Some(age), Some(range)) => !range.contains(age),
                _ => false,
            },
            Dimension::Gender => outside(self.genders(), query.gender),
            Dimension::Country => outside(self.countries(), query.country),
            Dimension::Platform => outside(self.platforms(), query.platform),
        }
    }

    /// docs/api.md: the group matches when no dimension rules the user out.
    pub fn matches(&self, query: &AudienceQuery) -> bool {
        Dimension::ALL
            .into_iter()
            .all(|dimension| !self.rules_out(dimension, query))
    }

    /// The dimensions that rule the user out, in [`Dimension::ALL`] order.
    pub fn failed(&self, query: &AudienceQuery) -> Vec<Dimension> {
        Dimension::ALL
            .into_iter()
            .filter(|&dimension| self.rules_out(dimension, query))
            .collect()
    }
}

impl Targeting {
    /// docs/api.md: no groups targets everyone; otherwise any group matching.
    pub fn matches(&self, query: &AudienceQuery) -> bool {
        self.groups().is_empty() || self.groups().iter().any(|group| group.matches(query))
    }
}

/// Whether the Public API lists `ad` for `query` at `at`: active, and
/// targeting the user.
pub fn serves(ad: &Ad, query: &AudienceQuery, at: Timestamp) -> bool {
    ad.window.is_active_at(at) && ad.targeting.matches(query)
}

/// The Public API's answer order: `endAt` ascending, ties by `id`.
pub fn order_key(ad: &Ad) -> (Timestamp, AdId) {
    (ad.window.end(), ad.id)
}

/// Builds one Public API answer from ads offered in [`order_key`] order
/// (any may be offered, served or not): skips `offset` served ads, keeps at
/// most `limit`. Lets a caller stream candidates and stop early. `A` is an
/// [`Ad`] or a reference to one: only kept ads are held.
#[derive(Debug)]
pub struct AnswerWalk<A> {
    query: AudienceQuery,
    at: Timestamp,
    skip: usize,
    limit: usize,
    items: Vec<A>,
    last_key: Option<(Timestamp, AdId)>,
}

impl<A: Borrow<Ad>> AnswerWalk<A> {
    pub fn new(query: AudienceQuery, offset: usize, limit: usize, at: Timestamp) -> AnswerWalk<A> {
        AnswerWalk {
            query,
            at,
            skip: offset,
            limit,
            items: Vec::with_capacity(limit.min(128)),
            last_key: None,
        }
    }

    /// Offers the next ad in order; false once the answer is complete.
    pub fn offer(&mut self, ad: A) -> bool {
        let key = order_key(ad.borrow());
        debug_assert!(
            self.last_key.is_none_or(|last| last < key),
            "ads must be offered in (endAt, id) order"
        );
        self.last_key = Some(key);
        if self.is_complete() || !serves(ad.borrow(), &self.query, self.at) {
            return !self.is_complete();
        }
        if self.skip > 0 {
            self.skip -= 1;
        } else {
            self.items.push(ad);
        }
        !self.is_complete()
    }

    pub fn is_complete(&self) -> bool {
        self.items.len() >= self.limit
    }

    /// The answer's ads, in order.
    pub fn finish(self) -> Vec<A> {
        self.items
    }
}

/// The Public API's answer over `ads` (in any order), by definition: the
/// served ones, sorted by [`order_key`], `offset` skipped, at most `limit`.
pub fn answer<'a>(
    ads: impl IntoIterator<Item = &'a Ad>,
    query: &AudienceQuery,
    offset: usize,
    limit: usize,
    at: Timestamp,
) -> Vec<&'a Ad> {
    let mut served: Vec<&Ad> = ads.into_iter().filter(|ad| serves(ad, query, at)).collect();
    served.sort_by_key(|ad| order_key(ad));
    served.into_iter().skip(offset).take(limit).collect()
}

/// One condition group's verdict for a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupVerdict {
    pub matches: bool,
    /// What rules the user out, in [`Dimension::ALL`] order; empty when it matches.
    pub failed: Vec<Dimension>,
}

/// Why an ad is or is not served to a user at an instant (docs/api.md,
/// "Explain"), apart from its position among the served ads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    pub state: AdState,
    /// One per canonical condition group, in order; empty when the ad
    /// targets everyone.
    pub groups: Vec<GroupVerdict>,
    /// Some group matches, or there are none.
    pub audience: bool,
    /// `state` is active and `audience` holds: exactly [`serves`].
    pub served: bool,
}

pub fn explain(ad: &Ad, query: &AudienceQuery, at: Timestamp) -> Explanation {
    let state = ad.window.state_at(at);
    let groups: Vec<GroupVerdict> = ad
        .targeting
        .groups()
        .iter()
        .map(|group| {
            let failed = group.failed(query);
            GroupVerdict {
                matches: failed.is_empty(),
                failed,
            }
        })
        .collect();
    let audience = groups.is_empty() || groups.iter().any(|group| group.matches);
    let served = state == AdState::Active && audience;
    debug_assert_eq!(served, serves(ad, query, at));
    Explanation {
        state,
        groups,
        audience,
        served,
    }
}

/// The 0-based place of `ad` in the Public API's answer for `query` at
/// `at` over `ads`, by definition; `None` when it is not served.
pub fn position<'a>(
    ads: impl IntoIterator<Item = &'a Ad>,
    ad: &Ad,
    query: &AudienceQuery,
    at: Timestamp,
) -> Option<usize> {
    if !serves(ad, query, at) {
        return None;
    }
    let key = order_key(ad);
    Some(
        ads.into_iter()
            .filter(|other| order_key(other) < key && serves(other, query, at))
            .count(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ad::{AgeRange, ConditionGroupParts, Gender, Platform, Title};
    use crate::country::Country;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms).unwrap()
    }

    fn group(parts: ConditionGroupParts) -> ConditionGroup {
        ConditionGroup::try_from(parts).unwrap()
    }

    fn ad(id: i64, start: i64, end: i64, groups: Vec<ConditionGroup>) -> Ad {
        Ad {
            id: AdId::new(id).unwrap(),
            title: Title::parse(format!("AD {id}")).unwrap(),
            window: TimeWindow::new(t(start), t(end)).unwrap(),
            targeting: Targeting::any_of(groups),
        }
    }

    #[test]
    fn activity_is_strict_at_both_ends() {
        let window = TimeWindow::new(t(10), t(20)).unwrap();
        assert_eq!(window.state_at(t(9)), AdState::Scheduled);
        assert_eq!(window.state_at(t(10)), AdState::Scheduled);
        assert_eq!(window.state_at(t(11)), AdState::Active);
        assert_eq!(window.state_at(t(19)), AdState::Active);
        assert_eq!(window.state_at(t(20)), AdState::Ended);
        assert!(!window.is_active_at(t(10)));
        assert!(window.is_active_at(t(11)));
        assert!(!window.is_active_at(t(20)));
    }

    #[test]
    fn omitted_query_dimension_does_not_filter() {
        let g = group(ConditionGroupParts {
            age: AgeRange::new(20, 30),
            countries: vec![Country::parse("TW").unwrap()],
            ..Default::default()
        });
        assert!(g.matches(&AudienceQuery::default()));
        let aged = |age| AudienceQuery {
            age: Some(age),
            ..Default::default()
        };
        assert!(g.matches(&aged(20)));
        assert!(g.matches(&aged(30)));
        assert!(!g.matches(&aged(31)));
        assert!(!g.matches(&AudienceQuery {
            country: Country::parse("JP"),
            ..Default::default()
        }));
        assert!(g.matches(&AudienceQuery {
            gender: Some(Gender::F),
            ..Default::default()
        }));
    }

    #[test]
    fn targeting_matches_when_any_group_matches() {
        let ios = group(ConditionGroupParts {
            platforms: vec![Platform::Ios],
            ..Default::default()
        });
        let web = group(ConditionGroupParts {
            platforms: vec![Platform::Web],
            ..Default::default()
        });
        let targeting = Targeting::any_of(vec![ios, web]);
        let on = |platform| AudienceQuery {
            platform: Some(platform),
            ..Default::default()
        };
        assert!(targeting.matches(&on(Platform::Ios)));
        assert!(targeting.matches(&on(Platform::Web)));
        assert!(!targeting.matches(&on(Platform::Android)));
        assert!(Targeting::everyone().matches(&on(Platform::Android)));
    }

    #[test]
    fn failed_dimensions_come_in_the_documented_order() {
        let g = group(ConditionGroupParts {
            age: AgeRange::new(20, 30),
            genders: vec![Gender::F],
            countries: vec![Country::parse("TW").unwrap()],
            platforms: vec![Platform::Ios],
        });
        let query = AudienceQuery {
            age: Some(40),
            gender: Some(Gender::M),
            country: Country::parse("JP"),
            platform: Some(Platform::Web),
        };
        assert_eq!(g.failed(&query), Dimension::ALL);
        let partly = AudienceQuery {
            platform: Some(Platform::Web),
            country: Country::parse("JP"),
            ..Default::default()
        };
        assert_eq!(
            g.failed(&partly),
            [Dimension::Country, Dimension::Platform],
            "only dimensions the query gives can fail"
        );
    }

    #[test]
    fn explain_breaks_down_state_groups_and_audience() {
        let f = group(ConditionGroupParts {
            genders: vec![Gender::F],
            ..Default::default()
        });
        let young = group(ConditionGroupParts {
            age: AgeRange::new(1, 20),
            ..Default::default()
        });
        let subject = ad(1, 100, 200, vec![f, young]);
        let man_of_40 = AudienceQuery {
            age: Some(40),
            gender: Some(Gender::M),
            ..Default::default()
        };
        let explained = explain(&subject, &man_of_40, t(150));
        assert_eq!(explained.state, AdState::Active);
        assert!(!explained.audience && !explained.served);
        assert_eq!(
            explained.groups,
            [
                GroupVerdict {
                    matches: false,
                    failed: vec![Dimension::Gender]
                },
                GroupVerdict {
                    matches: false,
                    failed: vec![Dimension::Age]
                },
            ]
        );
        let woman = AudienceQuery {
            gender: Some(Gender::F),
            ..Default::default()
        };
        let scheduled = explain(&subject, &woman, t(100));
        assert_eq!(scheduled.state, AdState::Scheduled);
        assert!(scheduled.audience && !scheduled.served);
        assert!(explain(&subject, &woman, t(101)).served);
        assert_eq!(explain(&subject, &woman, t(200)).state, AdState::Ended);
        let everyone = ad(2, 100, 200, vec![]);
        let explained = explain(&everyone, &man_of_40, t(150));
        assert!(explained.groups.is_empty() && explained.audience && explained.served);
    }

    #[test]
    fn answer_sorts_by_end_then_id_and_pages() {
        let ads = [
            ad(3, 0, 500, vec![]),
            ad(1, 0, 900, vec![]),
            ad(2, 0, 500, vec![]),
            ad(4, 200, 900, vec![]),
        ];
        let ids = |answer: Vec<&Ad>| answer.iter().map(|ad| ad.id.get()).collect::<Vec<_>>();
        let everyone = AudienceQuery::default();
        assert_eq!(ids(answer(&ads, &everyone, 0, 10, t(100))), [2, 3, 1]);
        assert_eq!(ids(answer(&ads, &everyone, 1, 1, t(100))), [3]);
        assert_eq!(ids(answer(&ads, &everyone, 0, 10, t(300))), [2, 3, 1, 4]);
        assert!(answer(&ads, &everyone, 4, 5, t(300)).is_empty());
        assert_eq!(position(&ads, &ads[0], &everyone, t(100)), Some(1));
        assert_eq!(position(&ads, &ads[3], &everyone, t(100)), None);
        assert_eq!(position(&ads, &ads[3], &everyone, t(300)), Some(3));
    }
}
