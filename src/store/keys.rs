//! `Idempotency-Key`s of API requests: the answer kept for each, so a retried request
//! gets the first one's answer instead of doing it twice.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreError;

/// The answer kept for an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptAnswer {
    /// What identifies the request (method, path and a digest of the body).
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotency {
    /// The key is new: it is now held for the caller, who must [`RequestKeys::keep_answer`]
    /// or [`RequestKeys::forget_key`].
    Began,
    /// Another request with this key is still being answered.
    InProgress {
        fingerprint: String,
    },
    Done(KeptAnswer),
}

/// `Idempotency-Key`s of API requests: taken, answered, let go.
pub trait RequestKeys: Send + Sync {
    /// Takes `key` for a request identified by `fingerprint` unless it is taken: then
    /// says by what (an answer kept, or a request still in progress). A key is kept for
    /// `ttl`.
    fn begin_key(
        &self,
        key: &str,
        fingerprint: &str,
        ttl: std::time::Duration,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Idempotency, StoreError>> + Send;

    /// Keeps the answer to the request that took `key`.
    fn keep_answer(
        &self,
        key: &str,
        answer: &KeptAnswer,
        ttl: std::time::Duration,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Lets go of `key` without an answer (the request failed in a way worth retrying).
    fn forget_key(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}
