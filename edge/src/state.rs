//! The serving state: everything a query needs, as of one sequence number.
//!
//! A [`ServingState`] is immutable. The tailer builds the next one from the
//! current one plus a batch of events, then swaps it in atomically
//! ([`crate::node::Node`]); queries hold an `Arc` to whichever state was
//! current when they started and never wait for the tailer.

use std::collections::BTreeMap;
use std::sync::Arc;

use adcast_shared::ad::{Ad, AdId};
use adcast_shared::event::Change;
use adcast_shared::snapshot::Snapshot;
use adcast_shared::timestamp::Timestamp;

use crate::index::AdIndex;

pub struct ServingState {
    /// The last change applied: this state is the writer's state after it.
    pub seq: u64,
    /// Every ad that had not ended when this state was built, by id: the
    /// base for applying further events and for persisting.
    pub ads: BTreeMap<AdId, Arc<Ad>>,
    /// The query engine over `ads`.
    pub index: AdIndex,
    /// False until a snapshot (or an explicit empty start) was loaded.
    pub loaded: bool,
}

/// The events do not continue this state: something between was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("gap in the change stream: expected {expected}, got {got}")]
pub struct Gap {
    pub expected: u64,
    pub got: u64,
}

impl ServingState {
    /// Nothing loaded yet: answers are empty and the node is not ready.
    pub fn unloaded() -> ServingState {
        ServingState {
            seq: 0,
            ads: BTreeMap::new(),
            index: AdIndex::build([], Timestamp::now()),
            loaded: false,
        }
    }

    pub fn from_snapshot(snapshot: Snapshot, now: Timestamp) -> ServingState {
        let ads = snapshot
            .ads
            .into_iter()
            .filter(|ad| ad.window.end() > now)
            .map(|ad| (ad.id, Arc::new(ad)))
            .collect();
        Self::with_ads(snapshot.seq, ads, now)
    }

    fn with_ads(seq: u64, ads: BTreeMap<AdId, Arc<Ad>>, now: Timestamp) -> ServingState {
        let index = AdIndex::build(ads.values().map(Arc::as_ref), now);
        ServingState {
            seq,
            ads,
            index,
            loaded: true,
        }
    }

    /// The state after `events`, which must continue this one exactly
    /// (`seq + 1`, `seq + 2`, …); otherwise nothing is applied.
    pub fn apply(&self, events: &[(u64, Change)], now: Timestamp) -> Result<ServingState, Gap> {
        for (expected, (seq, _)) in (self.seq + 1..).zip(events) {
            if *seq != expected {
                return Err(Gap {
                    expected,
                    got: *seq,
                });
            }
        }
        let mut ads = self.ads.clone();
        for (_, change) in events {
            match change {
                Change::Upsert(ad) => {
                    ads.insert(ad.id, Arc::new(ad.clone()));
                }
                Change::Delete(id) => {
                    ads.remove(id);
                }
            }
        }
        ads.retain(|_, ad| ad.window.end() > now);
        let seq = events.last().map_or(self.seq, |(seq, _)| *seq);
        Ok(Self::with_ads(seq, ads, now))
    }

    /// This state as a snapshot file's content (ads not ended at `now`).
    pub fn to_snapshot(&self, now: Timestamp) -> Snapshot {
        Snapshot {
            seq: self.seq,
            created_at: now,
            ads: self
                .ads
                .values()
                .filter(|ad| ad.window.end() > now)
                .map(|ad| Ad::clone(ad))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adcast_shared::ad::{Targeting, TimeWindow, Title};

    fn ad(id: i64, end: i64) -> Ad {
        Ad {
            id: AdId::new(id).unwrap(),
            title: Title::parse(format!("AD {id}")).unwrap(),
            window: TimeWindow::new(
                Timestamp::from_millis(0).unwrap(),
                Timestamp::from_millis(end).unwrap(),
            )
            .unwrap(),
            targeting: Targeting::everyone(),
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_millis(100).unwrap()
    }

    #[test]
    fn applies_events_in_sequence() {
        let state = ServingState::from_snapshot(
            Snapshot {
                seq: 5,
                created_at: now(),
                ads: vec![ad(1, 1000)],
            },
            now(),
        );
        let events = [
            (6, Change::Upsert(ad(2, 1000))),
            (7, Change::Delete(AdId::new(1).unwrap())),
        ];
        let next = state.apply(&events, now()).unwrap();
        assert_eq!(next.seq, 7);
        assert_eq!(next.ads.keys().map(|id| id.get()).collect::<Vec<_>>(), [2]);
        assert_eq!(state.seq, 5, "the old state is untouched");
    }

    #[test]
    fn a_gap_applies_nothing() {
        let state = ServingState::from_snapshot(
            Snapshot {
                seq: 5,
                created_at: now(),
                ads: vec![],
            },
            now(),
        );
        let events = [
            (6, Change::Upsert(ad(2, 1000))),
            (8, Change::Upsert(ad(3, 1000))),
        ];
        assert_eq!(
            state.apply(&events, now()).err(),
            Some(Gap {
                expected: 7,
                got: 8
            })
        );
        let late = [(7, Change::Upsert(ad(2, 1000)))];
        assert_eq!(
            state.apply(&late, now()).err(),
            Some(Gap {
                expected: 6,
                got: 7
            })
        );
    }

    #[test]
    fn ended_ads_are_dropped() {
        let state = ServingState::from_snapshot(
            Snapshot {
                seq: 1,
                created_at: now(),
                ads: vec![ad(1, 50), ad(2, 1000)],
            },
            now(),
        );
        assert_eq!(state.ads.len(), 1);
        assert_eq!(state.to_snapshot(now()).ads, vec![ad(2, 1000)]);
    }
}
