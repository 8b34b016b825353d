//! A Public API answer as the query engine gives it: the body and how long
//! it stays right. The server only parses the request and writes these.

use adcast_shared::ad::AudienceQuery;
use adcast_shared::timestamp::Timestamp;
use bytes::Bytes;

use crate::index::{AdIndex, Page};

/// The answer to one query at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// `{"items":[…]}`: the matching pre-rendered items.
    pub body: Bytes,
    /// Seconds the answer stays right (absent writes): never past the next
    /// start or end of any ad, never past the cap it was asked with.
    pub max_age: u64,
}

impl AdIndex {
    /// The active ads matching `audience` at `now`, paged, as an answer
    /// body, with its cache lifetime capped at `max_age_cap` seconds.
    pub fn answer(
        &self,
        audience: &AudienceQuery,
        page: Page,
        now: Timestamp,
        max_age_cap: u64,
    ) -> Answer {
        Answer {
            body: self.render(audience, page, now),
            max_age: max_age(
                self.next_change_after(now).map(Timestamp::as_millis),
                now.as_millis(),
                max_age_cap,
            ),
        }
    }

    /// The answer body alone: `{"items":[…]}`.
    pub fn render(&self, audience: &AudienceQuery, page: Page, now: Timestamp) -> Bytes {
        render_matches(self, audience, page, now)
    }
}

/// Copies the matching items straight into the body (one allocation, sized
/// for typical items).
fn render_matches(index: &AdIndex, audience: &AudienceQuery, page: Page, now: Timestamp) -> Bytes {
    const OPEN: &[u8] = b"{\"items\":[";
    let mut body = Vec::with_capacity(OPEN.len() + 2 + page.limit.min(32) * 128);
    body.extend_from_slice(OPEN);
    index.for_each_match(audience, page, now, |item| {
        if body.len() > OPEN.len() {
            body.push(b',');
        }
        body.extend_from_slice(item);
    });
    body.extend_from_slice(b"]}");
    Bytes::from(body)
}

/// Whole seconds from `now` to `next_change` (ms; `None`: no change
/// ahead), at most `cap`.
pub(crate) fn max_age(next_change: Option<i64>, now: i64, cap: u64) -> u64 {
    match next_change {
        Some(next) => (((next - now) / 1000) as u64).min(cap),
        None => cap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adcast_shared::ad::{Ad, AdId, Targeting, TimeWindow, Title};

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms).unwrap()
    }

    fn ad(id: i64, start: i64, end: i64) -> Ad {
        Ad {
            id: AdId::new(id).unwrap(),
            title: Title::parse(format!("AD {id}")).unwrap(),
            window: TimeWindow::new(t(start), t(end)).unwrap(),
            targeting: Targeting::everyone(),
        }
    }

    const ALL: Page = Page {
        offset: 0,
        limit: 10,
    };

    #[test]
    fn the_body_lists_the_matching_items_in_order() {
        let index = AdIndex::build(&[ad(2, 0, 90_000), ad(1, 0, 80_000)], t(1_000));
        let answer = index.answer(&AudienceQuery::default(), ALL, t(1_000), 5);
        assert_eq!(
            answer.body,
            r#"{"items":[{"title":"AD 1","endAt":"1970-01-01T00:01:20.000Z"},{"title":"AD 2","endAt":"1970-01-01T00:01:30.000Z"}]}"#
        );
        let none = index.answer(&AudienceQuery::default(), ALL, t(95_000), 5);
        assert_eq!(none.body, r#"{"items":[]}"#);
    }

    #[test]
    fn max_age_stops_before_the_next_start_or_end_and_at_the_cap() {
        let index = AdIndex::build(&[ad(1, 3_500, 60_000)], t(1_000));
        let everyone = AudienceQuery::default();
        assert_eq!(
            index.answer(&everyone, ALL, t(1_000), 5).max_age,
            2,
            "start at 3.5 s"
        );
        assert_eq!(
            index.answer(&everyone, ALL, t(10_000), 5).max_age,
            5,
            "capped"
        );
        assert_eq!(
            index.answer(&everyone, ALL, t(59_500), 5).max_age,
            0,
            "end in 0.5 s"
        );
        assert_eq!(
            index.answer(&everyone, ALL, t(70_000), 5).max_age,
            5,
            "nothing left to change"
        );
    }
}
