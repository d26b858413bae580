//! The store contract, written once and run on every backend.
//!
//! Each case is a generic `async fn(Arc<S>)` over [`Backend`]: the `Store` trait and the
//! backend's queue seam (`Queue`), plus what a case may observe or do that they
//! do not expose (the jobs the store queued, the lease on a touch, a raw job pushed
//! behind the store's back and the queue's dead letters). `conformance!(name, open)`
//! instantiates every case for one backend; `open` returns a fresh, isolated store and a
//! guard that keeps its resources (a temp dir) alive for the test. Adding a backend is
//! one `impl Backend` and one `conformance!` line.
//!
//! Time is always passed in explicitly (instants around [`fixtures::t0`]); nothing
//! sleeps. The exception is `queueing`, which runs the real queue workers, and they run
//! on the system clock.

mod channels;
mod claiming;
mod contacts;
mod custody;
mod erasure;
mod events;
mod fixtures;
mod idempotency;
mod idleness;
mod learning;
mod learning_fixtures;
mod listing;
mod planning;
mod policy_fixtures;
mod policy_outcomes;
mod policy_records;
mod queueing;
mod reconciling;
mod recording;
mod redis_backend;
#[path = "../support/redis.rs"]
#[allow(dead_code, unreachable_pub)]
mod redis_server;
mod reservations;
mod responses;
mod sqlite_backend;

use std::future::Future;

use chrono::{DateTime, Utc};
use rapport::{domain::TouchId, queue::Queue, store::Store};

/// A job waiting in the dispatch queue, as the backend holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueuedJob {
    pub(crate) touches: Vec<TouchId>,
    /// When the queue will run it (whole seconds).
    pub(crate) run_at: DateTime<Utc>,
}

/// Backend-specific observations the contract needs.
pub(crate) trait Backend: Store + Queue {
    /// Every job in the `rapport:dispatch` queue, in the order it was pushed.
    fn queued(&self) -> impl Future<Output = Vec<QueuedJob>> + Send;
    /// Who holds the lease on a touch, if anyone. Panics if the touch does not exist.
    fn lease_owner(&self, id: &TouchId) -> impl Future<Output = Option<String>> + Send;
    /// Puts a job with exactly these payload bytes where the queue workers fetch from,
    /// due already, ahead of any job queued after it. ([`Backend::queued`] expects every
    /// payload to decode; do not call it once a corrupt one is queued.)
    fn push_raw_job(&self, bytes: Vec<u8>) -> impl Future<Output = ()> + Send;
    /// How many jobs the queue keeps as dead letters (given up on, kept for inspection).
    fn dead_jobs(&self) -> impl Future<Output = usize> + Send;
    /// Everything the backend stores for this test, as text (every table's rows, every
    /// key's contents): what an erasure must leave no trace of the contact in.
    fn dump(&self) -> impl Future<Output = String> + Send;
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
                claiming::racing_takeovers_and_outcomes_apply_once,
                recording::record_applies_each_outcome,
                recording::record_is_fenced_by_the_lease,
                recording::sent_is_final,
                recording::defer_returns_the_touch_without_counting_the_attempt,
                recording::extend_lease_keeps_a_slow_batch_its_own,
                recording::racing_outcomes_of_one_owner_apply_once,
                recording::a_retry_is_its_own_job_at_its_own_time,
                reconciling::reconcile_requeues_stranded_planned_once,
                reconciling::reconcile_requeues_lapsed_leases,
                reconciling::reconcile_expires_overdue_touches,
                listing::touches_round_trip_in_order,
                listing::a_lock_is_held_by_one_until_released_or_lapsed,
                queueing::a_corrupt_job_is_dead_lettered_and_the_worker_goes_on,
                events::events_are_insert_if_absent_and_count_as_interactions,
                events::events_need_a_known_contact,
                idleness::idle_contacts_page_by_last_interaction,
                idleness::a_sent_touch_ends_idleness,
                reservations::reserve_is_a_compare_and_set_on_the_version,
                reservations::reserve_is_fenced_by_the_claim,
                reservations::a_new_claim_reserves_again_in_one_slot,
                policy_outcomes::sent_keeps_its_slot_and_other_outcomes_release_it,
                policy_outcomes::skipped_is_final_and_defer_keeps_its_reason,
                policy_records::policy_records_filter_by_since,
                reservations::racing_reservations_hold_a_cap,
                channels::consent_is_kept_per_channel,
                channels::settings_are_set_once_or_replaced,
                channels::fallback_moves_a_touch_to_its_next_channel,
                channels::a_move_stores_the_channels_left_whatever_the_reason_says,
                channels::dead_letters_list_in_order_and_revive_once,
                learning::learning_is_a_compare_and_set_on_the_version,
                responses::responses_are_recorded_once_and_settle_their_touch,
                responses::ignored_touches_come_back_with_a_late_response,
                learning::learning_changes_the_contact_with_it,
                erasure::erasure_leaves_nothing_but_the_suppression,
                idempotency::idempotency_keys_hold_one_answer,
                custody::a_store_that_changes_is_held_until_adopted,
                custody::an_adoption_settles_what_was_due_before_it,
                custody::planning_after_an_adoption_skips_what_was_due_for_contacts_present_then,
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
