//! The writer↔edge contract on the wire, defined once: stream entry ids,
//! the heartbeat, header names, route paths, the snapshot validator, the
//! OpenAPI document.
//!
//! Both services call these; neither writes the literals itself, so the two
//! sides cannot drift apart (the event and snapshot byte formats have their
//! own modules, [`crate::event`] and [`crate::snapshot`]).

/// Stream entry ids: change `seq` is entry `<seq>-0`.
///
/// The writer publishes with explicit ids (`XADD <key> <seq>-0 …`), so Redis
/// refuses anything not above the stream's last entry: publishing is ordered
/// and idempotent. An id with another sequence part was not written by an
/// adcast writer and is refused by [`parse_entry_id`].
pub mod stream {
    /// The field of a stream entry that carries the encoded change event.
    pub const EVENT_FIELD: &str = "event";

    /// `42` → `"42-0"`.
    pub fn entry_id(seq: u64) -> String {
        format!("{seq}-0")
    }

    /// `"42-0"` → 42; `None` for anything that is not an adcast entry id
    /// (`"42-1"`, `"42"`, `"x-0"`, a sign, spaces).
    pub fn parse_entry_id(id: &str) -> Option<u64> {
        let digits = id.strip_suffix("-0")?;
        if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    /// The exclusive lower bound `(<seq>-0` for `XRANGE`: entries after `seq`.
    pub fn after(seq: u64) -> String {
        format!("({}", entry_id(seq))
    }
}

/// The writer's heartbeat: a key next to the stream that says how current
/// the stream is, so that an edge can measure its staleness end to end.
///
/// The writer sets `<stream-key>:heartbeat` to `"<writer_unix_ms> <seq>"`
/// about once a second, only after the stream holds change `seq`, where
/// `seq` is the last change committed when the writer read its clock: every
/// write acknowledged before `writer_unix_ms` has a sequence number ≤ `seq`.
/// The key lives on the same Redis as the stream and is written after the
/// entries it covers, so it replicates with them, in order, through any
/// chain of replicas. An edge that has applied `seq` has every write
/// acknowledged before `writer_unix_ms`: its staleness is at most its own
/// clock minus that instant.
pub mod heartbeat {
    /// One heartbeat value.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Heartbeat {
        /// The writer's clock when it read the committed sequence number
        /// (ms since the Unix epoch).
        pub writer_unix_ms: u64,
        /// Every change acknowledged before that instant is at most this.
        pub seq: u64,
    }

    /// The heartbeat key of a stream: `adcast:events` → `adcast:events:heartbeat`.
    pub fn key(stream_key: &str) -> String {
        format!("{stream_key}:heartbeat")
    }

    impl Heartbeat {
        /// `"<writer_unix_ms> <seq>"`.
        pub fn encode(&self) -> String {
            format!("{} {}", self.writer_unix_ms, self.seq)
        }

        /// The inverse of [`Heartbeat::encode`]: two plain decimal numbers
        /// separated by one space; `None` for anything else.
        pub fn parse(text: &str) -> Option<Heartbeat> {
            let (at, seq) = text.split_once(' ')?;
            Some(Heartbeat {
                writer_unix_ms: plain_number(at)?,
                seq: plain_number(seq)?,
            })
        }
    }

    fn plain_number(text: &str) -> Option<u64> {
        if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    }
}

/// HTTP header names both services read or write (lower case, as HTTP/2 and
/// the `http` crate want them).
pub mod headers {
    /// On every edge answer: the last change the edge has applied. On a
    /// successful write: the change the write produced.
    pub const ADCAST_SEQ: &str = "adcast-seq";
    /// On a Public API request: wait until this change is applied here.
    pub const ADCAST_MIN_SEQ: &str = "adcast-min-seq";
    /// `false` on a forwarded write the edge could not apply in time.
    pub const ADCAST_APPLIED: &str = "adcast-applied";
    /// The write's own change number when `Adcast-Applied: false`.
    pub const ADCAST_WRITE_SEQ: &str = "adcast-write-seq";
    /// On a Public API answer from an edge staler than its readiness bound:
    /// the staleness in milliseconds (see [`super::heartbeat`]).
    pub const ADCAST_STALENESS_MS: &str = "adcast-staleness-ms";
    /// On a snapshot download: the sequence number of the snapshot served.
    pub const ADCAST_SNAPSHOT_SEQ: &str = "adcast-snapshot-seq";
    /// On a create or import: makes a retry return the first answer.
    pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
    /// `true` on an answer replayed for a repeated `Idempotency-Key`.
    pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
}

/// Route paths shared by both services.
pub mod routes {
    /// The Public API on an edge; `POST` creates an ad on the writer.
    pub const ADS: &str = "/api/v1/ad";
    /// Prefix of `/api/v1/ad/{id}`.
    pub const AD_PREFIX: &str = "/api/v1/ad/";
    /// Prefix of the admin-only routes (`/api/v1/admin/...`).
    pub const ADMIN_PREFIX: &str = "/api/v1/admin/";
    /// The writer's newest snapshot file, for edges.
    pub const SNAPSHOT_LATEST: &str = "/internal/v1/snapshot/latest";
    /// Prefix of the writer's internal routes.
    pub const INTERNAL_PREFIX: &str = "/internal/v1/";
    /// The writer's web console (an edge with a writer forwards it).
    pub const CONSOLE: &str = "/admin";
    /// Prefix of the console's files.
    pub const CONSOLE_PREFIX: &str = "/admin/";
}

/// The validator of a snapshot download: its `ETag` is the quoted sequence
/// number, so an edge asks "anything newer than S?" with `If-None-Match`.
pub mod snapshot_etag {
    /// `42` → `"\"42\""`.
    pub fn for_seq(seq: u64) -> String {
        format!("\"{seq}\"")
    }

    /// Whether an `If-None-Match` value (a list of entity tags, weak ones
    /// included, or `*`) names the snapshot `seq`.
    pub fn matches(if_none_match: &str, seq: u64) -> bool {
        let wanted = for_seq(seq);
        if_none_match
            .split(',')
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == wanted || tag == "*")
    }
}

/// The OpenAPI 3.1 document of both services (the repository's
/// `openapi.yaml`), served by both at `/openapi.yaml`.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_round_trip() {
        for seq in [0, 1, 42, u64::MAX] {
            assert_eq!(stream::parse_entry_id(&stream::entry_id(seq)), Some(seq));
        }
        assert_eq!(stream::after(7), "(7-0");
    }

    #[test]
    fn only_seq_dash_zero_is_an_entry_id() {
        for id in [
            "42-1",
            "42",
            "x-0",
            "-0",
            "+4-0",
            " 4-0",
            "4-00",
            "18446744073709551616-0",
        ] {
            assert_eq!(stream::parse_entry_id(id), None, "{id:?}");
        }
    }

    #[test]
    fn heartbeats_round_trip() {
        let beat = heartbeat::Heartbeat {
            writer_unix_ms: 1_700_000_000_123,
            seq: 42,
        };
        assert_eq!(beat.encode(), "1700000000123 42");
        assert_eq!(heartbeat::Heartbeat::parse(&beat.encode()), Some(beat));
        assert_eq!(heartbeat::key("adcast:events"), "adcast:events:heartbeat");
    }

    #[test]
    fn only_two_plain_numbers_are_a_heartbeat() {
        for text in [
            "",
            "1",
            "1 ",
            " 1",
            "1  2",
            "1 2 3",
            "-1 2",
            "1 +2",
            "1 x",
            "1\t2",
            "18446744073709551616 1",
        ] {
            assert_eq!(heartbeat::Heartbeat::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn snapshot_etags_match_lists_weak_tags_and_star() {
        assert_eq!(snapshot_etag::for_seq(42), "\"42\"");
        assert!(snapshot_etag::matches("\"42\"", 42));
        assert!(snapshot_etag::matches("\"7\", W/\"42\"", 42));
        assert!(snapshot_etag::matches("*", 42));
        assert!(!snapshot_etag::matches("\"41\"", 42));
        assert!(!snapshot_etag::matches("42", 42));
    }

    #[test]
    fn the_document_is_openapi_3_1() {
        assert!(OPENAPI_YAML.starts_with("openapi: 3.1"));
    }
}
