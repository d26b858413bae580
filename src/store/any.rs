//! The backend the config chose, behind the one `Store` contract.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{
    Caps, Claimed, ContactUpsert, Contacts, Coordination, Idempotency, KeptAnswer, Learn, Learned,
    Ledger, Outcome, PolicyRecord, Reconciled, RedisStore, Relationship, Relationships,
    RequestKeys, Reservation, ResponseRecord, SqliteStore, StatField, StatKey, Store, StoreError,
};
use crate::{
    config::{DateField, StorageBackend, StorageConfig},
    domain::{Contact, ContactId, Event, MonthDay, NewTouch, Touch, TouchId, TouchStatus},
};

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

    pub async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Redis(_) => {}
        }
    }
}

/// Calls the same method on whichever backend this is.
macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $call.await,
            AnyStore::Redis($s) => $call.await,
        }
    };
}

impl Contacts for AnyStore {
    async fn upsert_contacts(&self, rows: &[ContactUpsert]) -> Result<(), StoreError> {
        each!(self, s => s.upsert_contacts(rows))
    }
    async fn get_contact(&self, id: &ContactId) -> Result<Option<Contact>, StoreError> {
        each!(self, s => s.get_contact(id))
    }
    async fn get_contacts(
        &self,
        ids: &[ContactId],
    ) -> Result<HashMap<ContactId, Contact>, StoreError> {
        each!(self, s => s.get_contacts(ids))
    }
    async fn contacts_on_page(
        &self,
        field: DateField,
        day: MonthDay,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Vec<Contact>, StoreError> {
        each!(self, s => s.contacts_on_page(field, day, after, limit))
    }
    async fn count_contacts(&self) -> Result<u64, StoreError> {
        each!(self, s => s.count_contacts())
    }
    async fn first_seen(
        &self,
        ids: &[ContactId],
    ) -> Result<HashMap<ContactId, DateTime<Utc>>, StoreError> {
        each!(self, s => s.first_seen(ids))
    }
    async fn contacts_by_phone(&self, phone: &str) -> Result<Vec<ContactId>, StoreError> {
        each!(self, s => s.contacts_by_phone(phone))
    }
    async fn idle_contacts(
        &self,
        before: DateTime<Utc>,
        after: Option<&(DateTime<Utc>, ContactId)>,
        limit: usize,
    ) -> Result<Vec<(Contact, DateTime<Utc>)>, StoreError> {
        each!(self, s => s.idle_contacts(before, after, limit))
    }
    async fn add_event(&self, event: &Event, now: DateTime<Utc>) -> Result<bool, StoreError> {
        each!(self, s => s.add_event(event, now))
    }
    async fn events_for_contact(&self, id: &ContactId) -> Result<Vec<Event>, StoreError> {
        each!(self, s => s.events_for_contact(id))
    }
    async fn set_consent(
        &self,
        contact: &ContactId,
        channel: &str,
        consent: bool,
    ) -> Result<bool, StoreError> {
        each!(self, s => s.set_consent(contact, channel, consent))
    }
    async fn erase_contact(&self, id: &ContactId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        each!(self, s => s.erase_contact(id, now))
    }
}

impl Ledger for AnyStore {
    async fn plan_touches(
        &self,
        touches: &[NewTouch],
        batch_size: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<TouchId>, StoreError> {
        each!(self, s => s.plan_touches(touches, batch_size, now))
    }
    async fn get_touches(&self, ids: &[TouchId]) -> Result<Vec<Touch>, StoreError> {
        each!(self, s => s.get_touches(ids))
    }
    async fn touches_for_contact(&self, id: &ContactId) -> Result<Vec<Touch>, StoreError> {
        each!(self, s => s.touches_for_contact(id))
    }
    async fn due_touches(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Touch>, StoreError> {
        each!(self, s => s.due_touches(before, limit))
    }
    async fn claim(
        &self,
        ids: &[TouchId],
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claimed, StoreError> {
        each!(self, s => s.claim(ids, owner, now, lease_until))
    }
    async fn extend_lease(
        &self,
        ids: &[TouchId],
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<Vec<TouchId>, StoreError> {
        each!(self, s => s.extend_lease(ids, owner, until))
    }
    async fn record(
        &self,
        outcomes: &[Outcome],
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        each!(self, s => s.record(outcomes, owner, now))
    }
    async fn release_lease(&self, owner: &str) -> Result<(), StoreError> {
        each!(self, s => s.release_lease(owner))
    }
    async fn reconcile(
        &self,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        batch_size: usize,
    ) -> Result<Reconciled, StoreError> {
        each!(self, s => s.reconcile(now, stale_before, batch_size))
    }
    async fn status_counts(&self) -> Result<HashMap<TouchStatus, u64>, StoreError> {
        each!(self, s => s.status_counts())
    }
    async fn dead_letters(
        &self,
        after: Option<&(DateTime<Utc>, TouchId)>,
        limit: usize,
    ) -> Result<Vec<Touch>, StoreError> {
        each!(self, s => s.dead_letters(after, limit))
    }
    async fn revive(
        &self,
        ids: &[TouchId],
        now: DateTime<Utc>,
    ) -> Result<Vec<TouchId>, StoreError> {
        each!(self, s => s.revive(ids, now))
    }
    async fn settle_due(&self, before: DateTime<Utc>, reason: &str) -> Result<u64, StoreError> {
        each!(self, s => s.settle_due(before, reason))
    }
}

impl Caps for AnyStore {
    async fn policy_records(
        &self,
        ids: &[ContactId],
        since: DateTime<Utc>,
        skip: &[TouchId],
    ) -> Result<HashMap<ContactId, PolicyRecord>, StoreError> {
        each!(self, s => s.policy_records(ids, since, skip))
    }
    async fn reserve(
        &self,
        reservations: &[Reservation],
        owner: &str,
    ) -> Result<Vec<bool>, StoreError> {
        each!(self, s => s.reserve(reservations, owner))
    }
}

impl Relationships for AnyStore {
    async fn relationship(&self, id: &ContactId) -> Result<Option<Relationship>, StoreError> {
        each!(self, s => s.relationship(id))
    }
    async fn relationships(
        &self,
        ids: &[ContactId],
    ) -> Result<HashMap<ContactId, Relationship>, StoreError> {
        each!(self, s => s.relationships(ids))
    }
    async fn learn(&self, learn: &Learn, now: DateTime<Utc>) -> Result<Learned, StoreError> {
        each!(self, s => s.learn(learn, now))
    }
    async fn responses_for_contact(
        &self,
        id: &ContactId,
    ) -> Result<Vec<ResponseRecord>, StoreError> {
        each!(self, s => s.responses_for_contact(id))
    }
    async fn awaiting(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Touch>, StoreError> {
        each!(self, s => s.awaiting(before, limit))
    }
    async fn stats(&self) -> Result<Vec<(StatKey, StatField, u64)>, StoreError> {
        each!(self, s => s.stats())
    }
}

impl Coordination for AnyStore {
    async fn try_lock(
        &self,
        name: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        each!(self, s => s.try_lock(name, ttl))
    }
    async fn unlock(&self, name: &str, token: &str) -> Result<(), StoreError> {
        each!(self, s => s.unlock(name, token))
    }
    async fn rate_reserve(
        &self,
        key: &str,
        interval: std::time::Duration,
        burst: u32,
    ) -> Result<std::time::Duration, StoreError> {
        each!(self, s => s.rate_reserve(key, interval, burst))
    }
    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        each!(self, s => s.setting(name))
    }
    async fn init_setting(&self, name: &str, value: &str) -> Result<String, StoreError> {
        each!(self, s => s.init_setting(name, value))
    }
    async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        each!(self, s => s.set_setting(name, value))
    }
    fn shared(&self) -> bool {
        matches!(self, AnyStore::Redis(_))
    }
    fn set_fence(&self, id: Option<&str>) {
        match self {
            AnyStore::Sqlite(s) => s.set_fence(id),
            AnyStore::Redis(s) => s.set_fence(id),
        }
    }
    async fn write_counter(&self) -> Result<Option<(u64, u64)>, StoreError> {
        each!(self, s => s.write_counter())
    }
}

impl RequestKeys for AnyStore {
    async fn begin_key(
        &self,
        key: &str,
        fingerprint: &str,
        ttl: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<Idempotency, StoreError> {
        each!(self, s => s.begin_key(key, fingerprint, ttl, now))
    }
    async fn keep_answer(
        &self,
        key: &str,
        answer: &KeptAnswer,
        ttl: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        each!(self, s => s.keep_answer(key, answer, ttl, now))
    }
    async fn forget_key(&self, key: &str) -> Result<(), StoreError> {
        each!(self, s => s.forget_key(key))
    }
}

impl crate::queue::Queue for AnyStore {
    async fn pump(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        each!(self, s => s.pump(now))
    }
    fn monitor<S: Store>(
        &self,
        dispatcher: std::sync::Arc<crate::dispatch::Dispatcher<S>>,
        cfg: &crate::config::DispatchConfig,
        health: crate::queue::worker::QueueHealth,
    ) -> apalis::prelude::Monitor {
        match self {
            AnyStore::Sqlite(s) => s.monitor(dispatcher, cfg, health),
            AnyStore::Redis(s) => s.monitor(dispatcher, cfg, health),
        }
    }
}
