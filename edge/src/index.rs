//! The query engine: an immutable base segment plus a small overlay of the
//! changes applied since it was built, merged at query time.
//!
//! The **base** ([`Segment`]) holds the catalog as of its build, sorted by
//! `(endAt, id)` with one bitset per condition value. The **overlay** holds
//! the latest version of every ad changed since (upserted or deleted), as a
//! small segment of its own, and hides the base's entries of those ads.
//! Applying a batch builds a new overlay: its cost grows with the overlay
//! and the batch, never with the catalog. A query walks both segments in
//! `(endAt, id)` order, merging them, skipping `offset` and taking `limit`,
//! so the answer is exactly what one segment built from the same ads would
//! give. When the overlay grows past a bound, a compaction merges it into a
//! new base off the request and apply paths ([`crate::compaction`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use adcast_shared::ad::{Ad, AdId, AudienceQuery};
use adcast_shared::event::Change;
use adcast_shared::snapshot::AdSink;
use adcast_shared::timestamp::Timestamp;

use crate::catalog::CatalogBuilder;
use crate::segment::{Cursor, Segment, Slot, UndecodableAd};

/// The slice of the results a query asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Page {
    pub offset: usize,
    pub limit: usize,
}

/// The latest change to one ad since the base was built.
#[derive(Clone, Debug)]
struct Changed {
    /// The sequence number of the change (0 for changes not from the
    /// stream), to tell which a compaction already holds.
    seq: u64,
    /// The new version; `None` when deleted.
    ad: Option<Slot>,
    /// The base's version of the ad, hidden: its position and entries.
    in_base: Option<BaseAd>,
}

#[derive(Clone, Copy, Debug)]
struct BaseAd {
    position: u32,
    first_entry: u32,
    entries: u32,
}

/// Where `base` holds the ad `id`, if it does.
fn base_ad(base: &Segment, id: AdId) -> Option<BaseAd> {
    let position = base.position_of(id)?;
    let (first_entry, entries) = base.entries_of(position);
    Some(BaseAd {
        position,
        first_entry,
        entries,
    })
}

/// The changes since the base, indexed.
#[derive(Debug)]
struct Overlay {
    changes: BTreeMap<AdId, Changed>,
    /// The live new versions, indexed.
    segment: Segment,
    /// Base entries hidden by a change: `(word, bits)` sorted by word.
    hidden_entries: Vec<(u32, u64)>,
    /// Base positions hidden by a change, sorted.
    hidden_ads: Vec<u32>,
}

impl Overlay {
    fn new(base: &Segment, changes: BTreeMap<AdId, Changed>, now: i64) -> Overlay {
        let segment = Segment::build(
            changes.values().filter_map(|changed| changed.ad.clone()),
            now.max(base.built_at()),
        );
        let mut hidden_ads = Vec::new();
        let mut hidden_entries: Vec<(u32, u64)> = Vec::new();
        for in_base in changes.values().filter_map(|changed| changed.in_base) {
            hidden_ads.push(in_base.position);
            for entry in in_base.first_entry..in_base.first_entry + in_base.entries {
                hidden_entries.push((entry / 64, 1 << (entry % 64)));
            }
        }
        hidden_ads.sort_unstable();
        hidden_entries.sort_unstable_by_key(|&(word, _)| word);
        hidden_entries.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 |= later.1;
            }
            same
        });
        Overlay {
            changes,
            segment,
            hidden_entries,
            hidden_ads,
        }
    }
}

/// An immutable index; [`AdIndex::apply`] gives the next one.
#[derive(Debug)]
pub struct AdIndex {
    base: Arc<Segment>,
    overlay: Overlay,
}

impl AdIndex {
    /// Indexes the ads that have not ended at `now`; ended ones can never be
    /// served again.
    pub fn build<'a>(ads: impl IntoIterator<Item = &'a Ad>, now: Timestamp) -> AdIndex {
        Self::from_ads(ads.into_iter().cloned().collect(), now)
    }

    /// Like [`AdIndex::build`], taking the ads (a boot: large catalogs are
    /// prepared on two threads).
    pub fn from_ads(ads: Vec<Ad>, now: Timestamp) -> AdIndex {
        let mut catalog = CatalogBuilder::new(now.as_millis(), ads.len() as u64);
        ads.into_iter().for_each(|ad| catalog.push(ad));
        AdIndex::from_catalog(catalog)
    }

    pub(crate) fn from_catalog(catalog: CatalogBuilder) -> AdIndex {
        Self::on_new_base(catalog.finish())
    }

    /// The index of two catalogs' ads (no ad in both).
    pub(crate) fn from_catalogs(first: CatalogBuilder, second: CatalogBuilder) -> AdIndex {
        Self::on_new_base(first.finish_with(second))
    }

    fn on_new_base(base: Segment) -> AdIndex {
        let now = base.built_at();
        Self::on_base(Arc::new(base), now)
    }

    fn on_base(base: Arc<Segment>, now: i64) -> AdIndex {
        let overlay = Overlay::new(&base, BTreeMap::new(), now);
        AdIndex { base, overlay }
    }

    /// The index after `events` (in order), built at `now`. Costs in
    /// proportion to the overlay and the batch.
    pub fn apply(&self, events: &[(u64, Change)], now: Timestamp) -> AdIndex {
        let mut changes = self.overlay.changes.clone();
        for (seq, change) in events {
            let id = change.ad_id();
            let ad = match change {
                Change::Upsert(ad) => Some(Slot::new(ad)),
                Change::Delete(_) => None,
            };
            let in_base = match changes.get(&id) {
                Some(earlier) => earlier.in_base,
                None => self.base_ad(id),
            };
            changes.insert(
                id,
                Changed {
                    seq: *seq,
                    ad,
                    in_base,
                },
            );
        }
        let now = now.as_millis().max(self.built_at());
        AdIndex {
            base: Arc::clone(&self.base),
            overlay: Overlay::new(&self.base, changes, now),
        }
    }

    fn base_ad(&self, id: AdId) -> Option<BaseAd> {
        base_ad(&self.base, id)
    }

    /// How many ads changed since the base was built.
    pub fn overlay_len(&self) -> usize {
        self.overlay.changes.len()
    }

    /// Ads in the base.
    pub fn base_len(&self) -> usize {
        self.base.len()
    }

    /// The latest instant the index was built or changed at; queries at
    /// earlier instants are answered as of it.
    pub fn built_at(&self) -> i64 {
        self.base.built_at().max(self.overlay.segment.built_at())
    }

    /// A new base holding everything this index serves (a pass over every
    /// ad: run it off the request and apply paths), marked as the
    /// compaction of this index's base through `seq`.
    pub(crate) fn compact(&self, seq: u64) -> Arc<Segment> {
        let now = self.built_at();
        let base = self
            .base
            .slots()
            .iter()
            .enumerate()
            .filter(|(position, slot)| {
                slot.end > now
                    && self
                        .overlay
                        .hidden_ads
                        .binary_search(&(*position as u32))
                        .is_err()
            })
            .map(|(_, slot)| slot);
        let overlay = self
            .overlay
            .segment
            .slots()
            .iter()
            .filter(|slot| slot.end > now);
        let mut merged = Vec::with_capacity(self.len());
        let mut base = base.peekable();
        let mut overlay = overlay.peekable();
        loop {
            let next = match (base.peek(), overlay.peek()) {
                (Some(b), Some(o)) if b.key() < o.key() => base.next(),
                (Some(_), Some(_)) => overlay.next(),
                (Some(_), None) => base.next(),
                (None, Some(_)) => overlay.next(),
                (None, None) => break,
            };
            merged.extend(next.cloned());
        }
        let mut segment = Segment::from_sorted(merged, now);
        segment.mark_compacted_from(self.base.generation(), seq);
        Arc::new(segment)
    }

    /// Whether `base` is a compaction of this index's base.
    pub(crate) fn is_compacted_by(&self, base: &Segment) -> Option<u64> {
        match base.compacted_from() {
            Some((generation, seq)) if generation == self.base.generation() => Some(seq),
            _ => None,
        }
    }

    pub(crate) fn base(&self) -> &Arc<Segment> {
        &self.base
    }

    /// The changes since the base, by id: each one's sequence number and
    /// new version (`None`: deleted). With the base and
    /// [`AdIndex::built_at`], what [`AdIndex::from_image`] takes back.
    pub(crate) fn changes(&self) -> impl ExactSizeIterator<Item = (AdId, u64, Option<&Slot>)> + '_ {
        self.overlay
            .changes
            .iter()
            .map(|(&id, changed)| (id, changed.seq, changed.ad.as_ref()))
    }

    /// The index of `base` and `changes` (as [`AdIndex::changes`] gave
    /// them) built at `built_at`; `None` unless the changes are in id order,
    /// each new version has its change's id, and `built_at` is not before
    /// the base's build.
    pub(crate) fn from_image(
        base: Segment,
        changes: Vec<(AdId, u64, Option<Slot>)>,
        built_at: i64,
    ) -> Option<AdIndex> {
        let in_order = changes.windows(2).all(|pair| pair[0].0 < pair[1].0);
        let ids_match = changes
            .iter()
            .all(|(id, _, ad)| ad.as_ref().is_none_or(|slot| slot.id == *id));
        if !in_order || !ids_match || built_at < base.built_at() {
            return None;
        }
        let changes = changes
            .into_iter()
            .map(|(id, seq, ad)| {
                let in_base = base_ad(&base, id);
                (id, Changed { seq, ad, in_base })
            })
            .collect();
        let overlay = Overlay::new(&base, changes, built_at);
        Some(AdIndex {
            base: Arc::new(base),
            overlay,
        })
    }

    /// This index's content on `base`, a compaction through `seq` of this
    /// index's base and changes up to `seq`: only later changes stay in the
    /// overlay.
    pub(crate) fn rebased(&self, base: Arc<Segment>, seq: u64) -> AdIndex {
        let changes: BTreeMap<AdId, Changed> = self
            .overlay
            .changes
            .iter()
            .filter(|(_, changed)| changed.seq > seq)
            .map(|(&id, changed)| (id, changed.clone()))
            .collect();
        let changes = changes
            .into_iter()
            .map(|(id, changed)| {
                let in_base = base_ad(&base, id);
                (id, Changed { in_base, ..changed })
            })
            .collect();
        let now = self.built_at().max(base.built_at());
        let overlay = Overlay::new(&base, changes, now);
        AdIndex { base, overlay }
    }

    /// Ads that had not ended when last indexed (some may not have started,
    /// some may have ended since).
    pub fn len(&self) -> usize {
        self.base.len() - self.overlay.hidden_ads.len() + self.overlay.segment.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Condition-group entries indexed (base and overlay, hidden ones not).
    pub fn entries(&self) -> usize {
        let hidden: usize = self
            .overlay
            .hidden_entries
            .iter()
            .map(|(_, bits)| bits.count_ones() as usize)
            .sum();
        self.base.entries() - hidden + self.overlay.segment.entries()
    }

    /// Approximate heap bytes held by the bitsets.
    pub fn bitset_bytes(&self) -> usize {
        self.base.bitset_bytes() + self.overlay.segment.bitset_bytes()
    }

    /// The ads indexed (as for [`AdIndex::len`]), in id order, each decoded
    /// from its compact form.
    pub fn ads(&self) -> impl Iterator<Item = Result<Ad, UndecodableAd>> + '_ {
        self.slots_by_id().map(Slot::ad)
    }

    /// How many indexed ads have not ended at `now`, and those ads in id
    /// order, decoded one at a time (to write a snapshot without holding
    /// the catalog).
    pub fn ads_not_ended(
        &self,
        now: Timestamp,
    ) -> (usize, impl Iterator<Item = Result<Ad, UndecodableAd>> + '_) {
        let now = now.as_millis();
        let not_ended = move |slot: &&Slot| slot.end > now;
        let count = self.slots_by_id().filter(not_ended).count();
        let ads = self.slots_by_id().filter(not_ended).map(Slot::ad);
        (count, ads)
    }

    fn slots_by_id(&self) -> impl Iterator<Item = &Slot> + '_ {
        let mut base = self
            .base
            .by_id()
            .filter(|slot| !self.overlay.changes.contains_key(&slot.id))
            .peekable();
        let now = self.built_at();
        let mut changed = self
            .overlay
            .changes
            .values()
            .filter_map(|changed| changed.ad.as_ref())
            .filter(move |slot| slot.end > now)
            .peekable();
        std::iter::from_fn(move || match (base.peek(), changed.peek()) {
            (Some(b), Some(c)) if b.id < c.id => base.next(),
            (Some(_), Some(_)) => changed.next(),
            (Some(_), None) => base.next(),
            (None, _) => changed.next(),
        })
    }

    /// The active ads matching `query` at `now`, in `(endAt, id)` order,
    /// after skipping `page.offset`, at most `page.limit`: their item JSON
    /// (for tests and tools: it panics on an item that is not UTF-8, which
    /// only an index image altered on purpose can hold; the server uses
    /// [`AdIndex::for_each_match`]).
    pub fn query(&self, query: &AudienceQuery, page: Page, now: Timestamp) -> Vec<&str> {
        let mut out = Vec::with_capacity(page.limit.min(self.len()));
        self.for_each_match(query, page, now, |item| {
            out.push(std::str::from_utf8(item).expect("items are rendered from text"))
        });
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
        mut visit: impl FnMut(&'a [u8]),
    ) -> usize {
        let mut visited = 0;
        if page.limit == 0 {
            return visited;
        }
        // Entries outside `per_bit` started before the build; a clock that
        // stepped back must not make them look unstarted-yet-served.
        let now = now.as_millis().max(self.built_at());
        if self.overlay.changes.is_empty() {
            return self
                .base
                .for_each_match_alone(query, page.offset, page.limit, now, visit);
        }
        let Some(mut base) = Cursor::new(&self.base, query, now, &self.overlay.hidden_entries)
        else {
            return visited;
        };
        let Some(mut overlay) = Cursor::new(&self.overlay.segment, query, now, &[]) else {
            return visited;
        };
        let mut skip = page.offset;
        loop {
            let next_changed = overlay.peek();
            if skip > 0 {
                base.skip_words(&mut skip, next_changed.map(|at| overlay.key(at)));
            }
            let from_base = match (base.peek(), next_changed) {
                (Some(b), Some(o)) => base.key(b) < overlay.key(o),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return visited,
            };
            let item = if from_base {
                base.take()
            } else {
                overlay.take()
            };
            if skip > 0 {
                skip -= 1;
                continue;
            }
            visit(item);
            visited += 1;
            if visited == page.limit {
                return visited;
            }
        }
    }

    /// The first instant after `now` at which the set of active ads can
    /// differ from the set at `now`: an answer computed at `now` stays right
    /// (absent writes) until just before it. Activity is strict
    /// (`start < t < end`), so an ad ending at `end` leaves at `end`, and an
    /// ad starting at `start` joins at `start + 1 ms` — also when `start` is
    /// `now` itself.
    pub fn next_change_after(&self, now: Timestamp) -> Option<Timestamp> {
        let now = now.as_millis();
        let hidden = &self.overlay.hidden_ads;
        let ends = [
            self.base.next_end_after(now, hidden),
            self.overlay.segment.next_end_after(now, &[]),
        ];
        let starts = [
            self.base.next_start_from(now, hidden),
            self.overlay.segment.next_start_from(now, &[]),
        ];
        let next = ends
            .into_iter()
            .flatten()
            .chain(starts.into_iter().flatten().map(|start| start + 1))
            .min()?;
        Timestamp::from_millis(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::render_item;
    use adcast_shared::ad::{
        AgeRange, ConditionGroup, ConditionGroupParts, Gender, Targeting, TimeWindow, Title,
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
        // The fast path (no escaping needed) and the escaping path both
        // give what serde_json gives for the same object.
        for title in [
            "plain",
            "Grüße, 世界 🎉",
            "back\\slash",
            "tab\there",
            "nul\u{0}",
            "\u{1f} unit separator",
            "\u{7f} delete is not escaped",
            "",
        ] {
            let end = t(1_700_000_000_123);
            let expected = serde_json::json!({"title": title, "endAt": end.to_string()});
            let rendered: serde_json::Value =
                serde_json::from_str(&render_item(title, end)).unwrap();
            assert_eq!(rendered, expected, "{title:?}");
            let exact = format!(
                "{{\"title\":{},\"endAt\":\"{end}\"}}",
                serde_json::to_string(title).unwrap()
            );
            assert_eq!(&*render_item(title, end), exact, "{title:?}");
        }
    }
}
