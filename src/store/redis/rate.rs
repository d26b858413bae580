//! Provider rate limits shared by every replica: a GCRA in one Lua script, on Redis'
//! own clock (`lua/rate.lua`; the step itself is [`crate::ratelimit::step`]).
//!
//! A wait is measured from when Redis ran the script, and the caller starts sleeping
//! when the answer arrives; the difference (one way of a round trip) is the only
//! imprecision two replicas see between each other's places.

use std::{sync::LazyLock, time::Duration};

use redis::Script;

use super::{RedisStore, q, script};
use crate::store::StoreError;

pub(super) static RATE: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/rate.lua")));

impl RedisStore {
    pub(super) async fn rate_reserve_shared(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
    ) -> Result<Duration, StoreError> {
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
}
