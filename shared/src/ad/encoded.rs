//! An ad read in place from its bincode encoding, without building an
//! [`Ad`]: what an edge's boot turns straight into its compact form.
//! Through serde, every ad costs a few allocations (its title, its groups,
//! their lists) that are freed again at once; reading in place cut a
//! 1,000,000-ad boot by a fifth in one process (BENCHMARKS.md, sixth pass).
//!
//! [`EncodedAd::parse`] takes only the canonical encoding, the one this
//! build's encoder writes (shortest varints), of an ad that is valid by
//! every rule [`Ad`]'s decoder checks; for anything else it says `None` and
//! the caller decodes through serde, which then accepts a valid but unusual
//! encoding or refuses with its own error. So what a decoder accepts and
//! the error it gives do not depend on this module; the tests and the
//! snapshot fuzz target hold `parse` to serde's decoder byte for byte.

use super::{
    Ad, AdId, AgeRange, ConditionGroup, ConditionGroupParts, Targeting, TimeWindow, Title,
};
use crate::ad::{Gender, Platform};
use crate::country::Country;
use crate::timestamp::Timestamp;

/// More condition groups than this are left to serde (whose allocation
/// limit then decides): far beyond what an ad has.
const MAX_GROUPS: u64 = 4096;

/// A valid ad, borrowed from its canonical bincode encoding.
#[derive(Clone, Copy, Debug)]
pub struct EncodedAd<'a> {
    pub id: AdId,
    pub title: &'a str,
    pub window: TimeWindow,
    /// The whole encoding.
    bytes: &'a [u8],
    /// Where the title's length prefix starts and where its text ends.
    title_span: (usize, usize),
    /// Where the targeting's groups start, and how many there are.
    groups_at: usize,
    group_count: usize,
}

/// One condition group of an [`EncodedAd`]: its lists as encoded, checked.
#[derive(Clone, Copy, Debug)]
pub struct EncodedGroup<'a> {
    pub age: Option<AgeRange>,
    /// One byte per gender: its index.
    genders: &'a [u8],
    /// Two bytes per country: its upper-case code.
    countries: &'a [u8],
    /// One byte per platform: its index.
    platforms: &'a [u8],
}

impl<'a> EncodedAd<'a> {
    /// The ad encoded at the start of `raw`, if its encoding is canonical
    /// and the ad valid (see the module documentation); its encoding is
    /// the first [`EncodedAd::len`] bytes.
    pub fn parse(raw: &'a [u8]) -> Option<EncodedAd<'a>> {
        let mut at = 0;
        let id = AdId::new(signed(raw, &mut at)?)?;
        let title_from = at;
        let title_len = usize::try_from(varint(raw, &mut at)?).ok()?;
        let title = raw.get(at..at.checked_add(title_len)?)?;
        let title = std::str::from_utf8(title).ok()?;
        Title::check(title).ok()?;
        at += title_len;
        let title_span = (title_from, at);
        let start = Timestamp::from_millis(signed(raw, &mut at)?)?;
        let end = Timestamp::from_millis(signed(raw, &mut at)?)?;
        let window = TimeWindow::new(start, end)?;
        let group_count = varint(raw, &mut at)?;
        if group_count > MAX_GROUPS {
            return None;
        }
        let groups_at = at;
        for _ in 0..group_count {
            group(raw, &mut at)?;
        }
        Some(EncodedAd {
            id,
            title,
            window,
            bytes: &raw[..at],
            title_span,
            groups_at,
            group_count: group_count as usize,
        })
    }

    /// Bytes of the encoding.
    #[allow(clippy::len_without_is_empty)] // an encoding is never empty
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The encoding of `(id, window, targeting)`, in two pieces: the ad's
    /// encoding without its title.
    pub fn without_title(&self) -> [&'a [u8]; 2] {
        let (from, to) = self.title_span;
        [&self.bytes[..from], &self.bytes[to..]]
    }

    /// Empty means everyone.
    pub fn groups(&self) -> impl ExactSizeIterator<Item = EncodedGroup<'a>> + 'a {
        let (bytes, mut at) = (self.bytes, self.groups_at);
        (0..self.group_count).map(move |_| group(bytes, &mut at).expect("checked by parse"))
    }

    /// The ad, decoded: what bincode's serde decoder gives for the same
    /// bytes.
    pub fn to_ad(&self) -> Ad {
        let groups = self.groups().map(|group| {
            ConditionGroup::try_from(ConditionGroupParts {
                age: group.age,
                genders: group.genders().collect(),
                countries: group.countries().collect(),
                platforms: group.platforms().collect(),
            })
            .expect("checked by parse")
        });
        Ad {
            id: self.id,
            title: Title(self.title.to_owned()),
            window: self.window,
            targeting: Targeting::any_of(groups.collect()),
        }
    }
}

impl<'a> EncodedGroup<'a> {
    pub fn genders(&self) -> impl Iterator<Item = Gender> + 'a {
        self.genders
            .iter()
            .map(|&index| Gender::ALL[usize::from(index)])
    }

    pub fn platforms(&self) -> impl Iterator<Item = Platform> + 'a {
        self.platforms
            .iter()
            .map(|&index| Platform::ALL[usize::from(index)])
    }

    pub fn countries(&self) -> impl ExactSizeIterator<Item = Country> + 'a {
        self.countries
            .chunks_exact(2)
            .map(|code| Country::from_code([code[0], code[1]]).expect("checked by parse"))
    }
}

/// Reads one condition group at `at`, checked as [`ConditionGroup`]'s
/// decoder checks it, and moves past it.
fn group<'a>(raw: &'a [u8], at: &mut usize) -> Option<EncodedGroup<'a>> {
    let age = match *raw.get(*at)? {
        0 => {
            *at += 1;
            None
        }
        1 => {
            let pair = raw.get(*at + 1..*at + 3)?;
            *at += 3;
            Some(AgeRange::new(pair[0], pair[1])?)
        }
        _ => return None,
    };
    let genders = indexes(raw, at, Gender::ALL.len())?;
    let count = usize::try_from(varint(raw, at)?).ok()?;
    let countries = raw.get(*at..at.checked_add(count.checked_mul(2)?)?)?;
    *at += countries.len();
    let mut seen = [0u64; Country::COUNT.div_ceil(64)];
    for code in countries.chunks_exact(2) {
        let index = Country::from_code([code[0], code[1]])?.index();
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        if seen[word] & bit != 0 {
            return None;
        }
        seen[word] |= bit;
    }
    let platforms = indexes(raw, at, Platform::ALL.len())?;
    let restricts = age.is_some()
        || [genders, countries, platforms]
            .iter()
            .any(|l| !l.is_empty());
    restricts.then_some(EncodedGroup {
        age,
        genders,
        countries,
        platforms,
    })
}

/// A list of distinct enum values below `variants` (at most 8), each
/// encoded as its one-byte index.
fn indexes<'a>(raw: &'a [u8], at: &mut usize, variants: usize) -> Option<&'a [u8]> {
    let count = usize::try_from(varint(raw, at)?).ok()?;
    let list = raw.get(*at..at.checked_add(count)?)?;
    *at += count;
    let mut seen = 0u8;
    for &index in list {
        if usize::from(index) >= variants || seen & (1 << index) != 0 {
            return None;
        }
        seen |= 1 << index;
    }
    Some(list)
}

/// Bincode's varint in its shortest form: below 251 the byte itself; 251,
/// 252 and 253 announce 2, 4 and 8 little-endian bytes, each only for a
/// value the shorter forms cannot hold.
fn varint(raw: &[u8], at: &mut usize) -> Option<u64> {
    let first = *raw.get(*at)?;
    let (width, least) = match first {
        0..=250 => {
            *at += 1;
            return Some(u64::from(first));
        }
        251 => (2, 251),
        252 => (4, 1 << 16),
        253 => (8, 1 << 32),
        _ => return None,
    };
    let bytes = raw.get(*at + 1..*at + 1 + width)?;
    let mut value = [0u8; 8];
    value[..width].copy_from_slice(bytes);
    let value = u64::from_le_bytes(value);
    *at += 1 + width;
    (value >= least).then_some(value)
}

/// A signed varint: zigzag-encoded, then as [`varint`].
fn signed(raw: &[u8], at: &mut usize) -> Option<i64> {
    let zigzag = varint(raw, at)?;
    Some((zigzag >> 1) as i64 ^ -((zigzag & 1) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(ad: &Ad) -> Vec<u8> {
        bincode::serde::encode_to_vec(ad, bincode::config::standard()).unwrap()
    }

    /// What serde's decoder makes of `bytes`: the ad and its length.
    fn serde_decode(bytes: &[u8]) -> Option<(Ad, usize)> {
        bincode::serde::decode_from_slice(bytes, bincode::config::standard()).ok()
    }

    fn group(parts: ConditionGroupParts) -> ConditionGroup {
        ConditionGroup::try_from(parts).unwrap()
    }

    fn country(code: &str) -> Country {
        Country::parse(code).unwrap()
    }

    fn ads() -> Vec<Ad> {
        let at = |millis| Timestamp::from_millis(millis).unwrap();
        let window = TimeWindow::new(at(-62_000_000_000_000), at(253_402_300_799_999)).unwrap();
        let groups = vec![
            group(ConditionGroupParts {
                age: Some(AgeRange::new(1, 100).unwrap()),
                ..Default::default()
            }),
            group(ConditionGroupParts {
                genders: vec![Gender::F, Gender::M],
                countries: vec![country("ZW"), country("AD"), country("TW")],
                platforms: vec![Platform::Web, Platform::Android, Platform::Ios],
                ..Default::default()
            }),
            group(ConditionGroupParts {
                countries: crate::country::CODES
                    .iter()
                    .map(|code| Country::from_code(*code).unwrap())
                    .collect(),
                ..Default::default()
            }),
        ];
        let mut ads = vec![
            Ad {
                id: AdId::new(1).unwrap(),
                title: Title::parse("x".into()).unwrap(),
                window: TimeWindow::new(at(0), at(1)).unwrap(),
                targeting: Targeting::everyone(),
            },
            Ad {
                id: AdId::new(i64::MAX).unwrap(),
                title: Title::parse("Ünïcode \"quoted\" ✓ ".repeat(13)).unwrap(),
                window,
                targeting: Targeting::any_of(groups.clone()),
            },
        ];
        // Ids and instants at every varint width's edges.
        for id in [125, 126, 32_767, 32_768, 1 << 31, 1 << 40] {
            ads.push(Ad {
                id: AdId::new(id).unwrap(),
                title: Title::parse("a".repeat(250 + (id % 7) as usize)).unwrap(),
                window: TimeWindow::new(at(-id), at(id)).unwrap(),
                targeting: Targeting::any_of(groups[1..].to_vec()),
            });
        }
        ads.extend((0..300).map(random_ad));
        ads
    }

    /// An ad of random shape: 0–3 groups, each restricting 1–4 of its
    /// dimensions with random values.
    fn random_ad(seed: u64) -> Ad {
        use rand::seq::SliceRandom;
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let start = rng.gen_range(-1_000_000_000_000i64..2_000_000_000_000);
        let window = TimeWindow::new(
            Timestamp::from_millis(start).unwrap(),
            Timestamp::from_millis(start + rng.gen_range(1..1_000_000_000)).unwrap(),
        )
        .unwrap();
        let groups = (0..rng.gen_range(0..4))
            .map(|_| loop {
                let low = rng.gen_range(1..=100);
                let mut genders = Gender::ALL.to_vec();
                let mut platforms = Platform::ALL.to_vec();
                let mut countries = crate::country::CODES.to_vec();
                genders.shuffle(&mut rng);
                platforms.shuffle(&mut rng);
                countries.shuffle(&mut rng);
                let counts = [
                    rng.gen_range(0..=2),
                    rng.gen_range(0..=3),
                    rng.gen_range(0..12),
                ];
                let parts = ConditionGroupParts {
                    age: rng
                        .gen_bool(0.5)
                        .then(|| AgeRange::new(low, rng.gen_range(low..=100)).unwrap()),
                    genders: genders[..counts[0]].to_vec(),
                    platforms: platforms[..counts[1]].to_vec(),
                    countries: countries[..counts[2]]
                        .iter()
                        .map(|code| Country::from_code(*code).unwrap())
                        .collect(),
                };
                if let Ok(group) = ConditionGroup::try_from(parts) {
                    break group;
                }
            })
            .collect();
        let title: String = (0..rng.gen_range(1..40))
            .map(|_| {
                *['a', 'Z', ' ', 'é', '"', '✓', '\\']
                    .choose(&mut rng)
                    .unwrap()
            })
            .collect();
        Ad {
            id: AdId::new(rng.gen_range(1..i64::MAX)).unwrap(),
            title: Title::parse(format!("t{title}")).unwrap(),
            window,
            targeting: Targeting::any_of(groups),
        }
    }

    #[test]
    fn canonical_encodings_read_in_place_as_serde_decodes_them() {
        for ad in ads() {
            let mut bytes = encode(&ad);
            let len = bytes.len();
            bytes.extend_from_slice(b"next ad");
            let encoded = EncodedAd::parse(&bytes).expect("a canonical encoding");
            assert_eq!(encoded.len(), len);
            assert_eq!(encoded.to_ad(), ad);
            assert_eq!((encoded.id, encoded.title), (ad.id, ad.title.as_str()));
            assert_eq!(encoded.window, ad.window);
            let rest = (ad.id, ad.window, &ad.targeting);
            let rest = bincode::serde::encode_to_vec(rest, bincode::config::standard()).unwrap();
            assert_eq!(encoded.without_title().concat(), rest);
            assert_eq!(encoded.groups().len(), ad.targeting.groups().len());
        }
    }

    /// Every byte of every encoding changed to each of a spread of values,
    /// and every truncation: where `parse` reads an ad, serde's decoder
    /// reads the same ad from the same bytes.
    #[test]
    fn parse_never_accepts_what_serde_refuses_or_reads_differently() {
        let (mut accepted, mut refused) = (0, 0);
        for ad in ads().iter().take(40) {
            let bytes = encode(ad);
            let mut check = |bytes: &[u8]| match EncodedAd::parse(bytes) {
                Some(encoded) => {
                    accepted += 1;
                    let (decoded, len) = serde_decode(bytes).expect("serde decodes it too");
                    assert_eq!((encoded.to_ad(), encoded.len()), (decoded, len));
                }
                None => refused += 1,
            };
            for len in 0..bytes.len() {
                check(&bytes[..len]);
            }
            for at in 0..bytes.len() {
                for value in [0, 1, 2, 3, 0x41, 0x5a, 0x7f, 0x80, 250, 251, 252, 253, 255] {
                    let mut changed = bytes.clone();
                    changed[at] = value;
                    check(&changed);
                }
            }
        }
        assert!(accepted > 1000 && refused > 1000, "{accepted} {refused}");
    }

    /// Valid but not canonical, or not valid: left to serde.
    #[test]
    fn unusual_or_invalid_encodings_are_left_to_serde() {
        let ad = &ads()[0];
        let canonical = encode(ad);
        assert_eq!(canonical[0], 2, "id 1, zigzag-encoded");
        // The id as a 2-byte varint: serde may read it, parse does not.
        let mut long = vec![251, 2, 0];
        long.extend_from_slice(&canonical[1..]);
        assert!(EncodedAd::parse(&long).is_none());
        // A duplicate, a lower-case code, an unknown gender, an
        // unrestricted group: refused by parse; serde refuses them too.
        let at = |millis| Timestamp::from_millis(millis).unwrap();
        let prefix = {
            let mut bytes = vec![2, 1, b'x'];
            bytes.extend(
                bincode::serde::encode_to_vec((at(0), at(1)), bincode::config::standard()).unwrap(),
            );
            bytes.push(1); // one group
            bytes
        };
        for group in [
            &[0, 0, 2, b'G', b'B', b'G', b'B', 0][..],
            &[0, 0, 1, b'g', b'b', 0],
            &[0, 1, 2, 0, 0],
            &[0, 2, 1, 1, 0, 0],
            &[0, 0, 0, 0],
            &[1, 30, 20, 0, 0, 0],
            &[2, 0, 0, 0],
        ] {
            let bytes = [&prefix[..], group].concat();
            assert!(EncodedAd::parse(&bytes).is_none(), "{group:?}");
            assert!(serde_decode(&bytes).is_none(), "{group:?}");
        }
        let valid = [&prefix[..], &[0, 1, 1, 0, 0]].concat();
        assert_eq!(
            EncodedAd::parse(&valid).unwrap().to_ad(),
            serde_decode(&valid).unwrap().0
        );
    }
}
