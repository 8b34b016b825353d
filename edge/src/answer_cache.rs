//! The answer cache: recent Public API answers, reused while they are
//! exactly what the index would answer.
//!
//! Entries are keyed by the raw query string, exactly as it came: a request
//! whose query string is kept skips the parse as well as the walk and the
//! rendering (only valid queries are kept, so a hit needs no check). Two
//! spellings of one query (`country=tw`, `country=TW`) are two entries.
//!
//! An answer depends on the query, the state (its sequence number: two
//! states with the same sequence number hold the same ads, whether one was
//! loaded from a snapshot, built by applying events, or rebased by a
//! compaction) and the set of ads active at the instant asked. That set
//! changes only at an ad's start or end, and
//! [`AdIndex::next_change_after`] says when the next such instant is. So an
//! answer computed at `t` for sequence `s` is reused for a request at `u`
//! exactly when the state is still `s` and `t <= u < next change after t`;
//! an applied change or a start/end instant ends its use, nothing else is
//! needed to invalidate it.
//!
//! Entries sit in a fixed array of slots, in pairs: a query's hash picks a
//! pair, and a new answer takes the slot of the same query, else one whose
//! entry can no longer be used, else the older one. So memory is bounded by
//! the slot count and [`MAX_BODY`], two queries sharing a pair do not evict
//! each other, and a lookup never locks: each slot is an [`ArcSwapOption`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use adcast_shared::timestamp::Timestamp;
use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::HeaderValue;

use crate::answer::{max_age, Answer};
use crate::query::QueryParams;
use crate::state::ServingState;

/// Answers larger than this are not kept (deep pages of unselective
/// queries): with [`MAX_QUERY`], the bound on one slot's memory.
pub const MAX_BODY: usize = 8 * 1024;

/// Query strings longer than this are not kept (no Public API query needs
/// so many bytes).
pub const MAX_QUERY: usize = 256;

/// `--answer-cache-entries` when not given. A hit skips the parse, the
/// walk and the rendering: measured on this project's machine
/// (BENCHMARKS.md, "Answer cache keyed by the query string"), user-space
/// instructions per request fall from about 1.54 to 1.20 times the bare
/// HTTP server's at 1,000 ads. Memory: at most 4,096 × ([`MAX_BODY`] +
/// [`MAX_QUERY`]) bytes, about 34 MiB, and far less for typical answers
/// of a few hundred bytes.
pub const DEFAULT_ENTRIES: usize = 4096;

struct CachedAnswer {
    seq: u64,
    /// The raw query string.
    query: Box<str>,
    /// When it was computed (ms): earlier instants are not covered.
    computed_at: i64,
    /// The next start or end after `computed_at` (ms, exclusive); `None`
    /// when no ad held will ever start or end again.
    valid_until: Option<i64>,
    body: Bytes,
    /// `seq` as the `Adcast-Seq` header value.
    seq_header: HeaderValue,
}

/// An answer the cache kept, with its state's sequence number as the
/// `Adcast-Seq` value (rendered once per entry, not per request).
#[derive(Debug)]
pub struct Kept {
    pub answer: Answer,
    pub seq_header: HeaderValue,
}

impl CachedAnswer {
    fn answers(&self, seq: u64, query: &str, now: i64) -> bool {
        self.seq == seq
            && *self.query == *query
            && self.computed_at <= now
            && self.valid_until.is_none_or(|until| now < until)
    }
}

pub struct AnswerCache {
    /// Empty when the cache is off.
    slots: Box<[ArcSwapOption<CachedAnswer>]>,
    /// `64 - log2(slots / 2)`: a pair of slots is the top bits of the
    /// query's hash.
    shift: u32,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl AnswerCache {
    /// A cache of `entries` slots (rounded up to a power of two, at least
    /// one pair); 0 turns it off.
    pub fn new(entries: usize) -> AnswerCache {
        let slots = if entries == 0 {
            0
        } else {
            entries.next_power_of_two().max(2)
        };
        AnswerCache {
            slots: (0..slots).map(|_| ArcSwapOption::empty()).collect(),
            shift: 64 - (slots / 2).max(1).trailing_zeros(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Whether answers are kept at all.
    pub fn is_on(&self) -> bool {
        !self.slots.is_empty()
    }

    /// What `state.index.answer(…)` gives for `query` (parsed from
    /// `raw_query`) at `now`, from the cache when an entry covers it, else
    /// computed (and kept).
    pub fn answer(
        &self,
        state: &ServingState,
        raw_query: &str,
        query: &QueryParams,
        now: Timestamp,
        max_age_cap: u64,
    ) -> Answer {
        match self.get(state, raw_query, now, max_age_cap) {
            Some(kept) => kept.answer,
            None => self.compute(state, raw_query, query, now, max_age_cap),
        }
    }

    /// The kept answer to `raw_query` for `state` at `now`, if there is
    /// one (then the query string is a valid query).
    pub fn get(
        &self,
        state: &ServingState,
        raw_query: &str,
        now: Timestamp,
        max_age_cap: u64,
    ) -> Option<Kept> {
        if self.slots.is_empty() || raw_query.len() > MAX_QUERY {
            return None;
        }
        let pair = &self.slots[2 * self.pair_of(raw_query)..][..2];
        let now_ms = now.as_millis();
        for slot in pair {
            let held = slot.load();
            if let Some(cached) = held.as_ref() {
                if cached.answers(state.seq, raw_query, now_ms) {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Some(Kept {
                        answer: Answer {
                            body: cached.body.clone(),
                            max_age: max_age(cached.valid_until, now_ms, max_age_cap),
                        },
                        seq_header: cached.seq_header.clone(),
                    });
                }
            }
        }
        None
    }

    /// The answer to `query` (parsed from `raw_query`) computed afresh,
    /// and kept when it is small enough.
    pub fn compute(
        &self,
        state: &ServingState,
        raw_query: &str,
        query: &QueryParams,
        now: Timestamp,
        max_age_cap: u64,
    ) -> Answer {
        if !self.slots.is_empty() {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        if self.slots.is_empty() || raw_query.len() > MAX_QUERY {
            return state
                .index
                .answer(&query.audience, query.page, now, max_age_cap);
        }
        let pair = &self.slots[2 * self.pair_of(raw_query)..][..2];
        let now_ms = now.as_millis();
        let held = [pair[0].load(), pair[1].load()];
        // Where the new answer goes: the same query's slot, else a slot
        // that is empty or whose entry could not answer even its own query
        // now (another state, or past its end), else the older entry's.
        let rank = |entry: &Option<Arc<CachedAnswer>>| match entry {
            Some(cached) if *cached.query == *raw_query => (0, 0),
            Some(cached) if cached.answers(state.seq, &cached.query, now_ms) => {
                (2, cached.computed_at)
            }
            _ => (1, 0),
        };
        let slot = if rank(&held[1]) < rank(&held[0]) {
            &pair[1]
        } else {
            &pair[0]
        };
        drop(held);
        let body = state.index.render(&query.audience, query.page, now);
        let valid_until = state.index.next_change_after(now).map(Timestamp::as_millis);
        if body.len() <= MAX_BODY {
            slot.store(Some(Arc::new(CachedAnswer {
                seq: state.seq,
                query: raw_query.into(),
                computed_at: now_ms,
                valid_until,
                body: body.clone(),
                seq_header: HeaderValue::from(state.seq),
            })));
        }
        Answer {
            body,
            max_age: max_age(valid_until, now_ms, max_age_cap),
        }
    }

    fn pair_of(&self, raw_query: &str) -> usize {
        // The top bits of a multiplicative hash are its well-mixed ones; a
        // shift of 64 (one pair) is not defined for `>>`.
        hash(raw_query.as_bytes())
            .checked_shr(self.shift)
            .unwrap_or(0) as usize
    }

    /// Answers served from the cache since start.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Answers computed with the cache on (no entry, or the entry no
    /// longer right).
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
}

/// A multiply-rotate hash (FxHash's) of the query string, eight bytes at a
/// time: SipHash cost more per request than the lookup it picks a slot
/// for. Not resistant to chosen collisions, which here only cost cache
/// misses.
fn hash(bytes: &[u8]) -> u64 {
    let add =
        |hash: u64, word: u64| (hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    let mut words = bytes.chunks_exact(8);
    let mut hash = words.by_ref().fold(0, |hash, word| {
        add(hash, u64::from_le_bytes(word.try_into().expect("8 bytes")))
    });
    let mut last = [0u8; 8];
    let rest = words.remainder();
    last[..rest.len()].copy_from_slice(rest);
    // The length too, so that trailing zero bytes change the hash.
    hash = add(hash, u64::from_le_bytes(last));
    add(hash, bytes.len() as u64)
}

#[cfg(test)]
mod tests {
    //! Differential: through a random history of states (upserts, deletes,
    //! starts and ends, compactions) and instants that land exactly on the
    //! ads' boundaries, the cache answers what the index computes afresh.

    use super::*;
    use adcast_shared::ad::{
        Ad, AdId, ConditionGroup, ConditionGroupParts, Gender, Platform, Targeting, TimeWindow,
        Title,
    };
    use adcast_shared::country::Country;
    use adcast_shared::event::Change;
    use adcast_shared::snapshot::Snapshot;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms).unwrap()
    }

    const T0: i64 = 1_700_000_000_000;

    fn random_ad(rng: &mut StdRng, id: i64) -> Ad {
        let start = T0 + rng.gen_range(-50..400);
        let end = start + rng.gen_range(1..500);
        let parts = ConditionGroupParts {
            age: None,
            genders: if rng.gen_bool(0.3) {
                vec![Gender::F]
            } else {
                vec![]
            },
            countries: if rng.gen_bool(0.3) {
                vec![Country::parse("TW").unwrap()]
            } else {
                vec![]
            },
            platforms: if rng.gen_bool(0.3) {
                vec![Platform::Ios, Platform::Web]
            } else {
                vec![]
            },
        };
        // An unrestricted group is not a valid group: it means everyone.
        let targeting = ConditionGroup::try_from(parts).map_or(Targeting::everyone(), |group| {
            Targeting::any_of(vec![group])
        });
        Ad {
            id: AdId::new(id).unwrap(),
            title: Title::parse(format!("AD {id}")).unwrap(),
            window: TimeWindow::new(t(start), t(end)).unwrap(),
            targeting,
        }
    }

    /// A raw query string; the same query may come spelled two ways.
    fn random_query(rng: &mut StdRng) -> String {
        let mut parts = Vec::new();
        if rng.gen_bool(0.3) {
            parts.push(format!("age={}", rng.gen_range(1..=100)));
        }
        if rng.gen_bool(0.5) {
            parts.push(format!("gender={}", ["F", "f"][rng.gen_range(0..2)]));
        }
        if rng.gen_bool(0.5) {
            parts.push(format!(
                "country={}",
                ["TW", "tw", "uk"][rng.gen_range(0..3)]
            ));
        }
        if rng.gen_bool(0.5) {
            parts.push("platform=ios".to_owned());
        }
        parts.push(format!("offset={}", rng.gen_range(0..3)));
        parts.push(format!("limit={}", rng.gen_range(1..6)));
        parts.join("&")
    }

    #[test]
    fn cached_answers_equal_fresh_ones_across_changes_and_boundaries() {
        for seed in 0..20 {
            let mut rng = StdRng::seed_from_u64(seed);
            // Few slots, so that entries also collide and get replaced.
            let cache = AnswerCache::new(16);
            let ads: Vec<Ad> = (1..=30).map(|id| random_ad(&mut rng, id)).collect();
            let mut state = ServingState::from_snapshot(
                Snapshot {
                    seq: 5,
                    created_at: t(T0),
                    ads: ads.clone(),
                },
                t(T0 - 100),
            );
            let queries: Vec<String> = (0..12).map(|_| random_query(&mut rng)).collect();
            let mut now = T0 - 100;
            let mut next_id = 31;
            for step in 0..400 {
                match rng.gen_range(0..10) {
                    0 => {
                        let id = if rng.gen_bool(0.5) {
                            next_id += 1;
                            next_id
                        } else {
                            rng.gen_range(1..next_id)
                        };
                        let change = Change::Upsert(random_ad(&mut rng, id));
                        state = state.apply(&[(state.seq + 1, change)], t(now)).unwrap();
                    }
                    1 => {
                        let id = AdId::new(rng.gen_range(1..next_id)).unwrap();
                        state = state
                            .apply(&[(state.seq + 1, Change::Delete(id))], t(now))
                            .unwrap();
                    }
                    2 => {
                        // A compaction: same sequence number, new base.
                        let base = Arc::new(state.index.compact(state.seq));
                        state = state.rebased(&base, state.seq);
                    }
                    _ => {}
                }
                // Move to the next boundary (or just before / after it) or a bit on.
                now = match (rng.gen_range(0..3), state.index.next_change_after(t(now))) {
                    (0, Some(next)) => next.as_millis(),
                    (1, Some(next)) => (next.as_millis() - 1).max(now),
                    _ => now + rng.gen_range(0..7),
                };
                for raw in &queries {
                    let query = QueryParams::parse(raw).unwrap();
                    let fresh = state.index.answer(&query.audience, query.page, t(now), 5);
                    if let Some(kept) = cache.get(&state, raw, t(now), 5) {
                        assert_eq!(
                            kept.answer, fresh,
                            "seed {seed} step {step} at {now}: {raw}"
                        );
                        assert_eq!(kept.seq_header, state.seq.to_string());
                    }
                    let cached = cache.answer(&state, raw, &query, t(now), 5);
                    assert_eq!(
                        cached, fresh,
                        "seed {seed} step {step} at {now} (seq {}) for {raw}",
                        state.seq
                    );
                }
            }
            assert!(cache.hits() > 0, "seed {seed}: the cache was never used");
        }
    }

    #[test]
    fn an_answer_is_not_reused_for_an_earlier_instant_or_another_state() {
        let ad = Ad {
            id: AdId::new(1).unwrap(),
            title: Title::parse("AD 1".to_owned()).unwrap(),
            window: TimeWindow::new(t(T0), t(T0 + 1_000)).unwrap(),
            targeting: Targeting::everyone(),
        };
        let state = ServingState::from_snapshot(
            Snapshot {
                seq: 1,
                created_at: t(T0),
                ads: vec![ad],
            },
            t(T0 - 10),
        );
        let cache = AnswerCache::new(8);
        let query = QueryParams::parse("").unwrap();
        let during = cache.answer(&state, "", &query, t(T0 + 500), 5);
        assert_ne!(during.body, r#"{"items":[]}"#);
        let before = cache.answer(&state, "", &query, t(T0), 5);
        assert_eq!(before.body, r#"{"items":[]}"#, "start is exclusive");
        let after_delete = state
            .apply(&[(2, Change::Delete(AdId::new(1).unwrap()))], t(T0 + 500))
            .unwrap();
        let deleted = cache.answer(&after_delete, "", &query, t(T0 + 501), 5);
        assert_eq!(deleted.body, r#"{"items":[]}"#);
        assert_eq!(cache.hits(), 0);
    }

    #[test]
    fn distinct_queries_spread_over_the_slots() {
        let cache = AnswerCache::new(4096);
        let mut used = std::collections::HashSet::new();
        let mut queries = 0;
        for age in ["", "age=20&", "age=21&", "age=65&"] {
            for gender in ["", "gender=M&", "gender=F&"] {
                for country in ["", "country=TW&", "country=JP&", "country=US&"] {
                    for platform in ["", "platform=ios&", "platform=web&"] {
                        for limit in ["limit=5", "limit=10", "limit=20&offset=20"] {
                            let query = format!("{age}{gender}{country}{platform}{limit}");
                            used.insert(cache.pair_of(&query));
                            queries += 1;
                        }
                    }
                }
            }
        }
        // 432 queries in 2,048 pairs: a uniform hash uses ~389 of them.
        assert!(
            used.len() > queries * 8 / 10,
            "{} pairs for {queries} queries",
            used.len()
        );
        assert_eq!(AnswerCache::new(1).pair_of(""), 0);
    }

    /// A query string is kept as it came: another spelling of the same
    /// query is another entry, and a string past MAX_QUERY is never kept.
    #[test]
    fn entries_are_keyed_by_the_query_string_as_sent() {
        let state = ServingState::start_of_history();
        let cache = AnswerCache::new(64);
        let now = Timestamp::now();
        let query = QueryParams::parse("country=tw").unwrap();
        cache.answer(&state, "country=tw", &query, now, 5);
        assert!(cache.get(&state, "country=tw", now, 5).is_some());
        assert!(cache.get(&state, "country=TW", now, 5).is_none());
        let long = format!("country=tw&{}", "x".repeat(MAX_QUERY));
        cache.answer(&state, &long, &query, now, 5);
        assert!(cache.get(&state, &long, now, 5).is_none());
        assert_eq!((cache.hits(), cache.misses()), (1, 2));
    }

    #[test]
    fn a_cache_of_no_entries_computes_every_answer() {
        let cache = AnswerCache::new(0);
        let state = ServingState::start_of_history();
        let query = QueryParams::parse("").unwrap();
        cache.answer(&state, "", &query, Timestamp::now(), 5);
        cache.answer(&state, "", &query, Timestamp::now(), 5);
        assert_eq!((cache.hits(), cache.misses()), (0, 0));
    }
}
