//! What the dispatcher-level scenario tests share: the two backends, a store opened on
//! either, and the simulated first day. The including crate must have the Redis test
//! server as `crate::redis_server` (`#[path = "support/redis.rs"] mod redis_server;`)
//! and the backends as `crate::backends` (`#[path = "support/backends.rs"] mod backends;`).

use chrono::{DateTime, Duration, TimeZone, Utc};
use rapport::config::{Config, StorageBackend, StorageConfig};

use crate::backends::TestStore;

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Redis,
}

/// The store for `backend`: SQLite at the config's URL, or Redis under a fresh key
/// prefix starting with `tag`.
pub async fn open<S: TestStore>(backend: Backend, cfg: &Config, tag: &str) -> S {
    match backend {
        Backend::Sqlite => S::open_for(&cfg.storage).await,
        Backend::Redis => {
            let storage = StorageConfig {
                backend: StorageBackend::Redis,
                url: crate::redis_server::shared_url(),
                prefix: crate::redis_server::unique_prefix(tag),
            };
            S::open_for(&storage).await
        }
    }
}

/// Midnight UTC of the first simulated day: 40 days after the real now (contacts are
/// first seen at the wall clock, so the check-in clock has run by then). Fixed once per
/// run, so a test running across a real midnight keeps one timeline.
pub fn day0() -> DateTime<Utc> {
    static DAY0: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    *DAY0.get_or_init(|| {
        let d = (Utc::now() + Duration::days(40)).date_naive();
        Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
    })
}
