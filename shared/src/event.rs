//! The change event: what the writer publishes for every change, in order.
//!
//! Wire form (a stream entry's `event` field, and an outbox row's payload):
//! a little-endian `u16` format version, then the bincode (standard config)
//! encoding of [`Change`]. The sequence number is not inside: it is the stream
//! entry id `<seq>-0` (and the outbox key), the only ordering edges trust.
//! Decoding checks the version, bounds every allocation, rejects trailing
//! bytes, and rebuilds every value through its validating constructor, so
//! garbage is an error, never a panic or an invalid ad.

use serde::{Deserialize, Serialize};

use crate::ad::{Ad, AdId};

/// The format version written by this build.
pub const EVENT_FORMAT_VERSION: u16 = 1;

/// Upper bound on one encoded event; a real ad is well under 64 KiB.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// One change to the set of ads. Applying it twice is the same as once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// The ad's full new state (created or replaced).
    Upsert(Ad),
    /// The ad is gone for good.
    Delete(AdId),
}

impl Change {
    pub fn ad_id(&self) -> AdId {
        match self {
            Change::Upsert(ad) => ad.id,
            Change::Delete(id) => *id,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = EVENT_FORMAT_VERSION.to_le_bytes().to_vec();
        bincode::serde::encode_into_std_write(self, &mut bytes, bincode_config())
            .expect("encoding into a Vec cannot fail");
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<Change, EventDecodeError> {
        let (version, body) = match bytes {
            [a, b, body @ ..] => (u16::from_le_bytes([*a, *b]), body),
            _ => return Err(EventDecodeError::Truncated),
        };
        if version != EVENT_FORMAT_VERSION {
            return Err(EventDecodeError::UnknownVersion(version));
        }
        let (change, used) = bincode::serde::decode_from_slice(body, bincode_config())
            .map_err(|error| EventDecodeError::Body(error.to_string()))?;
        if used != body.len() {
            return Err(EventDecodeError::TrailingBytes(body.len() - used));
        }
        Ok(change)
    }
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_EVENT_BYTES>()
}

/// Why bytes are not a change event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventDecodeError {
    #[error("event is shorter than its version field")]
    Truncated,
    #[error("event format version {0} is not supported (this build reads version {EVENT_FORMAT_VERSION})")]
    UnknownVersion(u16),
    #[error("event body is invalid: {0}")]
    Body(String),
    #[error("event has {0} unexpected trailing bytes")]
    TrailingBytes(usize),
}
