//! SQLite: [`Ledger`](crate::store::Ledger): planning, claims and leases, outcomes, reconciling,
//! dead letters.

use super::*;
use crate::domain::{ContactId, Touch, TouchId};
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::collections::HashMap;

/// An outcome as the row `record`'s statement reads (`json_each`): the touch's new
/// status, reason, next attempt, send time, counts and channel.
fn outcome_row(o: &Outcome, now_s: i64) -> serde_json::Value {
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
        Outcome::Retry { at, reason, .. } => ("planned", Some(reason), Some(not_before(*at)), None),
        Outcome::Defer { at, reason, .. } => {
            ("planned", reason.as_ref(), Some(not_before(*at)), None)
        }
        Outcome::Fallback { reason, .. } => ("planned", Some(reason), Some(now_s), None),
    };
    let counts = crate::store::counts(o);
    serde_json::json!({"id": o.id().as_str(), "status": status, "reason": reason, "next": next, "sent_at": sent_at, "counts": counts, "channel": channel})
}

/// A touch sent is an interaction: the check-in clock of each contact `applied` sent
/// to starts again.
async fn restart_check_ins(
    tx: &mut sqlx::SqliteConnection,
    applied: &[sqlx::sqlite::SqliteRow],
    now_s: i64,
) -> Result<(), StoreError> {
    let sent_to: Vec<String> = applied
        .iter()
        .filter(|r| r.get::<String, _>("status") == "sent")
        .map(|r| r.get::<String, _>("contact_id"))
        .collect();
    if sent_to.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE contacts SET last_interaction_at = MAX(COALESCE(last_interaction_at, 0), ?1) \
         WHERE id IN (SELECT value FROM json_each(?2))",
    )
    .bind(now_s)
    .bind(serde_json::to_string(&sent_to).unwrap_or_else(|_| "[]".into()))
    .execute(&mut *tx)
    .await
    .map_err(q)?;
    Ok(())
}

/// Queues a job for every touch `applied` put back to `planned` (retried, deferred,
/// moved to another channel).
async fn queue_retries(
    tx: &mut sqlx::SqliteConnection,
    applied: &[sqlx::sqlite::SqliteRow],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for row in applied {
        if row.get::<String, _>("status") == "planned" {
            // A retry goes back as its own job, at its own time.
            let id = TouchId::from_stored(row.get("id"));
            let at = DateTime::from_timestamp(row.get("next_attempt_at"), 0).unwrap_or(now);
            push_jobs(&mut *tx, std::slice::from_ref(&id), at, 1).await?;
        }
    }
    Ok(())
}

impl crate::store::Ledger for SqliteStore {
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
    async fn due_touches(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Touch>, StoreError> {
        let found = sqlx::query(
            "SELECT * FROM touches WHERE status = 'planned' AND next_attempt_at <= ? \
             ORDER BY next_attempt_at, id LIMIT ?",
        )
        .bind(before.timestamp())
        .bind(limit as i64)
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
    async fn record(
        &self,
        outcomes: &[Outcome],
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let now_s = now.timestamp();
        let rows: Vec<serde_json::Value> = outcomes.iter().map(|o| outcome_row(o, now_s)).collect();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(q)?;
        // One statement for the whole group: with SQLite every statement is a round
        // trip to the connection's thread, and those hops dominated a per-row loop.
        let applied = sqlx::query(
            "UPDATE touches SET status = j.status, reason = COALESCE(j.reason, touches.reason), \
             next_attempt_at = COALESCE(j.next, touches.next_attempt_at), \
             attempts = CASE j.counts WHEN 'r' THEN 0 WHEN '1' THEN touches.attempts - 1 ELSE touches.attempts END, \
             uncertain = CASE j.counts WHEN 'r' THEN 0 WHEN 'u' THEN touches.uncertain + 1 ELSE touches.uncertain END, \
             sent_at = COALESCE(j.sent_at, touches.sent_at), \
             tried = CASE WHEN j.channel IS NULL THEN touches.tried \
                     WHEN COALESCE(touches.tried, '') = '' THEN touches.channel \
                     ELSE touches.tried || ',' || touches.channel END, \
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
        restart_check_ins(&mut tx, &applied, now_s).await?;
        queue_retries(&mut tx, &applied, now).await?;
        tx.commit().await.map_err(q)?;
        Ok(applied.len() as u64)
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
                TouchStatus::from_str(&s).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                n as u64,
            );
        }
        Ok(out)
    }
    async fn dead_letters(
        &self,
        after: Option<&(DateTime<Utc>, TouchId)>,
        limit: usize,
    ) -> Result<Vec<Touch>, StoreError> {
        let (at, id) = after.map_or((i64::MIN, ""), |(t, id)| (t.timestamp(), id.as_str()));
        let found = sqlx::query(
            "SELECT * FROM touches WHERE status = 'failed' AND (updated_at, id) > (?1, ?2) \
             ORDER BY updated_at, id LIMIT ?3",
        )
        .bind(at)
        .bind(id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(q)?;
        found.iter().map(rows::touch).collect()
    }
    async fn revive(
        &self,
        ids: &[TouchId],
        now: DateTime<Utc>,
    ) -> Result<Vec<TouchId>, StoreError> {
        let now_s = now.timestamp();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(q)?;
        let revived = sqlx::query(
            "UPDATE touches SET status = 'planned', attempts = 0, uncertain = 0, next_attempt_at = ?1, \
             queued_at = ?1, updated_at = ?1, reason = 'retried from dead letters after: ' || COALESCE(reason, '') \
             WHERE id IN (SELECT value FROM json_each(?2)) AND status = 'failed' AND expires_at > ?1 \
             RETURNING id",
        )
        .bind(now_s)
        .bind(ids_json(ids))
        .fetch_all(&mut *tx)
        .await
        .map_err(q)?;
        let revived: Vec<TouchId> = revived
            .iter()
            .map(|r| TouchId::from_stored(r.get::<String, _>("id")))
            .collect();
        // One job per touch: a revived touch goes on its own, like a retry.
        push_jobs(&mut tx, &revived, now, 1).await?;
        tx.commit().await.map_err(q)?;
        Ok(revived)
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
}
