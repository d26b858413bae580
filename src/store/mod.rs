//! Storage: contacts, the touch ledger, and the job queue that carries touch ids.
//!
//! The ledger, not the queue, decides whether a send may happen: a job only names touch
//! ids, and a worker must *claim* a touch (an atomic state change in the store) before
//! sending it. Duplicate jobs are therefore harmless, and a touch already `sent` is never
//! sent again.

mod any;
mod caps;
mod contacts;
mod coordination;
pub(crate) mod fields;
mod keys;
mod ledger;
pub mod redis;
pub mod relationships;
pub mod sqlite;
mod unavailable;

pub use crate::domain::Outcome;

use crate::domain::ContactId;

pub use any::AnyStore;
pub use caps::{Caps, PolicyRecord, Reservation};
pub use contacts::{ContactUpsert, Contacts};
pub use coordination::Coordination;
pub use keys::{Idempotency, KeptAnswer, RequestKeys};
pub(crate) use ledger::counts;
pub use ledger::{Claimed, Ledger, Reconciled};
pub use redis::RedisStore;
pub use relationships::{
    Learn, LearnOutcome, Note, Relationship, Relationships, ResponseRecord, Settle, StatDelta,
    StatField, StatKey, Suppression,
};
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {url}: {message}")]
    Unavailable { url: String, message: String },
    #[error("store query failed: {0}")]
    Query(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("corrupt row in the store: {0}")]
    Corrupt(String),
    #[error("no contact with id {0}")]
    UnknownContact(ContactId),
    /// The store is not the one this process works with (it came back empty, or
    /// another one answers at its address): see `custody`.
    #[error("the store was lost: {0}")]
    Lost(String),
}

impl StoreError {
    /// The store cannot be reached right now (Redis refused, dropped or timed out the
    /// connection, or is loading or failing over; SQLite's one connection stayed busy
    /// or locked past its timeout, or the disk failed), as opposed to a request or
    /// data it cannot take. Nothing is wrong with the request: the same one may succeed
    /// in a moment, so the API answers 503 with `Retry-After`, not 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            Self::Query(e) => unavailable::unreachable(e.as_ref()),
            // Reachable, but not the store this process works with: held, not down.
            Self::Corrupt(_) | Self::UnknownContact(_) | Self::Lost(_) => false,
        }
    }
}

/// The storage contract. Every backend must behave identically; the conformance tests
/// hold them to it.
/// Every role together, as both backends provide them. A consumer names the roles it
/// needs where it can; the daemon, which needs them all, names this.
pub trait Store:
    Contacts + Ledger + Caps + Relationships + Coordination + RequestKeys + 'static
{
}

impl<T> Store for T where
    T: Contacts + Ledger + Caps + Relationships + Coordination + RequestKeys + 'static
{
}
