//! The shared backend: contacts, the touch ledger and the apalis queue in one Redis, so
//! any number of `rapport run` replicas can share the work.
//!
//! Every multi-step change (insert-if-absent, a ledger transition, a claim) is one Lua
//! script (`lua/`), so replicas never race between a read and a write. Per-contact keys
//! carry the hash tag `{c:<id>}`; the indexes that find work (`idx:*`) are global.
//!
//! Jobs are not pushed into apalis' schedule directly. apalis-redis promotes *every* due
//! scheduled job on each fetch with one Lua `unpack`, which fails past about 8,000 ids
//! and then stops every worker on every fetch, for ever (a big morning, or a backlog
//! after an outage, is enough). Jobs wait in rapport's own `queue:delayed` set instead,
//! and [`Store::pump`] hands due ones to apalis in bounded steps, holding off while
//! apalis already has a backlog. The ledger stays the truth: a job lost anywhere on that
//! path is re-queued by the reconciler.

mod caps;
mod conn;
mod contacts;
mod coordination;
mod keys;
mod ledger;
mod migrate;
mod queue;
mod relationships;
mod rows;

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
    time::Duration,
};

use apalis_core::task::builder::TaskBuilder;
use chrono::{DateTime, Utc};
use redis::{
    AsyncCommands, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

pub use conn::GatedConnection;
use rows::{ClaimedRow, StoredContact, outcome_args, touch_from};

use super::{
    Claimed, ContactUpsert, Coordination, Outcome, Reconciled, StoreError, Suppression,
    fields::{self, corrupt},
    relationships::suppressed_hashes,
};
use crate::{
    config::{DateField, StorageConfig, redact_url},
    domain::{Contact, ContactId, MonthDay, NewTouch, Touch, TouchId, time::not_before},
    queue::DispatchJob,
};

/// How many due jobs one [`Store::pump`] step hands to apalis.
const RELEASE_STEP: usize = 500;
/// apalis may hold at most this many waiting jobs before rapport stops handing it more
/// (well under the ~8,000 its fetch can promote at once).
const RELEASE_BACKLOG: usize = 4000;
/// How many index entries one reconcile step looks at.
const RECONCILE_STEP: usize = 5000;
/// apalis' own dedupe of a job pushed twice (a release retried after a lost answer).
/// Never `None`: apalis-redis 1.0 then deletes the key at once and dedupes nothing.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(2 * 86_400);

fn script(body: &str) -> Script {
    Script::new(&format!("{}\n{body}", include_str!("lua/prelude.lua")))
}

static UPSERT_CONTACTS: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("lua/upsert_contacts.lua")));
static PLAN: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/plan.lua")));
static CLAIM: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/claim.lua")));
static RECORD: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/record.lua")));
static EXTEND: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/extend_lease.lua")));
static RELEASE_LEASE: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("lua/release_lease.lua")));
/// Deletes a lock only if it still holds our token (it may have lapsed and been taken).
static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
    )
});
static RECONCILE: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/reconcile.lua")));
static RELEASE: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/release.lua")));
static POLICY_RECORDS: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("lua/policy_records.lua")));
static RESERVE: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/reserve.lua")));
static ADD_EVENT: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/add_event.lua")));
static SETTLE_DUE: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/settle_due.lua")));
static QUARANTINE: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/quarantine.lua")));
static SET_CONSENT: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("lua/set_consent.lua")));
static REVIVE: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/revive.lua")));
static LEARN: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/learn.lua")));
static ERASE: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/erase.lua")));
static RATE: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/rate.lua")));

/// Every script's SHA1 and name (for diagnostics: `SLOWLOG`, `INFO commandstats`).
pub fn script_names() -> Vec<(String, &'static str)> {
    [
        (&*UPSERT_CONTACTS, "upsert_contacts"),
        (&*PLAN, "plan"),
        (&*CLAIM, "claim"),
        (&*RECORD, "record"),
        (&*EXTEND, "extend_lease"),
        (&*RELEASE_LEASE, "release_lease"),
        (&*RECONCILE, "reconcile"),
        (&*UNLOCK, "unlock"),
        (&*RELEASE, "release"),
        (&*POLICY_RECORDS, "policy_records"),
        (&*RESERVE, "reserve"),
        (&*ADD_EVENT, "add_event"),
        (&*SETTLE_DUE, "settle_due"),
        (&*QUARANTINE, "quarantine"),
        (&*RATE, "rate"),
        (&*SET_CONSENT, "set_consent"),
        (&*REVIVE, "revive"),
        (&*LEARN, "learn"),
        (&*ERASE, "erase"),
    ]
    .into_iter()
    .map(|(s, name)| (s.get_hash().to_owned(), name))
    .collect()
}

fn q(e: redis::RedisError) -> StoreError {
    // The fence in `prelude.lua`: the store's identity is not the one this process holds.
    if e.to_string().contains("STORE_LOST") {
        return StoreError::Lost("its identity is not the one this process works with".into());
    }
    StoreError::Query(Box::new(e))
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    /// The apalis queue this deployment's workers read.
    queue: apalis_redis::Config,
    /// Monotonic ids for delayed jobs, so they sort in the order they were queued.
    ids: Mutex<ulid::Generator>,
    /// The key suppression hashes are made with (a setting, generated once).
    pepper: std::sync::Arc<[u8]>,
    /// The store identity planning and claiming must find (`custody`); empty: none.
    fence: std::sync::Arc<std::sync::RwLock<String>>,
    /// The highest write counter (`PREFIX:store:epoch`) this process has seen.
    epoch_seen: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// A counter a write of ours got back that was not above what was seen before it
    /// (0: none): the store went back in time.
    epoch_rollback: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Bumped when the store is held anew (`set_fence`): a write sent before that
    /// compared with the old store's count says nothing about the new one.
    epoch_gen: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The apalis settings RELIABILITY.md section 9 asks for: an explicit queue name, a 30 s
/// orphan window, no prefetching, and idempotency keys that are really kept.
pub fn queue_config(prefix: &str) -> apalis_redis::Config {
    apalis_redis::Config::default()
        .queue(format!("{prefix}:dispatch"))
        .heartbeat_interval(Duration::from_secs(10))
        .missed_heartbeats(3)
        .batch_size(1)
        .emit_events(false)
        .idempotency_ttl(Some(IDEMPOTENCY_TTL))
}

/// A connection that reconnects by itself (with backoff) after Redis restarts; each
/// command fails fast while Redis is away instead of hanging.
pub async fn connect(url: &str) -> Result<ConnectionManager, StoreError> {
    let unavailable = |message: String| StoreError::Unavailable {
        url: redact_url(url),
        message,
    };
    let client = redis::Client::open(url).map_err(|e| unavailable(e.to_string()))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(30)))
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_secs(2));
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        client.get_connection_manager_with_config(config),
    )
    .await
    .map_err(|_| unavailable("no answer within 10s".into()))?
    .map_err(|e| unavailable(e.to_string()))?;
    Ok(conn)
}

impl RedisStore {
    pub async fn open(cfg: &StorageConfig) -> Result<Self, StoreError> {
        let mut conn = connect(&cfg.url).await?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| StoreError::Unavailable {
                url: cfg.display_url(),
                message: e.to_string(),
            })?;
        debug_assert_eq!(pong, "PONG");
        let store = Self {
            conn,
            prefix: cfg.prefix.clone(),
            queue: queue_config(&cfg.prefix),
            ids: Mutex::new(ulid::Generator::new()),
            pepper: std::sync::Arc::from(&[][..]),
            fence: Default::default(),
            epoch_seen: Default::default(),
            epoch_rollback: Default::default(),
            epoch_gen: Default::default(),
        };
        store.migrate().await?;
        let pepper = Coordination::init_setting(
            &store,
            super::relationships::PEPPER_SETTING,
            &super::relationships::new_pepper(),
        )
        .await?;
        Ok(Self {
            pepper: std::sync::Arc::from(pepper.as_bytes()),
            ..store
        })
    }

    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    fn fence(&self) -> String {
        self.fence.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What a write compares its counter with: the store's generation and the highest
    /// count seen, read before the write is sent.
    fn epoch_before(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::SeqCst;
        (self.epoch_gen.load(SeqCst), self.epoch_seen.load(SeqCst))
    }

    /// A write moved the counter to `epoch`; `seen` was the highest known before it was
    /// sent. Any value seen before came from a write that completed before, so this one
    /// must be higher: if not, the store went back in time under us (remembered until
    /// `custody` reads it, even if later writes raise the counter past what was seen).
    fn saw_epoch(&self, (generation, seen): (u64, u64), epoch: u64) {
        use std::sync::atomic::Ordering::SeqCst;
        if generation != self.epoch_gen.load(SeqCst) {
            return;
        }
        if epoch <= seen {
            let _ = self
                .epoch_rollback
                .compare_exchange(0, epoch.max(1), SeqCst, SeqCst);
        }
        self.epoch_seen.fetch_max(epoch, SeqCst);
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn queue(&self) -> &apalis_redis::Config {
        &self.queue
    }

    /// Where queued jobs wait until due: members are `"<ulid> <payload>"`.
    pub fn delayed_key(&self) -> String {
        format!("{}:queue:delayed", self.prefix)
    }

    fn releasing_key(&self) -> String {
        format!("{}:queue:releasing", self.prefix)
    }

    pub(super) fn setting_key(&self, name: &str) -> String {
        format!("{}:setting:{name}", self.prefix)
    }
    pub(super) fn failed_key(&self) -> String {
        format!("{}:idx:failed", self.prefix)
    }
    pub(super) fn rel_key(&self, id: &ContactId) -> String {
        format!("{}:{{c:{id}}}:rel", self.prefix)
    }
    pub(super) fn idem_key(&self, key: &str) -> String {
        format!("{}:idem:{key}", self.prefix)
    }
    pub(super) async fn hashes_of(
        &self,
        id: &ContactId,
        s: &Suppression,
    ) -> Result<Vec<String>, StoreError> {
        Ok(match self.contacts(&[id.as_str()]).await?.pop() {
            Some(c) => suppressed_hashes(&self.pepper, &c, s),
            None => Vec::new(),
        })
    }
    fn contact_key(&self, id: &str) -> String {
        format!("{}:{{c:{id}}}:contact", self.prefix)
    }

    /// The key of a touch's hash (the contact is the id's second part).
    pub fn touch_key(&self, id: &TouchId) -> String {
        let contact = id.as_str().split(':').nth(1).unwrap_or_default();
        format!("{}:{{c:{contact}}}:touch:{id}", self.prefix)
    }

    fn next_id(&self) -> String {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.generate()
            .unwrap_or_else(|_| ulid::Ulid::new())
            .to_string()
    }

    /// Queues jobs for `ids` (chunks of `batch_size`) due at `run_at`.
    async fn push_jobs(
        &self,
        ids: &[TouchId],
        run_at: DateTime<Utc>,
        batch_size: usize,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(self.delayed_key());
        for chunk in ids.chunks(batch_size.max(1)) {
            let payload = String::from_utf8(DispatchJob::new(chunk.to_vec()).encode())
                .map_err(|e| corrupt("job payload", e))?;
            cmd.arg(not_before(run_at))
                .arg(format!("{} {payload}", self.next_id()));
        }
        cmd.query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(q)
    }

    /// The stored touches among `ids`, in the order given.
    async fn touches(&self, ids: Vec<String>) -> Result<Vec<Touch>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(1000) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.hgetall(self.touch_key(&TouchId::from_stored(id.clone())));
            }
            let found: Vec<Vec<String>> =
                pipe.query_async(&mut self.conn.clone()).await.map_err(q)?;
            for (id, list) in chunk.iter().zip(found) {
                if !list.is_empty() {
                    out.push(touch_from(id.clone(), list)?);
                }
            }
        }
        Ok(out)
    }

    /// The stored contacts among `ids` (MGET in chunks: one string per contact).
    async fn contacts(&self, ids: &[&str]) -> Result<Vec<Contact>, StoreError> {
        self.stored_contacts(ids)
            .await?
            .iter()
            .map(fields::contact)
            .collect()
    }

    /// The stored records of those of `ids` that exist, in the order given.
    async fn stored_contacts(&self, ids: &[&str]) -> Result<Vec<StoredContact>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(1000) {
            let keys: Vec<String> = chunk.iter().map(|i| self.contact_key(i)).collect();
            let raw: Vec<Option<String>> = redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(q)?;
            for json in raw.into_iter().flatten() {
                out.push(serde_json::from_str(&json).map_err(|e| corrupt("contact", e))?);
            }
        }
        Ok(out)
    }
}

impl RedisStore {
    /// Settings that make Redis lose or evict the ledger are worth a loud line when
    /// the daemon starts (not on every one-shot command).
    pub async fn warn_about_settings(&self) {
        warn_about_settings(&mut self.conn.clone()).await;
    }
}

async fn warn_about_settings(conn: &mut ConnectionManager) {
    let get = |name: &'static str| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query_async::<Vec<String>>(&mut conn)
                .await
                .ok()
                .and_then(|v| v.get(1).cloned())
        }
    };
    if let Some(policy) = get("maxmemory-policy").await {
        if policy != "noeviction" {
            tracing::warn!(
                maxmemory_policy = %policy,
                "Redis may evict keys under memory pressure; set maxmemory-policy noeviction so the ledger is never dropped"
            );
        }
    }
    if let Some(aof) = get("appendonly").await {
        if aof != "yes" {
            tracing::warn!(
                "Redis runs without the append-only file; a Redis restart can lose the ledger (set appendonly yes)"
            );
        }
    }
}
