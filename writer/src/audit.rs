//! The audit trail: who made each change, kept in PostgreSQL next to the
//! ads. A row is written inside the change's own transaction (so a change
//! and its record commit together or not at all) and outlives the ad.

use adcast_shared::ad::AdId;
use adcast_shared::timestamp::Timestamp;
use sqlx::{Postgres, Row, Transaction};
use time::OffsetDateTime;

use crate::store::{decode_error, Store};

/// What a change did to an ad.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Create,
    Replace,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Replace => "replace",
            Action::Delete => "delete",
        }
    }

    fn parse(text: &str) -> Option<Action> {
        match text {
            "create" => Some(Action::Create),
            "replace" => Some(Action::Replace),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }
}

/// One recorded change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub seq: u64,
    pub at: Timestamp,
    pub action: Action,
    /// The label of the token that made it.
    pub by: Option<String>,
}

/// Records many creates made by one caller (an import), in one statement.
pub(crate) async fn record_creates(
    tx: &mut Transaction<'static, Postgres>,
    seqs: &[i64],
    ids: &[i64],
    by: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ad_history (seq, ad_id, action, by_label)
         SELECT seq, ad_id, 'create', $3 FROM UNNEST($1::bigint[], $2::bigint[]) AS rows (seq, ad_id)",
    )
    .bind(seqs)
    .bind(ids)
    .bind(by)
    .execute(&mut **tx)
    .await
    .map(drop)
}

impl Store {
    /// One ad's recorded changes, oldest first. `None` when no ad ever had
    /// this id; an ad created before the audit trail existed has an empty
    /// history until it next changes.
    pub async fn history(&self, id: AdId) -> Result<Option<Vec<Change>>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT seq, at, action, by_label FROM ad_history WHERE ad_id = $1 ORDER BY seq",
        )
        .bind(id.get())
        .fetch_all(self.pool())
        .await?;
        if rows.is_empty() {
            // Deleted ads keep their row in `ads` too.
            let known = sqlx::query("SELECT 1 FROM ads WHERE id = $1")
                .bind(id.get())
                .fetch_optional(self.pool())
                .await?;
            return Ok(known.map(|_| Vec::new()));
        }
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq")?;
                let at: OffsetDateTime = row.try_get("at")?;
                let action: String = row.try_get("action")?;
                Ok(Change {
                    seq: seq as u64,
                    at: Timestamp::from_offset_date_time(at)
                        .ok_or_else(|| decode_error("ad_history: stored time out of range"))?,
                    action: Action::parse(&action)
                        .ok_or_else(|| decode_error("ad_history: unknown action"))?,
                    by: row.try_get("by_label")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map(Some)
    }
}
