//! The channels' side of the SQLite store: consent changes from providers, the
//! daemon's own settings, and dead letters.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{SqliteStore, ids_json, push_jobs, q, rows};
use crate::domain::{ContactId, Touch, TouchId};
use crate::store::StoreError;

pub(super) async fn set_consent(
    store: &SqliteStore,
    contact: &ContactId,
    channel: &str,
    consent: bool,
) -> Result<bool, StoreError> {
    let sql = match channel {
        "email" => "UPDATE contacts SET email_consent = ?1, updated_at = ?3 WHERE id = ?2",
        "sms" => "UPDATE contacts SET sms_consent = ?1, updated_at = ?3 WHERE id = ?2",
        other => {
            return Err(StoreError::Query(
                format!("no consent is kept for channel {other:?}").into(),
            ));
        }
    };
    let done = sqlx::query(sql)
        .bind(i64::from(consent))
        .bind(contact.as_str())
        .bind(Utc::now().timestamp())
        .execute(&store.pool)
        .await
        .map_err(q)?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn setting(store: &SqliteStore, name: &str) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
        .bind(name)
        .fetch_optional(&store.pool)
        .await
        .map_err(q)
}

pub(super) async fn init_setting(
    store: &SqliteStore,
    name: &str,
    value: &str,
) -> Result<String, StoreError> {
    // `DO UPDATE SET name = name` makes RETURNING give the row that is there either way.
    sqlx::query_scalar(
        "INSERT INTO settings (name, value, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT(name) DO UPDATE SET name = name RETURNING value",
    )
    .bind(name)
    .bind(value)
    .bind(Utc::now().timestamp())
    .fetch_one(&store.pool)
    .await
    .map_err(q)
}

pub(super) async fn set_setting(
    store: &SqliteStore,
    name: &str,
    value: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO settings (name, value, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(value)
    .bind(Utc::now().timestamp())
    .execute(&store.pool)
    .await
    .map_err(q)?;
    Ok(())
}

pub(super) async fn dead_letters(
    store: &SqliteStore,
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
    .fetch_all(&store.pool)
    .await
    .map_err(q)?;
    found.iter().map(rows::touch).collect()
}

pub(super) async fn revive(
    store: &SqliteStore,
    ids: &[TouchId],
    now: DateTime<Utc>,
) -> Result<Vec<TouchId>, StoreError> {
    let now_s = now.timestamp();
    let mut tx = store.pool.begin_with("BEGIN IMMEDIATE").await.map_err(q)?;
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
