#![allow(dead_code, unreachable_pub)]

//! The two backends as types: a test generic over `S: TestStore` runs on either, each
//! as its own type (the daemon picks its backend once, the same way).

use std::future::Future;

use rapport::{
    config::{StorageBackend, StorageConfig},
    queue::Queue,
    store::{RedisStore, SqliteStore, Store},
};

/// A backend a test can open from a storage config.
pub trait TestStore: Store + Queue + Sized {
    /// Opens the store `storage` names (panicking if it cannot: a test's setup).
    fn open_for(storage: &StorageConfig) -> impl Future<Output = Self> + Send;
}

impl TestStore for SqliteStore {
    async fn open_for(storage: &StorageConfig) -> Self {
        assert_eq!(
            storage.backend,
            StorageBackend::Sqlite,
            "a SQLite test store"
        );
        SqliteStore::open(&storage.url).await.unwrap()
    }
}

impl TestStore for RedisStore {
    async fn open_for(storage: &StorageConfig) -> Self {
        assert_eq!(storage.backend, StorageBackend::Redis, "a Redis test store");
        RedisStore::open(storage).await.unwrap()
    }
}
