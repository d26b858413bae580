//! SQLite: [`Coordination`](crate::store::Coordination): locks, provider rate limits, settings,
//! custody.

use super::*;
use crate::store::StoreError;
use chrono::Utc;

impl crate::store::Coordination for SqliteStore {
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
    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(q)
    }
    async fn init_setting(&self, name: &str, value: &str) -> Result<String, StoreError> {
        // `DO UPDATE SET name = name` makes RETURNING give the row that is there either way.
        sqlx::query_scalar(
            "INSERT INTO settings (name, value, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT(name) DO UPDATE SET name = name RETURNING value",
        )
        .bind(name)
        .bind(value)
        .bind(Utc::now().timestamp())
        .fetch_one(&self.pool)
        .await
        .map_err(q)
    }
    async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (name, value, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(value)
        .bind(Utc::now().timestamp())
        .execute(&self.pool)
        .await
        .map_err(q)?;
        Ok(())
    }
    async fn close(&self) {
        self.pool.close().await;
    }
}
