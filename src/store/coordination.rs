//! Coordination between processes: locks, provider rate limits, the daemon's own settings, and the custody of the store.

use std::future::Future;

use super::*;

/// The coordination role of a [`Store`].
pub trait Coordination: Send + Sync {
    /// Takes the named lock for `ttl` if nobody holds it, returning a token to release
    /// it with; `None` if someone else holds it. Replicas use it so one of them runs a
    /// planner tick while the others skip it (planning stays insert-if-absent, so a
    /// lock that lapses mid-run only costs duplicate work).
    fn try_lock(
        &self,
        name: &str,
        ttl: std::time::Duration,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Releases a lock taken with [`Store::try_lock`], if it is still held with `token`
    /// (it may have lapsed and been taken by someone else).
    fn unlock(
        &self,
        name: &str,
        token: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes the next place under the provider rate limit `key` (a GCRA: one place every
    /// `interval`, with up to `burst` places usable at once) and returns how long the
    /// caller must wait before using it (zero: now). Shared by every replica on Redis;
    /// local to the process on SQLite (one process owns a SQLite store).
    fn rate_reserve(
        &self,
        key: &str,
        interval: std::time::Duration,
        burst: u32,
    ) -> impl Future<Output = Result<std::time::Duration, StoreError>> + Send;

    /// A setting the daemon keeps for itself (a generated signing key, an endpoint
    /// disabled by a 410), shared by every replica.
    fn setting(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Sets `name` to `value` unless it is set already; returns the value it holds now
    /// (so replicas racing to generate a key all end up with the same one).
    fn init_setting(
        &self,
        name: &str,
        value: &str,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    fn set_setting(
        &self,
        name: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether several processes may use this store at once (Redis), rather than one
    /// owning it (SQLite).
    fn shared(&self) -> bool {
        false
    }

    /// The identity this process holds the store under (`custody`): a backend that can
    /// check it atomically with its writes (Redis, in its planning and claiming scripts)
    /// refuses them with [`StoreError::Lost`] once the store's identity is another.
    /// `None` checks nothing.
    fn set_fence(&self, id: Option<&str>) {
        let _ = id;
    }

    /// The store's write counter now, and the highest this process saw before (`None`:
    /// the backend keeps none, as SQLite, whose commits are durable). A counter lower than
    /// one seen means the store went back in time: a failover to a replica that had not
    /// caught up, or a restore under a running process, lost recorded outcomes.
    fn write_counter(&self) -> impl Future<Output = Result<Option<(u64, u64)>, StoreError>> + Send {
        async { Ok(None) }
    }
    /// Lets go of the store before the process exits (SQLite checkpoints its log and
    /// closes its file; Redis needs nothing).
    fn close(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}
