//! Three `rapport run` replicas on one Redis, sending to a real SMTP server under a cap
//! of one touch a week: each contact gets exactly one note, and it is the one of highest
//! priority (its birthday if due, else a thank-you).

use rapport::domain::Channel;
use std::{
    collections::HashSet,
    path::Path,
    time::{Duration as StdDuration, Instant},
};

use chrono::{Duration, Utc};
use futures::StreamExt;
use rapport::{
    config::{Config, StorageBackend, StorageConfig},
    domain::{ContactId, Event, EventId, NewTouch, Touch, TouchId, TouchStatus},
    ingest,
    planner::check_in_period,
    store::{Ledger, RedisStore},
};

use crate::support::{
    daemon::{Guard, REPO, Workspace},
    people::{by_recipient, people_with},
    redis::{RedisServer, unique_prefix},
    smtp::{SmtpOptions, SmtpServer},
};

const REPLICA_CONTACTS: usize = 1000;

/// Every tier: one touch a week, no gap; a thank-you is due at once and may wait a week.
const REPLICA_POLICY: &str = r#"
[tiers.family]
caps = [{ count = 1, per = "7d" }]
min_gap = "0s"
[tiers.friend]
caps = [{ count = 1, per = "7d" }]
min_gap = "0s"
[tiers.acquaintance]
caps = [{ count = 1, per = "7d" }]
min_gap = "0s"
[occasions.thank_you]
trigger = { event = "purchase", delay = "0s" }
expires = "10d"
[dispatch]
workers = 2
concurrency = 8
batch_size = 20
"#;

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_keep_one_touch_a_week_per_contact() {
    let started = Instant::now();
    let redis = RedisServer::start(&[]);
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let storage = StorageConfig {
        backend: StorageBackend::Redis,
        url: redis.url(),
        prefix: unique_prefix("pr"),
    };
    let ws = Workspace::new(
        &smtp.url(),
        &format!(
            "[storage]\nbackend = \"redis\"\nurl = \"{}\"\nprefix = \"{}\"\n{REPLICA_POLICY}",
            storage.url, storage.prefix
        ),
    );
    // About all of them have their birthday today in their own zone (the replicas plan
    // those); every one has two purchases (thank-yous due now) and a check-in planned.
    let (csv, people) = people_with(REPLICA_CONTACTS, |_| true);
    ws.import_csv(&csv);
    let cfg = Config::load_with(
        Path::new(&format!("{REPO}/config/rapport.toml")),
        Some(&ws.path("test.toml")),
        Vec::<(String, String)>::new(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let store = RedisStore::open(&storage).await.unwrap();
    let now = Utc::now();
    futures::stream::iter(people.iter().flat_map(|p| [(p, "o1"), (p, "o2")]))
        .for_each_concurrent(32, |(p, order)| {
            let (store, cfg) = (&store, &cfg);
            async move {
                let event = Event {
                    contact_id: ContactId::parse(&p.id).unwrap(),
                    id: EventId::parse(order).unwrap(),
                    kind: "purchase".into(),
                    at: now,
                    data: serde_json::Map::new(),
                };
                let r = ingest::record_event(store, cfg, &event, now).await.unwrap();
                assert_eq!(r.planned.len(), 1, "{r:?}");
            }
        })
        .await;
    let check_ins: Vec<NewTouch> = people
        .iter()
        .map(|p| {
            let c = ContactId::parse(&p.id).unwrap();
            let occurrence = check_in_period(std::time::Duration::from_secs(30 * 86_400), now);
            NewTouch {
                id: TouchId::derive("check_in", &c, &occurrence),
                occasion: "check_in".into(),
                contact_id: c,
                occurrence,
                channel: Channel::Email,
                priority: 10,
                scheduled_at: now,
                due: now,
                expires_at: now + Duration::hours(12),
                status: TouchStatus::Planned,
                reason: None,
            }
        })
        .collect();
    store.plan_touches(&check_ins, 20, now).await.unwrap();
    let seeded = started.elapsed();

    let mut replicas: Vec<Guard> = (0..3).map(|n| Guard(Some(ws.start(n)))).collect();
    let logs = || (0..3).map(|n| ws.log(n)).collect::<Vec<_>>().join("\n");
    assert!(
        smtp.wait_for_count(REPLICA_CONTACTS, StdDuration::from_secs(40))
            .await,
        "only {} of {REPLICA_CONTACTS} delivered; logs:\n{}",
        smtp.count(),
        logs()
    );
    let delivered = started.elapsed();
    // Leases (3 s) lapse and reconcilers run: anything sent twice would show by now.
    tokio::time::sleep(StdDuration::from_secs(5)).await;
    for r in &mut replicas {
        r.stop_gracefully();
    }

    let msgs = smtp.messages();
    assert_eq!(
        msgs.len(),
        REPLICA_CONTACTS,
        "one note per contact, the cap"
    );
    let mut ids = HashSet::new();
    for m in &msgs {
        let id = m.message_id.clone().expect("a Message-ID");
        assert!(ids.insert(id.clone()), "Message-ID {id} twice");
    }
    let got = by_recipient(&msgs);
    let counts = store.status_counts().await.unwrap();
    assert_eq!(
        counts.get(&TouchStatus::Sent).copied(),
        Some(REPLICA_CONTACTS as u64),
        "{counts:?}"
    );
    assert_eq!(counts.get(&TouchStatus::Sending), None, "{counts:?}");
    let mut wrong_priority = Vec::new();
    for p in &people {
        let mine = got.get(&p.email).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(mine.len(), 1, "{} got {} notes", p.id, mine.len());
        let ledger = store
            .touches_for_contact(&ContactId::parse(&p.id).unwrap())
            .await
            .unwrap();
        let sent: Vec<&Touch> = ledger
            .iter()
            .filter(|t| t.status == TouchStatus::Sent)
            .collect();
        assert_eq!(sent.len(), 1, "{}: {ledger:#?}", p.id);
        // The ledger's sent touch is the one the server got, by its Message-ID.
        let token = sent[0].id.token();
        assert!(
            mine[0]
                .message_id
                .as_deref()
                .is_some_and(|m| m.starts_with(&format!("<{token}@"))),
            "{}: ledger sent {token}, server got {:?}",
            p.id,
            mine[0].message_id
        );
        for t in ledger.iter().filter(|t| t.status != TouchStatus::Sent) {
            assert_eq!(t.slot_at, None, "{t:?}");
            let waiting =
                t.status == TouchStatus::Planned && t.next_attempt_at > now + Duration::days(6);
            assert!(
                waiting || matches!(t.status, TouchStatus::Skipped | TouchStatus::Expired),
                "nothing else could have gone: {t:?}"
            );
        }
        let expected = if p.due { "birthday" } else { "thank_you" };
        if sent[0].occasion != expected {
            wrong_priority.push(format!("{}: {} instead of a {expected}", p.id, sent[0].id));
        }
    }
    eprintln!(
        "3 replicas, {REPLICA_CONTACTS} contacts: seeded in {seeded:?}, delivered by {delivered:?}; {counts:?}"
    );
    assert!(
        wrong_priority.is_empty(),
        "{} contacts got a lower-priority note in the birthday's place, e.g. {:?}",
        wrong_priority.len(),
        &wrong_priority[..wrong_priority.len().min(5)]
    );
    drop(redis);
}
