//! Snapshot files: the whole serving state as of one sequence number.
//!
//! An edge cold-starts from one of these (memory-mapped), then tails the
//! stream from its sequence number. The writer produces them; an edge also
//! writes its own, so a restart needs no network.
//!
//! # Byte layout (all integers little-endian)
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `ADCSNAP\0` |
//! | 8 | 2 | format version (1) |
//! | 10 | 2 | reserved, zero |
//! | 12 | 4 | CRC-32C of the body |
//! | 16 | 8 | `seq`: the last change included |
//! | 24 | 8 | creation time, ms since the Unix epoch |
//! | 32 | 8 | number of ads |
//! | 40 | 8 | body length in bytes |
//! | 48 | 4 | CRC-32C of bytes 0..48 |
//! | 52 | 4 | reserved, zero |
//! | 56 | body length | zstd-compressed bincode (standard config) of the ads |
//!
//! Ads are stored in ascending id order, in the same bincode form as change
//! events. The body is one zstd stream; this build writes it as a run of
//! frames of about [`FRAME_RAW`] bytes of bincode each, every frame ending
//! at the end of an ad and declaring its size, so a reader can decompress
//! the frames on several threads, and decode them frame by frame without
//! holding the whole body ([`Snapshot::decode_in_two`]). Any zstd stream
//! decodes: a body of one frame, or frames without their sizes, is
//! decompressed in one pass.
//!
//! The decoder checks, in order: length, magic, version, header
//! checksum, reserved bytes, body length against the file length (a
//! truncated or padded file is refused), body checksum, then decompresses
//! with a size cap and decodes with an allocation limit, and finally checks
//! the ad count and id order. Every failure is a [`SnapshotError`]; nothing
//! panics, and no length field is trusted before its checksum is.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::ad::{Ad, AdId, EncodedAd};
use crate::timestamp::Timestamp;

pub const MAGIC: [u8; 8] = *b"ADCSNAP\0";
/// The format version written by this build.
pub const FORMAT_VERSION: u16 = 1;
pub const HEADER_LEN: usize = 56;
/// Upper bound on the decompressed body: ample for millions of ads, and a
/// cap on what a hostile file can make the reader allocate.
const MAX_BODY_DECOMPRESSED: u64 = 1 << 30;
/// zstd level: 3 is the library default, fast to write and plenty small.
const ZSTD_LEVEL: i32 = 3;
/// Bytes of bincode per zstd frame, at least (a frame ends after the ad
/// that reaches it): 70 frames for a million ads, so the frames decompress
/// on two threads in halves of nearly the same size, and small enough a
/// buffer for a writer to hold.
pub const FRAME_RAW: usize = 1 << 20;
/// File name suffix of snapshot files in a directory.
pub const FILE_SUFFIX: &str = ".adsnap";

/// The fixed-size header, readable without touching the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotHeader {
    pub version: u16,
    /// The last change included: tail the stream from here.
    pub seq: u64,
    pub created_at: Timestamp,
    pub ad_count: u64,
    pub body_len: u64,
    pub body_crc: u32,
}

/// Every ad not ended and not deleted, as of change `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub seq: u64,
    pub created_at: Timestamp,
    /// Ascending by id.
    pub ads: Vec<Ad>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("snapshot is truncated: {0} bytes, shorter than the {HEADER_LEN}-byte header")]
    TruncatedHeader(usize),
    #[error("not a snapshot file (wrong magic bytes)")]
    WrongMagic,
    #[error(
        "snapshot format version {0} is not supported (this build reads version {FORMAT_VERSION})"
    )]
    UnknownVersion(u16),
    #[error("snapshot header checksum mismatch (corrupt header)")]
    HeaderChecksum,
    #[error("snapshot header has non-zero reserved bytes (corrupt header)")]
    Reserved,
    #[error(
        "snapshot body is {actual} bytes but the header says {expected} (truncated or padded file)"
    )]
    BodyLength { expected: u64, actual: u64 },
    #[error("snapshot body checksum mismatch (corrupt body)")]
    BodyChecksum,
    #[error("snapshot body does not decode: {0}")]
    BadBody(String),
    #[error("snapshot holds {actual} ads but the header says {expected}")]
    AdCount { expected: u64, actual: u64 },
    #[error("snapshot ads are not in strictly ascending id order")]
    IdOrder,
}

impl Snapshot {
    /// Sorts nothing: callers give ads in ascending id order (the decoder
    /// refuses anything else, so a bad producer is caught at once).
    pub fn encode(&self) -> Vec<u8> {
        let mut frames =
            Frames::new(Vec::new(), self.ads.len() as u64).expect("writing into a Vec cannot fail");
        for ad in &self.ads {
            frames.push(ad).expect("writing into a Vec cannot fail");
        }
        let body = frames.finish().expect("writing into a Vec cannot fail");
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&header_bytes(
            self.seq,
            self.created_at,
            self.ads.len() as u64,
            body.len() as u64,
            crc32c::crc32c(&body),
        ));
        out.extend_from_slice(&body);
        out
    }

    /// Decodes and verifies a whole file held in memory (or mapped). Ads
    /// in canonical form are read in place ([`EncodedAd`]) and then built,
    /// the others decoded by serde; [`Snapshot::decode_each`] with a
    /// closure decodes every ad by serde, and the tests and the fuzz
    /// target hold the two to the same result.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        struct Collect(Vec<Ad>);
        impl AdSink for Collect {
            const TAKES_ENCODED: bool = true;
            fn push(&mut self, ad: Ad) {
                self.0.push(ad);
            }
        }
        let mut ads = Collect(Vec::new());
        let header = Snapshot::decode_each(bytes, &mut ads)?;
        Ok(Snapshot {
            seq: header.seq,
            created_at: header.created_at,
            ads: ads.0,
        })
    }

    /// Verifies a whole file and hands its ads to `sink` one at a time, in
    /// id order, without holding them all (an edge boot turns each into its
    /// own compact form at once). The checks are [`Snapshot::decode`]'s; on
    /// an error, ads already handed over must be thrown away.
    pub fn decode_each(
        bytes: &[u8],
        sink: &mut impl AdSink,
    ) -> Result<SnapshotHeader, SnapshotError> {
        let (header, raw, first) = open_body(bytes)?;
        let run = decode_run(&raw, first, header.ad_count, sink);
        run.outcome?;
        finish_body(&raw, run.at)?;
        Ok(header)
    }

    /// Like [`Snapshot::decode_each`], decoding the ads on two threads
    /// into two sinks made by `new_sink`: the first part of the ads goes to
    /// the first, the rest to the second, each in id order. Small files,
    /// and files whose structure does not split, are decoded on one thread,
    /// all to the first. A file is accepted or refused exactly as
    /// [`Snapshot::decode`] would, with the same error.
    ///
    /// A body written as this build writes it (frames that declare their
    /// sizes and end after an ad, see [`FRAME_RAW`]) is read frame by frame
    /// on each thread: a frame is decompressed into a small buffer and its
    /// ads decoded while they are in cache, and the whole body is never
    /// held. Any body that does not read that way whole is read again
    /// from the start into new sinks: decompressed whole, its middle ad
    /// found, and decoded from there.
    pub fn decode_in_two<S: AdSink + Send>(
        bytes: &[u8],
        new_sink: impl Fn() -> S + Sync,
    ) -> Result<(SnapshotHeader, S, S), SnapshotError> {
        Snapshot::decode_in_two_from(bytes, SPLIT_FROM, new_sink)
    }

    /// [`Snapshot::decode_in_two`], splitting files of at least
    /// `split_from` ads (for tests and fuzzing, which use small files).
    #[doc(hidden)]
    pub fn decode_in_two_from<S: AdSink + Send>(
        bytes: &[u8],
        split_from: u64,
        new_sink: impl Fn() -> S + Sync,
    ) -> Result<(SnapshotHeader, S, S), SnapshotError> {
        let (header, body) = checked_body(bytes)?;
        let count = header.ad_count;
        let splits = count >= split_from.max(2);
        if let Some(frames) = sized_frames(body).filter(|_| splits) {
            if let Some((first, second)) = decode_frames_in_two(&frames, count, &new_sink) {
                return Ok((header, first, second));
            }
        }
        let (mut first, mut second) = (new_sink(), new_sink());
        let (raw, start) = decompressed_ads(body, &header)?;
        let half = count / 2;
        let middle = if splits {
            (0..half).try_fold(start, |at, _| Some(at + encoded_ad_len(&raw[at..])?))
        } else {
            None
        };
        let Some(middle) = middle else {
            let run = decode_run(&raw, start, count, &mut first);
            run.outcome?;
            finish_body(&raw, run.at)?;
            return Ok((header, first, second));
        };
        let (head, tail) = std::thread::scope(|scope| {
            let tail = scope.spawn(|| decode_run(&raw, middle, count - half, &mut second));
            let head = decode_run(&raw, start, half, &mut first);
            (head, joined(tail))
        });
        // Errors in the order decoding the ads in order would meet them.
        head.outcome?;
        if head.at != middle {
            return Err(SnapshotError::BadBody(
                "an ad's encoding does not have the expected structure".into(),
            ));
        }
        if head.last_id.is_some() && tail.first_id.is_some() && head.last_id >= tail.first_id {
            return Err(SnapshotError::IdOrder);
        }
        tail.outcome?;
        finish_body(&raw, tail.at)?;
        Ok((header, first, second))
    }
}

/// Where a decoder hands each ad it reads.
pub trait AdSink {
    /// Whether this sink takes ads read in place ([`AdSink::push_encoded`])
    /// when their encoding allows it.
    const TAKES_ENCODED: bool = false;

    /// An ad decoded.
    fn push(&mut self, ad: Ad);

    /// An ad read in place from its canonical encoding (with
    /// [`AdSink::TAKES_ENCODED`]; any other ad comes through
    /// [`AdSink::push`]).
    fn push_encoded(&mut self, ad: &EncodedAd<'_>) {
        self.push(ad.to_ad());
    }
}

impl<F: FnMut(Ad)> AdSink for F {
    fn push(&mut self, ad: Ad) {
        self(ad)
    }
}

impl AdSink for Vec<Ad> {
    fn push(&mut self, ad: Ad) {
        Vec::push(self, ad)
    }
}

/// Files with at least this many ads are decoded on two threads.
const SPLIT_FROM: u64 = 16_384;

/// Verifies the header and body checksum, decompresses the body, and reads
/// the ad count: the header, the raw body, and where the first ad starts.
fn open_body(bytes: &[u8]) -> Result<(SnapshotHeader, Vec<u8>, usize), SnapshotError> {
    let (header, body) = checked_body(bytes)?;
    let (raw, first) = decompressed_ads(body, &header)?;
    Ok((header, raw, first))
}

/// The header and the body, once the header, the body's length and its
/// checksum verify.
fn checked_body(bytes: &[u8]) -> Result<(SnapshotHeader, &[u8]), SnapshotError> {
    let header = SnapshotHeader::decode(bytes)?;
    let body = &bytes[HEADER_LEN..];
    if body.len() as u64 != header.body_len {
        return Err(SnapshotError::BodyLength {
            expected: header.body_len,
            actual: body.len() as u64,
        });
    }
    if crc32c::crc32c(body) != header.body_crc {
        return Err(SnapshotError::BodyChecksum);
    }
    Ok((header, body))
}

/// The verified `body` decompressed, and where its first ad starts, once
/// its ad count is the header's.
fn decompressed_ads(
    body: &[u8],
    header: &SnapshotHeader,
) -> Result<(Vec<u8>, usize), SnapshotError> {
    let raw = decompress(body)?;
    let (count, first) = ad_count(&raw)?;
    if count != header.ad_count {
        return Err(SnapshotError::AdCount {
            expected: header.ad_count,
            actual: count,
        });
    }
    Ok((raw, first))
}

/// bincode's sequence form starts with the length as a varint `u64`: the
/// ad count, and where the first ad starts.
fn ad_count(raw: &[u8]) -> Result<(u64, usize), SnapshotError> {
    bincode::serde::decode_from_slice(raw, decode_config()).map_err(bad_body)
}

fn decode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ MAX_BODY_DECOMPRESSED as usize }>()
}

fn bad_body(error: bincode::error::DecodeError) -> SnapshotError {
    SnapshotError::BadBody(error.to_string())
}

/// What decoding a run of ads saw, up to its end or its first error.
struct Run {
    /// Where the ads decoded end.
    at: usize,
    first_id: Option<AdId>,
    last_id: Option<AdId>,
    outcome: Result<(), SnapshotError>,
}

impl Run {
    /// Takes the next ad, `id`, encoded in `len` bytes; false (and the
    /// run's error) when it breaks the id order.
    fn advance(&mut self, id: AdId, len: usize) -> bool {
        if self.last_id.is_some_and(|last| last >= id) {
            self.outcome = Err(SnapshotError::IdOrder);
            return false;
        }
        self.at += len;
        self.first_id = self.first_id.or(Some(id));
        self.last_id = Some(id);
        true
    }
}

/// Decodes `count` ads starting at `at`, checking their id order. Ads
/// whose encoding [`EncodedAd::parse`] reads go to a sink that takes them
/// as they are; the rest, and every error, come from serde's decoder.
fn decode_run<S: AdSink>(raw: &[u8], at: usize, count: u64, sink: &mut S) -> Run {
    let mut run = Run {
        at,
        first_id: None,
        last_id: None,
        outcome: Ok(()),
    };
    for _ in 0..count {
        if !decode_one(raw, &mut run, sink) {
            break;
        }
    }
    run
}

/// Decodes the ad at `run.at` into `sink` and moves the run past it; false
/// (and the run's error) when it does not decode or breaks the id order.
fn decode_one<S: AdSink>(raw: &[u8], run: &mut Run, sink: &mut S) -> bool {
    if S::TAKES_ENCODED {
        if let Some(ad) = EncodedAd::parse(&raw[run.at..]) {
            if !run.advance(ad.id, ad.len()) {
                return false;
            }
            sink.push_encoded(&ad);
            return true;
        }
    }
    let (ad, used): (Ad, usize) =
        match bincode::serde::decode_from_slice(&raw[run.at..], decode_config()) {
            Ok(decoded) => decoded,
            Err(error) => {
                run.outcome = Err(bad_body(error));
                return false;
            }
        };
    if !run.advance(ad.id, used) {
        return false;
    }
    sink.push(ad);
    true
}

/// The ads of `frames` (a whole body's, each declaring its size), the
/// frames before the middle of the bytes decoded into one new sink on this
/// thread and the rest into another on a second thread; `None` unless the
/// body reads that way exactly as in order (see [`decode_frames`]), holds
/// `count` ads, and keeps the id order across the two parts.
fn decode_frames_in_two<S: AdSink + Send>(
    frames: &[(&[u8], usize)],
    count: u64,
    new_sink: &(impl Fn() -> S + Sync),
) -> Option<(S, S)> {
    let (head, tail) = frames.split_at(half_split(frames));
    let (mut first, mut second) = (new_sink(), new_sink());
    let (head, tail) = std::thread::scope(|scope| {
        let tail = scope.spawn(|| decode_frames(tail, false, &mut second));
        let head = decode_frames(head, true, &mut first);
        (head, joined(tail))
    });
    let (head, tail) = (head?, tail?);
    let in_order = match (head.run.last_id, tail.run.first_id) {
        (Some(last), Some(first)) => last < first,
        _ => true,
    };
    (in_order && head.count == Some(count) && head.ads + tail.ads == count)
        .then_some((first, second))
}

/// What [`decode_frames`] read.
struct FramesRead {
    /// The ad count at the start of the body (for the body's first frames).
    count: Option<u64>,
    ads: u64,
    run: Run,
}

/// Decompresses each frame into one buffer, reused, and decodes its ads
/// into `sink`, reading the ad count first if the frames `start_body`.
/// `None` when a frame does not decompress to its declared size, or its
/// bytes are not whole ads that decode in id order: in order, such a body
/// may still decode (an ad across two frames) or fail with an error that
/// this reading does not give, so it must be read in order instead. A
/// body that reads this way whole reads in order to the same ads.
fn decode_frames<S: AdSink>(
    frames: &[(&[u8], usize)],
    start_body: bool,
    sink: &mut S,
) -> Option<FramesRead> {
    let mut decompressor = zstd::bulk::Decompressor::new().ok()?;
    let mut raw = Vec::new();
    let mut read = FramesRead {
        count: None,
        ads: 0,
        run: Run {
            at: 0,
            first_id: None,
            last_id: None,
            outcome: Ok(()),
        },
    };
    for (index, &(frame, size)) in frames.iter().enumerate() {
        raw.clear();
        raw.reserve(size);
        if decompressor.decompress_to_buffer(frame, &mut raw).ok()? != size {
            return None;
        }
        read.run.at = 0;
        if start_body && index == 0 {
            let (count, first) = ad_count(&raw).ok()?;
            read.count = Some(count);
            read.run.at = first;
        }
        while read.run.at < raw.len() {
            if !decode_one(&raw, &mut read.run, sink) {
                return None;
            }
            read.ads += 1;
        }
    }
    Some(read)
}

/// What a scoped thread returned, its panic passed on.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Refuses bytes after the last ad.
fn finish_body(raw: &[u8], end: usize) -> Result<(), SnapshotError> {
    if end != raw.len() {
        return Err(SnapshotError::BadBody(format!(
            "{} trailing bytes",
            raw.len() - end
        )));
    }
    Ok(())
}

/// The length of the ad encoded at the start of `raw`, read from its
/// structure alone (lengths and tags; nothing is validated): where the next
/// ad starts. `None` when the bytes end early or a tag is not one bincode
/// writes. Must agree with bincode's serde form of [`Ad`] (the tests check
/// it against the encoder); a decoder that trusted a wrong answer would
/// still refuse the file, as every ad is then decoded in full.
fn encoded_ad_len(raw: &[u8]) -> Option<usize> {
    let mut at = 0;
    varint(raw, &mut at)?; // id
    let title = varint(raw, &mut at)?;
    at = at.checked_add(usize::try_from(title).ok()?)?;
    varint(raw, &mut at)?; // start
    varint(raw, &mut at)?; // end
    for _ in 0..varint(raw, &mut at)? {
        // A group: age (an optional pair of `u8`s), genders, countries (two
        // bytes each), platforms; enum tags are varints.
        match raw.get(at)? {
            0 => at += 1,
            1 => at += 3,
            _ => return None,
        }
        for _ in 0..varint(raw, &mut at)? {
            varint(raw, &mut at)?;
        }
        let countries = varint(raw, &mut at)?;
        at = at.checked_add(usize::try_from(countries.checked_mul(2)?).ok()?)?;
        for _ in 0..varint(raw, &mut at)? {
            varint(raw, &mut at)?;
        }
    }
    (at <= raw.len()).then_some(at)
}

/// Reads the bincode varint at `at` and moves past it: below 251 a value
/// is its own byte; 251, 252 and 253 announce 2, 4 and 8 little-endian
/// bytes. (Signed values are zigzag-encoded the same way; only their
/// length matters here.) `None` past the end or on a 16-byte form, which
/// no field of an ad uses.
fn varint(raw: &[u8], at: &mut usize) -> Option<u64> {
    let first = *raw.get(*at)?;
    let width = match first {
        0..=250 => {
            *at += 1;
            return Some(u64::from(first));
        }
        251 => 2,
        252 => 4,
        253 => 8,
        _ => return None,
    };
    let bytes = raw.get(*at + 1..*at + 1 + width)?;
    *at += 1 + width;
    let mut value = [0u8; 8];
    value[..width].copy_from_slice(bytes);
    Some(u64::from_le_bytes(value))
}

/// The decompressed body, at most [`MAX_BODY_DECOMPRESSED`] bytes: frame
/// by frame on two threads when every frame declares its size
/// ([`decompress_frames`]), else in one pass.
fn decompress(body: &[u8]) -> Result<Vec<u8>, SnapshotError> {
    match decompress_frames(body) {
        Some(raw) => Ok(raw),
        None => decompress_in_one_pass(body),
    }
}

/// The body's frames decompressed into one buffer, the first half of its
/// bytes on this thread and the rest on another; `None` unless the body
/// is frames as [`sized_frames`] takes them that decompress to exactly
/// their sizes. (A body this refuses is decompressed in one pass, which
/// then gives the result, or the error, that any body gets.)
fn decompress_frames(body: &[u8]) -> Option<Vec<u8>> {
    let frames = sized_frames(body)?;
    let total: usize = frames.iter().map(|&(_, size)| size).sum();
    let mut raw = vec![0u8; total];
    let split = half_split(&frames);
    let first_len: usize = frames[..split].iter().map(|&(_, size)| size).sum();
    let (first_out, second_out) = raw.split_at_mut(first_len);
    let (first, second) = frames.split_at(split);
    let (first_ok, second_ok) = std::thread::scope(|scope| {
        let second = scope.spawn(|| decompress_each(second, second_out));
        let first = decompress_each(first, first_out);
        (first, second.join().unwrap_or(false))
    });
    (first_ok && second_ok).then_some(raw)
}

/// The body's zstd frames, each with the size it declares; `None` unless
/// it is at least two frames that each declare their size, adding up to
/// at most [`MAX_BODY_DECOMPRESSED`].
fn sized_frames(body: &[u8]) -> Option<Vec<(&[u8], usize)>> {
    let mut frames = Vec::new();
    let (mut at, mut total) = (0usize, 0u64);
    while at < body.len() {
        let len = zstd::zstd_safe::find_frame_compressed_size(&body[at..]).ok()?;
        let frame = body.get(at..at.checked_add(len)?)?;
        let size = zstd::zstd_safe::get_frame_content_size(frame).ok()??;
        total = total.checked_add(size)?;
        frames.push((frame, usize::try_from(size).ok()?));
        at += len;
    }
    (frames.len() >= 2 && total <= MAX_BODY_DECOMPRESSED).then_some(frames)
}

/// How many of `frames` (at least two) hold the first half of the bytes:
/// at least one, and not all.
fn half_split(frames: &[(&[u8], usize)]) -> usize {
    let total: usize = frames.iter().map(|&(_, size)| size).sum();
    let mut before_half = 0;
    frames
        .iter()
        .position(|&(_, size)| {
            before_half += size;
            before_half > total / 2
        })
        .map_or(frames.len(), |last| last + 1)
        .min(frames.len() - 1)
}

/// Decompresses each frame into its part of `out`, in order; false unless
/// each fills exactly the size it declared.
fn decompress_each(frames: &[(&[u8], usize)], mut out: &mut [u8]) -> bool {
    let Ok(mut decompressor) = zstd::bulk::Decompressor::new() else {
        return false;
    };
    for &(frame, size) in frames {
        let (part, rest) = std::mem::take(&mut out).split_at_mut(size);
        match decompressor.decompress_to_buffer(frame, part) {
            Ok(written) if written == size => out = rest,
            _ => return false,
        }
    }
    true
}

/// The decompressed body, at most [`MAX_BODY_DECOMPRESSED`] bytes, read
/// into a buffer sized from the first frame's declared content size when
/// it has one (a hint only: a wrong one costs a reallocation, nothing more).
fn decompress_in_one_pass(body: &[u8]) -> Result<Vec<u8>, SnapshotError> {
    let declared = zstd::zstd_safe::get_frame_content_size(body)
        .ok()
        .flatten()
        .unwrap_or(0);
    let mut raw = Vec::with_capacity(declared.min(MAX_BODY_DECOMPRESSED) as usize);
    zstd::stream::read::Decoder::new(body)
        .map_err(|error| SnapshotError::BadBody(error.to_string()))?
        .take(MAX_BODY_DECOMPRESSED)
        .read_to_end(&mut raw)
        .map_err(|error| SnapshotError::BadBody(error.to_string()))?;
    Ok(raw)
}

/// The 56-byte header of a body of `body_len` bytes with checksum `body_crc`.
fn header_bytes(
    seq: u64,
    created_at: Timestamp,
    ad_count: u64,
    body_len: u64,
    body_crc: u32,
) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(&MAGIC);
    out[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&body_crc.to_le_bytes());
    out[16..24].copy_from_slice(&seq.to_le_bytes());
    out[24..32].copy_from_slice(&created_at.as_millis().to_le_bytes());
    out[32..40].copy_from_slice(&ad_count.to_le_bytes());
    out[40..48].copy_from_slice(&body_len.to_le_bytes());
    let header_crc = crc32c::crc32c(&out[..48]);
    out[48..52].copy_from_slice(&header_crc.to_le_bytes());
    out
}

/// The body as this build writes it: bincode's sequence prefix (the ad
/// count), then the ads, cut into zstd frames of at least [`FRAME_RAW`]
/// bytes (the last may be shorter), each ending after an ad and declaring
/// its size (see the module documentation).
struct Frames<W: Write> {
    out: W,
    compressor: zstd::bulk::Compressor<'static>,
    /// Encoded ads of the frame being filled.
    pending: Vec<u8>,
}

impl<W: Write> Frames<W> {
    fn new(out: W, ad_count: u64) -> std::io::Result<Frames<W>> {
        let mut frames = Frames {
            out,
            compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL)?,
            pending: Vec::with_capacity(FRAME_RAW + 4096),
        };
        bincode::serde::encode_into_std_write(
            ad_count,
            &mut frames.pending,
            bincode::config::standard(),
        )
        .map_err(std::io::Error::other)?;
        Ok(frames)
    }

    fn push(&mut self, ad: &Ad) -> std::io::Result<()> {
        bincode::serde::encode_into_std_write(ad, &mut self.pending, bincode::config::standard())
            .map_err(std::io::Error::other)?;
        if self.pending.len() >= FRAME_RAW {
            self.write_frame()?;
        }
        Ok(())
    }

    fn write_frame(&mut self) -> std::io::Result<()> {
        let frame = self.compressor.compress(&self.pending)?;
        self.out.write_all(&frame)?;
        self.pending.clear();
        Ok(())
    }

    /// Writes the last frame (there is always one: the count, at least)
    /// and gives back where the frames went.
    fn finish(mut self) -> std::io::Result<W> {
        if !self.pending.is_empty() {
            self.write_frame()?;
        }
        Ok(self.out)
    }
}

/// Counts and checksums the compressed body on its way to the file.
struct BodySink {
    file: BufWriter<File>,
    crc: u32,
    len: u64,
}

impl Write for BodySink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..written]);
        self.len += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Writes a snapshot file ad by ad, in the same format as
/// [`Snapshot::encode`], without holding the ads (or the encoded body) in
/// memory: ads are encoded into a buffer that is compressed, one zstd
/// frame per [`FRAME_RAW`] bytes, into a temporary file;
/// [`SnapshotWriter::finish`] writes the header and renames the file into
/// place, as [`write_atomically`] does. Dropped unfinished, it removes the
/// temporary file.
pub struct SnapshotWriter {
    frames: Option<Frames<BodySink>>,
    temp: PathBuf,
    path: PathBuf,
    seq: u64,
    created_at: Timestamp,
    ad_count: u64,
    written: u64,
    last_id: Option<crate::ad::AdId>,
}

impl SnapshotWriter {
    /// Starts the file for exactly `ad_count` ads as of `seq`.
    pub fn create(
        path: &Path,
        seq: u64,
        created_at: Timestamp,
        ad_count: u64,
    ) -> std::io::Result<SnapshotWriter> {
        let (_, temp) = temp_path(path)?;
        let mut file = BufWriter::with_capacity(1 << 20, File::create(&temp)?);
        let mut writer = SnapshotWriter {
            frames: None,
            temp,
            path: path.to_path_buf(),
            seq,
            created_at,
            ad_count,
            written: 0,
            last_id: None,
        };
        // The header is written last, once the body's length and checksum
        // are known.
        file.write_all(&[0; HEADER_LEN])?;
        let sink = BodySink {
            file,
            crc: 0,
            len: 0,
        };
        writer.frames = Some(Frames::new(sink, ad_count)?);
        Ok(writer)
    }

    /// Appends the next ad; ids must ascend.
    pub fn push(&mut self, ad: &Ad) -> std::io::Result<()> {
        if self.last_id.is_some_and(|last| last >= ad.id) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "snapshot ads must be given in strictly ascending id order",
            ));
        }
        if self.written == self.ad_count {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("more ads than the {} announced", self.ad_count),
            ));
        }
        let frames = self.frames.as_mut().expect("present until finished");
        frames.push(ad)?;
        self.last_id = Some(ad.id);
        self.written += 1;
        Ok(())
    }

    /// Completes the file and renames it into place; returns its size.
    pub fn finish(mut self) -> std::io::Result<u64> {
        if self.written != self.ad_count {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{} ads written but {} announced",
                    self.written, self.ad_count
                ),
            ));
        }
        let frames = self.frames.take().expect("present until finished");
        let sink = match frames.finish() {
            Ok(sink) => sink,
            Err(error) => {
                let _ = std::fs::remove_file(&self.temp);
                return Err(error);
            }
        };
        let (crc, len) = (sink.crc, sink.len);
        let mut file = sink.file.into_inner().map_err(|error| error.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header_bytes(
            self.seq,
            self.created_at,
            self.ad_count,
            len,
            crc,
        ))?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.temp, &self.path)?;
        let (dir, _) = temp_path(&self.path)?;
        File::open(dir)?.sync_all()?;
        Ok(HEADER_LEN as u64 + len)
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if self.frames.is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// The directory of `path` (created if missing) and a temporary file name
/// in it, unique per call (hidden: [`list_files`] never lists it).
pub fn temp_path(path: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "snapshot path needs a file name",
            )
        })?;
    // Unique per call, so concurrent writers of the same name never share one.
    static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);
    let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(".{file_name}.{}-{n}.tmp", std::process::id()));
    Ok((dir, temp))
}

impl SnapshotHeader {
    /// Reads and verifies the header alone (cheap: for picking a file).
    pub fn decode(bytes: &[u8]) -> Result<SnapshotHeader, SnapshotError> {
        if bytes.len() < HEADER_LEN {
            return Err(SnapshotError::TruncatedHeader(bytes.len()));
        }
        let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        if bytes[..8] != MAGIC {
            return Err(SnapshotError::WrongMagic);
        }
        let version = u16_at(8);
        if version != FORMAT_VERSION {
            return Err(SnapshotError::UnknownVersion(version));
        }
        if crc32c::crc32c(&bytes[..48]) != u32_at(48) {
            return Err(SnapshotError::HeaderChecksum);
        }
        if u16_at(10) != 0 || u32_at(52) != 0 {
            return Err(SnapshotError::Reserved);
        }
        let created_at = Timestamp::from_millis(u64_at(24) as i64)
            .ok_or_else(|| SnapshotError::BadBody("creation time out of range".into()))?;
        Ok(SnapshotHeader {
            version,
            seq: u64_at(16),
            created_at,
            ad_count: u64_at(32),
            body_len: u64_at(40),
            body_crc: u32_at(12),
        })
    }
}

/// `snapshot-<seq, 20 digits>.adsnap`: names sort in sequence order.
pub fn file_name(seq: u64) -> String {
    format!("snapshot-{seq:020}{FILE_SUFFIX}")
}

/// The sequence number in a snapshot file name, if it is one.
pub fn seq_from_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("snapshot-")?.strip_suffix(FILE_SUFFIX)?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Snapshot files in `dir`, newest (highest sequence number) first. Other
/// files, including temporary ones, are ignored.
pub fn list_files(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(seq) = entry.file_name().to_str().and_then(seq_from_file_name) {
            files.push((seq, entry.path()));
        }
    }
    files.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
    Ok(files)
}

/// Writes `bytes` to `path` so that readers see the old file or the whole new
/// one, never a part, even across a crash: temporary file in the same
/// directory, fsync, rename over `path`, fsync the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (dir, temp) = temp_path(path)?;
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Deletes all but the `keep` newest snapshot files in `dir`; returns the
/// sequence numbers still kept, newest first.
pub fn prune(dir: &Path, keep: usize) -> std::io::Result<Vec<u64>> {
    let files = list_files(dir)?;
    for (_, path) in files.iter().skip(keep.max(1)) {
        std::fs::remove_file(path)?;
    }
    Ok(files
        .iter()
        .take(keep.max(1))
        .map(|(seq, _)| *seq)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_sort_by_sequence() {
        assert_eq!(file_name(42), "snapshot-00000000000000000042.adsnap");
        assert_eq!(seq_from_file_name(&file_name(42)), Some(42));
        assert_eq!(seq_from_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert!(file_name(9) < file_name(10));
        for other in [
            "snapshot-42.adsnap",
            ".snapshot-00000000000000000042.adsnap.1.tmp",
            "x.adsnap",
            "snapshot-0000000000000000004x.adsnap",
        ] {
            assert_eq!(seq_from_file_name(other), None, "{other}");
        }
    }

    /// `count` ads with titles long enough to fill several frames.
    fn ads(count: i64) -> Vec<Ad> {
        let at = |millis| Timestamp::from_millis(millis).unwrap();
        (1..=count)
            .map(|id| Ad {
                id: crate::ad::AdId::new(id).unwrap(),
                title: crate::ad::Title::parse(format!("ad {id} {}", "x".repeat(200))).unwrap(),
                window: crate::ad::TimeWindow::new(at(id), at(id + 1_000)).unwrap(),
                targeting: crate::ad::Targeting::everyone(),
            })
            .collect()
    }

    fn body(snapshot: &Snapshot) -> Vec<u8> {
        snapshot.encode()[HEADER_LEN..].to_vec()
    }

    /// The frames this build writes: each at least FRAME_RAW bytes of
    /// whole ads (the last shorter), each declaring its size, decompressed
    /// on two threads to what one pass gives.
    #[test]
    fn bodies_are_frames_of_whole_ads_that_decompress_on_two_threads() {
        let snapshot = Snapshot {
            seq: 9,
            created_at: Timestamp::now(),
            ads: ads(30_000),
        };
        let body = body(&snapshot);
        let mut sizes = Vec::new();
        let mut at = 0;
        while at < body.len() {
            let len = zstd::zstd_safe::find_frame_compressed_size(&body[at..]).unwrap();
            let size = zstd::zstd_safe::get_frame_content_size(&body[at..at + len]).unwrap();
            sizes.push(size.expect("every frame declares its size") as usize);
            at += len;
        }
        assert!(sizes.len() >= 5, "{sizes:?}");
        let last = sizes.pop().unwrap();
        assert!(sizes
            .iter()
            .all(|&size| (FRAME_RAW..FRAME_RAW + 300).contains(&size)));
        assert!(last > 0 && last < FRAME_RAW + 300);
        let in_one_pass = decompress_in_one_pass(&body).unwrap();
        assert_eq!(decompress_frames(&body).as_ref(), Some(&in_one_pass));
        // Each frame ends after an ad: every frame's end is an ad's end.
        let mut ends = Vec::new();
        let (_, mut at): (u64, usize) =
            bincode::serde::decode_from_slice(&in_one_pass, decode_config()).unwrap();
        while at < in_one_pass.len() {
            at += encoded_ad_len(&in_one_pass[at..]).unwrap();
            ends.push(at);
        }
        let mut frame_end = 0;
        for size in &sizes {
            frame_end += size;
            assert!(ends.contains(&frame_end), "frame ends inside an ad");
        }
        assert_eq!(Snapshot::decode(&snapshot.encode()).unwrap(), snapshot);
    }

    /// A body of one frame (the format before frames) and frames that do
    /// not declare their size decode in one pass, to the same ads; small
    /// snapshots are one frame.
    #[test]
    fn any_zstd_stream_decodes() {
        let ads = ads(12_000);
        let raw = bincode::serde::encode_to_vec(&ads, bincode::config::standard()).unwrap();
        let one_frame = zstd::bulk::compress(&raw, 3).unwrap();
        let mut no_sizes = Vec::new();
        for part in raw.chunks(FRAME_RAW / 3) {
            let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            encoder.include_contentsize(false).unwrap();
            std::io::Write::write_all(&mut encoder, part).unwrap();
            no_sizes.extend(encoder.finish().unwrap());
        }
        for body in [one_frame, no_sizes] {
            assert_eq!(decompress_frames(&body), None);
            assert_eq!(decompress(&body).unwrap(), raw);
        }
        let small = Snapshot {
            seq: 1,
            created_at: Timestamp::now(),
            ads: ads[..10].to_vec(),
        };
        let body = body(&small);
        assert_eq!(
            zstd::zstd_safe::find_frame_compressed_size(&body),
            Ok(body.len())
        );
    }

    /// Damage to a framed body: the two-thread path gives what one pass
    /// gives, the same bytes or an error, for every kind of damage tried
    /// (so a decoder's answer does not depend on the path taken).
    #[test]
    fn damaged_frames_decompress_as_in_one_pass() {
        let body = body(&Snapshot {
            seq: 2,
            created_at: Timestamp::now(),
            ads: ads(12_000),
        });
        let frame_len = zstd::zstd_safe::find_frame_compressed_size(&body).unwrap();
        let mut damaged = Vec::new();
        for at in [
            0,
            4,
            5,
            6,
            9,
            frame_len / 2,
            frame_len - 1,
            frame_len,
            frame_len + 5,
            body.len() - 1,
        ] {
            for value in [0, 1, 0x7f, 0xff] {
                let mut bytes = body.clone();
                bytes[at] = value;
                damaged.push(bytes);
            }
        }
        damaged.push(body[..frame_len].to_vec());
        damaged.push(body[..body.len() - 1].to_vec());
        damaged.push([&body[..], &body[..frame_len]].concat());
        damaged.push([&body[..], b"trailing"].concat());
        let mut refused = 0;
        for bytes in &damaged {
            let in_one_pass = decompress_in_one_pass(bytes).ok();
            refused += usize::from(in_one_pass.is_none());
            if let Some(raw) = decompress_frames(bytes) {
                assert_eq!(Some(raw), in_one_pass);
            }
            assert_eq!(decompress(bytes).ok(), in_one_pass);
        }
        assert!(refused > 10, "{refused}");
    }
}
