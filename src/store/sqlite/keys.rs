//! SQLite: [`RequestKeys`](crate::store::RequestKeys): `Idempotency-Key`s of API requests.

use super::*;
use crate::store::{Idempotency, KeptAnswer, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// How long a key taken by a request still being answered holds (a process that died
/// mid-request must not block the key for the whole retention time).
const IN_PROGRESS_SECS: i64 = 300;

impl crate::store::RequestKeys for SqliteStore {
    async fn begin_key(
        &self,
        key: &str,
        fingerprint: &str,
        _ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<crate::store::Idempotency, StoreError> {
        let now_s = now.timestamp();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(q)?;
        sqlx::query("DELETE FROM idempotency WHERE expires_at <= ?")
            .bind(now_s)
            .execute(&mut *tx)
            .await
            .map_err(q)?;
        let taken = sqlx::query(
            "INSERT INTO idempotency (key, fingerprint, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(key)
        .bind(fingerprint)
        .bind(now_s + IN_PROGRESS_SECS)
        .execute(&mut *tx)
        .await
        .map_err(q)?
        .rows_affected()
            > 0;
        let out = if taken {
            Idempotency::Began
        } else {
            let r = sqlx::query("SELECT fingerprint, status, body FROM idempotency WHERE key = ?")
                .bind(key)
                .fetch_one(&mut *tx)
                .await
                .map_err(q)?;
            let fingerprint: String = r.get("fingerprint");
            match (
                r.get::<Option<i64>, _>("status"),
                r.get::<Option<String>, _>("body"),
            ) {
                (Some(status), Some(body)) => Idempotency::Done(KeptAnswer {
                    fingerprint,
                    status: status as u16,
                    body,
                }),
                _ => Idempotency::InProgress { fingerprint },
            }
        };
        tx.commit().await.map_err(q)?;
        Ok(out)
    }
    async fn keep_answer(
        &self,
        key: &str,
        answer: &crate::store::KeptAnswer,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let expires = now.timestamp().saturating_add(ttl.as_secs() as i64);
        sqlx::query(
            "INSERT INTO idempotency (key, fingerprint, status, body, expires_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT(key) DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status, \
             body = excluded.body, expires_at = excluded.expires_at",
        )
        .bind(key)
        .bind(&answer.fingerprint)
        .bind(i64::from(answer.status))
        .bind(&answer.body)
        .bind(expires)
        .execute(&self.pool)
        .await
        .map_err(q)?;
        Ok(())
    }
    async fn forget_key(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM idempotency WHERE key = ? AND status IS NULL")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(q)?;
        Ok(())
    }
}
