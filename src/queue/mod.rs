//! The job queue (apalis): jobs carry touch ids only, never loaded records, so a job
//! queued before an edit or an erasure never sends stale data.

mod job;
mod pump;
pub mod worker;

use std::{future::Future, sync::Arc};

use apalis::prelude::Monitor;
use chrono::{DateTime, Utc};

pub use job::{DispatchJob, JobError};
pub use pump::pump_loop;

use crate::{
    config::DispatchConfig,
    dispatch::Dispatcher,
    store::{Store, StoreError},
};
use worker::QueueHealth;

/// Set explicitly: apalis defaults the queue name to the Rust type name, and renaming a
/// type would silently orphan every queued job.
pub const DISPATCH_QUEUE: &str = "rapport:dispatch";

/// The queue's seam: what a backend's queue does besides taking jobs, which it does
/// atomically with the ledger writes that need them (planning, reconciling, reviving).
pub trait Queue: Send + Sync + 'static {
    /// Moves queued jobs that are due into the queue workers read, in bounded steps
    /// (Redis; see its module). Returns how many it moved; call again while it moves any.
    fn pump(&self, now: DateTime<Utc>) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let _ = now;
        async { Ok(0) }
    }
    /// `cfg.workers` workers (unique names) sending through `dispatcher`, restarted when
    /// they stop on a backend error (each stop reported to `health`).
    fn monitor<S: Store>(
        &self,
        dispatcher: Arc<Dispatcher<S>>,
        cfg: &DispatchConfig,
        health: QueueHealth,
    ) -> Monitor;
}
