//! Building a boot's base segment from a catalog handed over one ad at a
//! time, as a snapshot decodes: each ad becomes its compact [`Slot`] at
//! once, so a boot never holds the whole catalog as [`Ad`] values (a
//! million of those weigh about as much again as the index itself). An ad
//! read in place has its bytes written after the previous ad's, into a
//! chunk of about half a MiB that its slot shares with the others' (one
//! allocation per chunk, not per ad); the slots are made when the chunk
//! is full.
//!
//! Large catalogs use both cores: a snapshot's ads are decoded in two
//! parts on two threads ([`Snapshot::decode_in_two`]), each part into its
//! own builder (so each allocation is freed by the thread that made it:
//! frees across threads contend for the allocator's lock), then the two
//! runs of slots are sorted on two threads and merged. Each builder counts
//! its slots' [`Census`] as they are made (the chunk is still in cache),
//! so indexing need not read every slot once more to size its bitsets.
//!
//! [`Snapshot::decode_in_two`]: adcast_shared::snapshot::Snapshot::decode_in_two

use std::sync::Arc;

use adcast_shared::ad::{Ad, AdId, EncodedAd};
use adcast_shared::snapshot::AdSink;

use crate::mmap::FileBytes;
use crate::segment::{
    by_id_of, id_map, joined, Census, Segment, Slot, UnplacedSlot, PARALLEL_FROM,
};

/// Slots reserved up front at most, whatever a file announces.
const RESERVE_AT_MOST: u64 = 1 << 21;

/// Ad bytes per chunk: a boot writes ads read in place one after another
/// into chunks of about this size, each shared by its ads' slots, instead
/// of an allocation per ad.
const CHUNK: usize = 1 << 19;

/// Collects a catalog's ads and indexes those not ended at `now`.
pub(crate) struct CatalogBuilder {
    now: i64,
    slots: Vec<Slot>,
    /// Of the slots so far.
    census: Census,
    /// The bytes of the ads in `unplaced`, not yet shared.
    chunk: Vec<u8>,
    unplaced: Vec<UnplacedSlot>,
}

impl CatalogBuilder {
    /// `expected` is how many ads are announced: a hint for sizing, never
    /// trusted for more.
    pub fn new(now: i64, expected: u64) -> CatalogBuilder {
        CatalogBuilder {
            now,
            slots: Vec::with_capacity(expected.min(RESERVE_AT_MOST) as usize),
            census: Census::new(),
            chunk: Vec::new(),
            unplaced: Vec::new(),
        }
    }

    /// The segment of every ad pushed that has not ended at `now`.
    pub fn finish(mut self) -> Segment {
        self.place_chunk();
        let CatalogBuilder {
            now,
            mut slots,
            census,
            ..
        } = self;
        if slots.len() < PARALLEL_FROM {
            slots.sort_unstable_by_key(Slot::key);
            let by_id = by_id_of(&slots);
            return Segment::from_sorted_counted(slots, by_id, &census, now);
        }
        let second = slots.split_off(slots.len() / 2);
        sorted_pair(slots, second, &census, now)
    }

    /// The segment of every ad pushed to either builder (both built for
    /// the same `now`; no ad in both) that has not ended at `now`.
    pub fn finish_with(mut self, mut other: CatalogBuilder) -> Segment {
        debug_assert_eq!(self.now, other.now);
        self.place_chunk();
        other.place_chunk();
        let census = self.census.with(&other.census);
        sorted_pair(self.slots, other.slots, &census, self.now)
    }

    fn add(&mut self, slot: Slot) {
        self.census.count(&slot);
        self.slots.push(slot);
    }

    /// Shares the chunk, and makes the slots of the ads written to it.
    fn place_chunk(&mut self) {
        if self.unplaced.is_empty() {
            return;
        }
        let chunk = Arc::new(FileBytes::from(std::mem::take(&mut self.chunk)));
        let mut unplaced = std::mem::take(&mut self.unplaced);
        for slot in unplaced.drain(..) {
            self.add(slot.placed(&chunk));
        }
        self.unplaced = unplaced;
    }
}

/// A snapshot's decoder hands each ad straight to a builder: read in place
/// when its encoding allows (no [`Ad`] built), else decoded.
impl AdSink for CatalogBuilder {
    const TAKES_ENCODED: bool = true;

    /// Turns `ad` into its slot at once, on the calling thread: the ad is
    /// freed where it was allocated (frees across threads contend for the
    /// allocator's lock).
    fn push(&mut self, ad: Ad) {
        if ad.window.end().as_millis() > self.now {
            self.add(Slot::new(&ad));
        }
    }

    fn push_encoded(&mut self, ad: &EncodedAd<'_>) {
        if ad.window.end().as_millis() > self.now {
            if self.chunk.capacity() == 0 {
                self.chunk.reserve_exact(CHUNK);
            }
            self.unplaced.push(Slot::write_encoded(ad, &mut self.chunk));
            if self.chunk.len() >= CHUNK - CHUNK / 16 {
                self.place_chunk();
            }
        }
    }
}

/// The segment of two runs of slots (of that census together): each
/// sorted on its own thread, then merged while the other thread builds the
/// id map from the runs' keys (merged the same way).
fn sorted_pair(mut first: Vec<Slot>, mut second: Vec<Slot>, census: &Census, now: i64) -> Segment {
    let sorted = |slots: &mut Vec<Slot>| {
        slots.sort_unstable_by_key(Slot::key);
        slots
            .iter()
            .map(|slot| (slot.end, slot.id))
            .collect::<Vec<_>>()
    };
    let (first_keys, second_keys) = std::thread::scope(|scope| {
        let second_keys = scope.spawn(|| sorted(&mut second));
        (sorted(&mut first), joined(second_keys))
    });
    let (slots, by_id) = std::thread::scope(|scope| {
        let by_id = scope.spawn(|| id_map(merged_ids(&first_keys, &second_keys)));
        (merge_sorted(first, second), joined(by_id))
    });
    Segment::from_sorted_counted(slots, by_id, census, now)
}

/// The ids of two runs of `(end, id)` keys sorted by key, in the order of
/// the keys merged into one run.
fn merged_ids<'a>(
    first: &'a [(i64, AdId)],
    second: &'a [(i64, AdId)],
) -> impl Iterator<Item = AdId> + Clone + 'a {
    merged(first.iter(), second.iter(), |a, b| a < b).map(|&(_, id)| id)
}

/// The slots of two runs sorted by key, in one run sorted by key.
fn merge_sorted(first: Vec<Slot>, second: Vec<Slot>) -> Vec<Slot> {
    let mut slots = Vec::with_capacity(first.len() + second.len());
    slots.extend(merged(first.into_iter(), second.into_iter(), |a, b| {
        a.key() < b.key()
    }));
    slots
}

/// The items of two runs, each sorted by `before`, in one sorted run (the
/// second run's first on a tie).
fn merged<T: Clone, I: Iterator<Item = T> + Clone>(
    first: I,
    second: I,
    before: impl Fn(&T, &T) -> bool + Clone,
) -> impl Iterator<Item = T> + Clone {
    let (mut first, mut second) = (first.peekable(), second.peekable());
    std::iter::from_fn(move || {
        let take_first = match (first.peek(), second.peek()) {
            (Some(a), Some(b)) => before(a, b),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        if take_first {
            first.next()
        } else {
            second.next()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::tests::layout;
    use adcast_shared::sample::sample_ads;
    use adcast_shared::timestamp::Timestamp;

    fn built(ads: &[Ad], now: i64, expected: u64) -> Segment {
        let mut builder = CatalogBuilder::new(now, expected);
        ads.iter().cloned().for_each(|ad| builder.push(ad));
        builder.finish()
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
            let parallel = layout(&built(&ads, at, ads.len() as u64));
            let on_one_thread = layout(&built(&ads, at, 0));
            let plain = layout(&Segment::build(ads.iter().map(Slot::new), at));
            assert!(plain.keys.len() > PARALLEL_FROM);
            if some_not_started {
                assert!(plain.future_starts.len() > ads.len() / 4);
            } else {
                assert!(plain.keys.len() < ads.len() * 3 / 4);
            }
            assert_eq!(parallel, plain);
            assert_eq!(on_one_thread, plain);
        }
    }

    /// Ads read in place are written into shared chunks: the segment is
    /// the one built from the decoded ads, every slot's bytes are its own
    /// ad's, and a chunk holds many ads, not one.
    #[test]
    fn ads_read_in_place_share_chunks_and_build_the_plain_segment() {
        let now = Timestamp::now();
        let ads = sample_ads(PARALLEL_FROM + 3_000, 17, now);
        let now = now.as_millis();
        let encodings: Vec<Vec<u8>> = ads
            .iter()
            .map(|ad| bincode::serde::encode_to_vec(ad, bincode::config::standard()).unwrap())
            .collect();
        let mut builders = [CatalogBuilder::new(now, 0), CatalogBuilder::new(now, 0)];
        for (n, encoding) in encodings.iter().enumerate() {
            let encoded = EncodedAd::parse(encoding).expect("a canonical encoding");
            // Every fifth ad decoded, as an ad not in canonical form would be.
            if n % 5 == 0 {
                builders[n % 2].push(ads[n].clone());
            } else {
                builders[n % 2].push_encoded(&encoded);
            }
        }
        let [first, second] = builders;
        let segment = first.finish_with(second);
        let plain = Segment::build(ads.iter().map(Slot::new), now);
        assert_eq!(layout(&segment), layout(&plain));
        let mut buffers = std::collections::HashSet::new();
        for (slot, expected) in segment.slots().iter().zip(plain.slots()) {
            assert_eq!(slot.served.parts(), expected.served.parts());
            assert_eq!(slot.ad().unwrap(), expected.ad().unwrap());
            buffers.insert(slot.served.buffer_address());
        }
        let chunks = buffers.len() - ads.len() / 5;
        assert!(
            chunks > 3 && chunks < ads.len() / 500,
            "{chunks} chunks for {} ads",
            ads.len()
        );
    }

    /// A count announced wrongly changes nothing but the threads used.
    #[test]
    fn the_announced_count_is_only_a_hint() {
        let now = Timestamp::now();
        let ads = sample_ads(3000, 5, now);
        let now = now.as_millis();
        let expected = layout(&Segment::build(ads.iter().map(Slot::new), now));
        for announced in [0, 1, PARALLEL_FROM as u64, u64::MAX] {
            assert_eq!(
                layout(&built(&ads, now, announced)),
                expected,
                "{announced}"
            );
        }
        assert!(layout(&built(&[], now, u64::MAX)).keys.is_empty());
    }

    #[test]
    fn merging_keeps_key_order() {
        let now = Timestamp::now();
        let slots = |ids: &[i64]| {
            let mut slots: Vec<Slot> = sample_ads(40, 3, now)
                .iter()
                .filter(|ad| ids.contains(&ad.id.get()))
                .map(Slot::new)
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
