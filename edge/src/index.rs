//! The query engine: an immutable index over the serving ads.
//!
//! Ads are kept sorted by `(endAt, id)`, the order answers are given in.
//! Each condition group of each ad is one **entry** (an ad targeting everyone
//! has one unrestricted entry); entries follow ad order. For every condition
//! value there is a bitset of the entries that allow it (unrestricted entries
//! are in all of them). A query ANDs the bitsets of the dimensions it gives,
//! word by word, starting at the first ad that has not ended, and walks the
//! surviving bits in order, skipping `offset` and taking `limit` — so the
//! result comes out sorted with no sort at query time.
//!
//! Two kinds of entries need a per-bit check: those of ads with several
//! groups (an ad must count once even when two of its groups match; its
//! entries are adjacent, so "same ad as the last one taken" is enough) and
//! those of ads that had not started when the index was built (their start
//! is compared with the query time). All other entries are exact, which lets
//! whole words be skipped by popcount when paging deep.
//!
//! Each ad's answer item (`{"title":…,"endAt":…}`) is rendered once, here.

use adcast_shared::ad::{Ad, AudienceQuery, Gender, Platform};
use adcast_shared::country::Country;
use adcast_shared::timestamp::Timestamp;

const AGES: usize = 100;

/// A fixed-size set of entry positions.
#[derive(Clone, Debug)]
struct Bitset(Box<[u64]>);

impl Bitset {
    fn new(words: usize) -> Bitset {
        Bitset(vec![0; words].into_boxed_slice())
    }

    fn set(&mut self, bit: usize) {
        self.0[bit / 64] |= 1 << (bit % 64);
    }

    fn bytes(&self) -> usize {
        self.0.len() * 8
    }
}

/// One servable ad, as the query walk needs it.
#[derive(Clone, Debug)]
struct IndexedAd {
    start: i64,
    end: i64,
    /// `{"title":…,"endAt":…}`, ready to copy into an answer.
    item_json: Box<str>,
}

/// An immutable index; build a new one to change anything.
#[derive(Debug)]
pub struct AdIndex {
    /// Serving order: `(endAt, id)` ascending.
    ads: Vec<IndexedAd>,
    /// For each entry, its ad's position in `ads` (non-decreasing).
    entry_ad: Vec<u32>,
    /// Bits of real entries (the tail of the last word stays clear).
    valid: Bitset,
    gender: [Bitset; 2],
    platform: [Bitset; 3],
    /// `age[a - 1]`: entries allowing age `a`.
    age: Vec<Bitset>,
    /// Entries restricted to a country, per country that any entry names.
    country: Vec<Option<Bitset>>,
    /// Entries with no country restriction.
    any_country: Bitset,
    /// Entries needing the per-bit check (several groups, or not yet started
    /// at build time).
    per_bit: Bitset,
    /// Start times after the build instant, sorted: the moments the answer
    /// set can change besides the ends, for `Cache-Control`.
    future_starts: Vec<i64>,
    /// The build instant: entries not in `per_bit` started before it.
    built_at: i64,
}

/// The slice of the results a query asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub offset: usize,
    pub limit: usize,
}

impl AdIndex {
    /// Indexes the ads that have not ended at `now`; ended ones can never be
    /// served again.
    pub fn build<'a>(ads: impl IntoIterator<Item = &'a Ad>, now: Timestamp) -> AdIndex {
        let now = now.as_millis();
        let mut live: Vec<&Ad> = ads
            .into_iter()
            .filter(|ad| ad.window.end().as_millis() > now)
            .collect();
        live.sort_by_key(|ad| (ad.window.end(), ad.id));

        let entry_count: usize = live
            .iter()
            .map(|ad| ad.targeting.groups().len().max(1))
            .sum();
        let words = entry_count.div_ceil(64);
        let mut index = AdIndex {
            ads: Vec::with_capacity(live.len()),
            entry_ad: Vec::with_capacity(entry_count),
            valid: Bitset::new(words),
            gender: [Bitset::new(words), Bitset::new(words)],
            platform: [Bitset::new(words), Bitset::new(words), Bitset::new(words)],
            age: (0..AGES).map(|_| Bitset::new(words)).collect(),
            country: vec![None; Country::COUNT],
            any_country: Bitset::new(words),
            per_bit: Bitset::new(words),
            future_starts: Vec::new(),
            built_at: now,
        };
        for (position, ad) in live.iter().enumerate() {
            let start = ad.window.start().as_millis();
            let end = ad.window.end();
            index.ads.push(IndexedAd {
                start,
                end: end.as_millis(),
                item_json: render_item(ad.title.as_str(), end),
            });
            if start >= now {
                index.future_starts.push(start);
            }
            let groups = ad.targeting.groups();
            let needs_per_bit = groups.len() > 1 || start >= now;
            if groups.is_empty() {
                let entry = index.push_entry(position, needs_per_bit);
                index.allow_everything(entry);
                continue;
            }
            for group in groups {
                let entry = index.push_entry(position, needs_per_bit);
                index.allow_group(entry, group);
            }
        }
        index.future_starts.sort_unstable();
        index
    }

    fn push_entry(&mut self, ad_position: usize, per_bit: bool) -> usize {
        let entry = self.entry_ad.len();
        self.entry_ad.push(ad_position as u32);
        self.valid.set(entry);
        if per_bit {
            self.per_bit.set(entry);
        }
        entry
    }

    fn allow_everything(&mut self, entry: usize) {
        self.gender.iter_mut().for_each(|bits| bits.set(entry));
        self.platform.iter_mut().for_each(|bits| bits.set(entry));
        self.age.iter_mut().for_each(|bits| bits.set(entry));
        self.any_country.set(entry);
    }

    fn allow_group(&mut self, entry: usize, group: &adcast_shared::ad::ConditionGroup) {
        for gender in Gender::ALL {
            if group.genders().is_empty() || group.genders().contains(&gender) {
                self.gender[gender.index()].set(entry);
            }
        }
        for platform in Platform::ALL {
            if group.platforms().is_empty() || group.platforms().contains(&platform) {
                self.platform[platform.index()].set(entry);
            }
        }
        for age in 1..=AGES as u8 {
            if group.age().is_none_or(|range| range.contains(age)) {
                self.age[usize::from(age - 1)].set(entry);
            }
        }
        if group.countries().is_empty() {
            self.any_country.set(entry);
        }
        let words = self.valid.0.len();
        for country in group.countries() {
            self.country[country.index()]
                .get_or_insert_with(|| Bitset::new(words))
                .set(entry);
        }
    }

    /// Ads that have not ended as of the build (some may not have started).
    pub fn len(&self) -> usize {
        self.ads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ads.is_empty()
    }

    /// Condition-group entries indexed.
    pub fn entries(&self) -> usize {
        self.entry_ad.len()
    }

    /// Approximate heap bytes held by the bitsets.
    pub fn bitset_bytes(&self) -> usize {
        let fixed = [&self.valid, &self.any_country, &self.per_bit]
            .into_iter()
            .chain(&self.gender)
            .chain(&self.platform)
            .chain(&self.age);
        fixed.map(Bitset::bytes).sum::<usize>()
            + self
                .country
                .iter()
                .flatten()
                .map(Bitset::bytes)
                .sum::<usize>()
    }

    /// The active ads matching `query` at `now`, in `(endAt, id)` order,
    /// after skipping `page.offset`, at most `page.limit`: their item JSON.
    pub fn query(&self, query: &AudienceQuery, page: Page, now: Timestamp) -> Vec<&str> {
        let mut out = Vec::with_capacity(page.limit.min(self.ads.len()));
        self.for_each_match(query, page, now, |item| out.push(item));
        out
    }

    /// Like [`AdIndex::query`], but hands each item to `visit` instead of
    /// collecting them (the server renders straight into the answer body).
    /// Returns how many items were visited.
    pub fn for_each_match<'a>(
        &'a self,
        query: &AudienceQuery,
        page: Page,
        now: Timestamp,
        mut visit: impl FnMut(&'a str),
    ) -> usize {
        let mut visited = 0;
        if page.limit == 0 {
            return visited;
        }
        // Entries outside `per_bit` started before the build; a clock that
        // stepped back must not make them look unstarted-yet-served.
        let now = now.as_millis().max(self.built_at);
        // Ads are sorted by end: those ended at `now` form a prefix.
        let first_entry = self
            .entry_ad
            .partition_point(|&ad| self.ads[ad as usize].end <= now);
        let mut filters: [&[u64]; 3] = [&self.valid.0; 3];
        if let Some(gender) = query.gender {
            filters[0] = &self.gender[gender.index()].0;
        }
        if let Some(platform) = query.platform {
            filters[1] = &self.platform[platform.index()].0;
        }
        if let Some(age) = query.age.filter(|age| (1..=AGES as u8).contains(age)) {
            filters[2] = &self.age[usize::from(age - 1)].0;
        } else if query.age.is_some() {
            return visited; // outside 1–100 nothing can match (the API rejects it anyway)
        }
        let country = query
            .country
            .map(|c| self.country[c.index()].as_ref().map(|bits| &bits.0[..]));

        let mut skip = page.offset;
        let mut last_ad = None;
        for word in first_entry / 64..self.valid.0.len() {
            let mut matched = filters[0][word] & filters[1][word] & filters[2][word];
            if word == first_entry / 64 {
                matched &= u64::MAX << (first_entry % 64);
            }
            if let Some(restricted) = country {
                matched &= restricted.map_or(0, |bits| bits[word]) | self.any_country.0[word];
            }
            if matched == 0 {
                continue;
            }
            let per_bit = self.per_bit.0[word];
            if matched & per_bit == 0 && skip >= matched.count_ones() as usize {
                skip -= matched.count_ones() as usize;
                continue;
            }
            let mut bits = matched;
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let ad_position = self.entry_ad[word * 64 + bit];
                if per_bit & (1 << bit) != 0 {
                    let ad = &self.ads[ad_position as usize];
                    if ad.start >= now || last_ad == Some(ad_position) {
                        continue;
                    }
                }
                last_ad = Some(ad_position);
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                visit(&self.ads[ad_position as usize].item_json);
                visited += 1;
                if visited == page.limit {
                    return visited;
                }
            }
        }
        visited
    }

    /// The first instant after `now` at which the set of active ads can
    /// differ from the set at `now`: an answer computed at `now` stays right
    /// (absent writes) until just before it. Activity is strict
    /// (`start < t < end`), so an ad ending at `end` leaves at `end`, and an
    /// ad starting at `start` joins at `start + 1 ms` — also when `start` is
    /// `now` itself.
    pub fn next_change_after(&self, now: Timestamp) -> Option<Timestamp> {
        let now = now.as_millis();
        let next_end = self
            .ads
            .get(self.ads.partition_point(|ad| ad.end <= now))
            .map(|ad| ad.end);
        let next_start = self
            .future_starts
            .get(self.future_starts.partition_point(|&start| start < now))
            .map(|start| start + 1);
        let next = match (next_end, next_start) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Timestamp::from_millis(next)
    }
}

/// `{"title":"…","endAt":"…"}` with the title JSON-escaped.
fn render_item(title: &str, end: Timestamp) -> Box<str> {
    let title = serde_json::to_string(title).expect("a string serialises");
    format!("{{\"title\":{title},\"endAt\":\"{end}\"}}").into_boxed_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use adcast_shared::ad::{
        AdId, AgeRange, ConditionGroup, ConditionGroupParts, Targeting, TimeWindow, Title,
    };

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms).unwrap()
    }

    fn ad(id: i64, start: i64, end: i64, groups: Vec<ConditionGroupParts>) -> Ad {
        Ad {
            id: AdId::new(id).unwrap(),
            title: Title::parse(format!("AD {id}")).unwrap(),
            window: TimeWindow::new(t(start), t(end)).unwrap(),
            targeting: Targeting::any_of(
                groups
                    .into_iter()
                    .map(|g| ConditionGroup::try_from(g).unwrap())
                    .collect(),
            ),
        }
    }

    fn titles(
        index: &AdIndex,
        query: AudienceQuery,
        offset: usize,
        limit: usize,
        now: i64,
    ) -> Vec<String> {
        index
            .query(&query, Page { offset, limit }, t(now))
            .into_iter()
            .map(|item| {
                serde_json::from_str::<serde_json::Value>(item).unwrap()["title"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn results_are_sorted_by_end_then_id() {
        let ads = [
            ad(3, 0, 500, vec![]),
            ad(1, 0, 900, vec![]),
            ad(2, 0, 500, vec![]),
        ];
        let index = AdIndex::build(&ads, t(100));
        assert_eq!(
            titles(&index, AudienceQuery::default(), 0, 10, 100),
            ["AD 2", "AD 3", "AD 1"]
        );
        assert_eq!(
            titles(&index, AudienceQuery::default(), 1, 1, 100),
            ["AD 3"]
        );
        assert!(titles(&index, AudienceQuery::default(), 3, 5, 100).is_empty());
    }

    #[test]
    fn an_ad_matching_through_two_groups_is_listed_once() {
        let f = ConditionGroupParts {
            genders: vec![Gender::F],
            ..Default::default()
        };
        let young = ConditionGroupParts {
            age: AgeRange::new(1, 20),
            ..Default::default()
        };
        let ads = [ad(1, 0, 500, vec![f, young]), ad(2, 0, 600, vec![])];
        let index = AdIndex::build(&ads, t(100));
        let query = AudienceQuery {
            gender: Some(Gender::F),
            age: Some(18),
            ..Default::default()
        };
        assert_eq!(titles(&index, query, 0, 10, 100), ["AD 1", "AD 2"]);
        assert_eq!(titles(&index, query, 1, 10, 100), ["AD 2"]);
    }

    #[test]
    fn activity_follows_the_clock_without_a_rebuild() {
        let ads = [ad(1, 200, 300, vec![])];
        let index = AdIndex::build(&ads, t(100));
        assert!(
            titles(&index, AudienceQuery::default(), 0, 5, 200).is_empty(),
            "not active at startAt"
        );
        assert_eq!(
            titles(&index, AudienceQuery::default(), 0, 5, 201),
            ["AD 1"]
        );
        assert!(
            titles(&index, AudienceQuery::default(), 0, 5, 300).is_empty(),
            "not active at endAt"
        );
    }

    #[test]
    fn next_change_is_the_nearest_start_or_end() {
        let ads = [ad(1, 200, 300, vec![]), ad(2, 0, 250, vec![])];
        let index = AdIndex::build(&ads, t(100));
        // Ad 1 is served from 201 (strictly after its start) to 299.
        assert_eq!(index.next_change_after(t(100)), Some(t(201)));
        assert_eq!(index.next_change_after(t(200)), Some(t(201)));
        assert_eq!(index.next_change_after(t(201)), Some(t(250)));
        assert_eq!(index.next_change_after(t(260)), Some(t(300)));
        assert_eq!(index.next_change_after(t(300)), None);
    }

    #[test]
    fn item_json_escapes_the_title() {
        assert_eq!(
            &*render_item("say \"hi\"", t(0)),
            r#"{"title":"say \"hi\"","endAt":"1970-01-01T00:00:00.000Z"}"#
        );
    }
}
