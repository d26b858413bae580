//! The backend the config chose, opened: a process picks it once, with
//! [`with_store!`](crate::with_store), and runs over its own type from there.

use super::{RedisStore, SqliteStore, StoreError};
use crate::config::{StorageBackend, StorageConfig};

/// The opened backend. It is not a store itself: nothing forwards calls through it.
#[derive(Debug)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Redis(RedisStore),
}

impl AnyStore {
    pub async fn open(cfg: &StorageConfig) -> Result<Self, StoreError> {
        match cfg.backend {
            StorageBackend::Sqlite => SqliteStore::open(&cfg.url).await.map(Self::Sqlite),
            StorageBackend::Redis => RedisStore::open(cfg).await.map(Self::Redis),
        }
    }
}

/// Runs `$body` with `$store` bound to the backend `$opened` holds, as its own type:
/// the one place a process picks its backend. The body is compiled once per backend,
/// so everything it calls is generic over the roles of [`super::Store`] and nothing
/// forwards a call from one type to another by hand.
///
/// ```ignore
/// let store = AnyStore::open(&cfg.storage).await?;
/// rapport::with_store!(store, |store| { run(&store).await })
/// ```
#[macro_export]
macro_rules! with_store {
    ($opened:expr, |$store:ident| $body:block) => {
        match $opened {
            $crate::store::AnyStore::Sqlite($store) => $body,
            $crate::store::AnyStore::Redis($store) => $body,
        }
    };
}
