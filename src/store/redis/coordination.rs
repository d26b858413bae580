//! Redis: [`Coordination`](crate::store::Coordination): locks, provider rate limits, settings,
//! custody.

use super::*;
use crate::store::StoreError;
use redis::AsyncCommands;
use std::time::Duration;

impl crate::store::Coordination for RedisStore {
    async fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<String>, StoreError> {
        let token = ulid::Ulid::new().to_string();
        let taken: Option<String> = redis::cmd("SET")
            .arg(format!("{}:lock:{name}", self.prefix))
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(q)?;
        Ok(taken.map(|_| token))
    }
    async fn unlock(&self, name: &str, token: &str) -> Result<(), StoreError> {
        UNLOCK
            .key(format!("{}:lock:{name}", self.prefix))
            .arg(token)
            .invoke_async::<()>(&mut self.conn.clone())
            .await
            .map_err(q)
    }
    async fn rate_reserve(
        &self,
        key: &str,
        interval: std::time::Duration,
        burst: u32,
    ) -> Result<std::time::Duration, StoreError> {
        // Rounded up to whole microseconds (at least one), so the rate is never exceeded.
        let interval_us = u64::try_from(interval.as_nanos().div_ceil(1000))
            .unwrap_or(u64::MAX)
            .max(1);
        let wait_us: u64 = RATE
            .key(format!("{}:rate:{key}", self.prefix))
            .arg(&self.prefix)
            .arg(interval_us)
            .arg(burst.max(1))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(q)?;
        Ok(Duration::from_micros(wait_us))
    }
    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .clone()
            .get(self.setting_key(name))
            .await
            .map_err(q)
    }
    async fn init_setting(&self, name: &str, value: &str) -> Result<String, StoreError> {
        let key = self.setting_key(name);
        let mut conn = self.conn.clone();
        let _: bool = conn.set_nx(&key, value).await.map_err(q)?;
        let now: Option<String> = conn.get(&key).await.map_err(q)?;
        now.ok_or_else(|| StoreError::Query(format!("setting {name} vanished").into()))
    }
    async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .clone()
            .set::<_, _, ()>(self.setting_key(name), value)
            .await
            .map_err(q)
    }
    fn shared(&self) -> bool {
        true
    }
    fn set_fence(&self, id: Option<&str>) {
        *self.fence.write().unwrap_or_else(|p| p.into_inner()) = id.unwrap_or("").to_owned();
        // A store held anew starts its own count. Cleared before the generation moves
        // on: a write that read the old count sees the old generation and is ignored.
        self.epoch_seen
            .store(0, std::sync::atomic::Ordering::SeqCst);
        self.epoch_rollback
            .store(0, std::sync::atomic::Ordering::SeqCst);
        self.epoch_gen
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    async fn write_counter(&self) -> Result<Option<(u64, u64)>, StoreError> {
        // What was seen *before* the read: a recording that returns while the read is
        // under way may see a higher count than the read, without anything being lost.
        let (generation, seen) = self.epoch_before();
        let now: Option<u64> = self
            .conn
            .clone()
            .get(format!("{}:store:epoch", self.prefix))
            .await
            .map_err(q)?;
        let now = now.unwrap_or(0);
        // A read sent before the store was held anew says nothing about the new one.
        if generation == self.epoch_gen.load(std::sync::atomic::Ordering::SeqCst) {
            self.epoch_seen
                .fetch_max(now, std::sync::atomic::Ordering::SeqCst);
        }
        // A rollback a write of ours saw counts even if the counter has risen since.
        let rolled_back = self
            .epoch_rollback
            .load(std::sync::atomic::Ordering::SeqCst);
        if rolled_back > 0 {
            let seen = seen.max(rolled_back + 1);
            return Ok(Some((rolled_back.min(now), seen)));
        }
        Ok(Some((now, seen)))
    }
}
