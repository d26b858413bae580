//! Storage: contacts, the touch ledger, and the job queue that carries touch ids.
//!
//! The ledger, not the queue, decides whether a send may happen: a job only names touch
//! ids, and a worker must *claim* a touch (an atomic state change in the store) before
//! sending it. Duplicate jobs are therefore harmless, and a touch already `sent` is never
//! sent again.

mod any;
pub(crate) mod fields;
pub mod redis;
pub mod relationship;
pub mod sqlite;
mod unavailable;

use std::{collections::HashMap, future::Future};

use chrono::{DateTime, Utc};

pub use crate::domain::Outcome;

use crate::{
    config::DateField,
    domain::{Contact, ContactId, Event, MonthDay, NewTouch, Touch, TouchId, TouchStatus},
    policy::Slot,
};

pub use any::AnyStore;
pub use redis::RedisStore;
pub use relationship::{
    Idempotency, KeptAnswer, Learn, Learned, Note, Relationship, ResponseRecord, Settle, StatDelta,
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

/// A contact to insert or replace. `email_consent: None` keeps what the store knows, so
/// a re-import never silently re-subscribes someone who opted out.
#[derive(Debug, Clone)]
pub struct ContactUpsert {
    pub contact: Contact,
    pub email_consent: Option<bool>,
    /// The same for SMS.
    pub sms_consent: Option<bool>,
    /// The row named no tier: a stored contact keeps the tier it has (a move the
    /// learner made is not undone by the next sync); a new one gets `contact.tier`.
    pub keep_tier: bool,
}

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

/// What the store holds about one contact that the relationship policy needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyRecord {
    /// Bumped by every reservation: a reservation names the version it was decided on.
    pub version: u64,
    /// Places held against the caps at or after the `since` asked for.
    pub slots: Vec<Slot>,
    /// Touches due (or next due) at or after `since`, any status.
    pub touches: Vec<Touch>,
    /// The last touch sent, event or response (first seen, for a contact with none).
    pub last_interaction: Option<DateTime<Utc>>,
}

/// A place against a contact's caps, asked for by the claim that holds the touch.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    pub touch: TouchId,
    pub contact: ContactId,
    pub channel: String,
    pub at: DateTime<Utc>,
    /// The [`PolicyRecord::version`] the decision was made on.
    pub version: u64,
}

/// The storage contract. Every backend must behave identically; the conformance tests
/// hold them to it.
pub trait Store: Send + Sync + 'static {
    fn upsert_contacts(
        &self,
        rows: &[ContactUpsert],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get_contact(
        &self,
        id: &ContactId,
    ) -> impl Future<Output = Result<Option<Contact>, StoreError>> + Send;
    fn get_contacts(
        &self,
        ids: &[ContactId],
    ) -> impl Future<Output = Result<HashMap<ContactId, Contact>, StoreError>> + Send;
    /// Up to `limit` contacts whose `field` falls on `day` (month-day, any year), in id
    /// order, after `after`: the planner pages through a day without holding it all.
    fn contacts_on_page(
        &self,
        field: DateField,
        day: MonthDay,
        after: Option<&ContactId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Contact>, StoreError>> + Send;
    /// Every contact whose `field` falls on one of `days`.
    fn contacts_on(
        &self,
        field: DateField,
        days: &[MonthDay],
    ) -> impl Future<Output = Result<Vec<Contact>, StoreError>> + Send {
        async move {
            let mut out = Vec::new();
            for day in days {
                let mut after: Option<ContactId> = None;
                loop {
                    let page = self
                        .contacts_on_page(field, *day, after.as_ref(), 5000)
                        .await?;
                    let Some(last) = page.last() else { break };
                    after = Some(last.id.clone());
                    out.extend(page);
                }
            }
            Ok(out)
        }
    }
    fn count_contacts(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

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
    /// Records outcomes of touches claimed by `owner`. An outcome for a touch whose lease
    /// was taken over by someone else is ignored (fencing). Returns how many were applied.
    fn record(
        &self,
        outcomes: &[Outcome],
        owner: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Extends the lease on those of `ids` that `owner` is still sending, to `until`.
    /// Returns the ids it still holds (in the order given): one missing was recorded, or
    /// its lease lapsed and another claim took it over, and must not be sent.
    fn extend_lease(
        &self,
        ids: &[TouchId],
        owner: &str,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<TouchId>, StoreError>> + Send;
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
    /// The claim `owner` is over: every one of its outcomes is recorded. A backend that
    /// keeps leases per claim (Redis) drops it; a claim never released lapses instead.
    fn release_lease(&self, owner: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = owner;
        async { Ok(()) }
    }
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
    /// Up to `limit` touches still `planned` and due at or before `before`, soonest
    /// first (`rapport plan --at`).
    fn due_touches(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Touch>, StoreError>> + Send;
    /// Records an event on its contact's timeline, insert-if-absent by (contact, event
    /// id), and counts it as an interaction (at its time, never later than `now`).
    /// Returns whether it was new. The contact must exist.
    fn add_event(
        &self,
        event: &Event,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// A contact's events, oldest first.
    fn events_for_contact(
        &self,
        id: &ContactId,
    ) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send;
    /// Up to `limit` contacts whose last interaction is at or before `before`, with it,
    /// in (last interaction, id) order, after `after` (the last one of the previous
    /// page): the check-in planner pages through them, each page costing the same
    /// however far in it is.
    fn idle_contacts(
        &self,
        before: DateTime<Utc>,
        after: Option<&(DateTime<Utc>, ContactId)>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(Contact, DateTime<Utc>)>, StoreError>> + Send;
    /// The policy's view of each of `ids` (missing contacts are left out): slots and
    /// touches from `since` on, except the touches in `skip` (the caller holds them:
    /// the dispatcher's own claimed batch, which need not be read twice).
    fn policy_records(
        &self,
        ids: &[ContactId],
        since: DateTime<Utc>,
        skip: &[TouchId],
    ) -> impl Future<Output = Result<HashMap<ContactId, PolicyRecord>, StoreError>> + Send;
    /// Takes the places asked for, in order, each atomically with its check: it is taken
    /// only if the touch is still `sending` under `owner` and its contact's version is
    /// still the one the decision was made on (each place taken bumps it, so a second
    /// reservation for one contact names the version after the first). A contact's
    /// reservations are a chain: once one is refused, the rest of that contact's in the
    /// call are refused too. Returns, per reservation, whether it was taken; one not
    /// taken must be decided again.
    fn reserve(
        &self,
        reservations: &[Reservation],
        owner: &str,
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;
    /// Sets `contact`'s consent on `channel` (`email` or `sms`): a provider's opt-out
    /// (Twilio 21610), a STOP, an unsubscribe. Returns whether the contact exists.
    fn set_consent(
        &self,
        contact: &ContactId,
        channel: &str,
        consent: bool,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
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
    /// The contact's learned state with its notes; `None` when nothing was learned yet
    /// (the caller starts from the default at version 0).
    fn relationship(
        &self,
        id: &ContactId,
    ) -> impl Future<Output = Result<Option<Relationship>, StoreError>> + Send;
    /// The relationships of those of `ids` that have one (the planner reads a page at
    /// once).
    fn relationships(
        &self,
        ids: &[ContactId],
    ) -> impl Future<Output = Result<HashMap<ContactId, Relationship>, StoreError>> + Send;
    /// Applies `learn` atomically if the contact's relationship is still at
    /// `learn.version` (see [`Learn`]).
    fn learn(
        &self,
        learn: &Learn,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Learned, StoreError>> + Send;
    /// The contacts with phone number `phone` (E.164), in id order: an SMS from it comes
    /// from one of them (a family may share a number).
    fn contacts_by_phone(
        &self,
        phone: &str,
    ) -> impl Future<Output = Result<Vec<ContactId>, StoreError>> + Send;
    /// A contact's responses, oldest first.
    fn responses_for_contact(
        &self,
        id: &ContactId,
    ) -> impl Future<Output = Result<Vec<ResponseRecord>, StoreError>> + Send;
    /// Up to `limit` touches `sent` at or before `before` with no response yet, the
    /// oldest first: the ones whose response window has closed when `before` is now
    /// minus the window.
    fn awaiting(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Touch>, StoreError>> + Send;
    /// The per (tier, channel, occasion) counters [`Learn::stats`] kept.
    fn stats(
        &self,
    ) -> impl Future<Output = Result<Vec<(StatKey, StatField, u64)>, StoreError>> + Send;
    /// Erases a contact: the contact, its events, responses, relationship, touches and
    /// places against the caps. Its addresses stay on the suppression list as hashes,
    /// so a re-import cannot be marketed to. Returns whether there was such a contact.
    fn erase_contact(
        &self,
        id: &ContactId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
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
    /// When each of `ids` was first stored (missing contacts are left out).
    fn first_seen(
        &self,
        ids: &[ContactId],
    ) -> impl Future<Output = Result<HashMap<ContactId, DateTime<Utc>>, StoreError>> + Send;
    /// Settles as `skipped` (with `reason`) every touch still `planned` with its next
    /// attempt at or before `before`, and every one still `sending`, giving back its
    /// place against the caps: an adopted store's touches that may have been sent before
    /// it was lost. Returns how many.
    fn settle_due(
        &self,
        before: DateTime<Utc>,
        reason: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Moves queued jobs that are due into the queue workers read, in bounded steps
    /// (Redis; see its module). Returns how many it moved; call again while it moves any.
    fn pump(&self, now: DateTime<Utc>) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let _ = now;
        async { Ok(0) }
    }
}
