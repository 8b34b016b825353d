//! The edge's index image: its serving state saved in the form queries read
//! it, so that a restart maps one file instead of decoding and indexing
//! every ad again.
//!
//! A snapshot (zstd + bincode) is the system's exchange format: the writer
//! produces it, every edge can start from it, and it is small. Starting from
//! one costs a decompression, a decode and an index build per ad (about a
//! second at a million ads). The image is this edge's own file in
//! `--data-dir`, written beside its snapshot files by the persister
//! ([`crate::persist`]) and never shipped anywhere: the base segment as
//! [`Segment`] holds it (ads in serving order, the id map and every
//! bitset) and the overlay's changes. At boot it is memory-mapped and
//! checked; the ads' bytes (answer items and compact forms, most of the
//! file) stay in the mapping, read from the page cache when served, and
//! only the fixed-size parts are copied out.
//!
//! Layout (little-endian, every section 8-byte aligned):
//!
//! | part | size |
//! | --- | --- |
//! | header | [`HEADER_LEN`] bytes (fields below) |
//! | ad bytes | `arena_len`, padded to 8 |
//! | base ads | `slots` records of [`SLOT_RECORD`] bytes, serving order |
//! | id map | `slots` records of 16 bytes: id, position (8 bytes each) |
//! | fixed bitsets | [`FIXED_BITSETS`] × `words` × 8 |
//! | country bitsets | one per country set in the header's map, `words` × 8 each |
//! | changes | `changes` records: seq, id, 1 or 0 (deleted), a slot record or zeros |
//!
//! where `words` is the base's entries divided by 64, rounded up. The
//! header carries a CRC-32C of itself and of the body, the body's length
//! (the file must be exactly that long), and every count, so each section's
//! size is known before any is read.
//!
//! What a load checks: the magic, the format version and the layout
//! fingerprint (an image of another version, or of a build whose country
//! table or sizes differ, is refused, and the edge starts from its
//! snapshots instead), both checksums, the length, and then every property
//! the query path and later builds rely on not to fail: instants and
//! display windows that are valid timestamps, ads in strictly increasing
//! serving order, none ended before the base was built, the ads' byte
//! ranges consecutive and covering their section exactly (so no byte is
//! read twice, whatever the records say), targeting values a build can
//! index, bitsets of the right length with no bit past the last entry, an
//! id map that matches the ads, changes in id order. So a damaged file is
//! refused with an error naming what is wrong, and even a file altered on
//! purpose, with its checksums forged, cannot make the edge read out of
//! bounds or panic; such a file could still make it serve what the forger
//! wrote, which anyone able to write into the data directory could do by
//! other means as well.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use adcast_shared::ad::AdId;
use adcast_shared::country::{Country, CODES};
use adcast_shared::snapshot;
use adcast_shared::timestamp::Timestamp;

use crate::index::AdIndex;
use crate::mmap::{file_start, map_file, FileBytes};
use crate::segment::{Segment, Slot, AGES, FIXED_BITSETS, SLOT_RECORD};
use crate::state::LoadedSnapshot;

/// The image's name in the data directory: one per edge, replaced whole.
pub const FILE_NAME: &str = "index.adimage";

const MAGIC: [u8; 8] = *b"ADCASTIX";

/// The layout's version: bump it whenever [`Segment`]'s layout or a record
/// changes, so that an image of an older build is refused, not misread.
pub const VERSION: u32 = 1;

/// Header bytes: magic (8), version (4), header CRC (4), seq, written at,
/// base built at, index built at, slots, changes, ad bytes, entries,
/// body length (8 each), body CRC (4), layout fingerprint (4: the country
/// table and sizes the indexes refer to), the countries with a bitset (32
/// bytes, bit `index`).
pub const HEADER_LEN: usize = 16 + 8 * 9 + 8 + 32;

const ID_RECORD: usize = 16;
const CHANGE_RECORD: usize = 24 + SLOT_RECORD;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("index image truncated: {0} bytes, shorter than its header")]
    TruncatedHeader(usize),
    #[error("not an index image (bad magic)")]
    Magic,
    #[error("index image of format version {0}; this edge reads version {VERSION}")]
    Version(u32),
    #[error("index image header checksum mismatch (corrupt header)")]
    HeaderChecksum,
    #[error("index image written by a build with another country table or index layout")]
    Layout,
    #[error("index image is {have} bytes, its header announces {want}")]
    Length { have: u64, want: u64 },
    #[error("index image body checksum mismatch (corrupt body)")]
    BodyChecksum,
    #[error("index image is inconsistent: {0}")]
    Invalid(&'static str),
}

/// The header's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    pub seq: u64,
    pub written_at: i64,
    base_built_at: i64,
    index_built_at: i64,
    slots: u64,
    changes: u64,
    arena_len: u64,
    entries: u64,
    body_len: u64,
    body_crc: u32,
    countries: [u8; 32],
}

impl ImageHeader {
    /// Reads and checks the header alone (cheap: for picking a file).
    pub fn decode(bytes: &[u8]) -> Result<ImageHeader, ImageError> {
        let header = bytes
            .get(..HEADER_LEN)
            .ok_or(ImageError::TruncatedHeader(bytes.len()))?;
        if header[..8] != MAGIC {
            return Err(ImageError::Magic);
        }
        let u32_at = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("4"));
        let u64_at = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8"));
        if u32_at(8) != VERSION {
            return Err(ImageError::Version(u32_at(8)));
        }
        if u32_at(12) != header_crc(header) {
            return Err(ImageError::HeaderChecksum);
        }
        if u32_at(92) != layout_fingerprint() {
            return Err(ImageError::Layout);
        }
        Ok(ImageHeader {
            seq: u64_at(16),
            written_at: u64_at(24) as i64,
            base_built_at: u64_at(32) as i64,
            index_built_at: u64_at(40) as i64,
            slots: u64_at(48),
            changes: u64_at(56),
            arena_len: u64_at(64),
            entries: u64_at(72),
            body_len: u64_at(80),
            body_crc: u32_at(88),
            countries: header[96..128].try_into().expect("32 bytes"),
        })
    }

    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(&MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let fields = [
            self.seq,
            self.written_at as u64,
            self.base_built_at as u64,
            self.index_built_at as u64,
            self.slots,
            self.changes,
            self.arena_len,
            self.entries,
            self.body_len,
        ];
        for (at, field) in (16..).step_by(8).zip(fields) {
            header[at..at + 8].copy_from_slice(&field.to_le_bytes());
        }
        header[88..92].copy_from_slice(&self.body_crc.to_le_bytes());
        header[92..96].copy_from_slice(&layout_fingerprint().to_le_bytes());
        header[96..128].copy_from_slice(&self.countries);
        let crc = header_crc(&header);
        header[12..16].copy_from_slice(&crc.to_le_bytes());
        header
    }

    fn has_country(&self, index: usize) -> bool {
        self.countries[index / 8] & (1 << (index % 8)) != 0
    }

    /// The body's length as the counts make it, `None` on overflow.
    fn body_len_of_counts(&self) -> Option<u64> {
        let words = self.entries.div_ceil(64);
        let countries = self
            .countries
            .iter()
            .map(|byte| u64::from(byte.count_ones()))
            .sum::<u64>();
        let bitsets = (FIXED_BITSETS as u64).checked_add(countries)?;
        padded(self.arena_len)?
            .checked_add(self.slots.checked_mul((SLOT_RECORD + ID_RECORD) as u64)?)?
            .checked_add(bitsets.checked_mul(words)?.checked_mul(8)?)?
            .checked_add(self.changes.checked_mul(CHANGE_RECORD as u64)?)
    }
}

/// What the image's indexes mean besides its format version: the country
/// table (bitsets and records hold country *indexes*), the age range and
/// the record sizes. An image written by a build where any differs is
/// refused, not misread.
fn layout_fingerprint() -> u32 {
    let codes: Vec<u8> = CODES.iter().flatten().copied().collect();
    let sizes = [AGES, FIXED_BITSETS, SLOT_RECORD].map(|size| size as u32);
    let crc = crc32c::crc32c(&codes);
    sizes.iter().fold(crc, |crc, size| {
        crc32c::crc32c_append(crc, &size.to_le_bytes())
    })
}

/// CRC-32C of a header, its own checksum field taken as zero.
fn header_crc(header: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&header[..12]);
    let crc = crc32c::crc32c_append(crc, &[0; 4]);
    crc32c::crc32c_append(crc, &header[16..HEADER_LEN])
}

fn padded(len: u64) -> Option<u64> {
    len.checked_next_multiple_of(8)
}

/// The image's path in the data directory `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// The sequence number of the image at `path`, if there is one whose
/// header is valid (the body is checked only when it is loaded).
pub fn seq_of(path: &Path) -> Option<u64> {
    let header = file_start::<HEADER_LEN>(path)?;
    ImageHeader::decode(&header).ok().map(|header| header.seq)
}

/// Writes `index`, the state after change `seq`, as the image `path`
/// (through a temporary file renamed over it, so a reader sees the old
/// image or the new one, whole). Returns the file's size.
pub fn write(path: &Path, seq: u64, index: &AdIndex, now: Timestamp) -> std::io::Result<u64> {
    let ad_bytes: u64 = slots_in_order(index)
        .map(|slot| slot.served.parts().0.len() as u64)
        .sum();
    if HEADER_LEN as u64 + ad_bytes > u64::from(u32::MAX) {
        return Err(std::io::Error::other(
            "the catalog's ads take more than 4 GiB: too large for an index image",
        ));
    }
    let (dir, temp) = snapshot::temp_path(path)?;
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        let header = write_body(&mut file, seq, index, now)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header.encode())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(HEADER_LEN as u64 + header.body_len)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    // Writing read the ads' bytes, those of a loaded image too: let its
    // pages leave the resident set again.
    let mut released = None;
    for file in slots_in_order(index).filter_map(|slot| slot.served.image()) {
        if released != Some(Arc::as_ptr(file)) {
            file.release_resident_pages();
            released = Some(Arc::as_ptr(file));
        }
    }
    result
}

/// The base's ads in serving order, then the changes' new versions by id:
/// the order of the ad bytes in the file.
fn slots_in_order(index: &AdIndex) -> impl Iterator<Item = &Slot> + '_ {
    let changed = index.changes().filter_map(|(_, _, slot)| slot);
    index.base().slots().iter().chain(changed)
}

/// The body as it is written: buffered, with its length and checksum.
struct Body<'a, W> {
    out: &'a mut W,
    /// Bytes not yet handed to `out` (nor checksummed).
    pending: Vec<u8>,
    flushed: u64,
    crc: u32,
}

impl<W: Write> Body<'_, W> {
    const CHUNK: usize = 1 << 16;

    fn len(&self) -> u64 {
        self.flushed + self.pending.len() as u64
    }

    /// Appends what `write` writes into the buffer.
    fn put_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> std::io::Result<()> {
        write(&mut self.pending);
        if self.pending.len() >= Self::CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.put_with(|out| out.extend_from_slice(bytes))
    }

    fn pad(&mut self) -> std::io::Result<()> {
        let zeros = (8 - self.len() % 8) % 8;
        self.put(&[0; 8][..zeros as usize])
    }

    fn put_words(&mut self, words: &[u64]) -> std::io::Result<()> {
        for chunk in words.chunks(Self::CHUNK / 8) {
            self.put_with(|out| {
                chunk
                    .iter()
                    .for_each(|word| out.extend_from_slice(&word.to_le_bytes()))
            })?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.write_all(&self.pending)?;
        self.crc = crc32c::crc32c_append(self.crc, &self.pending);
        self.flushed += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }
}

/// Writes everything after the header; returns the header.
fn write_body<W: Write>(
    file: &mut W,
    seq: u64,
    index: &AdIndex,
    now: Timestamp,
) -> std::io::Result<ImageHeader> {
    file.write_all(&[0; HEADER_LEN])?;
    let base = index.base();
    let mut body = Body {
        out: file,
        pending: Vec::with_capacity(2 * Body::<W>::CHUNK),
        flushed: 0,
        crc: 0,
    };
    for slot in slots_in_order(index) {
        body.put(slot.served.parts().0)?;
    }
    let arena_len = body.len();
    body.pad()?;
    // Each ad's record, pointing at its bytes (in the order written above).
    let mut at = HEADER_LEN as u32;
    let mut write_record = |slot: &Slot, out: &mut Vec<u8>| {
        slot.write_record(at, out);
        at += slot.served.parts().0.len() as u32;
    };
    for slot in base.slots() {
        body.put_with(|out| write_record(slot, out))?;
    }
    for &(id, position) in base.by_id_positions() {
        body.put_with(|out| {
            out.extend_from_slice(&id.get().to_le_bytes());
            out.extend_from_slice(&u64::from(position).to_le_bytes());
        })?;
    }
    for bits in base.fixed_bitsets() {
        body.put_words(bits)?;
    }
    let mut countries = [0u8; 32];
    for (index, bits) in base.country_bitsets().enumerate() {
        if let Some(bits) = bits {
            countries[index / 8] |= 1 << (index % 8);
            body.put_words(bits)?;
        }
    }
    for (id, change_seq, slot) in index.changes() {
        body.put_with(|out| {
            out.extend_from_slice(&change_seq.to_le_bytes());
            out.extend_from_slice(&id.get().to_le_bytes());
            match slot {
                Some(slot) => {
                    out.extend_from_slice(&1u64.to_le_bytes());
                    write_record(slot, out);
                }
                None => out.extend_from_slice(&[0; 8 + SLOT_RECORD]),
            }
        })?;
    }
    body.flush()?;
    Ok(ImageHeader {
        seq,
        written_at: now.as_millis(),
        base_built_at: base.built_at(),
        index_built_at: index.built_at(),
        slots: base.len() as u64,
        changes: index.changes().len() as u64,
        arena_len,
        entries: base.entries() as u64,
        body_len: body.flushed,
        body_crc: body.crc,
        countries,
    })
}

/// Maps the image at `path` and loads it (see [`decode`]).
pub fn load(path: &Path) -> Result<LoadedSnapshot, ImageError> {
    let file = Arc::new(map_file(path).map_err(|source| ImageError::Io {
        path: path.display().to_string(),
        source,
    })?);
    let loaded = decode(Arc::clone(&file))?;
    file.release_resident_pages();
    Ok(loaded)
}

/// Checks an image's bytes (see the module's documentation) and loads the
/// state it holds; its ads' bytes stay in `file`.
pub fn decode(file: Arc<FileBytes>) -> Result<LoadedSnapshot, ImageError> {
    let header = ImageHeader::decode(&file)?;
    let instant = |millis| {
        Timestamp::from_millis(millis)
            .ok_or(ImageError::Invalid("an instant outside years 0000–9999"))
    };
    let created_at = instant(header.written_at)?;
    instant(header.base_built_at)?;
    instant(header.index_built_at)?;
    // Sequence numbers are the writer's: a PostgreSQL bigint.
    if header.seq > i64::MAX as u64 {
        return Err(ImageError::Invalid(
            "a sequence number beyond the writer's range",
        ));
    }
    let want = header
        .body_len_of_counts()
        .filter(|&len| len == header.body_len)
        .ok_or(ImageError::Invalid("counts that do not add up to the body"))?
        .saturating_add(HEADER_LEN as u64);
    if file.len() as u64 != want {
        return Err(ImageError::Length {
            have: file.len() as u64,
            want,
        });
    }
    let mut body = Reader {
        bytes: &file[HEADER_LEN..],
    };
    if crc32c::crc32c(body.bytes) != header.body_crc {
        return Err(ImageError::BodyChecksum);
    }
    // Sizes are right (the length matched the counts): the reads below
    // cannot run short.
    body.take(padded(header.arena_len).expect("checked above") as usize);
    let invalid = ImageError::Invalid;
    let slots = header.slots as usize;
    // Each ad's bytes follow the previous ad's; together they are the ad
    // bytes section, exactly.
    let arena_end = u32::try_from(HEADER_LEN as u64 + header.arena_len)
        .map_err(|_| invalid("ad bytes past 4 GiB"))?;
    let mut at = HEADER_LEN as u32;
    let mut next_slot = |record: &[u8]| {
        let record = record.try_into().expect("SLOT_RECORD bytes");
        let slot = Slot::read_record(record, &file, at).ok_or(invalid("an invalid ad record"))?;
        at = at
            .checked_add(slot.served.parts().0.len() as u32)
            .filter(|&end| end <= arena_end)
            .ok_or(invalid("ad bytes past their section"))?;
        Ok::<_, ImageError>(slot)
    };
    let mut base_slots = Vec::with_capacity(slots);
    for record in body.take(slots * SLOT_RECORD).chunks_exact(SLOT_RECORD) {
        base_slots.push(next_slot(record)?);
    }
    let mut by_id = Vec::with_capacity(slots);
    for record in body.take(slots * ID_RECORD).chunks_exact(ID_RECORD) {
        let id = AdId::new(i64_at(record, 0)).ok_or(invalid("an invalid id"))?;
        let position = u32::try_from(i64_at(record, 8)).map_err(|_| invalid("a position"))?;
        by_id.push((id, position));
    }
    let words = header.entries.div_ceil(64) as usize;
    let mut bitset = || words_of(body.take(words * 8));
    let fixed = (0..FIXED_BITSETS).map(|_| bitset()).collect();
    let country = (0..Country::COUNT)
        .map(|index| header.has_country(index).then(&mut bitset))
        .collect();
    if (Country::COUNT..256).any(|index| header.has_country(index)) {
        return Err(invalid("a bitset of an unknown country"));
    }
    let base = Segment::from_image(base_slots, by_id, fixed, country, header.base_built_at)
        .map_err(invalid)?;
    if base.entries() as u64 != header.entries {
        return Err(invalid("entries other than the header's"));
    }
    let mut changes = Vec::with_capacity(header.changes as usize);
    for record in body
        .take(header.changes as usize * CHANGE_RECORD)
        .chunks_exact(CHANGE_RECORD)
    {
        let id = AdId::new(i64_at(record, 8)).ok_or(invalid("a change of an invalid id"))?;
        let seq = i64_at(record, 0) as u64;
        if seq > header.seq {
            return Err(invalid("a change after the image's sequence number"));
        }
        let slot = match i64_at(record, 16) {
            0 => None,
            1 => Some(next_slot(&record[24..])?),
            _ => return Err(invalid("a change record of an unknown kind")),
        };
        changes.push((id, seq, slot));
    }
    if at != arena_end {
        return Err(invalid("ad bytes that no ad record covers"));
    }
    let index = AdIndex::from_image(base, changes, header.index_built_at)
        .ok_or(invalid("changes out of order or not matching their ads"))?;
    Ok(LoadedSnapshot {
        seq: header.seq,
        created_at,
        ads: index.len() as u64,
        index,
    })
}

/// Reads sections off the body in order.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> &'a [u8] {
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        taken
    }
}

fn i64_at(record: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(record[at..at + 8].try_into().expect("8 bytes"))
}

fn words_of(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|word| u64::from_le_bytes(word.try_into().expect("8 bytes")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::newest_local;
    use crate::index::Page;
    use crate::segment::tests::layout;
    use adcast_shared::ad::{Ad, AudienceQuery};
    use adcast_shared::event::Change;
    use adcast_shared::sample::{sample_ads, sample_query, SampleRng};
    use adcast_shared::snapshot::SnapshotWriter;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("adcast-edge-image-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn now() -> Timestamp {
        Timestamp::from_millis(1_800_000_000_000).unwrap()
    }

    /// `count` sample ads, then upserts and deletes of some of them and
    /// some new ones (an overlay), as of seq 40.
    fn index_with_changes(count: usize, seed: u64) -> AdIndex {
        let ads = sample_ads(count + 30, seed, now());
        let (base, later) = ads.split_at(count);
        let index = AdIndex::build(base, now());
        let mut events: Vec<(u64, Change)> = later
            .iter()
            .cloned()
            .map(Change::Upsert)
            .chain(base.iter().take(5).map(|ad| Change::Delete(ad.id)))
            .chain(base.iter().skip(5).take(5).cloned().map(|mut ad| {
                ad.title =
                    adcast_shared::ad::Title::parse(format!("changed {}", ad.id.get())).unwrap();
                Change::Upsert(ad)
            }))
            .enumerate()
            .map(|(n, change)| (n as u64 + 1, change))
            .collect();
        events.truncate(40);
        index.apply(
            &events,
            Timestamp::from_millis(now().as_millis() + 10).unwrap(),
        )
    }

    fn image_bytes(index: &AdIndex, name: &str) -> Vec<u8> {
        let dir = temp_dir(name);
        let path = path_in(&dir);
        write(&path, 40, index, now()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        bytes
    }

    fn decoded(bytes: Vec<u8>) -> Result<LoadedSnapshot, ImageError> {
        decode(Arc::new(FileBytes::from(bytes)))
    }

    /// Answers to sample queries, read as the server reads them (bytes).
    fn answers(index: &AdIndex, seed: u64) -> Vec<Vec<Vec<u8>>> {
        let mut rng = SampleRng::new(seed);
        let at = Timestamp::from_millis(now().as_millis() + 3_600_000).unwrap();
        (0..200)
            .map(|n| {
                let query = if n == 0 {
                    AudienceQuery::default()
                } else {
                    sample_query(&mut rng)
                };
                let page = Page {
                    offset: rng.below(20) as usize,
                    limit: 1 + rng.below(50) as usize,
                };
                let mut items = Vec::new();
                index.for_each_match(&query, page, at, |item| items.push(item.to_vec()));
                items
            })
            .collect()
    }

    fn ads(index: &AdIndex) -> Vec<Ad> {
        index.ads().collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn an_image_loads_back_as_the_index_it_was_written_from() {
        for (count, seed) in [(0, 1), (1, 2), (70, 3), (3_000, 4), (25_000, 5)] {
            let index = index_with_changes(count, seed);
            let loaded = decoded(image_bytes(&index, "round-trip")).unwrap();
            assert_eq!(loaded.seq, 40);
            assert_eq!(loaded.created_at, now());
            assert_eq!(loaded.ads, index.len() as u64);
            let back = loaded.index;
            assert_eq!(layout(back.base()), layout(index.base()), "{count} ads");
            let changes = |index: &AdIndex| -> Vec<(AdId, u64, Option<i64>)> {
                let changes = index.changes();
                changes
                    .map(|(id, seq, slot)| (id, seq, slot.map(|slot| slot.end)))
                    .collect()
            };
            assert_eq!(changes(&back), changes(&index));
            assert_eq!(back.built_at(), index.built_at());
            assert_eq!(ads(&back), ads(&index));
            assert_eq!(answers(&back, seed), answers(&index, seed), "{count} ads");
            // And it goes on as the original does: a change, a compaction.
            let change = [(41, Change::Delete(ads(&index)[0].id))];
            let at = Timestamp::from_millis(now().as_millis() + 20).unwrap();
            let (back, index) = (back.apply(&change, at), index.apply(&change, at));
            assert_eq!(answers(&back, seed), answers(&index, seed));
            assert_eq!(layout(&back.compact(41)), layout(&index.compact(41)));
        }
    }

    #[test]
    fn every_damaged_byte_and_every_truncation_is_refused() {
        let bytes = image_bytes(&index_with_changes(20, 6), "damaged");
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x20;
            assert!(
                decoded(damaged).is_err(),
                "a flipped byte at {at} was accepted"
            );
        }
        for len in 0..bytes.len() {
            assert!(
                decoded(bytes[..len].to_vec()).is_err(),
                "{len} bytes were accepted"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(decoded(longer), Err(ImageError::Length { .. })));
        let mut other_version = bytes;
        other_version[8] = 2;
        assert!(matches!(
            decoded(other_version),
            Err(ImageError::Version(2))
        ));
    }

    /// Recomputes both checksums, as a forger would.
    fn with_checksums_repaired(mut bytes: Vec<u8>) -> Vec<u8> {
        if bytes.len() >= HEADER_LEN {
            let crc = crc32c::crc32c(&bytes[HEADER_LEN..]);
            bytes[88..92].copy_from_slice(&crc.to_le_bytes());
            let crc = header_crc(&bytes[..HEADER_LEN]);
            bytes[12..16].copy_from_slice(&crc.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn an_altered_image_with_forged_checksums_never_panics() {
        let bytes = image_bytes(&index_with_changes(60, 7), "forged");
        let mut rng = SampleRng::new(7);
        let mut accepted = 0;
        for _ in 0..3_000 {
            let mut altered = bytes.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(altered.len() as u64) as usize;
                altered[at] = match rng.below(4) {
                    0 => 0,
                    1 => 0xff,
                    _ => rng.below(256) as u8,
                };
            }
            if rng.chance(10) {
                altered.truncate(rng.below(altered.len() as u64) as usize);
            }
            let Ok(loaded) = decoded(with_checksums_repaired(altered)) else {
                continue;
            };
            // Whatever loads can be queried, changed, compacted and saved.
            accepted += 1;
            let index = loaded.index;
            answers(&index, 7);
            let _ = index.ads().count();
            let at = Timestamp::from_millis(now().as_millis() + 20).unwrap();
            let index = index.apply(&[(41, Change::Delete(AdId::new(3).unwrap()))], at);
            let _ = layout(&index.compact(41));
        }
        // Most single-byte changes to ad text or bitsets are loadable.
        assert!(accepted > 100, "only {accepted} altered images loaded");
    }

    #[test]
    fn records_must_point_at_consecutive_ad_bytes_and_the_layout_must_match() {
        let bytes = image_bytes(&index_with_changes(20, 9), "consecutive");
        let records =
            HEADER_LEN + padded(ImageHeader::decode(&bytes).unwrap().arena_len).unwrap() as usize;
        // Point the second ad's record at the first ad's bytes (a forger
        // making every record parse the same bytes again).
        let mut altered = bytes.clone();
        let first_at: [u8; 4] = altered[records + 24..records + 28].try_into().unwrap();
        altered[records + SLOT_RECORD + 24..records + SLOT_RECORD + 28].copy_from_slice(&first_at);
        assert!(matches!(
            decoded(with_checksums_repaired(altered)),
            Err(ImageError::Invalid("an invalid ad record"))
        ));
        // Written by a build with another country table.
        let mut other_layout = bytes;
        other_layout[92] ^= 1;
        assert!(matches!(
            decoded(with_checksums_repaired(other_layout)),
            Err(ImageError::Layout)
        ));
    }

    fn write_snapshot_file(dir: &Path, seq: u64, ads: &[Ad]) {
        let path = dir.join(snapshot::file_name(seq));
        let mut file = SnapshotWriter::create(&path, seq, now(), ads.len() as u64).unwrap();
        ads.iter().for_each(|ad| file.push(ad).unwrap());
        file.finish().unwrap();
    }

    #[test]
    fn a_boot_takes_the_image_unless_a_snapshot_is_newer_or_it_is_damaged() {
        let dir = temp_dir("boot");
        let image = path_in(&dir);
        let index = index_with_changes(50, 8);
        write(&image, 40, &index, now()).unwrap();
        write_snapshot_file(&dir, 40, &ads(&index)[..3]);
        let boot = |above| newest_local(None, &dir, Some(&image), above).unwrap();
        // Same seq: the image (all its ads, not the snapshot's three).
        assert_eq!(boot(None).ads, index.len() as u64);
        assert_eq!(seq_of(&image), Some(40));
        // Not newer than what a resync already has: not taken.
        assert!(newest_local(None, &dir, Some(&image), Some(40)).is_none());
        // Without the image (--index-image false): the snapshot.
        assert_eq!(newest_local(None, &dir, None, None).unwrap().ads, 3);
        // A newer snapshot wins.
        write_snapshot_file(&dir, 41, &ads(&index)[..4]);
        assert_eq!(boot(None).ads, 4);
        // A damaged image is refused, and the snapshots are used.
        write(&image, 50, &index, now()).unwrap();
        let mut bytes = std::fs::read(&image).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&image, bytes).unwrap();
        assert_eq!(boot(None).seq, 41);
        // A valid image behind a newer snapshot file that is refused: the
        // image, not an older snapshot file.
        write(&image, 40, &index, now()).unwrap();
        std::fs::write(dir.join(snapshot::file_name(41)), b"not a snapshot").unwrap();
        let state = boot(None);
        assert_eq!((state.seq, state.ads), (40, index.len() as u64));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
