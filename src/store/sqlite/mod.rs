//! The embedded backend: contacts, the touch ledger and the apalis queue in one SQLite
//! file, so planning a touch and queueing its job commit in the same transaction.

mod channels;
mod erase;
mod learn;
mod policy;
mod rows;

use std::{collections::HashMap, str::FromStr, time::Duration};

use apalis_core::task::builder::TaskBuilder;
use chrono::{DateTime, Utc};
use sqlx::{
    Row, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::{
    Claimed, ContactUpsert, Outcome, PolicyRecord, Reconciled, Reservation, Store, StoreError,
};
use crate::{
    config::DateField,
    domain::{
        Contact, ContactId, Event, MonthDay, NewTouch, Touch, TouchId, TouchStatus,
        time::not_before,
    },
    queue::{DISPATCH_QUEUE, DispatchJob},
};

/// How long a statement waits for the file's lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

fn q(e: sqlx::Error) -> StoreError {
    StoreError::Query(Box::new(e))
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Named locks ([`Store::try_lock`]): one process owns an SQLite file, so they live
    /// in memory: name -> (token, held until).
    locks: std::sync::Arc<std::sync::Mutex<HashMap<String, (String, std::time::Instant)>>>,
    /// Provider rate limits ([`Store::rate_reserve`]), in memory for the same reason.
    rates: std::sync::Arc<crate::ratelimit::LocalLimiter>,
    /// The key suppression hashes are made with (a setting, generated once).
    pepper: std::sync::Arc<[u8]>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database, sets the durability pragmas on every
    /// pooled connection and runs both migration sets.
    ///
    /// Why not apalis' `SqliteStorage::setup()`: it sets `synchronous = OFF` (on whichever
    /// connection runs it), which can lose or corrupt data on power loss.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let unavailable = |message: String| StoreError::Unavailable {
            url: url.to_owned(),
            message,
        };
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or(path);
        if path != ":memory:" {
            if let Some(parent) = std::path::Path::new(path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent)
                    .map_err(|e| unavailable(format!("cannot create {}: {e}", parent.display())))?;
            }
        }
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| unavailable(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("temp_store", "MEMORY")
            // Erasure: what a delete frees is zeroed, so an erased contact's values
            // cannot be read back from the file (see `erase.rs`).
            .pragma("secure_delete", "ON");
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        apalis_sqlite::SqliteStorage::migrations()
            .run(&pool)
            .await
            .map_err(|e| unavailable(format!("queue migrations: {e}")))?;
        let mut ours = sqlx::migrate!("src/store/sqlite/migrations");
        ours.dangerous_set_table_name("_rapport_migrations");
        ours.run(&pool)
            .await
            .map_err(|e| unavailable(format!("migrations: {e}")))?;
        let mut store = Self {
            pool,
            locks: Default::default(),
            rates: Default::default(),
            pepper: std::sync::Arc::from(&[][..]),
        };
        let pepper = channels::init_setting(
            &store,
            crate::store::relationship::PEPPER_SETTING,
            &crate::store::relationship::new_pepper(),
        )
        .await?;
        store.pepper = std::sync::Arc::from(pepper.as_bytes());
        Ok(store)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Queues jobs for `ids` (chunks of `batch_size`) at `run_at` inside the caller's transaction.
async fn push_jobs(
    tx: &mut sqlx::SqliteConnection,
    ids: &[TouchId],
    run_at: DateTime<Utc>,
    batch_size: usize,
) -> Result<(), StoreError> {
    let mut tasks = Vec::new();
    for chunk in ids.chunks(batch_size.max(1)) {
        let bytes = DispatchJob::new(chunk.to_vec()).encode();
        tasks.push(
            TaskBuilder::new(bytes)
                .run_at_timestamp(not_before(run_at).max(0) as u64)
                .max_attempts(1)
                .build(),
        );
    }
    apalis_sqlite::queries::push_tasks(tx, DISPATCH_QUEUE, &tasks)
        .await
        .map_err(|e| StoreError::Query(Box::new(e)))
}

/// Moves aside queue rows apalis cannot decode: its fetch takes the next due row with
/// one `UPDATE ... RETURNING *`, and a row whose id is not a ULID (or whose counts are
/// not integers) fails that statement, which rolls back and picks the same row next time:
/// every fetch of every worker fails and nothing else is sent. Such rows are marked
/// `Killed` (apalis' dead state, kept for inspection) with the reason.
async fn quarantine_jobs(tx: &mut sqlx::SqliteConnection, now: i64) -> Result<u64, StoreError> {
    let moved: Vec<String> = sqlx::query_scalar(
        "UPDATE Jobs SET status = 'Killed', done_at = ?2, lock_by = NULL, \
         last_result = json_object('Err', 'dead-lettered by rapport: undecodable queue row (' || \
           CASE WHEN length(id) != 26 OR upper(id) GLOB '*[^0-9ABCDEFGHJKMNPQRSTVWXYZ]*' \
                THEN 'its id is not a ULID' WHEN job IS NULL THEN 'no payload' \
                ELSE 'a count that is not an integer' END || ')') \
         WHERE job_type = ?1 AND status IN ('Pending', 'Queued', 'Running', 'Failed') AND ( \
           length(id) != 26 OR upper(id) GLOB '*[^0-9ABCDEFGHJKMNPQRSTVWXYZ]*' \
           OR job IS NULL OR typeof(attempts) != 'integer' OR typeof(run_at) != 'integer' \
           OR (max_attempts IS NOT NULL AND typeof(max_attempts) != 'integer') \
           OR (priority IS NOT NULL AND typeof(priority) != 'integer')) \
         RETURNING id",
    )
    .bind(DISPATCH_QUEUE)
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(q)?;
    for id in &moved {
        // The id is shown escaped: it is whatever bytes the row held.
        tracing::error!(job = ?id, "dead-lettered an undecodable queue row (reason in Jobs.last_result)");
    }
    Ok(moved.len() as u64)
}

/// Ids as a JSON array, for `json_each(?)`: one bound value however many ids.
fn json_list<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    serde_json::to_string(&ids.collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

pub(super) fn ids_json(ids: &[TouchId]) -> String {
    json_list(ids.iter().map(TouchId::as_str))
}

pub(super) fn contact_ids_json(ids: &[ContactId]) -> String {
    json_list(ids.iter().map(ContactId::as_str))
}

impl Store for SqliteStore {
    async fn first_seen(
        &self,
        ids: &[ContactId],
    ) -> Result<HashMap<ContactId, DateTime<Utc>>, StoreError> {
        let found = sqlx::query(
            "SELECT id, created_at FROM contacts WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(contact_ids_json(ids))
        .fetch_all(&self.pool)
        .await
        .map_err(q)?;
        found
            .iter()
            .map(|r| {
                let id = ContactId::parse(&r.get::<String, _>("id"))
                    .map_err(|e| StoreError::Corrupt(format!("contact id: {e}")))?;
                let at = DateTime::from_timestamp(r.get::<i64, _>("created_at"), 0)
                    .ok_or_else(|| StoreError::Corrupt("contact created_at".into()))?;
                Ok((id, at))
            })
            .collect()
    }
    async fn settle_due(&self, before: DateTime<Utc>, reason: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE touches SET status = 'skipped', reason = ?2, lease_owner = NULL, \
             lease_until = NULL, slot_at = NULL, updated_at = ?3 \
             WHERE (status = 'planned' AND next_attempt_at <= ?1) OR status = 'sending'",
        )
        .bind(before.timestamp())
        .bind(reason)
        .bind(Utc::now().timestamp())
        .execute(&self.pool)
        .await
        .map_err(q)?;
        Ok(done.rows_affected())
    }
    async fn relationship(
        &self,
        id: &ContactId,
    ) -> Result<Option<crate::store::Relationship>, StoreError> {
        learn::relationship(self, id).await
    }
    async fn relationships(
        &self,
        ids: &[ContactId],
    ) -> Result<HashMap<ContactId, crate::store::Relationship>, StoreError> {
        learn::relationships(self, ids).await
    }
    async fn learn(
        &self,
        l: &crate::store::Learn,
        now: DateTime<Utc>,
    ) -> Result<crate::store::Learned, StoreError> {
        learn::learn(self, l, now).await
    }
    async fn contacts_by_phone(&self, phone: &str) -> Result<Vec<ContactId>, StoreError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM contacts WHERE phone = ? ORDER BY id")
                .bind(phone)
                .fetch_all(&self.pool)
                .await
                .map_err(q)?;
        ids.iter()
            .map(|i| {
                ContactId::parse(i).map_err(|e| StoreError::Corrupt(format!("contact id: {e}")))
            })
            .collect()
    }
    async fn responses_for_contact(
        &self,
        id: &ContactId,
    ) -> Result<Vec<crate::store::ResponseRecord>, StoreError> {
        learn::responses_for_contact(self, id).await
    }
    async fn awaiting(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Touch>, StoreError> {
        learn::awaiting(self, before, limit).await
    }
    async fn stats(
        &self,
    ) -> Result<Vec<(crate::store::StatKey, crate::store::StatField, u64)>, StoreError> {
        learn::stats(self).await
    }
    async fn erase_contact(&self, id: &ContactId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        erase::erase_contact(self, id, now).await
    }
    async fn begin_key(
        &self,
        key: &str,
        fingerprint: &str,
        _ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<crate::store::Idempotency, StoreError> {
        learn::begin_key(self, key, fingerprint, now).await
    }
    async fn keep_answer(
        &self,
        key: &str,
        answer: &crate::store::KeptAnswer,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        learn::keep_answer(self, key, answer, ttl, now).await
    }
    async fn forget_key(&self, key: &str) -> Result<(), StoreError> {
        learn::forget_key(self, key).await
    }
    async fn set_consent(
        &self,
        contact: &ContactId,
        channel: &str,
        consent: bool,
    ) -> Result<bool, StoreError> {
        channels::set_consent(self, contact, channel, consent).await
    }
    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        channels::setting(self, name).await
    }
    async fn init_setting(&self, name: &str, value: &str) -> Result<String, StoreError> {
        channels::init_setting(self, name, value).await
    }
    async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        channels::set_setting(self, name, value).await
    }
    async fn dead_letters(
        &self,
        after: Option<&(DateTime<Utc>, TouchId)>,
        limit: usize,
    ) -> Result<Vec<Touch>, StoreError> {
        channels::dead_letters(self, after, limit).await
    }
    async fn revive(
        &self,
        ids: &[TouchId],
        now: DateTime<Utc>,
    ) -> Result<Vec<TouchId>, StoreError> {
        channels::revive(self, ids, now).await
    }
    async fn rate_reserve(
        &self,
        key: &str,
        interval: std::time::Duration,
        burst: u32,
    ) -> Result<std::time::Duration, StoreError> {
        Ok(self
            .rates
            .reserve(key, interval, burst, std::time::Instant::now()))
    }
    async fn upsert_contacts(&self, rows: &[ContactUpsert]) -> Result<(), StoreError> {
        let now = Utc::now().timestamp();
        let mut tx = self.pool.begin().await.map_err(q)?;
        rows::upsert_contacts(&mut tx, rows, now, &self.pepper).await?;
        tx.commit().await.map_err(q)
    }

    async fn get_contact(&self, id: &ContactId) -> Result<Option<Contact>, StoreError> {
        let row = sqlx::query("SELECT * FROM contacts WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(q)?;
        row.as_ref().map(rows::contact).transpose()
    }

    async fn get_contacts(
        &self,
        ids: &[ContactId],
    ) -> Result<HashMap<ContactId, Contact>, StoreError> {
        let json = contact_ids_json(ids);
        let found =
            sqlx::query("SELECT * FROM contacts WHERE id IN (SELECT value FROM json_each(?))")
                .bind(json)
                .fetch_all(&self.pool)
                .await
                .map_err(q)?;
        found
            .iter()
            .map(|r| rows::contact(r).map(|c| (c.id.clone(), c)))
            .collect()
    }

    async fn contacts_on_page(
        &self,
        field: DateField,
        day: MonthDay,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Vec<Contact>, StoreError> {
        let sql = match field {
            DateField::Birthday => {
                "SELECT * FROM contacts WHERE birthday_md = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
            }
            DateField::CustomerSince => {
                "SELECT * FROM contacts WHERE since_md = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
            }
        };
        let found = sqlx::query(sql)
            .bind(day.key())
            .bind(after.map_or("", ContactId::as_str))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(q)?;
        found.iter().map(rows::contact).collect()
    }

    async fn count_contacts(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contacts")
            .fetch_one(&self.pool)
            .await
            .map_err(q)?;
        Ok(n as u64)
    }

    async fn plan_touches(
        &self,
        touches: &[NewTouch],
        batch_size: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<TouchId>, StoreError> {
        let mut inserted = Vec::new();
        // Chunked so one planner run over many contacts does not hold the write lock
        // for long; each chunk's touches and their jobs commit together.
        for chunk in touches.chunks(2000) {
            let mut tx = self.pool.begin().await.map_err(q)?;
            let mut due: HashMap<i64, Vec<TouchId>> = HashMap::new();
            let mut new = rows::insert_touches(&mut tx, chunk, now).await?;
            for t in chunk {
                // `remove`: an id given twice in one call is new once.
                if new.remove(t.id.as_str()) {
                    inserted.push(t.id.clone());
                    if t.status == TouchStatus::Planned {
                        due.entry(not_before(t.scheduled_at))
                            .or_default()
                            .push(t.id.clone());
                    }
                }
            }
            let mut groups: Vec<_> = due.into_iter().collect();
            groups.sort_by_key(|(at, _)| *at);
            for (at, ids) in groups {
                let at = DateTime::from_timestamp(at, 0).unwrap_or(now);
                push_jobs(&mut tx, &ids, at, batch_size).await?;
            }
            tx.commit().await.map_err(q)?;
        }
        Ok(inserted)
    }

    async fn get_touches(&self, ids: &[TouchId]) -> Result<Vec<Touch>, StoreError> {
        let found = sqlx::query(
            "SELECT * FROM touches WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",
        )
        .bind(ids_json(ids))
        .fetch_all(&self.pool)
        .await
        .map_err(q)?;
        found.iter().map(rows::touch).collect()
    }

    async fn touches_for_contact(&self, id: &ContactId) -> Result<Vec<Touch>, StoreError> {
        let found =
            sqlx::query("SELECT * FROM touches WHERE contact_id = ? ORDER BY scheduled_at, id")
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(q)?;
        found.iter().map(rows::touch).collect()
    }

    async fn claim(
        &self,
        ids: &[TouchId],
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claimed, StoreError> {
        let (now, lease) = (now.timestamp(), lease_until.timestamp());
        let json = ids_json(ids);
        // IMMEDIATE: take the write lock up front, so two claimers serialize instead of
        // both reading and one failing to upgrade.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(q)?;
        let expired = sqlx::query(
            "UPDATE touches SET status = 'expired', reason = 'not sent before its expiry', \
             lease_owner = NULL, lease_until = NULL, updated_at = ?1 \
             WHERE id IN (SELECT value FROM json_each(?2)) AND expires_at <= ?1 \
             AND (status = 'planned' OR (status = 'sending' AND lease_until <= ?1)) RETURNING id",
        )
        .bind(now)
        .bind(&json)
        .fetch_all(&mut *tx)
        .await
        .map_err(q)?;
        // Not before its time: next_attempt_at is a lower bound (rounded up to the
        // second when stored), and `now` here is rounded down.
        let claimed = sqlx::query(
            "UPDATE touches SET status = 'sending', attempts = attempts + 1, lease_owner = ?3, \
             lease_until = ?4, updated_at = ?1 \
             WHERE id IN (SELECT value FROM json_each(?2)) AND expires_at > ?1 AND next_attempt_at <= ?1 \
             AND (status = 'planned' OR (status = 'sending' AND lease_until <= ?1)) RETURNING *",
        )
        .bind(now)
        .bind(&json)
        .bind(owner)
        .bind(lease)
        .fetch_all(&mut *tx)
        .await
        .map_err(q)?;
        tx.commit().await.map_err(q)?;
        Ok(Claimed {
            touches: claimed.iter().map(rows::touch).collect::<Result<_, _>>()?,
            expired: expired
                .iter()
                .map(|r| TouchId::from_stored(r.get::<String, _>("id")))
                .collect(),
        })
    }

    async fn record(
        &self,
        outcomes: &[Outcome],
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let now_s = now.timestamp();
        let rows: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|o| {
                let channel = match o {
                    Outcome::Fallback { channel, .. } => Some(channel.as_str()),
                    _ => None,
                };
                let (status, reason, next, sent_at) = match o {
                    Outcome::Sent { .. } => ("sent", None, None, Some(now_s)),
                    Outcome::Failed { reason, .. } => ("failed", Some(reason), None, None),
                    Outcome::Suppressed { reason, .. } => ("suppressed", Some(reason), None, None),
                    Outcome::Expired { reason, .. } => ("expired", Some(reason), None, None),
                    Outcome::Skipped { reason, .. } => ("skipped", Some(reason), None, None),
                    Outcome::Retry { at, reason, .. } => {
                        ("planned", Some(reason), Some(not_before(*at)), None)
                    }
                    Outcome::Defer { at, reason, .. } => {
                        ("planned", reason.as_ref(), Some(not_before(*at)), None)
                    }
                    Outcome::Fallback { reason, .. } => ("planned", Some(reason), Some(now_s), None),
                };
                let counts = super::counts(o);
                serde_json::json!({"id": o.id().as_str(), "status": status, "reason": reason, "next": next, "sent_at": sent_at, "counts": counts, "channel": channel})
            })
            .collect();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(q)?;
        // One statement for the whole group: with SQLite every statement is a round
        // trip to the connection's thread, and those hops dominated a per-row loop.
        let applied = sqlx::query(
            "UPDATE touches SET status = j.status, reason = COALESCE(j.reason, touches.reason), \
             next_attempt_at = COALESCE(j.next, touches.next_attempt_at), \
             attempts = CASE j.counts WHEN 'r' THEN 0 WHEN '1' THEN touches.attempts - 1 ELSE touches.attempts END, \
             uncertain = CASE j.counts WHEN 'r' THEN 0 WHEN 'u' THEN touches.uncertain + 1 ELSE touches.uncertain END, \
             sent_at = COALESCE(j.sent_at, touches.sent_at), \
             channel = COALESCE(j.channel, touches.channel), \
             slot_at = CASE WHEN j.status = 'sent' THEN COALESCE(touches.slot_at, ?2) ELSE NULL END, \
             queued_at = CASE WHEN j.next IS NULL THEN touches.queued_at ELSE ?2 END, \
             lease_owner = NULL, lease_until = NULL, updated_at = ?2 \
             FROM (SELECT value ->> 'id' AS id, value ->> 'status' AS status, value ->> 'reason' AS reason, \
                   value ->> 'next' AS next, value ->> 'sent_at' AS sent_at, value ->> 'counts' AS counts, \
                   value ->> 'channel' AS channel FROM json_each(?1)) AS j \
             WHERE touches.id = j.id AND touches.status = 'sending' AND touches.lease_owner = ?3 \
             RETURNING touches.id, touches.status, touches.next_attempt_at, touches.contact_id",
        )
        .bind(serde_json::Value::Array(rows).to_string())
        .bind(now_s)
        .bind(owner)
        .fetch_all(&mut *tx)
        .await
        .map_err(q)?;
        let sent_to: Vec<String> = applied
            .iter()
            .filter(|r| r.get::<String, _>("status") == "sent")
            .map(|r| r.get::<String, _>("contact_id"))
            .collect();
        if !sent_to.is_empty() {
            // A touch sent is an interaction: the check-in clock starts again.
            sqlx::query(
                "UPDATE contacts SET last_interaction_at = MAX(COALESCE(last_interaction_at, 0), ?1) \
                 WHERE id IN (SELECT value FROM json_each(?2))",
            )
            .bind(now_s)
            .bind(serde_json::to_string(&sent_to).unwrap_or_else(|_| "[]".into()))
            .execute(&mut *tx)
            .await
            .map_err(q)?;
        }
        for row in &applied {
            if row.get::<String, _>("status") == "planned" {
                // A retry goes back as its own job, at its own time.
                let id = TouchId::from_stored(row.get("id"));
                let at = DateTime::from_timestamp(row.get("next_attempt_at"), 0).unwrap_or(now);
                push_jobs(&mut tx, std::slice::from_ref(&id), at, 1).await?;
            }
        }
        tx.commit().await.map_err(q)?;
        Ok(applied.len() as u64)
    }

    async fn extend_lease(
        &self,
        ids: &[TouchId],
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<Vec<TouchId>, StoreError> {
        let held: std::collections::HashSet<String> = sqlx::query_scalar(
            "UPDATE touches SET lease_until = ?1 WHERE id IN (SELECT value FROM json_each(?3)) \
             AND status = 'sending' AND lease_owner = ?2 RETURNING id",
        )
        .bind(until.timestamp())
        .bind(owner)
        .bind(ids_json(ids))
        .fetch_all(&self.pool)
        .await
        .map_err(q)?
        .into_iter()
        .collect();
        Ok(ids
            .iter()
            .filter(|id| held.contains(id.as_str()))
            .cloned()
            .collect())
    }

    async fn reconcile(
        &self,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        batch_size: usize,
    ) -> Result<Reconciled, StoreError> {
        let (now_s, stale) = (now.timestamp(), stale_before.timestamp());
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(q)?;
        let expired = sqlx::query(
            "UPDATE touches SET status = 'expired', reason = 'not sent before its expiry', \
             lease_owner = NULL, lease_until = NULL, updated_at = ?1 \
             WHERE status IN ('planned', 'sending') AND expires_at <= ?1 \
             AND (status = 'planned' OR lease_until <= ?1)",
        )
        .bind(now_s)
        .execute(&mut *tx)
        .await
        .map_err(q)?
        .rows_affected();
        let stranded: Vec<TouchId> = sqlx::query(
            "UPDATE touches SET queued_at = ?2 WHERE \
             (status = 'planned' AND next_attempt_at <= ?1 AND COALESCE(queued_at, 0) <= ?1) \
             OR (status = 'sending' AND lease_until <= ?2 AND COALESCE(queued_at, 0) <= ?1) RETURNING id",
        )
        .bind(stale)
        .bind(now_s)
        .fetch_all(&mut *tx)
        .await
        .map_err(q)?
        .iter()
        .map(|r| TouchId::from_stored(r.get::<String, _>("id")))
        .collect();
        if !stranded.is_empty() {
            push_jobs(&mut tx, &stranded, now, batch_size).await?;
        }
        // apalis-sqlite re-enqueues a job whose worker stopped heartbeating, adding one
        // to its attempts but never checking them: a job that kills its worker would
        // come back every orphan window for ever. After three such returns it is
        // marked `Killed`, apalis' dead state (the row stays for inspection).
        let dead_jobs = sqlx::query(
            "UPDATE Jobs SET status = 'Killed', done_at = ?2, \
             last_result = '{\"Err\":\"dead-lettered by rapport: its worker stopped 3 times\"}' \
             WHERE job_type = ?1 AND status IN ('Pending', 'Queued') AND attempts >= 3 \
             AND last_result LIKE '%heartbeat timeout%'",
        )
        .bind(DISPATCH_QUEUE)
        .bind(now_s)
        .execute(&mut *tx)
        .await
        .map_err(q)?
        .rows_affected();
        let poison = quarantine_jobs(&mut tx, now_s).await?;
        tx.commit().await.map_err(q)?;
        let dead_jobs = dead_jobs + poison;
        Ok(Reconciled {
            expired,
            requeued: stranded.len() as u64,
            dead_jobs,
        })
    }

    async fn due_touches(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Touch>, StoreError> {
        policy::due_touches(self, before, limit).await
    }

    async fn add_event(&self, e: &Event, now: DateTime<Utc>) -> Result<bool, StoreError> {
        policy::add_event(self, e, now).await
    }

    async fn events_for_contact(&self, id: &ContactId) -> Result<Vec<Event>, StoreError> {
        policy::events_for_contact(self, id).await
    }

    async fn idle_contacts(
        &self,
        before: DateTime<Utc>,
        after: Option<&(DateTime<Utc>, ContactId)>,
        limit: usize,
    ) -> Result<Vec<(Contact, DateTime<Utc>)>, StoreError> {
        policy::idle_contacts(self, before, after, limit).await
    }

    async fn policy_records(
        &self,
        ids: &[ContactId],
        since: DateTime<Utc>,
        skip: &[TouchId],
    ) -> Result<HashMap<ContactId, PolicyRecord>, StoreError> {
        policy::policy_records(self, ids, since, skip).await
    }

    async fn reserve(
        &self,
        reservations: &[Reservation],
        owner: &str,
    ) -> Result<Vec<bool>, StoreError> {
        policy::reserve(self, reservations, owner).await
    }

    async fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<String>, StoreError> {
        let now = std::time::Instant::now();
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if locks.get(name).is_some_and(|(_, until)| *until > now) {
            return Ok(None);
        }
        let token = ulid::Ulid::new().to_string();
        locks.insert(name.to_owned(), (token.clone(), now + ttl));
        Ok(Some(token))
    }

    async fn unlock(&self, name: &str, token: &str) -> Result<(), StoreError> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if locks.get(name).is_some_and(|(t, _)| t == token) {
            locks.remove(name);
        }
        Ok(())
    }

    async fn status_counts(&self) -> Result<HashMap<TouchStatus, u64>, StoreError> {
        let found = sqlx::query("SELECT status, COUNT(*) AS n FROM touches GROUP BY status")
            .fetch_all(&self.pool)
            .await
            .map_err(q)?;
        let mut out = HashMap::new();
        for r in found {
            let s: String = r.get("status");
            let n: i64 = r.get("n");
            out.insert(
                TouchStatus::from_str(&s).map_err(StoreError::Corrupt)?,
                n as u64,
            );
        }
        Ok(out)
    }
}
