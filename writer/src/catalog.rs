//! The catalog in bulk, in PostgreSQL: ads in serving order at an instant
//! (preview, explain's position), every live ad by id (export), and many
//! creates in one transaction (import).
//!
//! Reads run in one `REPEATABLE READ, READ ONLY` transaction that also reads
//! the sequence number, so an answer reflects exactly one change (writes hold
//! the advisory lock until commit: no change is ever half visible). Reads
//! that may cover the whole catalog page through it by keyset (`(end_at, id)`
//! or `id`), so memory stays bounded and a walk stops as soon as it has its
//! answer. Which ads are served is decided in Rust by
//! `adcast_shared::matching`, the definition the edges are tested against;
//! SQL only narrows the rows to the time window.

use adcast_shared::ad::{Ad, AdDraft, AdId, AudienceQuery};
use adcast_shared::event::Change;
use adcast_shared::matching::{order_key, serves, AnswerWalk};
use adcast_shared::timestamp::Timestamp;
use futures_util::TryStreamExt;
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;

use crate::store::{
    ad_from_row, conditions_json, decode_error, find_idempotent_response, remember, CreateOutcome,
    IdempotencyKey, Store, StoredResponse, Written,
};

/// Rows fetched per round trip when walking the catalog.
const PAGE_ROWS: i64 = 500;

/// What an import with an idempotency key turned out to be.
#[derive(Debug)]
pub enum ImportOutcome {
    /// The new ids, in input order; `seq` is the last ad's change.
    Created(Written<Vec<AdId>>),
    /// Same key, same body: the first answer.
    Replayed(StoredResponse),
    /// Same key, another body.
    KeyReused,
}

/// One ad, and where it stands, as of one change.
#[derive(Debug)]
pub struct AdAt {
    pub ad: Ad,
    /// Served ads before it in the Public API's order at the instant asked;
    /// `None` when the ad itself is not served then.
    pub position: Option<u64>,
    /// The change this reflects.
    pub seq: u64,
}

impl Store {
    /// The Public API's answer for `query` at `at` over every live ad, and
    /// the change it reflects: candidates active at `at` stream in
    /// `(end_at, id)` order, a page at a time, until `offset + limit` served
    /// ads were seen or none are left.
    pub async fn preview(
        &self,
        query: &AudienceQuery,
        offset: usize,
        limit: usize,
        at: Timestamp,
    ) -> Result<(Vec<Ad>, u64), sqlx::Error> {
        let (mut tx, seq) = self.consistent_read().await?;
        let at_time = at.to_offset_date_time();
        let mut walk = AnswerWalk::new(*query, offset, limit, at);
        let mut after: (OffsetDateTime, i64) = (at_time, 0);
        'pages: loop {
            // `end_at >= $2` lets the end_at index bound each page; the row
            // comparison then skips what earlier pages returned.
            let rows = sqlx::query(
                "SELECT id, title, start_at, end_at, conditions::text AS conditions
                 FROM ads
                 WHERE deleted_at IS NULL AND start_at < $1 AND end_at > $1
                   AND end_at >= $2 AND (end_at, id) > ($2, $3)
                 ORDER BY end_at, id LIMIT $4",
            )
            .bind(at_time)
            .bind(after.0)
            .bind(after.1)
            .bind(PAGE_ROWS)
            .fetch_all(&mut *tx)
            .await?;
            let full_page = rows.len() as i64 == PAGE_ROWS;
            for row in &rows {
                let ad = ad_from_row(row)?;
                after = (ad.window.end().to_offset_date_time(), ad.id.get());
                if !walk.offer(ad) {
                    break 'pages;
                }
            }
            if !full_page {
                break;
            }
        }
        tx.commit().await?;
        Ok((walk.finish(), seq))
    }

    /// One live ad, with its position among the ads served for `query` at
    /// `at` (counted by streaming the active ads ordered before it, without
    /// holding them), as of one change. `None` when there is no such ad.
    pub async fn ad_at(
        &self,
        id: AdId,
        query: &AudienceQuery,
        at: Timestamp,
    ) -> Result<Option<AdAt>, sqlx::Error> {
        let (mut tx, seq) = self.consistent_read().await?;
        let row = sqlx::query(
            "SELECT id, title, start_at, end_at, conditions::text AS conditions
             FROM ads WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id.get())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let ad = ad_from_row(&row)?;
        let mut position = None;
        if serves(&ad, query, at) {
            let (end, id) = order_key(&ad);
            let at_time = at.to_offset_date_time();
            let end_time = end.to_offset_date_time();
            let mut before = sqlx::query(
                "SELECT id, title, start_at, end_at, conditions::text AS conditions
                 FROM ads
                 WHERE deleted_at IS NULL AND start_at < $1 AND end_at > $1
                   AND end_at <= $2 AND (end_at, id) < ($2, $3)",
            )
            .bind(at_time)
            .bind(end_time)
            .bind(id.get())
            .fetch(&mut *tx);
            let mut count = 0u64;
            while let Some(row) = before.try_next().await? {
                if serves(&ad_from_row(&row)?, query, at) {
                    count += 1;
                }
            }
            drop(before);
            position = Some(count);
        }
        tx.commit().await?;
        Ok(Some(AdAt { ad, position, seq }))
    }

    /// A consistent read of every live ad by id, for export; see
    /// [`ExportReader`].
    pub async fn export_reader(&self) -> Result<ExportReader, sqlx::Error> {
        let (tx, seq) = self.consistent_read().await?;
        Ok(ExportReader { tx, seq, after: 0 })
    }

    /// Creates every draft, in order, in one transaction under the write
    /// lock: consecutive sequence numbers (one outbox event per ad, in
    /// order) and ids increasing in input order. Batched: a few statements
    /// whatever the number of ads. With a key, a retry replays the first
    /// answer; `render` makes that answer from the ids and the last change.
    /// Each ad is recorded as a create by `by`.
    pub async fn import(
        &self,
        drafts: Vec<AdDraft>,
        idempotency: Option<IdempotencyKey<'_>>,
        by: Option<&str>,
        render: impl FnOnce(&[AdId], u64) -> StoredResponse,
    ) -> Result<ImportOutcome, sqlx::Error> {
        let count = drafts.len() as i64;
        let mut tx = self.begin_write().await?;
        if let Some(key) = &idempotency {
            match find_idempotent_response(&mut *tx, key).await? {
                Some(CreateOutcome::Replayed(stored)) => {
                    return Ok(ImportOutcome::Replayed(stored))
                }
                Some(_) => return Ok(ImportOutcome::KeyReused),
                None => {}
            }
        }
        let last: i64 = sqlx::query_scalar(
            "UPDATE change_sequence SET last_seq = last_seq + $1 RETURNING last_seq",
        )
        .bind(count)
        .fetch_one(&mut *tx)
        .await?;
        let first_seq = last - count + 1;
        let mut ids: Vec<i64> =
            sqlx::query_scalar("SELECT nextval('ad_id_seq') FROM generate_series(1, $1)")
                .bind(count)
                .fetch_all(&mut *tx)
                .await?;
        // nextval hands out increasing values; sorting makes "ids in input
        // order" independent of the order rows come back in.
        ids.sort_unstable();
        let ads: Vec<Ad> = drafts
            .into_iter()
            .zip(&ids)
            .map(|(draft, &id)| {
                AdId::new(id)
                    .map(|id| Ad::from_draft(id, draft))
                    .ok_or_else(|| decode_error("ad_id_seq returned a non-positive id"))
            })
            .collect::<Result<_, _>>()?;
        let seqs: Vec<i64> = (first_seq..=last).collect();
        sqlx::query(
            "INSERT INTO ads (id, title, start_at, end_at, conditions, last_seq)
             SELECT id, title, start_at, end_at, conditions::jsonb, last_seq
             FROM UNNEST($1::bigint[], $2::text[], $3::timestamptz[], $4::timestamptz[],
                         $5::text[], $6::bigint[])
                  AS rows (id, title, start_at, end_at, conditions, last_seq)",
        )
        .bind(&ids)
        .bind(
            ads.iter()
                .map(|ad| ad.title.as_str().to_owned())
                .collect::<Vec<_>>(),
        )
        .bind(
            ads.iter()
                .map(|ad| ad.window.start().to_offset_date_time())
                .collect::<Vec<_>>(),
        )
        .bind(
            ads.iter()
                .map(|ad| ad.window.end().to_offset_date_time())
                .collect::<Vec<_>>(),
        )
        .bind(ads.iter().map(conditions_json).collect::<Vec<_>>())
        .bind(&seqs)
        .execute(&mut *tx)
        .await?;
        let payloads: Vec<Vec<u8>> = ads
            .iter()
            .map(|ad| Change::Upsert(ad.clone()).encode())
            .collect();
        sqlx::query(
            "INSERT INTO outbox (seq, ad_id, payload)
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bytea[])",
        )
        .bind(&seqs)
        .bind(&ids)
        .bind(&payloads)
        .execute(&mut *tx)
        .await?;
        crate::audit::record_creates(&mut tx, &seqs, &ids, by).await?;
        let ad_ids: Vec<AdId> = ads.iter().map(|ad| ad.id).collect();
        if let Some(key) = &idempotency {
            remember(&mut tx, key, &render(&ad_ids, last as u64)).await?;
        }
        tx.commit().await?;
        Ok(ImportOutcome::Created(Written {
            value: ad_ids,
            seq: last as u64,
        }))
    }

    /// A read-only transaction on one snapshot of the database, and the
    /// sequence number that snapshot reflects.
    async fn consistent_read(&self) -> Result<(Transaction<'static, Postgres>, u64), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let seq: i64 = sqlx::query_scalar("SELECT last_seq FROM change_sequence")
            .fetch_one(&mut *tx)
            .await?;
        Ok((tx, seq as u64))
    }
}

/// Every live ad by id as of one change, a page at a time. Holds one
/// connection and one database snapshot until dropped.
pub struct ExportReader {
    tx: Transaction<'static, Postgres>,
    /// The change the export reflects.
    pub seq: u64,
    after: i64,
}

impl ExportReader {
    /// The next ads by id, at most `limit`; empty at the end.
    pub async fn next_page(&mut self, limit: i64) -> Result<Vec<Ad>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, title, start_at, end_at, conditions::text AS conditions
             FROM ads WHERE id > $1 AND deleted_at IS NULL ORDER BY id LIMIT $2",
        )
        .bind(self.after)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        let ads: Vec<Ad> = rows.iter().map(ad_from_row).collect::<Result<_, _>>()?;
        if let Some(last) = ads.last() {
            self.after = last.id.get();
        }
        Ok(ads)
    }
}
