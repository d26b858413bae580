//! The Redis instantiation: one server for the whole binary (or RAPPORT_TEST_REDIS_URL),
//! a fresh key prefix per test, and the queue read from rapport's delayed set and
//! apalis' own keys.

use rapport::store::{Caps, Contacts, Coordination, Ledger, Relationships};
use std::sync::Arc;

use apalis_core::task::builder::TaskBuilder;
use chrono::DateTime;
use rapport::{
    config::{StorageBackend, StorageConfig},
    domain::TouchId,
    queue::DispatchJob,
    store::RedisStore,
};
use redis::AsyncCommands;

use crate::{Backend, QueuedJob, redis_server};

pub(crate) async fn open() -> (Arc<RedisStore>, ()) {
    let cfg = StorageConfig {
        backend: StorageBackend::Redis,
        url: redis_server::shared_url(),
        prefix: redis_server::unique_prefix("c"),
    };
    let store = RedisStore::open(&cfg)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", cfg.url));
    (Arc::new(store), ())
}

fn job(payload: &[u8]) -> DispatchJob {
    DispatchJob::decode_bytes(payload).expect("job payload is a DispatchJob")
}

impl Backend for RedisStore {
    async fn queued(&self) -> Vec<QueuedJob> {
        let mut conn = self.connection();
        // Waiting until due, in the order queued (members start with a monotonic id).
        let delayed: Vec<(String, f64)> = conn
            .zrange_withscores(self.delayed_key(), 0, -1)
            .await
            .expect("read the delayed set");
        let mut delayed: Vec<_> = delayed
            .into_iter()
            .map(|(member, at)| {
                let (order, payload) = member.split_once(' ').expect("'<ulid> <payload>'");
                (order.to_owned(), payload.as_bytes().to_vec(), at as i64)
            })
            .collect();
        delayed.sort();
        let mut out: Vec<QueuedJob> = delayed
            .into_iter()
            .map(|(_, payload, at)| QueuedJob {
                touches: job(&payload).touches().to_vec(),
                run_at: DateTime::from_timestamp(at, 0).expect("run_at"),
            })
            .collect();
        // Already handed to apalis.
        let q = self.queue();
        let data: std::collections::HashMap<String, Vec<u8>> =
            conn.hgetall(q.job_data_hash()).await.expect("apalis data");
        let done: Vec<String> = conn.smembers(q.done_jobs_set()).await.expect("done");
        let mut ids: Vec<_> = data.keys().filter(|k| !done.contains(k)).cloned().collect();
        ids.sort();
        for id in ids {
            out.push(QueuedJob {
                touches: job(&data[&id]).touches().to_vec(),
                run_at: DateTime::from_timestamp(0, 0).expect("epoch"),
            });
        }
        out
    }

    async fn lease_owner(&self, id: &TouchId) -> Option<String> {
        let mut conn = self.connection();
        let key = self.touch_key(id);
        let exists: bool = conn.exists(&key).await.expect("EXISTS");
        assert!(exists, "touch {id} does not exist");
        // `lease_owner` only means something while the touch is `sending`.
        let (status, owner): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(&key)
            .arg("status")
            .arg("lease_owner")
            .query_async(&mut conn)
            .await
            .expect("HMGET");
        owner.filter(|_| status.as_deref() == Some("sending"))
    }

    async fn push_raw_job(&self, bytes: Vec<u8>) {
        // Straight into apalis, as `pump` hands jobs over (one attempt, due now).
        let task = TaskBuilder::new(bytes).max_attempts(1).build();
        apalis_redis::queries::push_tasks(&mut self.connection(), self.queue(), &[task])
            .await
            .expect("push a raw job");
    }

    async fn dead_jobs(&self) -> usize {
        self.connection()
            .scard(self.queue().dead_jobs_set())
            .await
            .expect("SCARD the dead set")
    }

    async fn dump(&self) -> String {
        let mut conn = self.connection();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix()))
            .query_async(&mut conn)
            .await
            .expect("KEYS");
        let mut out = String::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .expect("TYPE");
            let values: Vec<Vec<u8>> = match kind.as_str() {
                "string" => vec![conn.get(&key).await.expect("GET")],
                "hash" => conn
                    .hgetall::<_, Vec<Vec<u8>>>(&key)
                    .await
                    .expect("HGETALL"),
                "set" => conn.smembers(&key).await.expect("SMEMBERS"),
                "zset" => conn.zrange(&key, 0, -1).await.expect("ZRANGE"),
                "list" => conn.lrange(&key, 0, -1).await.expect("LRANGE"),
                _ => Vec::new(),
            };
            out.push_str(&key);
            for v in values {
                out.push(' ');
                out.push_str(&String::from_utf8_lossy(&v));
            }
            out.push('\n');
        }
        out
    }
}

/// Contacts stored by a rapport from before check-ins have no last interaction: opening
/// the store gives them one (the time of the upgrade), once, so the policy scripts and
/// the check-in planner see them; and from before the phone index, an entry in it.
#[tokio::test]
async fn contacts_from_before_check_ins_get_a_last_interaction_on_open() {
    use rapport::store::ContactUpsert;
    let cfg = StorageConfig {
        backend: StorageBackend::Redis,
        url: redis_server::shared_url(),
        prefix: redis_server::unique_prefix("m"),
    };
    let store = RedisStore::open(&cfg).await.unwrap();
    let mut contact = rapport::render::sample_contact("friend");
    contact.id = rapport::domain::ContactId::parse("old").unwrap();
    contact.phone = Some(rapport::domain::PhoneNumber::parse("+14155550177").unwrap());
    store
        .upsert_contacts(&[ContactUpsert {
            contact: contact.clone(),
            email_consent: None,
            sms_consent: None,
            keep_tier: false,
        }])
        .await
        .unwrap();
    // As an earlier version left it: no idx:seen entry, no phone index, no schema
    // marker.
    let mut conn = store.connection();
    let _: () = conn
        .zrem(format!("{}:idx:seen", cfg.prefix), "old")
        .await
        .unwrap();
    let phone = contact.phone.clone().unwrap();
    let phone_key = format!("{}:idx:phone:{}", cfg.prefix, phone.as_str());
    let _: () = conn.del(&phone_key).await.unwrap();
    assert!(
        store
            .contacts_by_phone(phone.as_str())
            .await
            .unwrap()
            .is_empty()
    );
    let _: () = conn.del(format!("{}:schema", cfg.prefix)).await.unwrap();
    let far = chrono::Utc::now() + chrono::Duration::days(1);
    assert!(store.idle_contacts(far, None, 10).await.unwrap().is_empty());
    let before = chrono::Utc::now().timestamp();
    let reopened = RedisStore::open(&cfg).await.unwrap();
    let idle = reopened.idle_contacts(far, None, 10).await.unwrap();
    assert_eq!(idle.len(), 1);
    assert_eq!(idle[0].0.id, contact.id);
    assert!(idle[0].1.timestamp() >= before);
    let records = reopened
        .policy_records(
            std::slice::from_ref(&contact.id),
            far - chrono::Duration::days(30),
            &[],
        )
        .await
        .unwrap();
    assert!(records.contains_key(&contact.id));
    assert_eq!(
        reopened.contacts_by_phone(phone.as_str()).await.unwrap(),
        std::slice::from_ref(&contact.id)
    );
    let marker: u32 = conn.get(format!("{}:schema", cfg.prefix)).await.unwrap();
    assert_eq!(marker, 4);
}

/// Touches that failed before the dead-letter index existed (schema 2) join it when a
/// newer version opens the store, so `rapport dead-letters` lists them; sent ones join
/// the index of touches awaiting a response (schema 4).
#[tokio::test]
async fn failed_touches_from_before_dead_letters_are_listed_on_open() {
    use rapport::store::Outcome;
    let cfg = StorageConfig {
        backend: StorageBackend::Redis,
        url: redis_server::shared_url(),
        prefix: redis_server::unique_prefix("m3"),
    };
    let store = RedisStore::open(&cfg).await.unwrap();
    let now = chrono::Utc::now();
    let touches: Vec<_> = ["a", "b"]
        .iter()
        .map(|c| crate::fixtures::planned(c, now))
        .collect();
    let ids: Vec<_> = touches.iter().map(|t| t.id.clone()).collect();
    store.plan_touches(&touches, 10, now).await.unwrap();
    store
        .claim(&ids, "w", now, now + chrono::Duration::minutes(5))
        .await
        .unwrap();
    let failed = Outcome::Failed {
        id: ids[0].clone(),
        reason: "failed permanently: email: smtp 550 (permanent)".into(),
    };
    store
        .record(&[failed, Outcome::Sent { id: ids[1].clone() }], "w", now)
        .await
        .unwrap();
    // As schema 2 left it: no dead-letter index, and (before schema 4) no index of
    // sent touches awaiting a response.
    let mut conn = store.connection();
    let _: () = conn
        .del(format!("{}:idx:failed", cfg.prefix))
        .await
        .unwrap();
    let _: () = conn
        .del(format!("{}:idx:awaiting", cfg.prefix))
        .await
        .unwrap();
    assert!(store.awaiting(now, 10).await.unwrap().is_empty());
    let _: () = conn.set(format!("{}:schema", cfg.prefix), 2).await.unwrap();
    assert!(store.dead_letters(None, 10).await.unwrap().is_empty());
    let reopened = RedisStore::open(&cfg).await.unwrap();
    let listed: Vec<_> = reopened
        .dead_letters(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, vec![ids[0].clone()]);
    let awaiting: Vec<_> = reopened
        .awaiting(now, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(
        awaiting,
        vec![ids[1].clone()],
        "the sent one waits for its response"
    );
    let marker: u32 = conn.get(format!("{}:schema", cfg.prefix)).await.unwrap();
    assert_eq!(marker, 4);
}

/// The fence: once a process holds the store under an identity, the planning and
/// claiming scripts refuse a store whose identity is another (it came back empty, or
/// another server answers), in the same step as their writes: nothing is planned into or
/// claimed from a lost ledger, even before the process notices.
#[tokio::test]
async fn planning_and_claiming_are_fenced_by_the_store_identity() {
    use rapport::{custody, store::StoreError};
    let cfg = StorageConfig {
        backend: StorageBackend::Redis,
        url: redis_server::shared_url(),
        prefix: redis_server::unique_prefix("fence"),
    };
    let store = RedisStore::open(&cfg).await.unwrap();
    let held = custody::establish(&store).await.unwrap();
    let now = chrono::Utc::now();
    let first = crate::fixtures::planned("a", now);
    assert_eq!(
        store
            .plan_touches(std::slice::from_ref(&first), 10, now)
            .await
            .unwrap()
            .len(),
        1
    );
    // The store is flushed and taken up by someone else (or comes back empty).
    store.set_setting(custody::ID, "another").await.unwrap();
    let second = crate::fixtures::planned("b", now);
    let planned = store
        .plan_touches(std::slice::from_ref(&second), 10, now)
        .await;
    assert!(matches!(planned, Err(StoreError::Lost(_))), "{planned:?}");
    let claimed = store
        .claim(
            std::slice::from_ref(&first.id),
            "w",
            now,
            now + chrono::Duration::minutes(1),
        )
        .await;
    assert!(matches!(claimed, Err(StoreError::Lost(_))), "{claimed:?}");
    assert!(
        store
            .get_touches(std::slice::from_ref(&second.id))
            .await
            .unwrap()
            .is_empty()
    );
    // Adopted: the process takes the new identity and the fence follows it.
    custody::check(&store, &held, now).await.unwrap();
    assert!(held.lost().is_some());
    custody::adopt(&store, now, true).await.unwrap();
    custody::check(&store, &held, now).await.unwrap();
    assert_eq!(held.lost(), None);
    assert_eq!(
        store.plan_touches(&[second], 10, now).await.unwrap().len(),
        1
    );
}

/// A store that goes back in time under a running process (a failover to a replica that
/// had not caught up): same identity, but a lower write counter than the process saw
/// when it recorded outcomes. Held like a store that came back empty.
#[tokio::test]
async fn a_store_that_went_back_in_time_is_held() {
    use rapport::{custody, store::Outcome};
    use redis::AsyncCommands;
    let cfg = StorageConfig {
        backend: StorageBackend::Redis,
        url: redis_server::shared_url(),
        prefix: redis_server::unique_prefix("epoch"),
    };
    let store = RedisStore::open(&cfg).await.unwrap();
    let held = custody::establish(&store).await.unwrap();
    let now = chrono::Utc::now();
    let t = crate::fixtures::planned("a", now);
    store
        .plan_touches(std::slice::from_ref(&t), 10, now)
        .await
        .unwrap();
    let lease = now + chrono::Duration::minutes(1);
    store
        .claim(std::slice::from_ref(&t.id), "w", now, lease)
        .await
        .unwrap();
    let sent = [Outcome::Sent { id: t.id.clone() }];
    assert_eq!(store.record(&sent, "w", now).await.unwrap(), 1);
    custody::check(&store, &held, now).await.unwrap();
    assert_eq!(held.lost(), None, "caught up: nothing wrong");
    // The replica that takes over had not seen the last recording.
    let mut conn = store.connection();
    let key = format!("{}:store:epoch", cfg.prefix);
    let at: u64 = conn.get(&key).await.unwrap();
    let _: () = conn.set(&key, at - 1).await.unwrap();
    custody::check(&store, &held, now).await.unwrap();
    let why = held.lost().expect("held");
    assert!(why.contains("went back in time"), "{why}");

    // Adopted, then back in time again: held again, and it stays held (an adoption
    // leaves the loss marker empty, not absent; marking must write over it).
    custody::adopt(&store, now, true).await.unwrap();
    custody::check(&store, &held, now).await.unwrap();
    assert_eq!(held.lost(), None);
    let t2 = crate::fixtures::planned("b", now);
    store
        .plan_touches(std::slice::from_ref(&t2), 10, now)
        .await
        .unwrap();
    store
        .claim(std::slice::from_ref(&t2.id), "w2", now, lease)
        .await
        .unwrap();
    let at: u64 = conn.get(&key).await.unwrap();
    let _: () = conn.set(&key, at - 1).await.unwrap();
    // A recording that gets a count no higher than one seen before it went back in
    // time too, even if the count has risen past it since.
    let sent = [Outcome::Sent { id: t2.id.clone() }];
    store.record(&sent, "w2", now).await.unwrap();
    let _: () = conn.set(&key, at + 100).await.unwrap();
    for _ in 0..2 {
        custody::check(&store, &held, now).await.unwrap();
        assert!(held.lost().is_some(), "resumed without an adoption");
    }
    assert!(
        custody::establish(&store).await.unwrap().lost().is_some(),
        "a restart holds too"
    );
}

/// A process starting on an empty shared store waits for a process that held the old
/// one to mark it lost before it plans anything into it.
#[tokio::test]
async fn a_process_starting_on_an_emptied_store_waits_for_the_loss_to_be_marked() {
    use rapport::custody;
    let cfg = StorageConfig {
        backend: StorageBackend::Redis,
        url: redis_server::shared_url(),
        prefix: redis_server::unique_prefix("fresh"),
    };
    let starting = RedisStore::open(&cfg).await.unwrap();
    let running = RedisStore::open(&cfg).await.unwrap();
    let marker = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        running
            .set_setting(custody::LOST, "its identity X is gone: it came back empty")
            .await
            .unwrap();
    };
    let (custody, ()) = tokio::join!(custody::establish(&starting), marker);
    assert!(custody.unwrap().lost().is_some());
}
