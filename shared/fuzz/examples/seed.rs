//! Writes a seed corpus for the fuzz targets: a few valid snapshot files and
//! change events, made with adcast-shared's own encoders so they follow the
//! format of the code under test.
//!
//! `cargo run --example seed -- <corpus dir>` writes `<dir>/snapshot_decode/*` and
//! `<dir>/event_decode/*` (existing files of the same names are replaced;
//! libFuzzer's own finds are left alone). Each snapshot is also written with
//! its body uncompressed, the form snapshot_decode's third way reads.

use std::path::{Path, PathBuf};

use adcast_shared::ad::{
    Ad, AdId, AgeRange, ConditionGroup, ConditionGroupParts, Gender, Platform, Targeting,
    TimeWindow, Title,
};
use adcast_shared::country::Country;
use adcast_shared::event::Change;
use adcast_shared::snapshot::{Snapshot, HEADER_LEN};
use adcast_shared::timestamp::Timestamp;

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    let ads = ads();

    let snapshots = [
        (
            "empty",
            Snapshot {
                seq: 0,
                created_at: at(0),
                ads: vec![],
            },
        ),
        (
            "one",
            Snapshot {
                seq: 1,
                created_at: at(1_700_000_000_000),
                ads: ads[..1].to_vec(),
            },
        ),
        (
            "all",
            Snapshot {
                seq: 42,
                created_at: at(1_700_000_123_456),
                ads: ads.clone(),
            },
        ),
    ];
    for (name, snapshot) in &snapshots {
        let bytes = snapshot.encode();
        assert_eq!(
            Snapshot::decode(&bytes).as_ref(),
            Ok(snapshot),
            "seed {name} round-trips"
        );
        write(&dir, "snapshot_decode", &format!("seed-{name}"), &bytes);
        let mut raw = bytes[..HEADER_LEN].to_vec();
        raw.extend(zstd::stream::decode_all(&bytes[HEADER_LEN..]).expect("own body decompresses"));
        write(
            &dir,
            "snapshot_decode",
            &format!("seed-{name}-raw-body"),
            &raw,
        );
    }

    let mut changes: Vec<Change> = ads.iter().cloned().map(Change::Upsert).collect();
    changes.push(Change::Delete(AdId::new(1).unwrap()));
    changes.push(Change::Delete(AdId::new(i64::MAX).unwrap()));
    for (i, change) in changes.iter().enumerate() {
        let bytes = change.encode();
        assert_eq!(
            Change::decode(&bytes).as_ref(),
            Ok(change),
            "seed change {i} round-trips"
        );
        write(&dir, "event_decode", &format!("seed-{i}"), &bytes);
    }
    println!(
        "seed: {} snapshot and {} event files in {}",
        snapshots.len() * 2,
        changes.len(),
        dir.display()
    );
}

fn at(millis: i64) -> Timestamp {
    Timestamp::from_millis(millis).unwrap()
}

fn country(code: &str) -> Country {
    Country::parse(code).unwrap()
}

/// Ads in ascending id order covering each kind of targeting condition.
fn ads() -> Vec<Ad> {
    let group = |parts| ConditionGroup::try_from(parts).unwrap();
    let targetings = [
        Targeting::everyone(),
        Targeting::any_of(vec![group(ConditionGroupParts {
            age: AgeRange::new(18, 35),
            genders: vec![Gender::ALL[0]],
            countries: vec![],
            platforms: vec![],
        })]),
        Targeting::any_of(vec![
            group(ConditionGroupParts {
                age: None,
                genders: vec![],
                countries: vec![country("DE"), country("US")],
                platforms: vec![Platform::ALL[1]],
            }),
            group(ConditionGroupParts {
                age: AgeRange::new(1, 100),
                genders: Gender::ALL.to_vec(),
                countries: vec![country("JP")],
                platforms: Platform::ALL.to_vec(),
            }),
        ]),
    ];
    let titles = ["a", "Summer sale: 20 % off", "Ünïcödé títle 🎉"];
    targetings
        .into_iter()
        .zip(titles)
        .enumerate()
        .map(|(i, (targeting, title))| Ad {
            id: AdId::new([1, 1000, i64::MAX][i]).unwrap(),
            title: Title::parse(title.to_string()).unwrap(),
            window: TimeWindow::new(at(1_600_000_000_000), at(1_900_000_000_000 + i as i64))
                .unwrap(),
            targeting,
        })
        .collect()
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
