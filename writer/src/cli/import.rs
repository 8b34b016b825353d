//! `adcast-writer import FILE`: creates the ads of a JSON array or NDJSON
//! file through a running writer's import route, in chunks.
//!
//! Resumable: each chunk is sent with an `Idempotency-Key` made of the
//! SHA-256 of the file's bytes up to the chunk's last ad and the chunk's
//! range of ads. Running the command again on the same file (after an
//! interruption, a timeout, a crash) sends the same keys, so the writer
//! answers the chunks it already stored from its memory of them and
//! creates only the rest: every ad exactly once. Because the key covers
//! the file only up to the chunk, fixing an invalid ad later in the file
//! keeps the keys of the chunks before it too. (Keys are kept 24 h, and the
//! chunk size must be the same.)
//!
//! The file is checked for JSON syntax before anything is sent; the rules
//! of each ad are checked by the writer, chunk by chunk.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http::{Method, StatusCode};
use sha2::{Digest, Sha256};

use super::client::{error_of, read_body, refusal, ClientArgs, WriterClient};
use super::progress::Progress;
use super::{Exit, Failure};
use crate::bulk::{self, Format, RawAd, MAX_ADS, MAX_BYTES};

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The file: a JSON array of create bodies, or NDJSON (one per line;
    /// blank lines skipped). An `id` in an ad is ignored.
    pub file: PathBuf,

    /// Ads per request (at most 10000; a request also stays under 16 MiB).
    /// Rerun an interrupted import with the same value.
    #[arg(long, default_value_t = MAX_ADS as u64, value_parser = clap::value_parser!(u64).range(1..=MAX_ADS as u64))]
    pub chunk_size: u64,

    #[command(flatten)]
    pub client: ClientArgs,
}

/// How long one chunk may take at the writer.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts per chunk when the writer is unreachable or answers 5xx.
const ATTEMPTS: u32 = 6;

/// One request's worth of ads: `ads[start..end]` of the file.
struct Chunk {
    start: usize,
    end: usize,
    body: Bytes,
    key: String,
}

pub async fn run(args: ImportArgs) -> Result<(), Failure> {
    let client = WriterClient::new(&args.client)?;
    let path = args.file.display().to_string();
    let text = std::fs::read(&args.file)
        .map_err(|error| Failure::new(Exit::Invalid, format!("cannot read {path}: {error}")))?;
    let format = Format::detect(&text);
    let ads = bulk::split(&text, format, usize::MAX).map_err(|error| match error {
        bulk::SplitError::Malformed {
            index,
            line,
            message,
            ..
        } => Failure::new(
            Exit::Invalid,
            match index {
                Some(index) => format!("{path}: ad [{index}] (line {line}): {message}"),
                None => format!("{path}: line {line}: {message}"),
            },
        ),
        too_many => Failure::new(Exit::Invalid, format!("{path}: {too_many}")),
    })?;
    if format == Format::Ndjson {
        for ad in &ads {
            if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(ad.text) {
                return Err(Failure::new(
                    Exit::Invalid,
                    format!("{path}: line {}: not valid JSON: {error}", ad.line),
                ));
            }
        }
    }
    if ads.is_empty() {
        eprintln!("adcast-writer import: {path} holds no ads; nothing to do");
        return Ok(());
    }
    let chunks = chunks(&text, &ads, args.chunk_size as usize).map_err(|index| {
        Failure::new(
            Exit::Invalid,
            format!(
                "{path}: {}: the ad alone is larger than a request may be (16 MiB)",
                place(format, index, &ads)
            ),
        )
    })?;

    let mut progress = Progress::new(ads.len() as u64);
    let (mut created, mut replayed, mut last_seq) = (0usize, 0usize, 0u64);
    for chunk in &chunks {
        let answer = send_chunk(&client, chunk, &progress).await;
        let (status, body, was_replayed) = match answer {
            Ok(answer) => answer,
            Err(failure) => {
                progress.finish();
                return Err(failure);
            }
        };
        if status == StatusCode::CREATED {
            let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            last_seq = parsed["seq"].as_u64().unwrap_or(last_seq);
            if was_replayed {
                replayed += chunk.end - chunk.start;
            } else {
                created += chunk.end - chunk.start;
            }
            progress.advance((chunk.end - chunk.start) as u64);
            continue;
        }
        progress.finish();
        if status == StatusCode::BAD_REQUEST {
            let (message, field) = error_of(&body);
            return Err(invalid_ad(&path, format, &ads, chunk, &message, field));
        }
        return Err(refusal(status, &body));
    }
    progress.finish();
    eprintln!(
        "adcast-writer import: {} ads from {path} are in the writer ({created} created now, {replayed} already imported by an earlier run); last change {last_seq}",
        ads.len()
    );
    Ok(())
}

/// Sends one chunk, retrying while the writer is unreachable or answers
/// 5xx (the key makes a retry safe). Returns the final answer and whether
/// it was a replay.
async fn send_chunk(
    client: &WriterClient,
    chunk: &Chunk,
    progress: &Progress,
) -> Result<(StatusCode, Bytes, bool), Failure> {
    let mut delay = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        let answer = client
            .send(
                Method::POST,
                "/api/v1/admin/ad/import",
                Some(("application/json", chunk.body.clone())),
                Some(&chunk.key),
                CHUNK_TIMEOUT,
            )
            .await;
        let problem = match answer {
            Ok(response) => {
                let replayed = response
                    .headers()
                    .get(adcast_shared::protocol::headers::IDEMPOTENT_REPLAYED)
                    .is_some_and(|value| value == "true");
                match read_body(response).await {
                    Ok((status, body)) if !status.is_server_error() => {
                        return Ok((status, body, replayed))
                    }
                    Ok((status, body)) => format!("{status}: {}", error_of(&body).0),
                    Err(error) => error,
                }
            }
            Err(error) => error,
        };
        if attempt == ATTEMPTS {
            return Err(Failure::new(
                Exit::Unavailable,
                format!(
                    "ads [{}..{}) not sent after {ATTEMPTS} attempts: {problem} (run the same command again to resume)",
                    chunk.start, chunk.end
                ),
            ));
        }
        progress.note(&format!(
            "adcast-writer import: {problem}; retrying in {} ms",
            delay.as_millis()
        ));
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(8));
        attempt += 1;
    }
}

/// The chunks, in order: at most `size` ads and [`MAX_BYTES`] each. `Err`
/// names an ad too large to send at all.
fn chunks(text: &[u8], ads: &[RawAd<'_>], size: usize) -> Result<Vec<Chunk>, usize> {
    let base = text.as_ptr() as usize;
    let mut prefix = Sha256::new();
    let mut hashed_to = 0;
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < ads.len() {
        let mut end = start;
        // `[` + `]` + the ads + a comma between each two.
        let mut bytes = 2;
        while end < ads.len() && end - start < size {
            let more = ads[end].text.len() + usize::from(end > start);
            if bytes + more > MAX_BYTES {
                break;
            }
            bytes += more;
            end += 1;
        }
        if end == start {
            return Err(start);
        }
        let mut body = Vec::with_capacity(bytes);
        body.push(b'[');
        for (i, ad) in ads[start..end].iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(ad.text.as_bytes());
        }
        body.push(b']');
        let last = ads[end - 1].text;
        let through = last.as_ptr() as usize - base + last.len();
        prefix.update(&text[hashed_to..through]);
        hashed_to = through;
        let digest: String = prefix
            .clone()
            .finalize()
            .iter()
            .take(16)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        chunks.push(Chunk {
            start,
            end,
            body: Bytes::from(body),
            key: format!("adcast-import-{digest}-{start}-{end}"),
        });
        start = end;
    }
    Ok(chunks)
}

/// `line 14` for NDJSON, `ad [12] (line 14)` in a JSON array.
fn place(format: Format, index: usize, ads: &[RawAd<'_>]) -> String {
    match format {
        Format::Ndjson => format!("line {}", ads[index].line),
        Format::JsonArray => format!("ad [{index}] (line {})", ads[index].line),
    }
}

/// The writer's 400 for a chunk, told in terms of the file.
fn invalid_ad(
    path: &str,
    format: Format,
    ads: &[RawAd<'_>],
    chunk: &Chunk,
    message: &str,
    field: Option<String>,
) -> Failure {
    // `[12].endAt` → ad 12 of the chunk, field `endAt`.
    let located = field.as_deref().and_then(|field| {
        let rest = field.strip_prefix('[')?;
        let (index, rest) = rest.split_once(']')?;
        let index: usize = index.parse().ok()?;
        Some((chunk.start + index, rest.strip_prefix('.').unwrap_or(rest)))
    });
    let text = match located {
        Some((index, field)) if index < ads.len() => {
            let field = if field.is_empty() {
                String::new()
            } else {
                format!(" (field {field})")
            };
            format!("{path}: {}: {message}{field}", place(format, index, ads))
        }
        _ => format!(
            "{path}: the writer refused ads [{}..{}): {message}",
            chunk.start, chunk.end
        ),
    };
    let earlier = if chunk.start > 0 {
        format!(
            "; the {} ads before it are imported, and rerunning after the fix creates them only once",
            chunk.start
        )
    } else {
        String::new()
    };
    Failure::new(Exit::Invalid, format!("{text}{earlier}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ndjson(lines: usize) -> Vec<u8> {
        (0..lines)
            .map(|i| format!("{{\"title\":\"AD {i}\"}}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn chunks_hold_at_most_the_size_and_cover_every_ad_once() {
        let text = ndjson(25);
        let ads = bulk::split(&text, Format::Ndjson, usize::MAX).unwrap();
        let chunks = chunks(&text, &ads, 10).unwrap();
        let ranges: Vec<_> = chunks.iter().map(|c| (c.start, c.end)).collect();
        assert_eq!(ranges, [(0, 10), (10, 20), (20, 25)]);
        let body: serde_json::Value = serde_json::from_slice(&chunks[2].body).unwrap();
        assert_eq!(body.as_array().unwrap().len(), 5);
        assert_eq!(body[0]["title"], "AD 20");
    }

    #[test]
    fn keys_depend_on_the_file_up_to_the_chunk_only() {
        let text = ndjson(25);
        let ads = bulk::split(&text, Format::Ndjson, usize::MAX).unwrap();
        let first = chunks(&text, &ads, 10).unwrap();
        let mut changed = text.clone();
        let at = changed.len() - 3; // inside the last line
        changed[at] = b'9';
        let ads = bulk::split(&changed, Format::Ndjson, usize::MAX).unwrap();
        let second = chunks(&changed, &ads, 10).unwrap();
        assert_eq!(first[0].key, second[0].key);
        assert_eq!(first[1].key, second[1].key);
        assert_ne!(first[2].key, second[2].key);
        assert!(first[0].key.len() <= 255 && first[0].key.is_ascii());
    }
}
