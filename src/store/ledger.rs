//! The touch ledger: touches planned insert-if-absent, claimed under a lease, recorded with their outcome, reconciled when stranded, and dead letters.

use std::{collections::HashMap, future::Future};

use chrono::{DateTime, Utc};

use super::*;
use crate::domain::{ContactId, NewTouch, Touch, TouchId, TouchStatus};

/// What the outcome does to the touch's counts, as both backends store it (one
/// field: each costs SQLite a JSON extraction per row): `1` the attempt is taken
/// back (a deferral), `r` attempts and uncertain ones from zero (a move to another
/// channel), `u` one more uncertain attempt, `0` neither.
pub(crate) fn counts(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Defer { .. } => "1",
        Outcome::Fallback { .. } => "r",
        Outcome::Retry {
            uncertain: true, ..
        } => "u",
        _ => "0",
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Claimed {
    /// Now `sending`, leased to the caller.
    pub touches: Vec<Touch>,
    /// Found past their expiry and marked `expired`.
    pub expired: Vec<TouchId>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    pub expired: u64,
    pub requeued: u64,
    /// Queue jobs given up on because the workers that took them kept dying (a payload
    /// that crashes the process), or because the queue cannot decode them (a corrupt
    /// row); any touches they named are re-queued from the ledger like other stranded
    /// ones.
    pub dead_jobs: u64,
}

/// The ledger role of a [`Store`].
pub trait Ledger: Send + Sync {
    /// Records touches insert-if-absent and queues jobs (`batch_size` ids each) for the
    /// `planned` ones that were new. Returns the ids that were new.
    fn plan_touches(
        &self,
        touches: &[NewTouch],
        batch_size: usize,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<TouchId>, StoreError>> + Send;

    fn get_touches(
        &self,
        ids: &[TouchId],
    ) -> impl Future<Output = Result<Vec<Touch>, StoreError>> + Send;

    fn touches_for_contact(
        &self,
        id: &ContactId,
    ) -> impl Future<Output = Result<Vec<Touch>, StoreError>> + Send;

    /// Up to `limit` touches still `planned` and due at or before `before`, soonest
    /// first (`rapport plan --at`).
    fn due_touches(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Touch>, StoreError>> + Send;

    /// Moves the due, unexpired ones of `ids` to `sending` under a lease owned by
    /// `owner` until `lease_until`; ones past expiry become `expired`. A touch whose lease
    /// ran out (its worker died) can be claimed again. `owner` names this one claim: a
    /// caller never reuses it for another (a backend may keep one lease per owner).
    fn claim(
        &self,
        ids: &[TouchId],
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Claimed, StoreError>> + Send;

    /// Extends the lease on those of `ids` that `owner` is still sending, to `until`.
    /// Returns the ids it still holds (in the order given): one missing was recorded, or
    /// its lease lapsed and another claim took it over, and must not be sent.
    fn extend_lease(
        &self,
        ids: &[TouchId],
        owner: &str,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<TouchId>, StoreError>> + Send;

    /// Records outcomes of touches claimed by `owner`. An outcome for a touch whose lease
    /// was taken over by someone else is ignored (fencing). Returns how many were applied.
    fn record(
        &self,
        outcomes: &[Outcome],
        owner: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The claim `owner` is over: every one of its outcomes is recorded. A backend that
    /// keeps leases per claim (Redis) drops it; a claim never released lapses instead.
    fn release_lease(&self, owner: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = owner;
        async { Ok(()) }
    }

    /// Expires overdue touches and re-queues stranded ones: `planned` and due before
    /// `stale_before` (their job was lost), or `sending` with a lapsed lease.
    fn reconcile(
        &self,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        batch_size: usize,
    ) -> impl Future<Output = Result<Reconciled, StoreError>> + Send;

    fn status_counts(
        &self,
    ) -> impl Future<Output = Result<HashMap<TouchStatus, u64>, StoreError>> + Send;

    /// Dead letters: up to `limit` touches that failed (retries exhausted, or a
    /// permanent failure), in the order they failed, after `after` (the last one of the
    /// previous page: its failure time and id).
    fn dead_letters(
        &self,
        after: Option<&(DateTime<Utc>, TouchId)>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Touch>, StoreError>> + Send;

    /// Gives failed touches another go: each of `ids` still `failed` and not past its
    /// expiry goes back to `planned`, due at `now`, its attempts counted from zero, and
    /// a job is queued for it. Returns the ids revived (a touch revived twice at once is
    /// revived once; the ledger still sends it at most once).
    fn revive(
        &self,
        ids: &[TouchId],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<TouchId>, StoreError>> + Send;

    /// Settles as `skipped` (with `reason`) every touch still `planned` with its next
    /// attempt at or before `before`, and every one still `sending`, giving back its
    /// place against the caps: an adopted store's touches that may have been sent before
    /// it was lost. Returns how many.
    fn settle_due(
        &self,
        before: DateTime<Utc>,
        reason: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
