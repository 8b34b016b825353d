//! Snapshots in object storage: `s3://bucket/prefix` on AWS S3 or any
//! S3-compatible store, through the `object_store` crate.
//!
//! # Layout
//!
//! Under `<prefix>/` (no prefix: the bucket's root):
//!
//! - `snapshot-<seq, 20 digits>.adsnap`: snapshot files, byte for byte as in
//!   a snapshot directory ([`crate::snapshot::file_name`]), so names sort in
//!   sequence order;
//! - `latest`: the pointer to the newest, a small JSON object
//!   ([`Pointer`]): `{"object":"snapshot-….adsnap","seq":42,"bytes":1234,"crc32c":305419896}`
//!   (`crc32c` of the whole object, as a number).
//!
//! The writer uploads a snapshot, then moves the pointer to it, then deletes
//! the objects beyond its retention: a reader following the pointer finds
//! its object unless it lost a race with retention several snapshots later,
//! and then lists the objects instead.
//!
//! # Configuration
//!
//! Credentials, region and endpoint come from the standard AWS environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`, a container or
//! instance role, ...), read by [`AmazonS3Builder::from_env`]. An `http://`
//! endpoint (a local S3-compatible server) is allowed as such. Requests are
//! bounded so that a store that is down fails fast and callers fall back.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, PutPayload, RetryConfig};
use serde::{Deserialize, Serialize};

use crate::snapshot;

/// Name of the pointer object under the prefix.
pub const POINTER_NAME: &str = "latest";
/// Largest pointer accepted (it is a few dozen bytes).
const MAX_POINTER_BYTES: usize = 4096;
/// Longest wait for a connection to the store.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest one request may take (a snapshot download included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Retries of a failed request, and the time after which none is tried.
const MAX_RETRIES: usize = 2;
const RETRY_TIMEOUT: Duration = Duration::from_secs(5);

/// `s3://bucket/prefix`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreUrl {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0} (expected s3://bucket or s3://bucket/prefix)")]
pub struct StoreUrlError(String);

impl StoreUrl {
    /// Whether `value` names an object store rather than a path.
    pub fn is_store_url(value: &str) -> bool {
        value.starts_with("s3://")
    }
}

impl FromStr for StoreUrl {
    type Err = StoreUrlError;

    fn from_str(value: &str) -> Result<StoreUrl, StoreUrlError> {
        let rest = value
            .strip_prefix("s3://")
            .ok_or_else(|| StoreUrlError(format!("{value:?} is not an s3:// URL")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3 bucket names: 3 to 63 lowercase letters, digits, dots, hyphens.
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !bucket_ok {
            return Err(StoreUrlError(format!("{value:?} has no valid bucket name")));
        }
        if rest.contains(['?', '#']) {
            return Err(StoreUrlError(format!(
                "{value:?} must not have a query or fragment"
            )));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|part| part == "." || part == "..")
            || prefix.contains("//")
            || Path::parse(prefix).is_err()
        {
            return Err(StoreUrlError(format!("{value:?} has an invalid prefix")));
        }
        Ok(StoreUrl {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// The `latest` object: which snapshot is the newest, and how to recognise it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pointer {
    /// The object's name under the prefix.
    pub object: String,
    pub seq: u64,
    /// Size of the object in bytes.
    pub bytes: u64,
    /// CRC-32C of the whole object.
    pub crc32c: u32,
}

impl Pointer {
    pub fn for_snapshot(seq: u64, file: &[u8]) -> Pointer {
        Pointer {
            object: snapshot::file_name(seq),
            seq,
            bytes: file.len() as u64,
            crc32c: crc32c::crc32c(file),
        }
    }

    /// Whether `file` is the object this pointer names, by size and checksum.
    pub fn matches(&self, file: &[u8]) -> bool {
        file.len() as u64 == self.bytes && crc32c::crc32c(file) == self.crc32c
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{url}: {source}")]
    Request {
        url: String,
        source: object_store::Error,
    },
    #[error("{0}: the pointer object is not valid: {1}")]
    BadPointer(String, String),
    #[error("cannot configure the snapshot store {0}: {1}")]
    Config(String, String),
}

impl StoreError {
    /// Whether the object asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            StoreError::Request {
                source: object_store::Error::NotFound { .. },
                ..
            }
        )
    }
}

/// Snapshots and their pointer in one bucket and prefix.
#[derive(Clone)]
pub struct SnapshotStore {
    url: StoreUrl,
    store: Arc<dyn ObjectStore>,
}

impl fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotStore")
            .field("url", &self.url.to_string())
            .finish()
    }
}

impl SnapshotStore {
    /// The store at `url`, configured from the standard AWS environment.
    pub fn from_env(url: &StoreUrl) -> Result<SnapshotStore, StoreError> {
        SnapshotStore::with_builder(url, AmazonS3Builder::from_env())
    }

    /// The store at `url`, configured by `builder` (for tests: an explicit
    /// endpoint and credentials); the bucket, the bounds on requests and
    /// plain HTTP for an `http://` endpoint are set here.
    pub fn with_builder(
        url: &StoreUrl,
        builder: AmazonS3Builder,
    ) -> Result<SnapshotStore, StoreError> {
        let mut builder = builder
            .with_bucket_name(&url.bucket)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_secs(1),
                    base: 2.0,
                },
                max_retries: MAX_RETRIES,
                retry_timeout: RETRY_TIMEOUT,
            });
        for (key, value) in [
            (ClientConfigKey::ConnectTimeout, CONNECT_TIMEOUT),
            (ClientConfigKey::Timeout, REQUEST_TIMEOUT),
        ] {
            let key = AmazonS3ConfigKey::Client(key);
            builder = builder.with_config(key, format!("{}ms", value.as_millis()));
        }
        let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
        if endpoint.is_some_and(|endpoint| endpoint.starts_with("http://")) {
            builder = builder.with_allow_http(true);
        }
        let store = builder
            .build()
            .map_err(|error| StoreError::Config(url.to_string(), error.to_string()))?;
        Ok(SnapshotStore {
            url: url.clone(),
            store: Arc::new(store),
        })
    }

    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    /// The path of `name` under the prefix.
    fn path(&self, name: &str) -> Path {
        if self.url.prefix.is_empty() {
            Path::from(name)
        } else {
            Path::from(self.url.prefix.as_str()).child(name)
        }
    }

    fn request_error(&self, name: &str, source: object_store::Error) -> StoreError {
        StoreError::Request {
            url: format!("{}/{name}", self.url.to_string().trim_end_matches('/')),
            source,
        }
    }

    /// Uploads a snapshot file as the object for `seq` (replacing one of
    /// the same name: the same sequence number is the same state).
    pub async fn upload(&self, seq: u64, file: Bytes) -> Result<(), StoreError> {
        let name = snapshot::file_name(seq);
        self.store
            .put(&self.path(&name), PutPayload::from_bytes(file))
            .await
            .map(drop)
            .map_err(|error| self.request_error(&name, error))
    }

    /// Moves the pointer (one PUT: readers see the old or the new one).
    pub async fn publish_pointer(&self, pointer: &Pointer) -> Result<(), StoreError> {
        let body = serde_json::to_vec(pointer).expect("a pointer serialises");
        self.store
            .put(&self.path(POINTER_NAME), PutPayload::from(body))
            .await
            .map(drop)
            .map_err(|error| self.request_error(POINTER_NAME, error))
    }

    /// The pointer; `None` when there is none (a store not written yet).
    pub async fn pointer(&self) -> Result<Option<Pointer>, StoreError> {
        let bytes = match self.get(POINTER_NAME).await {
            Ok(bytes) => bytes,
            Err(error) if error.is_not_found() => return Ok(None),
            Err(error) => return Err(error),
        };
        if bytes.len() > MAX_POINTER_BYTES {
            return Err(StoreError::BadPointer(
                self.url.to_string(),
                format!("{} bytes", bytes.len()),
            ));
        }
        let pointer: Pointer = serde_json::from_slice(&bytes)
            .map_err(|error| StoreError::BadPointer(self.url.to_string(), error.to_string()))?;
        if snapshot::seq_from_file_name(&pointer.object) != Some(pointer.seq) {
            return Err(StoreError::BadPointer(
                self.url.to_string(),
                format!(
                    "object {:?} is not the snapshot of seq {}",
                    pointer.object, pointer.seq
                ),
            ));
        }
        Ok(Some(pointer))
    }

    /// The whole object `name` (a snapshot file name or the pointer).
    pub async fn get(&self, name: &str) -> Result<Bytes, StoreError> {
        let result = self
            .store
            .get(&self.path(name))
            .await
            .map_err(|error| self.request_error(name, error))?;
        result
            .bytes()
            .await
            .map_err(|error| self.request_error(name, error))
    }

    /// The snapshot file of `seq`.
    pub async fn fetch(&self, seq: u64) -> Result<Bytes, StoreError> {
        self.get(&snapshot::file_name(seq)).await
    }

    /// Sequence numbers of the snapshot objects under the prefix, newest
    /// first; other objects are ignored.
    pub async fn list(&self) -> Result<Vec<u64>, StoreError> {
        let prefix = (!self.url.prefix.is_empty()).then(|| Path::from(self.url.prefix.as_str()));
        let objects: Vec<_> = self
            .store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .map_err(|error| self.request_error("", error))?;
        let mut seqs: Vec<u64> = objects
            .iter()
            .filter_map(|object| {
                let seq = object
                    .location
                    .filename()
                    .and_then(snapshot::seq_from_file_name)?;
                // Only objects directly under the prefix, not deeper.
                (object.location == self.path(&snapshot::file_name(seq))).then_some(seq)
            })
            .collect();
        seqs.sort_unstable_by(|a, b| b.cmp(a));
        seqs.dedup();
        Ok(seqs)
    }

    /// Deletes every snapshot object but the `keep` newest; returns the
    /// sequence numbers kept, newest first. Call it after moving the
    /// pointer, so that the pointer never names a deleted object.
    pub async fn keep_newest(&self, keep: usize) -> Result<Vec<u64>, StoreError> {
        let seqs = self.list().await?;
        let keep = keep.max(1);
        for seq in seqs.iter().skip(keep) {
            let name = snapshot::file_name(*seq);
            match self.store.delete(&self.path(&name)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(self.request_error(&name, error)),
            }
        }
        Ok(seqs.into_iter().take(keep).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse_and_print() {
        let url: StoreUrl = "s3://adcast-snapshots/prod/eu".parse().unwrap();
        assert_eq!(url.bucket, "adcast-snapshots");
        assert_eq!(url.prefix, "prod/eu");
        assert_eq!(url.to_string(), "s3://adcast-snapshots/prod/eu");
        let root: StoreUrl = "s3://adcast-snapshots/".parse().unwrap();
        assert_eq!(root.prefix, "");
        assert_eq!(root.to_string(), "s3://adcast-snapshots");
        assert_eq!(
            "s3://bucket/a/b/".parse::<StoreUrl>().unwrap().prefix,
            "a/b"
        );
    }

    #[test]
    fn bad_store_urls_are_refused() {
        for bad in [
            "bucket/prefix",
            "s3://",
            "s3:///prefix",
            "s3://Upper/prefix",
            "s3://ab",
            "s3://bucket/a/../b",
            "s3://bucket/a//b",
            "s3://bucket/p?x=1",
            "https://bucket/prefix",
        ] {
            assert!(bad.parse::<StoreUrl>().is_err(), "{bad}");
        }
        assert!(StoreUrl::is_store_url("s3://b/p"));
        assert!(!StoreUrl::is_store_url("/var/lib/adcast"));
    }

    #[test]
    fn a_pointer_recognises_its_object() {
        let file = b"ADCSNAP\0 and the rest".to_vec();
        let pointer = Pointer::for_snapshot(42, &file);
        assert_eq!(pointer.object, "snapshot-00000000000000000042.adsnap");
        assert!(pointer.matches(&file));
        let mut other = file.clone();
        other[9] ^= 1;
        assert!(!pointer.matches(&other));
        assert!(!pointer.matches(&file[..10]));
        let json = serde_json::to_string(&pointer).unwrap();
        assert_eq!(serde_json::from_str::<Pointer>(&json).unwrap(), pointer);
    }
}
