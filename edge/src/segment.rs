//! One immutable run of ads, sorted and bitset-indexed: the base of the
//! index, and the small overlay of recent changes on top of it
//! ([`crate::index::AdIndex`] merges the two).
//!
//! Ads are kept sorted by `(endAt, id)`, the order answers are given in.
//! Each condition group of each ad is one **entry** (an ad targeting everyone
//! has one unrestricted entry); entries follow ad order. For every condition
//! value there is a bitset of the entries that allow it (unrestricted entries
//! are in all of them). A query ANDs the bitsets of the dimensions it gives,
//! word by word, starting at the first ad that has not ended, and walks the
//! surviving bits in order ([`Cursor`]) — so the result comes out sorted with
//! no sort at query time.
//!
//! Two kinds of entries need a per-bit check: those of ads with several
//! groups (an ad must count once even when two of its groups match; its
//! entries are adjacent, so "same ad as the last one taken" is enough) and
//! those of ads that had not started when the segment was built (their start
//! is compared with the query time). All other entries are exact, which lets
//! whole words be skipped by popcount when paging deep.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use adcast_shared::ad::{Ad, AdId, AudienceQuery, ConditionGroup, Gender, Platform};
use adcast_shared::country::Country;
use adcast_shared::timestamp::Timestamp;

pub(crate) const AGES: usize = 100;

/// `(endAt, id)` in milliseconds and id: the serving order.
pub(crate) type Key = (i64, i64);

/// An ad with its answer item (`{"title":…,"endAt":…}`) rendered once;
/// shared by every segment that holds the ad.
#[derive(Debug)]
pub struct ServedAd {
    pub ad: Ad,
    pub item_json: Arc<str>,
}

impl ServedAd {
    pub fn new(ad: Ad) -> Arc<ServedAd> {
        let item_json = render_item(ad.title.as_str(), ad.window.end());
        Arc::new(ServedAd { ad, item_json })
    }
}

/// `{"title":"…","endAt":"…"}` with the title JSON-escaped, rendered in a
/// buffer kept per thread so that an item costs one allocation.
pub(crate) fn render_item(title: &str, end: Timestamp) -> Arc<str> {
    thread_local! {
        static ITEM: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    ITEM.with_borrow_mut(|item| {
        item.clear();
        write_item(item, title, end);
        Arc::from(item.as_str())
    })
}

fn write_item(item: &mut String, title: &str, end: Timestamp) {
    item.push_str("{\"title\":");
    // Most titles need no escaping: copy those as they are (a boot renders
    // one item per ad).
    if title
        .bytes()
        .any(|byte| byte == b'"' || byte == b'\\' || byte < 0x20)
    {
        item.push_str(&serde_json::to_string(title).expect("a string serialises"));
    } else {
        item.push('"');
        item.push_str(title);
        item.push('"');
    }
    item.push_str(",\"endAt\":\"");
    item.push_str(std::str::from_utf8(&end.rfc3339_bytes()).expect("ASCII"));
    item.push_str("\"}");
}

/// One ad in a segment, with what the walk reads kept inline.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub end: i64,
    pub start: i64,
    pub id: i64,
    /// The answer item, inline: the walk copies it without touching the ad.
    pub item: Arc<str>,
    /// The ad's targeting, inline when it is simple (see [`InlineTargeting`]).
    targeting: InlineTargeting,
    pub served: Arc<ServedAd>,
}

impl Slot {
    pub fn new(served: Arc<ServedAd>) -> Slot {
        Slot {
            end: served.ad.window.end().as_millis(),
            start: served.ad.window.start().as_millis(),
            id: served.ad.id.get(),
            item: Arc::clone(&served.item_json),
            targeting: InlineTargeting::of(served.ad.targeting.groups()),
            served,
        }
    }

    pub fn key(&self) -> Key {
        (self.end, self.id)
    }

    /// How many entries (condition groups, or one for everyone) the ad has.
    fn entries(&self) -> usize {
        match self.targeting {
            InlineTargeting::Everyone | InlineTargeting::One(_) => 1,
            InlineTargeting::InAd => self.served.ad.targeting.groups().len(),
        }
    }
}

/// What an entry allows, in the form the bitsets are built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct GroupBits {
    /// Bit `Gender::index` set for each allowed gender.
    genders: u8,
    /// Bit `Platform::index` set for each allowed platform.
    platforms: u8,
    /// Allowed ages, `low..=high` within 1–100 (`low > high`: none).
    ages: (u8, u8),
    /// The country indexes when there are at most [`INLINE_COUNTRIES`].
    countries: [u16; INLINE_COUNTRIES],
    /// How many countries the group names; 0: no country restriction.
    country_count: u16,
}

const INLINE_COUNTRIES: usize = 3;

impl GroupBits {
    const EVERYONE: GroupBits = GroupBits {
        genders: 0b11,
        platforms: 0b111,
        ages: (1, AGES as u8),
        countries: [0; INLINE_COUNTRIES],
        country_count: 0,
    };

    fn of(group: &ConditionGroup) -> GroupBits {
        let genders = mask_of(group.genders().iter().map(|g| g.index()), 0b11);
        let platforms = mask_of(group.platforms().iter().map(|p| p.index()), 0b111);
        let ages = group.age().map_or((1, AGES as u8), |range| {
            (range.start().max(1), range.end().min(AGES as u8))
        });
        let mut countries = [0; INLINE_COUNTRIES];
        if group.countries().len() <= INLINE_COUNTRIES {
            for (index, country) in countries.iter_mut().zip(group.countries()) {
                *index = country.index() as u16;
            }
        }
        GroupBits {
            genders,
            platforms,
            ages,
            countries,
            country_count: group.countries().len() as u16,
        }
    }

    /// Whether the countries are held here (otherwise they are in the ad).
    fn countries_inline(&self) -> bool {
        usize::from(self.country_count) <= INLINE_COUNTRIES
    }
}

/// The bit of each index given, or `all` when none is: an empty list
/// restricts nothing.
fn mask_of(indexes: impl Iterator<Item = usize>, all: u8) -> u8 {
    match indexes.fold(0, |mask, index| mask | 1 << index) {
        0 => all,
        mask => mask,
    }
}

/// An ad's targeting kept in its slot when it is one entry that fits: a
/// build then reads slots in order and never follows a pointer into the ad
/// (ads sorted by end lie all over memory; those loads dominated a boot).
#[derive(Clone, Copy, Debug)]
enum InlineTargeting {
    Everyone,
    One(GroupBits),
    /// Several groups, or more countries than fit: read the ad.
    InAd,
}

impl InlineTargeting {
    fn of(groups: &[ConditionGroup]) -> InlineTargeting {
        match groups {
            [] => InlineTargeting::Everyone,
            [group] => {
                let bits = GroupBits::of(group);
                if bits.countries_inline() {
                    InlineTargeting::One(bits)
                } else {
                    InlineTargeting::InAd
                }
            }
            _ => InlineTargeting::InAd,
        }
    }
}

/// A fixed-size set of entry positions.
#[derive(Clone, Debug)]
struct Bitset(Box<[u64]>);

impl Bitset {
    fn new(words: usize) -> Bitset {
        Bitset(vec![0; words].into_boxed_slice())
    }

    fn bytes(&self) -> usize {
        self.0.len() * 8
    }
}

/// Catalogs at least this large are prepared on two threads at boot.
const PARALLEL_FROM: usize = 20_000;

/// The slots of two runs sorted by key, in one run sorted by key.
fn merge_sorted(first: Vec<Slot>, second: Vec<Slot>) -> Vec<Slot> {
    let mut merged = Vec::with_capacity(first.len() + second.len());
    let mut first = first.into_iter().peekable();
    let mut second = second.into_iter().peekable();
    loop {
        let take_first = match (first.peek(), second.peek()) {
            (Some(a), Some(b)) => a.key() < b.key(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return merged,
        };
        merged.extend(if take_first {
            first.next()
        } else {
            second.next()
        });
    }
}

/// One 64-entry word of every bitset, filled entry by entry and stored
/// when the word is full: a build touches each bitset once per word, not
/// once per entry and value.
struct WordBits {
    word: usize,
    valid: u64,
    per_bit: u64,
    gender: [u64; 2],
    platform: [u64; 3],
    age: [u64; AGES],
    any_country: u64,
    /// `(country index, bits)` for the countries this word's entries name.
    countries: Vec<(usize, u64)>,
}

impl WordBits {
    fn new(word: usize) -> WordBits {
        WordBits {
            word,
            valid: 0,
            per_bit: 0,
            gender: [0; 2],
            platform: [0; 3],
            age: [0; AGES],
            any_country: 0,
            countries: Vec::new(),
        }
    }

    /// Adds the entry `bit` of this word, allowing what `bits` allows;
    /// `countries` are the group's countries when they are not inline.
    fn add(&mut self, bit: u64, bits: &GroupBits, countries: &[Country], per_bit: bool) {
        self.valid |= bit;
        if per_bit {
            self.per_bit |= bit;
        }
        for gender in Gender::ALL {
            if bits.genders & 1 << gender.index() != 0 {
                self.gender[gender.index()] |= bit;
            }
        }
        for platform in Platform::ALL {
            if bits.platforms & 1 << platform.index() != 0 {
                self.platform[platform.index()] |= bit;
            }
        }
        let (low, high) = bits.ages;
        if low <= high {
            self.age[usize::from(low - 1)..usize::from(high)]
                .iter_mut()
                .for_each(|ages| *ages |= bit);
        }
        if bits.country_count == 0 {
            self.any_country |= bit;
        } else if bits.countries_inline() {
            let inline = &bits.countries[..usize::from(bits.country_count)];
            inline
                .iter()
                .for_each(|&index| self.allow_country(usize::from(index), bit));
        } else {
            countries
                .iter()
                .for_each(|country| self.allow_country(country.index(), bit));
        }
    }

    fn allow_country(&mut self, index: usize, bit: u64) {
        match self.countries.iter_mut().find(|(have, _)| *have == index) {
            Some((_, bits)) => *bits |= bit,
            None => self.countries.push((index, bit)),
        }
    }

    /// Writes this word into `segment`'s bitsets.
    fn store(&self, segment: &mut Segment) {
        let word = self.word;
        if word >= segment.valid.0.len() {
            return; // no entries at all
        }
        segment.valid.0[word] = self.valid;
        segment.per_bit.0[word] = self.per_bit;
        segment.any_country.0[word] = self.any_country;
        for (bitset, bits) in segment.gender.iter_mut().zip(self.gender) {
            bitset.0[word] = bits;
        }
        for (bitset, bits) in segment.platform.iter_mut().zip(self.platform) {
            bitset.0[word] = bits;
        }
        for (bitset, bits) in segment.age.iter_mut().zip(self.age) {
            bitset.0[word] = bits;
        }
        let words = segment.valid.0.len();
        for &(country, bits) in &self.countries {
            segment.country[country]
                .get_or_insert_with(|| Bitset::new(words))
                .0[word] = bits;
        }
    }
}

/// Identifies a built segment, so that a compaction result is only adopted
/// by the lineage it was built from.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// An immutable, indexed, sorted run of ads; build a new one to change it.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Serving order: `(endAt, id)` ascending.
    slots: Vec<Slot>,
    /// For each entry, its ad's position in `slots` (non-decreasing).
    entry_ad: Vec<u32>,
    /// `(id, position)` sorted by id: where each ad is.
    by_id: Vec<(i64, u32)>,
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
    /// `(startAt, position)` of ads starting after the build instant, by
    /// start: the moments the answer set can change besides the ends.
    future_starts: Vec<(i64, u32)>,
    /// The build instant: entries not in `per_bit` started before it, and
    /// every slot ends after it.
    built_at: i64,
    generation: u64,
    /// `(generation, seq)`: this segment is the compaction of that
    /// generation's state through that sequence number.
    compacted_from: Option<(u64, u64)>,
}

impl Segment {
    /// Indexes the ads that have not ended at `now` (any order).
    pub fn build(ads: impl IntoIterator<Item = Arc<ServedAd>>, now: i64) -> Segment {
        let mut slots: Vec<Slot> = ads
            .into_iter()
            .map(Slot::new)
            .filter(|slot| slot.end > now)
            .collect();
        slots.sort_unstable_by_key(Slot::key);
        Segment::from_sorted(slots, now)
    }

    /// Indexes a whole catalog that has not ended at `now` (a boot). Large
    /// catalogs are rendered and sorted in two halves on two threads, then
    /// merged: the work before the bitsets are built is most of a boot.
    pub fn build_catalog(mut ads: Vec<Ad>, now: i64) -> Segment {
        let sorted_slots = |ads: Vec<Ad>| {
            let mut slots: Vec<Slot> = ads
                .into_iter()
                .map(|ad| Slot::new(ServedAd::new(ad)))
                .filter(|slot| slot.end > now)
                .collect();
            slots.sort_unstable_by_key(Slot::key);
            slots
        };
        if ads.len() < PARALLEL_FROM {
            return Segment::from_sorted(sorted_slots(ads), now);
        }
        let second_half = ads.split_off(ads.len() / 2);
        let (first, second) = std::thread::scope(|scope| {
            let second = scope.spawn(|| sorted_slots(second_half));
            let first = sorted_slots(ads);
            let second = second
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (first, second)
        });
        Segment::from_sorted(merge_sorted(first, second), now)
    }

    /// Indexes `slots`, which must be sorted by key, distinct by id, and all
    /// end after `now`.
    pub fn from_sorted(slots: Vec<Slot>, now: i64) -> Segment {
        debug_assert!(slots.windows(2).all(|w| w[0].key() < w[1].key()));
        let entry_count: usize = slots.iter().map(Slot::entries).sum();
        let words = entry_count.div_ceil(64);
        let mut by_id: Vec<(i64, u32)> = slots
            .iter()
            .enumerate()
            .map(|(position, slot)| (slot.id, position as u32))
            .collect();
        by_id.sort_unstable();
        let mut segment = Segment {
            slots: Vec::new(),
            entry_ad: Vec::with_capacity(entry_count),
            by_id,
            valid: Bitset::new(words),
            gender: [Bitset::new(words), Bitset::new(words)],
            platform: [Bitset::new(words), Bitset::new(words), Bitset::new(words)],
            age: (0..AGES).map(|_| Bitset::new(words)).collect(),
            country: vec![None; Country::COUNT],
            any_country: Bitset::new(words),
            per_bit: Bitset::new(words),
            future_starts: Vec::new(),
            built_at: now,
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
            compacted_from: None,
        };
        let mut word = WordBits::new(0);
        let mut entry = 0;
        for (position, slot) in slots.iter().enumerate() {
            if slot.start >= now {
                segment.future_starts.push((slot.start, position as u32));
            }
            let needs_per_bit = slot.entries() > 1 || slot.start >= now;
            let mut add = |bits: &GroupBits, countries: &[Country]| {
                if entry / 64 != word.word {
                    word.store(&mut segment);
                    word = WordBits::new(entry / 64);
                }
                segment.entry_ad.push(position as u32);
                word.add(1 << (entry % 64), bits, countries, needs_per_bit);
                entry += 1;
            };
            match slot.targeting {
                InlineTargeting::Everyone => add(&GroupBits::EVERYONE, &[]),
                InlineTargeting::One(bits) => add(&bits, &[]),
                InlineTargeting::InAd => {
                    for group in slot.served.ad.targeting.groups() {
                        add(&GroupBits::of(group), group.countries());
                    }
                }
            }
        }
        word.store(&mut segment);
        segment.future_starts.sort_unstable();
        segment.slots = slots;
        segment
    }

    /// Marks this segment as the compaction of `generation` through `seq`.
    pub fn mark_compacted_from(&mut self, generation: u64, seq: u64) {
        self.compacted_from = Some((generation, seq));
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn compacted_from(&self) -> Option<(u64, u64)> {
        self.compacted_from
    }

    pub fn built_at(&self) -> i64 {
        self.built_at
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Ads in id order.
    pub fn by_id(&self) -> impl Iterator<Item = &Slot> + '_ {
        self.by_id
            .iter()
            .map(|&(_, position)| &self.slots[position as usize])
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn entries(&self) -> usize {
        self.entry_ad.len()
    }

    /// Where the ad `id` is, if it is here.
    pub fn position_of(&self, id: AdId) -> Option<u32> {
        let id = id.get();
        self.by_id
            .binary_search_by_key(&id, |&(have, _)| have)
            .ok()
            .map(|at| self.by_id[at].1)
    }

    /// The entries of the ad at `position`: a run `first..first + count`.
    pub fn entries_of(&self, position: u32) -> (u32, u32) {
        let first = self.entry_ad.partition_point(|&ad| ad < position);
        let count = self.slots[position as usize]
            .served
            .ad
            .targeting
            .groups()
            .len()
            .max(1);
        (first as u32, count as u32)
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

    /// The first end after `now` of an ad not `hidden` (sorted positions).
    pub fn next_end_after(&self, now: i64, hidden: &[u32]) -> Option<i64> {
        let from = self.slots.partition_point(|slot| slot.end <= now);
        (from..self.slots.len())
            .find(|&position| hidden.binary_search(&(position as u32)).is_err())
            .map(|position| self.slots[position].end)
    }

    /// The first start at or after `now` of an ad not `hidden`.
    pub fn next_start_from(&self, now: i64, hidden: &[u32]) -> Option<i64> {
        let from = self
            .future_starts
            .partition_point(|&(start, _)| start < now);
        self.future_starts[from..]
            .iter()
            .find(|(_, position)| hidden.binary_search(position).is_err())
            .map(|&(start, _)| start)
    }
}

impl Segment {
    /// The whole walk over this segment alone (no overlay, nothing
    /// hidden): the tight loop for a state without changes since its base.
    pub fn for_each_match_alone<'a>(
        &'a self,
        query: &AudienceQuery,
        offset: usize,
        limit: usize,
        now: i64,
        mut visit: impl FnMut(&'a str),
    ) -> usize {
        let mut visited = 0;
        let Some(cursor) = Cursor::new(self, query, now, &[]) else {
            return visited;
        };
        let (filters, country, first_entry) = (cursor.filters, cursor.country, cursor.first_entry);
        let mut skip = offset;
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
                    let slot = &self.slots[ad_position as usize];
                    if slot.start >= now || last_ad == Some(ad_position) {
                        continue;
                    }
                }
                last_ad = Some(ad_position);
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                visit(&self.slots[ad_position as usize].item);
                visited += 1;
                if visited == limit {
                    return visited;
                }
            }
        }
        visited
    }
}

/// A walk over one segment's matches for one query, in serving order.
pub(crate) struct Cursor<'a> {
    segment: &'a Segment,
    /// The three dimension bitsets (or `valid` for a dimension not asked).
    filters: [&'a [u64]; 3],
    /// `Some` when the query names a country: that country's bitset, if any
    /// entry names it.
    country: Option<Option<&'a [u64]>>,
    /// `(word, bits)` to clear, sorted by word: hidden entries.
    hidden: &'a [(u32, u64)],
    now: i64,
    /// The first entry of an ad that has not ended at `now`.
    first_entry: usize,
    /// The next word to load.
    next_word: usize,
    /// The loaded word: its remaining matched bits and per-bit mask.
    word: usize,
    bits: u64,
    per_bit: u64,
    last_ad: Option<u32>,
    peeked: Option<u32>,
}

impl<'a> Cursor<'a> {
    /// `None` when nothing can match (an age outside 1–100, which the API
    /// rejects anyway). `now` must not be before the segment's build.
    pub fn new(
        segment: &'a Segment,
        query: &AudienceQuery,
        now: i64,
        hidden: &'a [(u32, u64)],
    ) -> Option<Cursor<'a>> {
        debug_assert!(now >= segment.built_at);
        let mut filters: [&[u64]; 3] = [&segment.valid.0; 3];
        if let Some(gender) = query.gender {
            filters[0] = &segment.gender[gender.index()].0;
        }
        if let Some(platform) = query.platform {
            filters[1] = &segment.platform[platform.index()].0;
        }
        match query.age {
            Some(age @ 1..=100) => filters[2] = &segment.age[usize::from(age - 1)].0,
            Some(_) => return None,
            None => {}
        }
        let country = query
            .country
            .map(|c| segment.country[c.index()].as_ref().map(|bits| &bits.0[..]));
        // Ads are sorted by end: those ended at `now` form a prefix.
        let first_entry = segment
            .entry_ad
            .partition_point(|&ad| segment.slots[ad as usize].end <= now);
        Some(Cursor {
            segment,
            filters,
            country,
            hidden,
            now,
            first_entry,
            next_word: first_entry / 64,
            word: 0,
            bits: 0,
            per_bit: 0,
            last_ad: None,
            peeked: None,
        })
    }

    /// The matched (not yet per-bit checked) entries of word `word`.
    #[inline]
    fn matched(&mut self, word: usize) -> u64 {
        let mut matched = self.filters[0][word] & self.filters[1][word] & self.filters[2][word];
        if word == self.first_entry / 64 {
            matched &= u64::MAX << (self.first_entry % 64);
        }
        if let Some(restricted) = self.country {
            matched &= restricted.map_or(0, |bits| bits[word]) | self.segment.any_country.0[word];
        }
        while let Some(&(hidden_word, mask)) = self.hidden.first() {
            if hidden_word as usize > word {
                break;
            }
            if hidden_word as usize == word {
                matched &= !mask;
            }
            if hidden_word as usize <= word {
                self.hidden = &self.hidden[1..];
            }
        }
        matched
    }

    /// The position of the next matching ad, without taking it.
    #[inline]
    pub fn peek(&mut self) -> Option<u32> {
        if self.peeked.is_some() {
            return self.peeked;
        }
        loop {
            while self.bits != 0 {
                let bit = self.bits.trailing_zeros() as usize;
                self.bits &= self.bits - 1;
                let ad = self.segment.entry_ad[self.word * 64 + bit];
                if self.per_bit & (1 << bit) != 0 {
                    let slot = &self.segment.slots[ad as usize];
                    if slot.start >= self.now || self.last_ad == Some(ad) {
                        continue;
                    }
                }
                self.last_ad = Some(ad);
                self.peeked = Some(ad);
                return self.peeked;
            }
            if self.next_word >= self.segment.valid.0.len() {
                return None;
            }
            let word = self.next_word;
            self.next_word += 1;
            self.bits = self.matched(word);
            self.word = word;
            self.per_bit = self.segment.per_bit.0[word];
        }
    }

    /// The peeked ad's key.
    #[inline]
    pub fn key(&self, position: u32) -> Key {
        self.segment.slots[position as usize].key()
    }

    /// Takes the peeked ad (call after a `Some` from [`Cursor::peek`]).
    #[inline]
    pub fn take(&mut self) -> &'a str {
        let position = self.peeked.take().expect("peeked before taking");
        &self.segment.slots[position as usize].item
    }

    /// Skips whole words of exact matches while `skip` covers them and they
    /// all come before `before` (the other segment's next key): the
    /// popcount fast path for deep pages. Does nothing inside a word.
    #[inline]
    pub fn skip_words(&mut self, skip: &mut usize, before: Option<Key>) {
        if self.peeked.is_some() || self.bits != 0 {
            return;
        }
        let words = self.segment.valid.0.len();
        while self.next_word < words {
            let word = self.next_word;
            let matched = self.matched(word);
            let count = matched.count_ones() as usize;
            let per_bit = self.segment.per_bit.0[word];
            let last_entry = (word * 64 + 63).min(self.segment.entry_ad.len() - 1);
            let exact = matched & per_bit == 0
                && count <= *skip
                && before.is_none_or(|key| {
                    let ad = self.segment.entry_ad[last_entry];
                    self.segment.slots[ad as usize].key() < key
                });
            self.next_word += 1;
            if exact {
                *skip -= count;
                continue;
            }
            self.word = word;
            self.bits = matched;
            self.per_bit = per_bit;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adcast_shared::sample::sample_ads;

    fn words(segment: &Segment) -> Vec<&[u64]> {
        let fixed = [&segment.valid, &segment.any_country, &segment.per_bit]
            .into_iter()
            .chain(&segment.gender)
            .chain(&segment.platform)
            .chain(&segment.age);
        let countries = segment
            .country
            .iter()
            .map(|bits| bits.as_ref().map_or(&[][..], |bits| &bits.0[..]));
        fixed.map(|bits| &bits.0[..]).chain(countries).collect()
    }

    /// The two-thread boot build is the plain build: same order, entries,
    /// bits and starts, with ads ended and ads not yet started at the build.
    #[test]
    fn a_catalog_built_on_two_threads_equals_the_plain_build() {
        let now = Timestamp::now().as_millis();
        let ads = sample_ads(
            PARALLEL_FROM * 2 + 7,
            11,
            Timestamp::from_millis(now).unwrap(),
        );
        let day = 86_400_000;
        // Sample ads started up to 30 days ago and end within 60 days.
        // 15 days back, about half have not started; 20 days on, about a
        // third have ended.
        for (at, some_not_started) in [(now - 15 * day, true), (now + 20 * day, false)] {
            let parallel = Segment::build_catalog(ads.clone(), at);
            let plain = Segment::build(ads.iter().cloned().map(ServedAd::new), at);
            let keys = |segment: &Segment| segment.slots.iter().map(Slot::key).collect::<Vec<_>>();
            assert!(plain.len() > PARALLEL_FROM);
            if some_not_started {
                assert!(plain.future_starts.len() > ads.len() / 4);
            } else {
                assert!(plain.len() < ads.len() * 3 / 4);
            }
            assert_eq!(keys(&parallel), keys(&plain));
            assert_eq!(parallel.entry_ad, plain.entry_ad);
            assert_eq!(parallel.by_id, plain.by_id);
            assert_eq!(parallel.future_starts, plain.future_starts);
            assert_eq!(words(&parallel), words(&plain));
        }
    }

    #[test]
    fn merging_keeps_key_order() {
        let now = Timestamp::now();
        let slots = |ids: &[i64]| {
            let mut slots: Vec<Slot> = sample_ads(40, 3, now)
                .into_iter()
                .filter(|ad| ids.contains(&ad.id.get()))
                .map(|ad| Slot::new(ServedAd::new(ad)))
                .collect();
            slots.sort_unstable_by_key(Slot::key);
            slots
        };
        let merged = merge_sorted(slots(&[1, 4, 5, 9, 30]), slots(&[2, 3, 17, 40]));
        let mut expected = slots(&[1, 2, 3, 4, 5, 9, 17, 30, 40]);
        expected.sort_unstable_by_key(Slot::key);
        let keys = |slots: &[Slot]| slots.iter().map(Slot::key).collect::<Vec<_>>();
        assert_eq!(keys(&merged), keys(&expected));
        assert_eq!(
            keys(&merge_sorted(Vec::new(), slots(&[7]))),
            keys(&slots(&[7]))
        );
    }
}
