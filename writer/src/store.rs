//! PostgreSQL: the source of truth, and the write path of docs/architecture.md.
//!
//! Every change runs in one transaction that takes a transaction-scoped
//! advisory lock, allocates the next sequence number from the counter row,
//! writes the ad row and the outbox row (the encoded change event), and
//! commits. The lock is held until commit, so commit order is sequence order
//! and the sequence has no gaps, even with two writer processes.

use std::path::PathBuf;

use adcast_shared::ad::{Ad, AdDraft, AdId, TimeWindow, Title};
use adcast_shared::background;
use adcast_shared::event::Change;
use adcast_shared::json::Json;
use adcast_shared::snapshot::SnapshotWriter;
use adcast_shared::timestamp::Timestamp;
use adcast_shared::wire::{conditions_view, parse_conditions, AdView};
use anyhow::{anyhow, Context};
use futures_util::StreamExt;
use sqlx::postgres::{PgArguments, PgPool, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Row, Transaction};
use time::OffsetDateTime;

use crate::audit::Action;

/// Key of the advisory lock that serialises all writes (any writer process).
pub const WRITE_LOCK_KEY: i64 = 0x6164_6361_7374; // "adcast"

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A successful write: what it produced and its place in the change order.
#[derive(Debug)]
pub struct Written<T> {
    pub value: T,
    pub seq: u64,
}

/// The first answer to a POST with an `Idempotency-Key`, replayed on retries.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub location: Option<String>,
    pub seq: Option<u64>,
}

/// What a POST with an idempotency key turned out to be.
#[derive(Debug)]
pub enum CreateOutcome {
    Created(Written<Ad>),
    /// Same key, same body: the first answer.
    Replayed(StoredResponse),
    /// Same key, another body.
    KeyReused,
}

/// An `Idempotency-Key` with the canonical JSON of the body it came with.
pub struct IdempotencyKey<'a> {
    pub key: &'a str,
    pub request_json: &'a str,
}

/// An ad's place in time, as the admin list filters by it (the matching
/// definition's, so the list and explain cannot disagree).
pub use adcast_shared::matching::AdState;

/// What the admin list keeps; the default keeps every live ad.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListFilter<'a> {
    /// Only ads in this state at this instant.
    pub state: Option<(AdState, Timestamp)>,
    /// Only ads whose title contains this, compared case-insensitively
    /// (PostgreSQL's `lower()`, Unicode-aware in a UTF-8 locale).
    pub title_contains: Option<&'a str>,
}

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    pub fn new(pool: PgPool) -> Store {
        Store { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop)
    }

    /// Creates an ad, recording `by` (the caller's label) with the change.
    /// With a key, a retry replays the first answer instead.
    /// `render` turns the stored ad into the 201 body, so the same bytes can
    /// be remembered for replays inside the same transaction.
    pub async fn create(
        &self,
        draft: AdDraft,
        idempotency: Option<IdempotencyKey<'_>>,
        by: Option<&str>,
        render: impl FnOnce(&Ad, u64) -> StoredResponse,
    ) -> Result<CreateOutcome, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        if let Some(key) = &idempotency {
            if let Some(previous) = find_idempotent_response(&mut *tx, key).await? {
                return Ok(previous);
            }
        }
        let (seq, id) = next_seq_and_ad_id(&mut tx).await?;
        let ad = Ad::from_draft(id, draft);
        recorded_change(
            with_event_and_audit!(
                "INSERT INTO ads (id, title, start_at, end_at, conditions, last_seq)
                 VALUES ($1, $6, $7, $8, $9::jsonb, $2)"
            ),
            seq,
            &Change::Upsert(ad.clone()),
            Action::Create,
            by,
        )
        .bind(ad.title.as_str())
        .bind(ad.window.start().to_offset_date_time())
        .bind(ad.window.end().to_offset_date_time())
        .bind(conditions_json(&ad))
        .execute(&mut *tx)
        .await?;
        if let Some(key) = &idempotency {
            remember(&mut tx, key, &render(&ad, seq)).await?;
        }
        tx.commit().await?;
        Ok(CreateOutcome::Created(Written { value: ad, seq }))
    }

    /// Remembers a refusal (the body's 400) as the first answer for this
    /// key: a retry with the same body gets it again, another body is a
    /// conflict, as for a created ad. Under the write lock, like `create`, so
    /// the two never race for one key. Returns the earlier outcome instead
    /// when the key was used already.
    pub async fn remember_refusal(
        &self,
        key: &IdempotencyKey<'_>,
        refusal: &StoredResponse,
    ) -> Result<Option<CreateOutcome>, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        if let Some(previous) = find_idempotent_response(&mut *tx, key).await? {
            return Ok(Some(previous));
        }
        remember(&mut tx, key, refusal).await?;
        tx.commit().await?;
        Ok(None)
    }

    /// The remembered outcome of an earlier POST with this key, if any: a
    /// replay, or `KeyReused` when the body differs. Asked before the body is
    /// validated, so a retry gets the first answer even when its `endAt` has
    /// passed since; `create` asks again under the write lock.
    pub async fn idempotent_outcome(
        &self,
        key: &IdempotencyKey<'_>,
    ) -> Result<Option<CreateOutcome>, sqlx::Error> {
        find_idempotent_response(&self.pool, key).await
    }

    /// Replaces a live ad's content; `None` when there is no such live ad.
    /// `by` is the label recorded with the change.
    pub async fn replace(
        &self,
        id: AdId,
        draft: AdDraft,
        by: Option<&str>,
    ) -> Result<Option<Written<Ad>>, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        if !lock_live_ad(&mut tx, id).await? {
            return Ok(None);
        }
        let seq = next_seq(&mut tx).await?;
        let ad = Ad::from_draft(id, draft);
        recorded_change(
            with_event_and_audit!(
                "UPDATE ads SET title = $6, start_at = $7, end_at = $8, conditions = $9::jsonb,
                                last_seq = $2, updated_at = now()
                 WHERE id = $1"
            ),
            seq,
            &Change::Upsert(ad.clone()),
            Action::Replace,
            by,
        )
        .bind(ad.title.as_str())
        .bind(ad.window.start().to_offset_date_time())
        .bind(ad.window.end().to_offset_date_time())
        .bind(conditions_json(&ad))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Written { value: ad, seq }))
    }

    /// Removes a live ad from the API and from serving; `None` when there is
    /// no such live ad.
    pub async fn delete(
        &self,
        id: AdId,
        by: Option<&str>,
    ) -> Result<Option<Written<()>>, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        if !lock_live_ad(&mut tx, id).await? {
            return Ok(None);
        }
        let seq = next_seq(&mut tx).await?;
        recorded_change(
            with_event_and_audit!(
                "UPDATE ads SET deleted_at = now(), last_seq = $2, updated_at = now() WHERE id = $1"
            ),
            seq,
            &Change::Delete(id),
            Action::Delete,
            by,
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Written { value: (), seq }))
    }

    /// One live ad, whatever its time window.
    pub async fn get(&self, id: AdId) -> Result<Option<Ad>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT id, title, start_at, end_at, conditions::text AS conditions
             FROM ads WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| ad_from_row(&row)).transpose()
    }

    /// Live ads with id above `after`, by id, at most `limit`.
    pub async fn list(&self, after: Option<AdId>, limit: u32) -> Result<Vec<Ad>, sqlx::Error> {
        self.list_matching(after, limit, &ListFilter::default())
            .await
    }

    /// Live ads with id above `after` that pass `filter`, by id, at most
    /// `limit`. The scan walks the primary key and stops after `limit`
    /// matches, so a page costs the rows up to its last match.
    pub async fn list_matching(
        &self,
        after: Option<AdId>,
        limit: u32,
        filter: &ListFilter<'_>,
    ) -> Result<Vec<Ad>, sqlx::Error> {
        let (state, now) = match filter.state {
            Some((state, now)) => (Some(state.as_str()), Some(now.to_offset_date_time())),
            None => (None, None),
        };
        // The states are the Public API's strict rule at `now`.
        let rows = sqlx::query(
            "SELECT id, title, start_at, end_at, conditions::text AS conditions
             FROM ads WHERE id > $1 AND deleted_at IS NULL
               AND ($3::text IS NULL OR strpos(lower(title), lower($3)) > 0)
               AND ($4::text IS NULL
                    OR ($4 = 'scheduled' AND start_at >= $5)
                    OR ($4 = 'active' AND start_at < $5 AND end_at > $5)
                    OR ($4 = 'ended' AND end_at <= $5))
             ORDER BY id LIMIT $2",
        )
        .bind(after.map_or(0, AdId::get))
        .bind(i64::from(limit))
        .bind(filter.title_contains)
        .bind(state)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ad_from_row).collect()
    }

    /// The highest sequence number committed so far.
    pub async fn last_seq(&self) -> Result<u64, sqlx::Error> {
        let seq: i64 = sqlx::query_scalar("SELECT last_seq FROM change_sequence")
            .fetch_one(&self.pool)
            .await?;
        Ok(seq as u64)
    }

    /// Outbox events after `after`, in sequence order, at most `limit`.
    pub async fn outbox_after(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(u64, Vec<u8>)>, sqlx::Error> {
        let rows =
            sqlx::query("SELECT seq, payload FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after as i64)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get::<i64, _>("seq")? as u64,
                    row.try_get("payload")?,
                ))
            })
            .collect()
    }

    /// Writes a snapshot file at `path_for(seq)`: every live, not-yet-ended ad as of
    /// the last committed change, read in one REPEATABLE READ, READ ONLY
    /// transaction together with the sequence number it corresponds to
    /// (writes hold the advisory lock until commit, so no change can be
    /// half-visible; the view blocks no write) and streamed
    /// in bounded batches of rows to a blocking thread that parses them and
    /// feeds the file's zstd encoder, so neither the rows nor the encoded
    /// file are ever held in memory whole.
    pub async fn write_snapshot(
        &self,
        path_for: impl FnOnce(u64) -> PathBuf,
    ) -> anyhow::Result<WrittenSnapshot> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let (seq, now): (i64, OffsetDateTime) =
            sqlx::query_as("SELECT last_seq, now() FROM change_sequence")
                .fetch_one(&mut *tx)
                .await?;
        let (count,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM ads WHERE deleted_at IS NULL AND end_at > $1")
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
        let created_at = Timestamp::from_offset_date_time(now).unwrap_or_else(Timestamp::now);
        let (seq, count) = (seq as u64, count as u64);
        let path = path_for(seq);

        // A bounded hand-over of raw rows, a batch at a time: this task only
        // receives them; parsing (`ad_from_row`, conditions JSON included)
        // and encoding run on a thread of their own, so the two overlap.
        // The database side waits when that thread lags. The thread runs
        // at a lower priority: on busy cores a snapshot takes longer, and
        // the writes the writer acknowledges meanwhile do not wait for it.
        let (batches_out, mut batches_in) =
            tokio::sync::mpsc::channel::<Vec<PgRow>>(SNAPSHOT_BATCHES_IN_FLIGHT);
        let target = path.clone();
        let (encoded, encoder) = tokio::sync::oneshot::channel();
        background::spawn("snapshot-encoder", move || {
            let mut encode = || -> anyhow::Result<u64> {
                let writing = || format!("writing snapshot {}", target.display());
                let mut writer = SnapshotWriter::create(&target, seq, created_at, count)
                    .with_context(writing)?;
                while let Some(batch) = batches_in.blocking_recv() {
                    for row in &batch {
                        let ad = ad_from_row(row).context("reading the ads")?;
                        writer.push(&ad).with_context(writing)?;
                    }
                }
                writer.finish().with_context(writing)
            };
            let _ = encoded.send(encode());
        })
        .context("starting the snapshot encoder")?;
        let mut rows = sqlx::query(
            "SELECT id, title, start_at, end_at, conditions::text AS conditions
             FROM ads WHERE deleted_at IS NULL AND end_at > $1 ORDER BY id",
        )
        .bind(now)
        .fetch(&mut *tx);
        let mut read = Ok(());
        let mut batch = Vec::with_capacity(SNAPSHOT_BATCH);
        while let Some(row) = rows.next().await {
            match row {
                Ok(row) => batch.push(row),
                Err(error) => {
                    read = Err(error);
                    break;
                }
            }
            if batch.len() == SNAPSHOT_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(SNAPSHOT_BATCH));
                if batches_out.send(full).await.is_err() {
                    break; // the encoder failed: its error is reported below
                }
            }
        }
        if read.is_ok() && !batch.is_empty() {
            // The last, partial batch (an encoder that failed says why below).
            let _ = batches_out.send(batch).await;
        }
        drop(rows);
        drop(batches_out);
        let written = encoder.await.context("the snapshot encoder stopped")?;
        read.context("reading the ads")?;
        let bytes = written?;
        tx.commit().await?;
        Ok(WrittenSnapshot {
            seq,
            ads: count,
            bytes,
            path,
        })
    }

    /// Drops outbox rows up to `seq`: a kept snapshot already covers them.
    pub async fn prune_outbox(&self, seq: u64) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM outbox WHERE seq <= $1")
            .bind(seq as i64)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Forgets idempotency keys older than `hours` hours.
    pub async fn purge_idempotency_keys(&self, hours: i32) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)",
        )
        .bind(hours)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        // Two round trips, not one simple query of both statements: a
        // request dropped while waiting for the lock must leave a
        // transaction that sqlx knows is open (it rolls it back), and sqlx
        // learns that only when `BEGIN` has answered on its own.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

/// Stores `response` as the first answer for `key` (inside the caller's
/// write transaction).
pub(crate) async fn remember(
    tx: &mut Transaction<'static, Postgres>,
    key: &IdempotencyKey<'_>,
    response: &StoredResponse,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO idempotency_keys (key, request_json, status, response_body, location, seq)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(key.key)
    .bind(key.request_json)
    .bind(response.status as i16)
    .bind(&response.body)
    .bind(&response.location)
    .bind(response.seq.map(|seq| seq as i64))
    .execute(&mut **tx)
    .await
    .map(drop)
}

pub(crate) async fn find_idempotent_response<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    key: &IdempotencyKey<'_>,
) -> Result<Option<CreateOutcome>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT request_json, status, response_body, location, seq FROM idempotency_keys WHERE key = $1",
    )
    .bind(key.key)
    .fetch_optional(executor)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let request_json: String = row.try_get("request_json")?;
    if request_json != key.request_json {
        return Ok(Some(CreateOutcome::KeyReused));
    }
    Ok(Some(CreateOutcome::Replayed(StoredResponse {
        status: row.try_get::<i16, _>("status")? as u16,
        body: row.try_get("response_body")?,
        location: row.try_get("location")?,
        seq: row.try_get::<Option<i64>, _>("seq")?.map(|seq| seq as u64),
    })))
}

async fn next_seq(tx: &mut Transaction<'static, Postgres>) -> Result<u64, sqlx::Error> {
    let seq: i64 =
        sqlx::query_scalar("UPDATE change_sequence SET last_seq = last_seq + 1 RETURNING last_seq")
            .fetch_one(&mut **tx)
            .await?;
    Ok(seq as u64)
}

/// The next sequence number and a new ad id, in one round trip.
async fn next_seq_and_ad_id(
    tx: &mut Transaction<'static, Postgres>,
) -> Result<(u64, AdId), sqlx::Error> {
    let (seq, id): (i64, i64) = sqlx::query_as(
        "WITH next AS (UPDATE change_sequence SET last_seq = last_seq + 1 RETURNING last_seq)
         SELECT last_seq, nextval('ad_id_seq') FROM next",
    )
    .fetch_one(&mut **tx)
    .await?;
    let id = AdId::new(id).ok_or_else(|| decode_error("ad_id_seq returned a non-positive id"))?;
    Ok((seq as u64, id))
}

/// `row`, a statement that changes an ad's row, made into one statement
/// that also writes the change's outbox event and its audit record (one
/// round trip inside the write lock instead of three). Parameters: $1 the
/// ad id, $2 the sequence number, $3 the encoded event, $4 the action, $5
/// the caller's label (bound by [`recorded_change`]); `row`'s own from $6.
macro_rules! with_event_and_audit {
    ($row:literal) => {
        concat!(
            "WITH ad AS (",
            $row,
            "), event AS (INSERT INTO outbox (seq, ad_id, payload) VALUES ($2, $1, $3))
             INSERT INTO ad_history (seq, ad_id, action, by_label) VALUES ($2, $1, $4, $5)"
        )
    };
}
use with_event_and_audit;

/// A [`with_event_and_audit!`] statement with its first five parameters
/// bound; the caller binds the row's own.
fn recorded_change<'q>(
    statement: &'q str,
    seq: u64,
    change: &Change,
    action: Action,
    by: Option<&'q str>,
) -> Query<'q, Postgres, PgArguments> {
    sqlx::query(statement)
        .bind(change.ad_id().get())
        .bind(seq as i64)
        .bind(change.encode())
        .bind(action.as_str())
        .bind(by)
}

async fn lock_live_ad(
    tx: &mut Transaction<'static, Postgres>,
    id: AdId,
) -> Result<bool, sqlx::Error> {
    let found = sqlx::query("SELECT 1 FROM ads WHERE id = $1 AND deleted_at IS NULL FOR UPDATE")
        .bind(id.get())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(found.is_some())
}

pub(crate) fn conditions_json(ad: &Ad) -> String {
    serde_json::to_string(&conditions_view(&ad.targeting)).expect("conditions serialise to JSON")
}

/// Rebuilds an ad from its row through the same validating constructors as
/// the API: a row that breaks a rule is reported, never served.
pub fn ad_from_row(row: &PgRow) -> Result<Ad, sqlx::Error> {
    let id: i64 = row.try_get("id")?;
    let title: String = row.try_get("title")?;
    let start: OffsetDateTime = row.try_get("start_at")?;
    let end: OffsetDateTime = row.try_get("end_at")?;
    let conditions: &str = row.try_get("conditions")?;
    let context = |what: &str| decode_error(&format!("ad {id}: stored {what} is invalid"));
    let id = AdId::new(id).ok_or_else(|| context("id"))?;
    let title = Title::parse(title).map_err(|_| context("title"))?;
    let start = Timestamp::from_offset_date_time(start).ok_or_else(|| context("start_at"))?;
    let end = Timestamp::from_offset_date_time(end).ok_or_else(|| context("end_at"))?;
    let window = TimeWindow::new(start, end).ok_or_else(|| context("time window"))?;
    let conditions = Json::parse(conditions.as_bytes()).map_err(|_| context("conditions"))?;
    let targeting = parse_conditions(&conditions).map_err(|_| context("conditions"))?;
    Ok(Ad {
        id,
        title,
        window,
        targeting,
    })
}

/// Rows handed from the database to the snapshot encoder at a time, at most.
const SNAPSHOT_BATCH: usize = 1024;
/// Batches waiting for the encoder, at most: with the one being filled and
/// the one being encoded, a few thousand rows are held at any time, however
/// large the catalog.
const SNAPSHOT_BATCHES_IN_FLIGHT: usize = 4;

/// What [`Store::write_snapshot`] wrote.
#[derive(Debug, Clone)]
pub struct WrittenSnapshot {
    pub path: PathBuf,
    pub seq: u64,
    pub ads: u64,
    /// The file's size.
    pub bytes: u64,
}

pub(crate) fn decode_error(message: &str) -> sqlx::Error {
    sqlx::Error::Decode(anyhow!(message.to_owned()).into())
}

/// The canonical JSON of an ad, as every Admin API response shows it.
pub fn ad_json(ad: &Ad) -> Vec<u8> {
    serde_json::to_vec(&AdView::new(ad)).expect("ads serialise to JSON")
}

/// Applies the embedded migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("applying database migrations")
}
