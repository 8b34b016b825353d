//! adcast's shared domain: what an ad is, and every format that carries one.
//!
//! Pure code, no network or database (but `snapshot_store`, behind its
//! feature); both services depend on it so that the
//! writer and every edge agree on the rules and the bytes.
//!
//! - [`ad`]: the ad and its parts as types that only hold valid values.
//! - [`matching`]: docs/api.md's matching rules, once: whether an ad is
//!   served to a user at an instant, the answer order, the Public API's
//!   answer over a set of ads, and the explain breakdown. The writer's
//!   preview and explain use it; the edge's index is tested against it.
//! - [`query`]: the Public API's query parameters, checked (edge, and the
//!   writer's preview and explain).
//! - [`country`]: the ISO 3166-1 alpha-2 table.
//! - [`timestamp`]: millisecond UTC instants and their RFC 3339 text form.
//! - [`json`] and [`wire`]: the Admin API's JSON, parsed with exact field
//!   errors ([`error::ValidationError`]) and rendered in canonical form.
//! - [`api_error`]: the JSON error body and codes both services answer with.
//! - [`backoff`]: jittered exponential retry delays for reconnect loops.
//! - [`background`]: a lower CPU priority for background threads.
//! - [`event`]: the change event the writer publishes to the stream.
//! - [`snapshot`]: the snapshot file format, and atomic writing of files.
//! - `snapshot_store` (feature `snapshot-store`): snapshot files and their
//!   pointer in S3 or an S3-compatible store (`s3://bucket/prefix`).
//! - [`protocol`]: the writer↔edge contract on the wire (stream entry ids,
//!   header names, route paths, the snapshot validator, the OpenAPI document).
//! - `sample` (feature `sample`): deterministic sample ads for benchmarks.

#![deny(rust_2018_idioms)]
#![forbid(unsafe_code)]

pub mod ad;
pub mod api_error;
pub mod background;
pub mod backoff;
pub mod country;
pub mod error;
pub mod event;
pub mod json;
pub mod matching;
pub mod protocol;
pub mod query;
#[cfg(feature = "sample")]
pub mod sample;
pub mod snapshot;
#[cfg(feature = "snapshot-store")]
pub mod snapshot_store;
pub mod timestamp;
pub mod wire;
