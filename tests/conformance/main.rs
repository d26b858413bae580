//! The store contract, written once and run on every backend.
//!
//! Each case is a generic `async fn(Arc<S>)` over [`Backend`]: the `Store` trait plus the
//! two things a case may observe that the trait does not expose (the jobs the store
//! queued and the lease on a touch). `conformance!(name, open)` instantiates every case
//! for one backend; `open` returns a fresh, isolated store and a guard that keeps its
//! resources (a temp dir) alive for the test. Adding a backend is one
//! `impl Backend` and one `conformance!` line.
//!
//! Time is always passed in explicitly (instants around [`fixtures::t0`]); nothing sleeps.

mod claiming;
mod contacts;
mod fixtures;
mod listing;
mod planning;
mod reconciling;
mod recording;
mod redis_backend;
#[path = "../support/redis.rs"]
#[allow(dead_code, unreachable_pub)]
mod redis_server;
mod sqlite_backend;

use std::future::Future;

use chrono::{DateTime, Utc};
use rapport::{domain::TouchId, store::Store};

/// A job waiting in the dispatch queue, as the backend holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueuedJob {
    pub(crate) touches: Vec<TouchId>,
    /// When the queue will run it (whole seconds).
    pub(crate) run_at: DateTime<Utc>,
}

/// Backend-specific observations the contract needs.
pub(crate) trait Backend: Store {
    /// Every job in the `rapport:dispatch` queue, in the order it was pushed.
    fn queued(&self) -> impl Future<Output = Vec<QueuedJob>> + Send;
    /// Who holds the lease on a touch, if anyone. Panics if the touch does not exist.
    fn lease_owner(&self, id: &TouchId) -> impl Future<Output = Option<String>> + Send;
}

macro_rules! conformance {
    ($backend:ident, $open:path) => {
        mod $backend {
            conformance!(@cases $open;
                contacts::contacts_round_trip,
                contacts::upsert_replaces_and_keeps_opt_outs,
                contacts::contacts_on_matches_month_days,
                contacts::contacts_on_pages_through_a_day_in_id_order,
                planning::plan_is_insert_if_absent,
                planning::plan_queues_batches_when_due,
                planning::expired_touches_are_recorded_not_queued,
                planning::racing_planners_insert_each_touch_once,
                claiming::racing_claims_give_each_touch_one_owner,
                claiming::claim_respects_the_lease,
                claiming::claim_skips_touches_not_yet_due,
                claiming::claim_expires_overdue_touches,
                recording::record_applies_each_outcome,
                recording::record_is_fenced_by_the_lease,
                recording::sent_is_final,
                recording::defer_returns_the_touch_without_counting_the_attempt,
                recording::extend_lease_keeps_a_slow_batch_its_own,
                reconciling::reconcile_requeues_stranded_planned_once,
                reconciling::reconcile_requeues_lapsed_leases,
                reconciling::reconcile_expires_overdue_touches,
                listing::touches_round_trip_in_order,
            );
        }
    };
    (@cases $open:path; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            // Several worker threads, so the racing cases really race.
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (store, _guard) = $open().await;
                crate::$module::$case(store).await;
            }
        )*
    };
}

conformance!(sqlite, crate::sqlite_backend::open);
conformance!(redis, crate::redis_backend::open);
