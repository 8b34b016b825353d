//! The serving state: everything a query needs, as of one sequence number.
//!
//! A [`ServingState`] is immutable. The tailer builds the next one from the
//! current one plus a batch of events (the index shares its base and
//! rebuilds only its small overlay), then installs it atomically
//! ([`crate::node::Node`], [`crate::compaction::StateCell`]); queries hold
//! an `Arc` to whichever state was current when they started and never
//! wait for the tailer.

use std::path::Path;
use std::sync::Arc;

use adcast_shared::ad::Ad;
use adcast_shared::event::Change;
use adcast_shared::snapshot::{Snapshot, SnapshotError, SnapshotHeader, SnapshotWriter};
use adcast_shared::timestamp::Timestamp;

use crate::catalog::CatalogBuilder;
use crate::index::AdIndex;
use crate::segment::{Segment, UndecodableAd};

pub struct ServingState {
    /// The last change applied: this state is the writer's state after it.
    pub seq: u64,
    /// The query engine over every ad that had not ended when this state
    /// was built; also the base for applying further events and for
    /// persisting.
    pub index: AdIndex,
    /// False until a snapshot (or an explicit empty start) was loaded.
    pub loaded: bool,
}

/// A snapshot decoded straight into an index: what a boot or a resync
/// installs.
pub struct LoadedSnapshot {
    pub seq: u64,
    pub created_at: Timestamp,
    /// Ads the snapshot holds (ended ones included).
    pub ads: u64,
    pub index: AdIndex,
}

impl LoadedSnapshot {
    /// Verifies a snapshot file's bytes and indexes each ad as it is
    /// decoded, never holding the catalog as [`Ad`] values (see
    /// [`crate::catalog`]). Checks and errors are [`Snapshot::decode`]'s.
    pub fn decode(bytes: &[u8], now: Timestamp) -> Result<LoadedSnapshot, SnapshotError> {
        let half = SnapshotHeader::decode(bytes)?.ad_count / 2;
        let catalog = || CatalogBuilder::new(now.as_millis(), half);
        let (header, first, second) = Snapshot::decode_in_two(bytes, catalog)?;
        Ok(LoadedSnapshot {
            seq: header.seq,
            created_at: header.created_at,
            ads: header.ad_count,
            index: AdIndex::from_catalogs(first, second),
        })
    }

    pub fn from_snapshot(snapshot: Snapshot, now: Timestamp) -> LoadedSnapshot {
        LoadedSnapshot {
            seq: snapshot.seq,
            created_at: snapshot.created_at,
            ads: snapshot.ads.len() as u64,
            index: AdIndex::from_ads(snapshot.ads, now),
        }
    }
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
            index: AdIndex::build([], Timestamp::now()),
            loaded: false,
        }
    }

    /// No snapshot anywhere: the empty state at sequence 0, loaded, from
    /// which the whole stream applies (if the stream no longer holds its
    /// start, the first entry shows a gap).
    pub fn start_of_history() -> ServingState {
        ServingState {
            seq: 0,
            index: AdIndex::build([], Timestamp::now()),
            loaded: true,
        }
    }

    pub fn from_snapshot(snapshot: Snapshot, now: Timestamp) -> ServingState {
        ServingState::from_loaded(LoadedSnapshot::from_snapshot(snapshot, now))
    }

    pub fn from_loaded(loaded: LoadedSnapshot) -> ServingState {
        ServingState {
            seq: loaded.seq,
            index: loaded.index,
            loaded: true,
        }
    }

    /// The state after `events`, which must continue this one exactly
    /// (`seq + 1`, `seq + 2`, …); otherwise nothing is applied. Costs in
    /// proportion to the batch and the index's overlay, not the catalog.
    pub fn apply(&self, events: &[(u64, Change)], now: Timestamp) -> Result<ServingState, Gap> {
        for (expected, (seq, _)) in (self.seq + 1..).zip(events) {
            if *seq != expected {
                return Err(Gap {
                    expected,
                    got: *seq,
                });
            }
        }
        let seq = events.last().map_or(self.seq, |(seq, _)| *seq);
        Ok(ServingState {
            seq,
            index: self.index.apply(events, now),
            loaded: true,
        })
    }

    /// The same state on `base`, a compaction of this state's base and
    /// changes through `through`.
    pub(crate) fn rebased(&self, base: &Arc<Segment>, through: u64) -> ServingState {
        ServingState {
            seq: self.seq,
            index: self.index.rebased(Arc::clone(base), through),
            loaded: self.loaded,
        }
    }

    /// The ads this state holds (not ended when it was built), by id.
    pub fn ads(&self) -> impl Iterator<Item = Result<Ad, UndecodableAd>> + '_ {
        self.index.ads()
    }

    /// This state as a snapshot file's content (ads not ended at `now`).
    pub fn to_snapshot(&self, now: Timestamp) -> Result<Snapshot, UndecodableAd> {
        Ok(Snapshot {
            seq: self.seq,
            created_at: now,
            ads: self.index.ads_not_ended(now).1.collect::<Result<_, _>>()?,
        })
    }

    /// Writes this state as the snapshot file `path` (ads not ended at
    /// `now`), an ad at a time: the catalog is never held decoded. Returns
    /// the file's size.
    pub fn write_snapshot(&self, path: &Path, now: Timestamp) -> std::io::Result<u64> {
        let (count, ads) = self.index.ads_not_ended(now);
        let mut file = SnapshotWriter::create(path, self.seq, now, count as u64)?;
        for ad in ads {
            file.push(
                &ad.map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))?,
            )?;
        }
        file.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adcast_shared::ad::{AdId, Targeting, TimeWindow, Title};

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
        assert_eq!(
            next.ads()
                .map(|ad| ad.unwrap().id.get())
                .collect::<Vec<_>>(),
            [2]
        );
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
        assert_eq!(state.ads().count(), 1);
        assert_eq!(state.to_snapshot(now()).unwrap().ads, vec![ad(2, 1000)]);
    }
}
