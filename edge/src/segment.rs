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

use adcast_shared::ad::{
    Ad, AdId, AgeRange, AudienceQuery, ConditionGroup, EncodedAd, EncodedGroup, Gender, Platform,
    Targeting, TimeWindow, Title,
};
use adcast_shared::country::Country;
use adcast_shared::timestamp::{Timestamp, RFC3339_LEN};

use crate::mmap::FileBytes;

pub(crate) const AGES: usize = 100;

/// `(endAt, id)` in milliseconds and id: the serving order.
pub(crate) type Key = (i64, i64);

/// An ad as an edge holds it, as a range of a shared buffer: an allocation
/// of its own (an ad from an event), one of a boot's chunks (ads decoded
/// from a snapshot, written one after another), or the mapped index image
/// it was loaded from. Laid out the same way in each: its answer item
/// (`{"title":…,"endAt":…}`, rendered once, what the walk copies), then the
/// rest of the ad (id, window, targeting) in bincode, then, for an ad
/// whose targeting its slot cannot hold, one record per condition group
/// ([`ServedAd::groups`]). A million ads cost a million of these and
/// nothing else per ad; the full [`Ad`] is decoded again only to write a
/// snapshot.
#[derive(Clone, Debug)]
pub(crate) struct ServedAd {
    bytes: AdBytes,
    item_len: u32,
    /// Where the group records start (see [`ServedAd::groups`]).
    groups_at: u32,
}

/// Where a served ad's bytes are: `len` bytes at `at` of `buffer`, checked
/// to lie inside it when made. A buffer lives as long as any ad in it: a
/// boot's chunk, or an index image, stays whole until its last ad is
/// dropped, so what a boot loaded is the most such buffers ever hold.
#[derive(Clone, Debug)]
struct AdBytes {
    buffer: Arc<FileBytes>,
    at: u32,
    len: u32,
}

impl AdBytes {
    #[inline]
    fn get(&self) -> &[u8] {
        &self.buffer[self.at as usize..][..self.len as usize]
    }
}

/// An ad whose bytes do not decode: only possible for an ad read from an
/// index image that was altered and its checksum forged to match (see
/// [`crate::image`]).
#[derive(Debug, thiserror::Error)]
#[error("ad {id} cannot be decoded from its compact form")]
pub struct UndecodableAd {
    pub id: i64,
}

/// The item's fixed text around the title and the end time.
const ITEM_OPEN: &str = "{\"title\":";
const ITEM_END_AT: &str = ",\"endAt\":\"";
const ITEM_CLOSE: &str = "\"}";

/// Where a served ad's parts are in the bytes [`ServedAd::write`] appended.
#[derive(Clone, Copy, Debug)]
struct Written {
    at: u32,
    len: u32,
    item_len: u32,
    groups_at: u32,
}

impl ServedAd {
    /// With `groups`, the ad's condition groups are also kept in the form
    /// the bitsets are built from, for ads whose slot cannot hold them.
    pub fn new(ad: &Ad, groups: bool) -> ServedAd {
        thread_local! {
            static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUFFER.with_borrow_mut(|buffer| {
            buffer.clear();
            let written = ServedAd::write_ad(buffer, ad, groups);
            ServedAd::placed(written, &Arc::new(FileBytes::from(buffer.to_vec())))
        })
    }

    /// Appends the bytes of [`ServedAd::new`] to `out`.
    fn write_ad(out: &mut Vec<u8>, ad: &Ad, groups: bool) -> Written {
        let groups = groups.then(|| ad.targeting.groups().iter());
        ServedAd::write(
            out,
            ad.title.as_str(),
            ad.window.end(),
            |out| write_rest(out, ad),
            groups,
        )
    }

    /// The bytes of [`ServedAd::new`] of the ad read in place, appended to
    /// `out`: its encoding without the title is the rest as [`write_rest`]
    /// writes it (both canonical).
    fn write_encoded(out: &mut Vec<u8>, ad: &EncodedAd<'_>, groups: bool) -> Written {
        let rest = |out: &mut Vec<u8>| {
            for piece in ad.without_title() {
                out.extend_from_slice(piece);
            }
        };
        ServedAd::write(
            out,
            ad.title,
            ad.window.end(),
            rest,
            groups.then(|| ad.groups()),
        )
    }

    fn write<G: GroupSource>(
        out: &mut Vec<u8>,
        title: &str,
        end: Timestamp,
        write_rest: impl FnOnce(&mut Vec<u8>),
        groups: Option<impl Iterator<Item = G>>,
    ) -> Written {
        let at = out.len();
        write_item(out, title, end);
        let item_len = out.len() - at;
        write_rest(out);
        let groups_at = out.len() - at;
        for group in groups.into_iter().flatten() {
            GroupBits::write_record(&group, out);
        }
        let fits = |n: usize| u32::try_from(n).expect("an ad's bytes fit a u32");
        Written {
            at: fits(at),
            len: fits(out.len() - at),
            item_len: fits(item_len),
            groups_at: fits(groups_at),
        }
    }

    /// The served ad `layout` describes in `buffer`, which holds the bytes
    /// written.
    fn placed(written: Written, buffer: &Arc<FileBytes>) -> ServedAd {
        ServedAd {
            bytes: AdBytes {
                buffer: Arc::clone(buffer),
                at: written.at,
                len: written.len,
            },
            item_len: written.item_len,
            groups_at: written.groups_at,
        }
    }

    /// The served ad whose bytes are `file[at..at + len]`, laid out as
    /// [`ServedAd::parts`] gave them; `None` unless the range lies in
    /// `file` and the parts in the range.
    pub fn in_image(
        file: &Arc<FileBytes>,
        at: u32,
        len: u32,
        item_len: u32,
        groups_at: u32,
    ) -> Option<ServedAd> {
        let fits = (at as usize)
            .checked_add(len as usize)
            .is_some_and(|end| end <= file.len());
        let written = Written {
            at,
            len,
            item_len,
            groups_at,
        };
        (fits && item_len <= groups_at && groups_at <= len).then(|| ServedAd::placed(written, file))
    }

    /// Where the buffer its bytes are in lives (in tests: which ads share one).
    #[cfg(test)]
    pub fn buffer_address(&self) -> usize {
        Arc::as_ptr(&self.bytes.buffer) as usize
    }

    /// The mapped index image its bytes are in, if they are in one.
    pub fn image(&self) -> Option<&Arc<FileBytes>> {
        Some(&self.bytes.buffer).filter(|buffer| buffer.is_mapped())
    }

    /// All of its bytes, the item's length, and where the group records
    /// start: what [`ServedAd::in_image`] takes back.
    pub fn parts(&self) -> (&[u8], u32, u32) {
        (self.bytes.get(), self.item_len, self.groups_at)
    }

    /// The answer item: UTF-8 JSON text.
    #[inline]
    pub fn item(&self) -> &[u8] {
        &self.bytes.get()[..self.item_len as usize]
    }

    /// The ad, decoded again; `None` when its bytes do not decode (see
    /// [`UndecodableAd`]).
    pub fn ad(&self) -> Option<Ad> {
        let (id, window, targeting) = self.rest()?;
        let framing = ITEM_END_AT.len() + RFC3339_LEN + ITEM_CLOSE.len();
        let item = self.item();
        let quoted_title = item.get(ITEM_OPEN.len()..item.len().saturating_sub(framing))?;
        let title: String = serde_json::from_slice(quoted_title).ok()?;
        Some(Ad {
            id,
            title: Title::parse(title).ok()?,
            window,
            targeting,
        })
    }

    /// The group records kept with `groups`: each group's bits, and its
    /// countries (two bytes each) when they are not inline.
    fn groups(&self) -> impl Iterator<Item = (GroupBits, &[u8])> + '_ {
        let mut records = &self.bytes.get()[self.groups_at as usize..];
        std::iter::from_fn(move || {
            let (bits, countries, rest) = GroupBits::read_record(records)?;
            records = rest;
            Some((bits, countries))
        })
    }

    #[inline]
    fn group_bytes(&self) -> &[u8] {
        self.bytes
            .get()
            .get(self.groups_at as usize..)
            .unwrap_or_default()
    }

    fn rest(&self) -> Option<(AdId, TimeWindow, Targeting)> {
        let bytes = &self.bytes.get()[self.item_len as usize..self.groups_at as usize];
        bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .ok()
            .map(|(rest, _)| rest)
    }
}

/// `(id, window, targeting)` in bincode's standard serde form (what
/// [`ServedAd::rest`] decodes), written by hand: through serde it cost more
/// than the rest of a slot (a boot writes one per ad). The tests hold it to
/// bincode's own encoder.
fn write_rest(out: &mut Vec<u8>, ad: &Ad) {
    write_signed(out, ad.id.get());
    write_signed(out, ad.window.start().as_millis());
    write_signed(out, ad.window.end().as_millis());
    let groups = ad.targeting.groups();
    write_varint(out, groups.len() as u64);
    for group in groups {
        match group.age() {
            None => out.push(0),
            Some(range) => out.extend_from_slice(&[1, range.start(), range.end()]),
        }
        write_varint(out, group.genders().len() as u64);
        for gender in group.genders() {
            write_varint(out, gender.index() as u64);
        }
        write_varint(out, group.countries().len() as u64);
        for country in group.countries() {
            out.extend_from_slice(&<[u8; 2]>::from(*country));
        }
        write_varint(out, group.platforms().len() as u64);
        for platform in group.platforms() {
            write_varint(out, platform.index() as u64);
        }
    }
}

/// Bincode's varint: below 251 the byte itself, else a marker and 2, 4 or
/// 8 little-endian bytes.
fn write_varint(out: &mut Vec<u8>, value: u64) {
    if value < 251 {
        out.push(value as u8);
    } else if value <= u64::from(u16::MAX) {
        out.push(251);
        out.extend_from_slice(&(value as u16).to_le_bytes());
    } else if value <= u64::from(u32::MAX) {
        out.push(252);
        out.extend_from_slice(&(value as u32).to_le_bytes());
    } else {
        out.push(253);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// A signed varint: zigzag-encoded first.
fn write_signed(out: &mut Vec<u8>, value: i64) {
    write_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// `{"title":"…","endAt":"…"}` with the title JSON-escaped.
#[cfg(test)]
pub(crate) fn render_item(title: &str, end: Timestamp) -> String {
    let mut item = Vec::new();
    write_item(&mut item, title, end);
    String::from_utf8(item).expect("items are text")
}

fn write_item(item: &mut Vec<u8>, title: &str, end: Timestamp) {
    item.extend_from_slice(ITEM_OPEN.as_bytes());
    // Most titles need no escaping: copy those as they are (a boot renders
    // one item per ad; the test has no early exit, so it is vectorised).
    let needs_escaping = title.bytes().fold(false, |any, byte| {
        any | (byte == b'"') | (byte == b'\\') | (byte < 0x20)
    });
    if needs_escaping {
        serde_json::to_writer(&mut *item, title).expect("a string serialises");
    } else {
        item.push(b'"');
        item.extend_from_slice(title.as_bytes());
        item.push(b'"');
    }
    item.extend_from_slice(ITEM_END_AT.as_bytes());
    item.extend_from_slice(&end.rfc3339_bytes());
    item.extend_from_slice(ITEM_CLOSE.as_bytes());
}

/// One ad in a segment, with what the walk reads kept inline.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub end: i64,
    pub start: i64,
    pub id: AdId,
    /// The ad's targeting, inline when it is simple (see [`InlineTargeting`]).
    targeting: InlineTargeting,
    pub served: ServedAd,
}

impl Slot {
    pub fn new(ad: &Ad) -> Slot {
        let targeting = InlineTargeting::of(ad.targeting.groups().iter());
        let served = ServedAd::new(ad, targeting.in_ad());
        Slot::of_parts(ad.id, ad.window, targeting, served)
    }

    /// [`Slot::new`] of the ad read in place, without building it.
    #[cfg(test)]
    pub fn from_encoded(ad: &EncodedAd<'_>) -> Slot {
        let mut bytes = Vec::new();
        let unplaced = Slot::write_encoded(ad, &mut bytes);
        unplaced.placed(&Arc::new(FileBytes::from(bytes)))
    }

    /// [`Slot::from_encoded`], its bytes appended to `buffer`: the slot is
    /// made once `buffer` is shared ([`UnplacedSlot::placed`]).
    pub fn write_encoded(ad: &EncodedAd<'_>, buffer: &mut Vec<u8>) -> UnplacedSlot {
        let targeting = InlineTargeting::of(ad.groups());
        UnplacedSlot {
            id: ad.id,
            window: ad.window,
            targeting,
            written: ServedAd::write_encoded(buffer, ad, targeting.in_ad()),
        }
    }

    fn of_parts(
        id: AdId,
        window: TimeWindow,
        targeting: InlineTargeting,
        served: ServedAd,
    ) -> Slot {
        Slot {
            end: window.end().as_millis(),
            start: window.start().as_millis(),
            id,
            targeting,
            served,
        }
    }

    pub fn key(&self) -> Key {
        (self.end, self.id.get())
    }

    /// The ad, decoded again from its compact form.
    pub fn ad(&self) -> Result<Ad, UndecodableAd> {
        self.served.ad().ok_or(UndecodableAd { id: self.id.get() })
    }

    /// What each of the ad's entries allows, with its group record's
    /// country bytes (empty for targeting held in the slot).
    fn for_each_entry(&self, mut visit: impl FnMut(&GroupBits, &[u8])) {
        match self.targeting {
            InlineTargeting::Everyone => visit(&GroupBits::EVERYONE, &[]),
            InlineTargeting::One(bits) => visit(&bits, &[]),
            InlineTargeting::InAd { .. } => {
                for (bits, countries) in self.served.groups() {
                    visit(&bits, countries);
                }
            }
        }
    }

    /// The ad's group records, unless its slot holds its targeting.
    #[inline]
    fn group_bytes(&self) -> Option<&[u8]> {
        match self.targeting {
            InlineTargeting::InAd { .. } => Some(self.served.group_bytes()),
            _ => None,
        }
    }

    /// How many entries (condition groups, or one for everyone) the ad has.
    fn entries(&self) -> usize {
        match self.targeting {
            InlineTargeting::Everyone | InlineTargeting::One(_) => 1,
            InlineTargeting::InAd { groups } => groups as usize,
        }
    }
}

/// A slot whose bytes are written into a buffer not yet shared.
pub(crate) struct UnplacedSlot {
    id: AdId,
    window: TimeWindow,
    targeting: InlineTargeting,
    written: Written,
}

impl UnplacedSlot {
    /// The slot, its bytes in `buffer` (the buffer they were written to).
    pub fn placed(self, buffer: &Arc<FileBytes>) -> Slot {
        let served = ServedAd::placed(self.written, buffer);
        Slot::of_parts(self.id, self.window, self.targeting, served)
    }
}

// 64 bytes: a boot sorts and merges a million slots, and the walk reads
// one per ad it looks at.
const _: () = assert!(std::mem::size_of::<Slot>() == 64);

/// Bytes of a slot's record in an index image ([`Slot::write_record`]).
pub(crate) const SLOT_RECORD: usize = 56;

impl Slot {
    /// Appends this slot's record to `out`: its key and start, where its
    /// bytes are (`at` in the image, their length and parts), and its
    /// inline targeting.
    pub fn write_record(&self, at: u32, out: &mut Vec<u8>) {
        let (bytes, item_len, groups_at) = self.served.parts();
        out.extend_from_slice(&self.end.to_le_bytes());
        out.extend_from_slice(&self.start.to_le_bytes());
        out.extend_from_slice(&self.id.get().to_le_bytes());
        for field in [at, bytes.len() as u32, item_len, groups_at] {
            out.extend_from_slice(&field.to_le_bytes());
        }
        let mut targeting = [0u8; 16];
        match self.targeting {
            InlineTargeting::Everyone => {}
            InlineTargeting::One(bits) => {
                targeting[0] = 1;
                targeting[1..5].copy_from_slice(&[
                    bits.genders,
                    bits.platforms,
                    bits.ages.0,
                    bits.ages.1,
                ]);
                targeting[6..8].copy_from_slice(&bits.country_count.to_le_bytes());
                for (pair, index) in targeting[8..14].chunks_exact_mut(2).zip(bits.countries) {
                    pair.copy_from_slice(&index.to_le_bytes());
                }
            }
            InlineTargeting::InAd { groups } => {
                targeting[0] = 2;
                targeting[4..8].copy_from_slice(&groups.to_le_bytes());
            }
        }
        out.extend_from_slice(&targeting);
    }

    /// The slot of a record [`Slot::write_record`] wrote, its bytes in
    /// `file` at `at` (records point at consecutive ranges, so a file can
    /// make no byte be read more than once); `None` unless every field is
    /// one a slot can hold (that position, a valid id and display window,
    /// bytes inside the file, targeting the bitsets can be built from).
    pub fn read_record(record: &[u8; SLOT_RECORD], file: &Arc<FileBytes>, at: u32) -> Option<Slot> {
        let i64_at =
            |at: usize| i64::from_le_bytes(record[at..at + 8].try_into().expect("8 bytes"));
        let u32_at =
            |at: usize| u32::from_le_bytes(record[at..at + 4].try_into().expect("4 bytes"));
        let u16_at = |at: usize| u16::from_le_bytes([record[at], record[at + 1]]);
        if u32_at(24) != at {
            return None;
        }
        let served = ServedAd::in_image(file, at, u32_at(28), u32_at(32), u32_at(36))?;
        let t = &record[40..];
        let targeting = match t[0] {
            0 => InlineTargeting::Everyone,
            1 => {
                let mut bits = GroupBits {
                    genders: t[1],
                    platforms: t[2],
                    ages: (t[3], t[4]),
                    countries: [0; INLINE_COUNTRIES],
                    country_count: u16_at(46),
                };
                for (n, index) in bits.countries.iter_mut().enumerate() {
                    *index = u16_at(48 + 2 * n);
                }
                if !bits.countries_inline() || !bits.is_buildable(&[]) {
                    return None;
                }
                InlineTargeting::One(bits)
            }
            2 => {
                let groups = u32_at(44);
                let mut records = 0u32;
                let mut rest = &served.bytes.get()[served.groups_at as usize..];
                while let Some((bits, countries, after)) = GroupBits::read_record(rest) {
                    if !bits.is_buildable(countries) {
                        return None;
                    }
                    records += 1;
                    rest = after;
                }
                if groups == 0 || records != groups || !rest.is_empty() {
                    return None;
                }
                InlineTargeting::InAd { groups }
            }
            _ => return None,
        };
        let (end, start) = (i64_at(0), i64_at(8));
        TimeWindow::new(Timestamp::from_millis(start)?, Timestamp::from_millis(end)?)?;
        Some(Slot {
            end,
            start,
            id: AdId::new(i64_at(16))?,
            targeting,
            served,
        })
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

    fn of(group: &impl GroupSource) -> GroupBits {
        let genders = mask_of(group.gender_indexes(), 0b11);
        let platforms = mask_of(group.platform_indexes(), 0b111);
        let ages = group.age().map_or((1, AGES as u8), |range| {
            (range.start().max(1), range.end().min(AGES as u8))
        });
        let country_indexes = group.country_indexes();
        let country_count = country_indexes.len();
        let mut countries = [0; INLINE_COUNTRIES];
        if country_count <= INLINE_COUNTRIES {
            for (index, country) in countries.iter_mut().zip(country_indexes) {
                *index = country as u16;
            }
        }
        GroupBits {
            genders,
            platforms,
            ages,
            countries,
            country_count: country_count as u16,
        }
    }

    /// Whether a build can index what this allows: known genders and
    /// platforms, ages within 1–100, known countries (inline, and in
    /// `countries`, a record's two bytes per country).
    fn is_buildable(&self, countries: &[u8]) -> bool {
        let known = |index: u16| usize::from(index) < Country::COUNT;
        let inline = &self.countries[..usize::from(self.country_count).min(INLINE_COUNTRIES)];
        (1..=0b11).contains(&self.genders)
            && (1..=0b111).contains(&self.platforms)
            && self.ages.0 >= 1
            && usize::from(self.ages.1) <= AGES
            && inline.iter().all(|&index| known(index))
            && countries
                .chunks_exact(2)
                .all(|pair| known(u16::from_le_bytes([pair[0], pair[1]])))
    }

    /// Whether the countries are held here (otherwise they are in the ad).
    fn countries_inline(&self) -> bool {
        usize::from(self.country_count) <= INLINE_COUNTRIES
    }

    /// Each country index the group names: inline, or else from
    /// `countries`, its record's two bytes per country.
    fn for_each_country(&self, countries: &[u8], mut visit: impl FnMut(usize)) {
        if self.countries_inline() {
            let inline = &self.countries[..usize::from(self.country_count)];
            inline.iter().for_each(|&index| visit(usize::from(index)));
        } else {
            countries
                .chunks_exact(2)
                .for_each(|pair| visit(usize::from(u16::from_le_bytes([pair[0], pair[1]]))));
        }
    }

    /// Appends `group`'s record (its bits, then every country index as two
    /// bytes) to `out`.
    fn write_record(group: &impl GroupSource, out: &mut Vec<u8>) {
        let bits = GroupBits::of(group);
        out.extend_from_slice(&[bits.genders, bits.platforms, bits.ages.0, bits.ages.1]);
        out.extend_from_slice(&bits.country_count.to_le_bytes());
        for country in group.country_indexes() {
            out.extend_from_slice(&(country as u16).to_le_bytes());
        }
    }

    /// The record at the start of `records`: the bits, the countries' bytes,
    /// and the records after it; `None` when there are none left.
    fn read_record(records: &[u8]) -> Option<(GroupBits, &[u8], &[u8])> {
        let (head, rest) = records.split_at_checked(6)?;
        let country_count = u16::from_le_bytes([head[4], head[5]]);
        let (countries, rest) = rest.split_at_checked(2 * usize::from(country_count))?;
        let mut bits = GroupBits {
            genders: head[0],
            platforms: head[1],
            ages: (head[2], head[3]),
            countries: [0; INLINE_COUNTRIES],
            country_count,
        };
        if bits.countries_inline() {
            for (index, pair) in bits.countries.iter_mut().zip(countries.chunks_exact(2)) {
                *index = u16::from_le_bytes([pair[0], pair[1]]);
            }
        }
        Some((bits, countries, rest))
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
    /// Several groups, or more countries than fit: decode the ad's.
    InAd {
        groups: u32,
    },
}

impl InlineTargeting {
    fn of<G: GroupSource>(mut groups: impl ExactSizeIterator<Item = G>) -> InlineTargeting {
        match (groups.len(), groups.next()) {
            (0, _) | (_, None) => InlineTargeting::Everyone,
            (1, Some(group)) => {
                let bits = GroupBits::of(&group);
                if bits.countries_inline() {
                    InlineTargeting::One(bits)
                } else {
                    InlineTargeting::InAd { groups: 1 }
                }
            }
            (count, Some(_)) => InlineTargeting::InAd {
                groups: count as u32,
            },
        }
    }

    /// Whether the ad's bytes must hold its group records.
    fn in_ad(self) -> bool {
        matches!(self, InlineTargeting::InAd { .. })
    }
}

/// A condition group as a build reads it: decoded ([`ConditionGroup`]) or
/// read in place from an ad's encoding ([`EncodedGroup`]).
trait GroupSource {
    fn age(&self) -> Option<AgeRange>;
    fn gender_indexes(&self) -> impl Iterator<Item = usize>;
    fn platform_indexes(&self) -> impl Iterator<Item = usize>;
    fn country_indexes(&self) -> impl ExactSizeIterator<Item = usize>;
}

impl GroupSource for &ConditionGroup {
    fn age(&self) -> Option<AgeRange> {
        ConditionGroup::age(self)
    }
    fn gender_indexes(&self) -> impl Iterator<Item = usize> {
        self.genders().iter().map(|gender| gender.index())
    }
    fn platform_indexes(&self) -> impl Iterator<Item = usize> {
        self.platforms().iter().map(|platform| platform.index())
    }
    fn country_indexes(&self) -> impl ExactSizeIterator<Item = usize> {
        self.countries().iter().map(|country| country.index())
    }
}

impl GroupSource for EncodedGroup<'_> {
    fn age(&self) -> Option<AgeRange> {
        self.age
    }
    fn gender_indexes(&self) -> impl Iterator<Item = usize> {
        self.genders().map(Gender::index)
    }
    fn platform_indexes(&self) -> impl Iterator<Item = usize> {
        self.platforms().map(Platform::index)
    }
    fn country_indexes(&self) -> impl ExactSizeIterator<Item = usize> {
        self.countries().map(Country::index)
    }
}

/// A fixed-size set of entry positions.
#[derive(Clone, Debug)]
struct Bitset(Box<[u64]>);

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
    /// `countries` are the group's country indexes (two bytes each) when
    /// they are not inline.
    fn add(&mut self, bit: u64, bits: &GroupBits, countries: &[u8], per_bit: bool) {
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
        } else {
            bits.for_each_country(countries, |index| self.allow_country(index, bit));
        }
    }

    fn allow_country(&mut self, index: usize, bit: u64) {
        match self.countries.iter_mut().find(|(have, _)| *have == index) {
            Some((_, bits)) => *bits |= bit,
            None => self.countries.push((index, bit)),
        }
    }

    /// Writes this word into `part`'s bitsets.
    fn store(&self, part: &mut Part<'_>) {
        let word = self.word;
        let words = part.words();
        if word >= words {
            return; // no entries at all
        }
        let fixed = [self.valid, self.per_bit, self.any_country]
            .into_iter()
            .chain(self.gender)
            .chain(self.platform)
            .chain(self.age);
        for (bitset, bits) in part.fixed.iter_mut().zip(fixed) {
            bitset[word] = bits;
        }
        for &(country, bits) in &self.countries {
            part.country[country]
                .as_mut()
                .expect("every country named has a bitset")[word] = bits;
        }
    }
}

/// Bitsets every segment has, in this order: valid, per-bit, any country,
/// the genders, the platforms, the ages.
pub(crate) const FIXED_BITSETS: usize = 3 + 2 + 3 + AGES;

/// A segment's bitsets (zeroed) and entry map, allocated once at their
/// final size: the fixed bitsets, and one per country that an entry names.
/// Two threads index two halves in place; nothing is copied or
/// reallocated after (a boot's temporary copies stayed in the allocator,
/// tens of MiB at a million ads).
struct Bits {
    fixed: Vec<Vec<u64>>,
    country: Vec<Option<Vec<u64>>>,
    entry_ad: Vec<u32>,
}

impl Bits {
    fn for_census(census: &Census) -> Bits {
        let entries = census.entries;
        let bitset = || vec![0; entries.div_ceil(64)];
        Bits {
            fixed: (0..FIXED_BITSETS).map(|_| bitset()).collect(),
            country: census
                .countries
                .iter()
                .map(|&named| named.then(bitset))
                .collect(),
            entry_ad: vec![0; entries],
        }
    }

    /// The whole of it, as one part.
    fn whole(&mut self) -> Part<'_> {
        Part {
            fixed: self.fixed.iter_mut().map(|words| &mut words[..]).collect(),
            country: self
                .country
                .iter_mut()
                .map(|words| words.as_deref_mut())
                .collect(),
            entry_ad: &mut self.entry_ad,
            future_starts: Vec::new(),
        }
    }

    /// Two parts: the entries before `first_entries` (a multiple of 64),
    /// and the rest.
    fn halves(&mut self, first_entries: usize) -> (Part<'_>, Part<'_>) {
        debug_assert_eq!(first_entries % 64, 0);
        let words = first_entries / 64;
        let (first_fixed, second_fixed) = self
            .fixed
            .iter_mut()
            .map(|bits| bits.split_at_mut(words))
            .unzip();
        let (first_country, second_country) = self
            .country
            .iter_mut()
            .map(|bits| match bits {
                Some(bits) => {
                    let (first, second) = bits.split_at_mut(words);
                    (Some(first), Some(second))
                }
                None => (None, None),
            })
            .unzip();
        let (first_ads, second_ads) = self.entry_ad.split_at_mut(first_entries);
        let part = |fixed, country, entry_ad| Part {
            fixed,
            country,
            entry_ad,
            future_starts: Vec::new(),
        };
        (
            part(first_fixed, first_country, first_ads),
            part(second_fixed, second_country, second_ads),
        )
    }
}

/// What sizes a segment's [`Bits`]: how many entries a run of slots has,
/// and which countries they name. A boot counts as it decodes (the slot
/// just made is in cache), so indexing need not read every slot first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Census {
    entries: usize,
    countries: [bool; Country::COUNT],
}

impl Census {
    pub fn new() -> Census {
        Census {
            entries: 0,
            countries: [false; Country::COUNT],
        }
    }

    pub fn of(slots: &[Slot]) -> Census {
        let mut census = Census::new();
        slots.iter().for_each(|slot| census.count(slot));
        census
    }

    pub fn count(&mut self, slot: &Slot) {
        self.entries += slot.entries();
        slot.for_each_entry(|bits, countries| {
            bits.for_each_country(countries, |index| self.countries[index] = true)
        });
    }

    /// The census of both runs.
    pub fn with(mut self, other: &Census) -> Census {
        self.entries += other.entries;
        for (named, also) in self.countries.iter_mut().zip(other.countries) {
            *named |= also;
        }
        self
    }
}

/// The entries and bitsets of a run of slots, indexed in one pass into
/// its window of the segment's [`Bits`].
struct Part<'a> {
    fixed: Vec<&'a mut [u64]>,
    country: Vec<Option<&'a mut [u64]>>,
    entry_ad: &'a mut [u32],
    future_starts: Vec<(i64, u32)>,
}

impl Part<'_> {
    fn words(&self) -> usize {
        self.entry_ad.len().div_ceil(64)
    }

    /// Indexes `slots`, the run starting at `first_position` of a sorted
    /// segment built at `now`, whose entries this part's window holds;
    /// returns the `(startAt, position)` of those not started at `now`.
    fn build(mut self, slots: &[Slot], first_position: usize, now: i64) -> Vec<(i64, u32)> {
        let mut word = WordBits::new(0);
        let mut entry = 0;
        // Slots sorted by end point at ad bytes all over memory: before a
        // batch of slots is indexed, read the first byte of each of its
        // group records in a loop that does nothing else, so that the
        // loads are in flight together and the records are in cache when
        // indexed (waiting for each, one at a time, was most of a boot's
        // indexing at a million ads).
        let mut read_ahead = 0u8;
        let mut groups: Vec<&[u8]> = Vec::with_capacity(READ_AHEAD);
        let mut positions = first_position..;
        for batch in slots.chunks(READ_AHEAD) {
            groups.clear();
            groups.extend(batch.iter().filter_map(Slot::group_bytes));
            read_ahead = groups.iter().fold(read_ahead, |read, bytes| {
                read ^ bytes.first().copied().unwrap_or(0)
            });
            for (slot, position) in batch.iter().zip(positions.by_ref()) {
                if slot.start >= now {
                    self.future_starts.push((slot.start, position as u32));
                }
                let needs_per_bit = slot.entries() > 1 || slot.start >= now;
                slot.for_each_entry(|bits, countries| {
                    if entry / 64 != word.word {
                        word.store(&mut self);
                        word = WordBits::new(entry / 64);
                    }
                    self.entry_ad[entry] = position as u32;
                    word.add(1 << (entry % 64), bits, countries, needs_per_bit);
                    entry += 1;
                });
            }
        }
        debug_assert_eq!(entry, self.entry_ad.len());
        word.store(&mut self);
        std::hint::black_box(read_ahead);
        self.future_starts
    }
}

/// How many slots' group records [`Part::build`] reads at once.
const READ_AHEAD: usize = 64;

/// `(id, position)` of every slot (distinct ids), sorted by id.
pub(crate) fn by_id_of(slots: &[Slot]) -> Vec<(AdId, u32)> {
    id_map(slots.iter().map(|slot| slot.id))
}

/// `(id, position)` of each id (distinct), given in position order, sorted
/// by id.
pub(crate) fn id_map(ids: impl Iterator<Item = AdId> + Clone) -> Vec<(AdId, u32)> {
    let bounds = ids.clone().fold(None, |bounds, id| match bounds {
        None => Some((id, id, 1u64)),
        Some((low, high, count)) => Some((low.min(id), high.max(id), count + 1)),
    });
    let Some((low, high, count)) = bounds else {
        return Vec::new();
    };
    let (low, high) = (low.get(), high.get());
    let span = high.abs_diff(low).saturating_add(1);
    if span > count.saturating_mul(DENSE_IDS_SPAN) {
        let mut by_id: Vec<(AdId, u32)> = ids.zip(0..).collect();
        by_id.sort_unstable();
        return by_id;
    }
    // Ids from a database sequence are dense: place each position at its
    // id's offset in a table (one pass, writes into a few MiB), then read
    // the table in order, instead of sorting (2–3 times faster at a million).
    let mut table = vec![u32::MAX; span as usize];
    for (id, position) in ids.zip(0..) {
        table[(id.get() - low) as usize] = position;
    }
    let mut by_id = Vec::with_capacity(count as usize);
    for (offset, &position) in (0..).zip(&table) {
        if position != u32::MAX {
            let id = AdId::new(low + offset).expect("between two slots' ids");
            by_id.push((id, position));
        }
    }
    by_id
}

/// [`id_map`] places positions in a table when the ids span at most this
/// many times as many values as there are slots.
const DENSE_IDS_SPAN: u64 = 4;

/// What a scoped thread returned; its panic goes on in this thread.
pub(crate) fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Where a sorted run of slots can be cut in two runs indexed apart: a
/// position near the middle before which the entries fill whole words.
/// Returns the position and the entries before it.
fn word_aligned_middle(slots: &[Slot]) -> Option<(usize, usize)> {
    let middle = slots.len() / 2;
    let mut entries: usize = slots[..middle].iter().map(Slot::entries).sum();
    for (position, slot) in slots.iter().enumerate().skip(middle).take(64 * 64) {
        if entries.is_multiple_of(64) {
            return Some((position, entries));
        }
        entries += slot.entries();
    }
    None
}

/// Runs at least this long are built with a second thread where allowed.
pub(crate) const PARALLEL_FROM: usize = 20_000;

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
    by_id: Vec<(AdId, u32)>,
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
    /// Indexes the slots of ads that have not ended at `now` (any order).
    pub fn build(slots: impl IntoIterator<Item = Slot>, now: i64) -> Segment {
        let mut slots: Vec<Slot> = slots.into_iter().filter(|slot| slot.end > now).collect();
        slots.sort_unstable_by_key(Slot::key);
        Segment::from_sorted(slots, now)
    }

    /// Indexes `slots`, which must be sorted by key, distinct by id, and all
    /// end after `now`.
    pub fn from_sorted(slots: Vec<Slot>, now: i64) -> Segment {
        let census = Census::of(&slots);
        Segment::from_parts(slots, None, &census, now, false)
    }

    /// Like [`Segment::from_sorted`], using both cores for a large run (a
    /// boot: compactions and overlays leave the other core to queries),
    /// given the census of `slots` (counted as they were made) and their
    /// id map (built while they were merged: [`id_map`]).
    pub fn from_sorted_counted(
        slots: Vec<Slot>,
        by_id: Vec<(AdId, u32)>,
        census: &Census,
        now: i64,
    ) -> Segment {
        debug_assert_eq!(by_id, by_id_of(&slots));
        Segment::from_parts(slots, Some(by_id), census, now, true)
    }

    /// The segment of `slots` (sorted by key, distinct by id, all ending
    /// after `now`, of that census), with their id map if it is given. On
    /// `two_threads`, a large run is indexed in two halves.
    fn from_parts(
        slots: Vec<Slot>,
        by_id: Option<Vec<(AdId, u32)>>,
        census: &Census,
        now: i64,
        two_threads: bool,
    ) -> Segment {
        debug_assert!(slots.windows(2).all(|w| w[0].key() < w[1].key()));
        debug_assert_eq!(*census, Census::of(&slots));
        let two_threads = two_threads && slots.len() >= PARALLEL_FROM;
        let middle = two_threads.then(|| word_aligned_middle(&slots)).flatten();
        let mut bits = Bits::for_census(census);
        let future_starts = match middle {
            None => bits.whole().build(&slots, 0, now),
            Some((middle, first_entries)) => std::thread::scope(|scope| {
                let (first, second) = bits.halves(first_entries);
                let second = scope.spawn(|| second.build(&slots[middle..], middle, now));
                let mut future_starts = first.build(&slots[..middle], 0, now);
                future_starts.extend(joined(second));
                future_starts
            }),
        };
        let by_id = by_id.unwrap_or_else(|| by_id_of(&slots));
        let Bits {
            fixed,
            country,
            entry_ad,
        } = bits;
        Segment::assemble(slots, by_id, fixed, country, entry_ad, future_starts, now)
    }

    /// The segment of its parts, the fixed bitsets in [`Bits`]'s order.
    fn assemble(
        slots: Vec<Slot>,
        by_id: Vec<(AdId, u32)>,
        fixed: Vec<Vec<u64>>,
        country: Vec<Option<Vec<u64>>>,
        entry_ad: Vec<u32>,
        mut future_starts: Vec<(i64, u32)>,
        now: i64,
    ) -> Segment {
        future_starts.sort_unstable();
        let bitset = |words: Vec<u64>| Bitset(words.into_boxed_slice());
        let mut fixed = fixed.into_iter().map(bitset);
        let mut next = || fixed.next().expect("FIXED_BITSETS bitsets");
        let (valid, per_bit, any_country) = (next(), next(), next());
        let gender = [next(), next()];
        let platform = [next(), next(), next()];
        let age = (0..AGES).map(|_| next()).collect();
        Segment {
            slots,
            entry_ad,
            by_id,
            valid,
            gender,
            platform,
            age,
            country: country.into_iter().map(|bits| bits.map(bitset)).collect(),
            any_country,
            per_bit,
            future_starts,
            built_at: now,
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
            compacted_from: None,
        }
    }

    /// The segment an index image holds ([`crate::image`]): `slots` and
    /// `by_id` as [`Segment::slots`] and [`Segment::by_id_positions`] gave
    /// them, the bitsets as [`Segment::fixed_bitsets`] and
    /// [`Segment::country_bitsets`] did, built at `built_at`. Checks every
    /// property the walk and later builds rely on not to fail (order,
    /// positions, lengths, clear tails); the entry map and the future
    /// starts are derived again from the slots.
    pub fn from_image(
        slots: Vec<Slot>,
        by_id: Vec<(AdId, u32)>,
        fixed: Vec<Vec<u64>>,
        country: Vec<Option<Vec<u64>>>,
        built_at: i64,
    ) -> Result<Segment, &'static str> {
        if !slots.windows(2).all(|pair| pair[0].key() < pair[1].key()) {
            return Err("ads out of serving order");
        }
        if slots.first().is_some_and(|slot| slot.end <= built_at) {
            return Err("an ad that ended before the segment was built");
        }
        let entries: usize = slots.iter().map(Slot::entries).sum();
        if u32::try_from(entries).is_err() {
            return Err("too many entries");
        }
        let words = entries.div_ceil(64);
        let tail_clear = |bits: &[u64]| {
            bits.len() == words
                && (entries.is_multiple_of(64) || bits[words - 1] >> (entries % 64) == 0)
        };
        if fixed.len() != FIXED_BITSETS || !fixed.iter().all(|bits| tail_clear(bits)) {
            return Err("a bitset of the wrong length, or with bits past the last entry");
        }
        if country.len() != Country::COUNT || !country.iter().flatten().all(|bits| tail_clear(bits))
        {
            return Err("a country bitset of the wrong length, or with bits past the last entry");
        }
        let in_order = by_id.windows(2).all(|pair| pair[0].0 < pair[1].0);
        let positions_right = by_id.iter().all(|&(id, position)| {
            slots
                .get(position as usize)
                .is_some_and(|slot| slot.id == id)
        });
        if by_id.len() != slots.len() || !in_order || !positions_right {
            return Err("an id map that does not match the ads");
        }
        let mut entry_ad = Vec::with_capacity(entries);
        let mut future_starts = Vec::new();
        for (position, slot) in (0..).zip(&slots) {
            entry_ad.extend(std::iter::repeat_n(position, slot.entries()));
            if slot.start >= built_at {
                future_starts.push((slot.start, position));
            }
        }
        Ok(Segment::assemble(
            slots,
            by_id,
            fixed,
            country,
            entry_ad,
            future_starts,
            built_at,
        ))
    }

    /// `(id, position)` of every ad, sorted by id.
    pub fn by_id_positions(&self) -> &[(AdId, u32)] {
        &self.by_id
    }

    /// The bitsets every segment has, in [`Bits`]'s order.
    pub fn fixed_bitsets(&self) -> impl Iterator<Item = &[u64]> + '_ {
        [&self.valid, &self.per_bit, &self.any_country]
            .into_iter()
            .chain(&self.gender)
            .chain(&self.platform)
            .chain(&self.age)
            .map(|bitset| &bitset.0[..])
    }

    /// The bitset of each country (by index), where an entry names it.
    pub fn country_bitsets(&self) -> impl Iterator<Item = Option<&[u64]>> + '_ {
        self.country
            .iter()
            .map(|bits| bits.as_ref().map(|bits| &bits.0[..]))
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
        self.by_id
            .binary_search_by_key(&id, |&(have, _)| have)
            .ok()
            .map(|at| self.by_id[at].1)
    }

    /// The entries of the ad at `position`: a run `first..first + count`.
    pub fn entries_of(&self, position: u32) -> (u32, u32) {
        let first = self.entry_ad.partition_point(|&ad| ad < position);
        let count = self.slots[position as usize].entries();
        (first as u32, count as u32)
    }

    /// Approximate heap bytes held by the bitsets.
    pub fn bitset_bytes(&self) -> usize {
        let words = self.fixed_bitsets().map(<[u64]>::len).sum::<usize>()
            + self
                .country_bitsets()
                .flatten()
                .map(<[u64]>::len)
                .sum::<usize>();
        words * 8
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
        mut visit: impl FnMut(&'a [u8]),
    ) -> usize {
        let mut visited = 0;
        let Some(cursor) = Cursor::new(self, query, now, &[]) else {
            return visited;
        };
        let (filters, country, first_entry) = (cursor.filters, cursor.country, cursor.first_entry);
        let all_started = cursor.all_started;
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
            if all_started && skip >= matched.count_ones() as usize {
                let (ads, last) = self.ads_in_word(word, matched, per_bit, last_ad);
                if skip >= ads {
                    skip -= ads;
                    last_ad = Some(last);
                    continue;
                }
            }
            let mut bits = matched;
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let ad_position = self.entry_ad[word * 64 + bit];
                if per_bit & (1 << bit) != 0
                    && (last_ad == Some(ad_position)
                        || !all_started && self.slots[ad_position as usize].start >= now)
                {
                    continue;
                }
                last_ad = Some(ad_position);
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                visit(self.slots[ad_position as usize].served.item());
                visited += 1;
                if visited == limit {
                    return visited;
                }
            }
        }
        visited
    }
}

impl Segment {
    /// How many ads the `matched` entries (not none) of `word` are, every
    /// ad having started, after `last_ad` (the ad of the last matched entry
    /// before the word), and the ad of the last of them: an entry checked
    /// per bit is not an ad of its own when the matched entry before it is
    /// of the same ad (an ad's entries are consecutive).
    fn ads_in_word(
        &self,
        word: usize,
        matched: u64,
        per_bit: u64,
        last_ad: Option<u32>,
    ) -> (usize, u32) {
        let entry_ad = &self.entry_ad[word * 64..];
        let mut repeats = 0;
        let mut checked = matched & per_bit;
        while checked != 0 {
            let bit = checked.trailing_zeros() as usize;
            checked &= checked - 1;
            let below = matched & ((1 << bit) - 1);
            let previous = match below {
                0 => last_ad,
                _ => Some(entry_ad[63 - below.leading_zeros() as usize]),
            };
            repeats += usize::from(previous == Some(entry_ad[bit]));
        }
        let last = entry_ad[63 - matched.leading_zeros() as usize];
        (matched.count_ones() as usize - repeats, last)
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
    /// Whether every ad here has started at `now`: then an entry checked
    /// per bit is checked only against the ad before it, without reading
    /// its slot.
    all_started: bool,
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
            all_started: segment
                .future_starts
                .last()
                .is_none_or(|&(start, _)| start < now),
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
                if self.per_bit & (1 << bit) != 0
                    && (self.last_ad == Some(ad)
                        || !self.all_started && self.segment.slots[ad as usize].start >= self.now)
                {
                    continue;
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
    pub fn take(&mut self) -> &'a [u8] {
        let position = self.peeked.take().expect("peeked before taking");
        self.segment.slots[position as usize].served.item()
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
            // The ads the word's matches are, and the last one's when the
            // next word may need it (entries checked per bit matched).
            let ads = if matched & per_bit == 0 {
                Some((count, None))
            } else if self.all_started && count <= *skip {
                let (ads, last) = self
                    .segment
                    .ads_in_word(word, matched, per_bit, self.last_ad);
                Some((ads, Some(last)))
            } else {
                None
            };
            let exact = ads.filter(|&(ads, _)| {
                ads <= *skip
                    && before.is_none_or(|key| {
                        let ad = self.segment.entry_ad[last_entry];
                        self.segment.slots[ad as usize].key() < key
                    })
            });
            self.next_word += 1;
            if let Some((ads, last)) = exact {
                *skip -= ads;
                self.last_ad = last.or(self.last_ad);
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
pub(crate) mod tests {
    use super::*;

    /// Every word of every bitset, in a fixed order.
    pub(crate) fn words(segment: &Segment) -> Vec<&[u64]> {
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

    /// Everything a segment's answers depend on, to compare two builds.
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) struct Layout {
        pub keys: Vec<Key>,
        pub entry_ad: Vec<u32>,
        pub by_id: Vec<(AdId, u32)>,
        pub future_starts: Vec<(i64, u32)>,
        pub words: Vec<Vec<u64>>,
    }

    fn ad(id: i64, end: i64, groups: &[&[&str]]) -> Ad {
        use adcast_shared::ad::ConditionGroupParts;
        let groups = groups.iter().map(|countries| {
            let countries = countries
                .iter()
                .map(|c| Country::parse(c).unwrap())
                .collect();
            ConditionGroup::try_from(ConditionGroupParts {
                countries,
                ..ConditionGroupParts::default()
            })
            .unwrap()
        });
        Ad {
            id: AdId::new(id).unwrap(),
            title: Title::parse(format!("ad {id}")).unwrap(),
            window: TimeWindow::new(
                Timestamp::from_millis(0).unwrap(),
                Timestamp::from_millis(end).unwrap(),
            )
            .unwrap(),
            targeting: Targeting::any_of(groups.collect()),
        }
    }

    /// The id map is every slot's `(id, position)` sorted by id, whether
    /// the ids are dense (placed in a table) or sparse (sorted), at the
    /// edges of the id range too.
    #[test]
    fn the_id_map_is_sorted_by_id_for_dense_and_sparse_ids() {
        let now = Timestamp::now();
        let sample = adcast_shared::sample::sample_ads(500, 9, now);
        let spacings: [&dyn Fn(i64) -> i64; 4] = [
            &|n| n,                            // 1, 2, 3, …
            &|n| 3 * n + n % 2,                // within the table's span
            &|n| 1_000_003 * n,                // sparse: sorted instead
            &|n| i64::MAX - 1_000 * (600 - n), // near the top of the range
        ];
        for (spacing, id_of) in spacings.iter().enumerate() {
            let slots: Vec<Slot> = sample
                .iter()
                .map(|ad| {
                    let mut ad = ad.clone();
                    ad.id = AdId::new(id_of(ad.id.get())).unwrap();
                    Slot::new(&ad)
                })
                .rev()
                .collect();
            let mut expected: Vec<(AdId, u32)> = (0..)
                .zip(&slots)
                .map(|(position, slot)| (slot.id, position))
                .collect();
            expected.sort_unstable();
            assert_eq!(by_id_of(&slots), expected, "spacing {spacing}");
        }
        assert!(by_id_of(&[]).is_empty());
    }

    /// The hand-written rest of a served ad is bincode's own encoding, for
    /// sample ads (every kind of targeting) and at every varint width.
    #[test]
    fn the_rest_of_a_served_ad_is_bincodes_encoding() {
        let config = bincode::config::standard();
        let now = Timestamp::now();
        let mut ads = adcast_shared::sample::sample_ads(300, 4, now);
        let far = |ms| Timestamp::from_millis(ms).unwrap();
        let extremes = [
            (1, -62_167_219_200_000, 253_402_300_799_999),
            (250, -1, 0),
            (i64::MAX, 125, 126),
            (40_000, 1_000, 70_000),
        ];
        for (id, start, end) in extremes {
            let mut ad = ads[0].clone();
            ad.id = AdId::new(id).unwrap();
            ad.window = TimeWindow::new(far(start), far(end)).unwrap();
            ads.push(ad);
        }
        for ad in &ads {
            let mut rest = Vec::new();
            write_rest(&mut rest, ad);
            let expected =
                bincode::serde::encode_to_vec((ad.id, ad.window, &ad.targeting), config).unwrap();
            assert_eq!(rest, expected, "{ad:?}");
        }
        for value in [
            0,
            250,
            251,
            65_535,
            65_536,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            write_varint(&mut out, value);
            assert_eq!(out, bincode::serde::encode_to_vec(value, config).unwrap());
            let signed = value as i64;
            for signed in [signed, signed.wrapping_neg(), signed / 2, -(signed / 2)] {
                let mut out = Vec::new();
                write_signed(&mut out, signed);
                assert_eq!(out, bincode::serde::encode_to_vec(signed, config).unwrap());
            }
        }
    }

    /// An ad held in compact form decodes back to itself, and its item is
    /// the JSON a client reads, whatever its title and targeting.
    #[test]
    fn a_served_ad_decodes_to_the_ad_it_was_made_from() {
        let tricky = [
            "plain",
            "say \"hi\" \\ back",
            "émoji 🎉 and ß",
            "tab\u{a0}less \u{2028} separators",
            "x",
        ];
        let long = "é".repeat(256);
        let now = Timestamp::now();
        let ads = adcast_shared::sample::sample_ads(400, 9, now);
        for (n, mut ad) in ads.into_iter().enumerate() {
            let title = if n == 7 {
                long.as_str()
            } else {
                tricky[n % tricky.len()]
            };
            ad.title = Title::parse(title.to_owned()).unwrap();
            let slot = Slot::new(&ad);
            assert_eq!(slot.served.ad(), Some(ad.clone()));
            let records: Vec<_> = slot.served.groups().collect();
            if matches!(slot.targeting, InlineTargeting::InAd { .. }) {
                assert_eq!(records.len(), ad.targeting.groups().len());
                for ((bits, countries), group) in records.iter().zip(ad.targeting.groups()) {
                    assert_eq!(*bits, GroupBits::of(&group));
                    let indexes: Vec<usize> = countries
                        .chunks_exact(2)
                        .map(|pair| usize::from(u16::from_le_bytes([pair[0], pair[1]])))
                        .collect();
                    let expected: Vec<usize> =
                        group.countries().iter().map(|c| c.index()).collect();
                    assert_eq!(indexes, expected);
                }
            } else {
                assert!(
                    records.is_empty(),
                    "simple targeting is kept in the slot alone"
                );
            }
            let item: serde_json::Value = serde_json::from_slice(slot.served.item()).unwrap();
            assert_eq!(item["title"], title);
            assert_eq!(item["endAt"], ad.window.end().to_string());
            assert_eq!(slot.entries(), ad.targeting.groups().len().max(1));
        }
    }

    /// An ad read in place from its encoding (a boot) becomes the slot its
    /// decoded form does, byte for byte: record, bytes, item and groups.
    #[test]
    fn a_slot_read_in_place_is_the_slot_of_the_decoded_ad() {
        let now = Timestamp::now();
        let mut ads = adcast_shared::sample::sample_ads(2000, 13, now);
        ads[3].title = Title::parse("say \"hi\" \\ back, émoji 🎉".to_owned()).unwrap();
        ads[4].targeting = Targeting::everyone();
        let (mut in_ad, mut inline) = (0, 0);
        for ad in &ads {
            let encoding = bincode::serde::encode_to_vec(ad, bincode::config::standard()).unwrap();
            let encoded = EncodedAd::parse(&encoding).expect("a canonical encoding");
            let (decoded, read) = (Slot::new(ad), Slot::from_encoded(&encoded));
            let record = |slot: &Slot| {
                let mut out = Vec::new();
                slot.write_record(0, &mut out);
                out
            };
            assert_eq!(record(&read), record(&decoded));
            assert_eq!(read.served.parts(), decoded.served.parts());
            assert_eq!(read.ad().unwrap(), *ad);
            if read.targeting.in_ad() {
                in_ad += 1;
            } else {
                inline += 1;
            }
        }
        assert!(in_ad > 100 && inline > 100, "{in_ad} {inline}");
    }

    /// Built in two halves (a boot) or in one pass, a segment is the same,
    /// also when a country is named only before or only after the cut, and
    /// when ads of several entries move the cut off the middle.
    #[test]
    fn two_halves_index_as_one_pass_does() {
        let n = PARALLEL_FROM as i64 * 2;
        let ads: Vec<Ad> = (1..=n)
            .map(|id| match id {
                _ if id % 7 == 0 => ad(id, 1_000 + id, &[&["DE"], &["GB", "US"]]),
                _ if id < n / 2 => ad(id, 1_000 + id, &[&["JP"]]),
                _ if id % 3 == 0 => ad(id, 1_000 + id, &[]),
                _ => ad(id, 1_000 + id, &[&["FR", "BR", "IN", "TW"]]),
            })
            .collect();
        let slots: Vec<Slot> = ads.iter().map(Slot::new).collect();
        let halves =
            Segment::from_sorted_counted(slots.clone(), by_id_of(&slots), &Census::of(&slots), 500);
        let one_pass = Segment::from_sorted(slots.clone(), 500);
        assert!(word_aligned_middle(&slots).is_some());
        assert_eq!(layout(&halves), layout(&one_pass));
        let query = |segment: &Segment, country: &str| {
            let query = AudienceQuery {
                country: Country::parse(country),
                ..AudienceQuery::default()
            };
            let mut items = 0;
            segment.for_each_match_alone(&query, 0, usize::MAX, 600, |_| items += 1);
            items
        };
        for country in ["JP", "FR", "DE", "US"] {
            assert!(query(&halves, country) > 0, "{country}");
            assert_eq!(
                query(&halves, country),
                query(&one_pass, country),
                "{country}"
            );
        }
    }

    pub(crate) fn layout(segment: &Segment) -> Layout {
        Layout {
            keys: segment.slots.iter().map(Slot::key).collect(),
            entry_ad: segment.entry_ad.clone(),
            by_id: segment.by_id.clone(),
            future_starts: segment.future_starts.clone(),
            words: words(segment).into_iter().map(<[u64]>::to_vec).collect(),
        }
    }
}
