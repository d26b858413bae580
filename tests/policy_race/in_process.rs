//! Eight dispatchers in one process, racing over 1,000 contacts' touches on SQLite and on
//! Redis: each contact gets exactly the two touches its cap allows, two of its three
//! birthdays, and nothing is sent twice.

use rapport::domain::Channel;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration as StdDuration, Instant},
};

use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, future::BoxFuture};
use rand::{
    Rng, SeedableRng,
    seq::{IndexedRandom, SliceRandom},
};
use rapport::{
    channels::{DeliveryError, EmailChannel, OutboundEmail},
    config::{Config, StorageBackend, StorageConfig},
    dispatch::{BatchReport, Dispatcher, Recorder},
    domain::{
        Contact, ContactId, EmailAddress, Event, EventId, FixedClock, NewTouch, Touch, TouchId,
        TouchStatus,
    },
    planner::check_in_period,
    render::Renderer,
    store::{ContactUpsert, RedisStore, SqliteStore, Store},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::support::{
    daemon::REPO,
    redis::{shared_url, unique_prefix},
};

/// Counts every send per touch: a touch sent twice shows here even where a file-per-touch
/// outbox would overwrite it.
#[derive(Default)]
struct Counting {
    sent: Mutex<HashMap<TouchId, usize>>,
}

impl EmailChannel for Counting {
    fn send_gated<'a>(
        &'a self,
        email: &'a OutboundEmail,
        gate: &'a dyn rapport::channels::Gate,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            gate.admit(std::time::Duration::ZERO).await?;
            // Let other dispatchers run between taking the place and recording the send.
            tokio::task::yield_now().await;
            *self
                .sent
                .lock()
                .unwrap()
                .entry(email.touch.clone())
                .or_default() += 1;
            Ok(())
        })
    }
    fn kind(&self) -> &'static str {
        "counting"
    }
}

const CONTACTS: usize = 1000;
const DISPATCHERS: usize = 8;
const BATCH: usize = 40;
const BIRTHDAYS: [&str; 3] = ["a", "b", "c"];

fn cid(i: usize) -> ContactId {
    ContactId::parse(&format!("r{i:04}")).unwrap()
}

fn race_config(dir: &Path) -> Config {
    let env = [
        (
            "RAPPORT__STORAGE__URL",
            format!("sqlite://{}/r.db", dir.display()),
        ),
        ("RAPPORT__TEMPLATES__DIR", format!("{REPO}/templates")),
        ("RAPPORT__DEFAULTS__SEND_WINDOW", "00:00-24:00".into()),
        (
            "RAPPORT__TIERS__FRIEND__CAPS",
            r#"[{count = 2, per = "7d"}]"#.into(),
        ),
        ("RAPPORT__TIERS__FRIEND__MIN_GAP", "0s".into()),
        ("RAPPORT__TIERS__FRIEND__CHECK_IN_EVERY", "1d".into()),
    ];
    Config::load_with(
        Path::new(&format!("{REPO}/config/rapport.toml")),
        None,
        env.into_iter().map(|(k, v)| (k.to_owned(), v)),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The five touches of contact `i`, all due at `now`, none expiring for 20 days.
fn touches_of(i: usize, now: DateTime<Utc>) -> Vec<NewTouch> {
    let c = cid(i);
    let check_in = check_in_period(std::time::Duration::from_secs(86_400), now);
    let mut kinds: Vec<(&str, String, u32)> = BIRTHDAYS
        .iter()
        .map(|o| ("birthday", (*o).to_owned(), 100))
        .collect();
    kinds.push(("thank_you", "o1".into(), 80));
    kinds.push(("check_in", check_in, 10));
    kinds
        .into_iter()
        .map(|(occasion, occurrence, priority)| NewTouch {
            id: TouchId::derive(occasion, &c, &occurrence),
            occasion: occasion.into(),
            contact_id: c.clone(),
            occurrence,
            channel: Channel::Email,
            priority,
            scheduled_at: now,
            due: now,
            expires_at: now + Duration::days(20),
            status: TouchStatus::Planned,
            reason: None,
        })
        .collect()
}

async fn seed<S: Store>(store: &S, now: DateTime<Utc>) -> Vec<TouchId> {
    let rows: Vec<ContactUpsert> = (0..CONTACTS)
        .map(|i| ContactUpsert {
            contact: Contact {
                id: cid(i),
                first_name: Some(format!("Racer{i}")),
                last_name: None,
                email: Some(EmailAddress::parse(&format!("r{i:04}@example.com")).unwrap()),
                phone: None,
                timezone: Some(chrono_tz::UTC),
                locale: None,
                birthday: None,
                customer_since: None,
                tier: "friend".into(),
                attributes: serde_json::Map::new(),
                email_consent: true,
                sms_consent: true,
            },
            email_consent: Some(true),
            sms_consent: None,
            keep_tier: false,
        })
        .collect();
    store.upsert_contacts(&rows).await.unwrap();
    // The thank-you's purchase, from before the contact was first seen: it does not
    // move the check-in clock, so the check-in really competes for a place.
    futures::stream::iter(0..CONTACTS)
        .for_each_concurrent(32, |i| async move {
            let event = Event {
                contact_id: cid(i),
                id: EventId::parse("o1").unwrap(),
                kind: "purchase".into(),
                at: Utc::now() - Duration::days(3),
                data: serde_json::Map::new(),
            };
            assert!(store.add_event(&event, now).await.unwrap());
        })
        .await;
    let touches: Vec<NewTouch> = (0..CONTACTS).flat_map(|i| touches_of(i, now)).collect();
    let ids: Vec<TouchId> = touches.iter().map(|t| t.id.clone()).collect();
    let new = store.plan_touches(&touches, 100, now).await.unwrap();
    assert_eq!(new.len(), touches.len());
    ids
}

fn dispatcher<S: Store>(
    store: &Arc<S>,
    cfg: &Arc<Config>,
    renderer: &Arc<Renderer>,
    mail: &Arc<Counting>,
    clock: &Arc<FixedClock>,
) -> Dispatcher<S> {
    let tasks = TaskTracker::new();
    Dispatcher {
        store: store.clone(),
        cfg: cfg.clone(),
        renderer: renderer.clone(),
        channels: std::sync::Arc::new(rapport::channels::Channels::email_only(mail.clone())),
        clock: clock.clone(),
        recorder: Recorder::spawn(store.clone(), clock.clone(), &tasks),
        tasks,
        stopping: CancellationToken::new(),
        abandon: CancellationToken::new(),
        custody: rapport::custody::Custody::holding("test"),
    }
}

/// Each id goes to two or three of the dispatchers, cut into batches. Half of them take
/// their share shuffled, so one contact's touches are decided in many places at once; the
/// other half take it in contact order, so they contend for the same contacts at the
/// same moments.
fn batches(ids: &[TouchId], seed: u64) -> Vec<Vec<Vec<TouchId>>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut shares: Vec<Vec<TouchId>> = vec![Vec::new(); DISPATCHERS];
    let all: Vec<usize> = (0..DISPATCHERS).collect();
    for id in ids {
        let copies = rng.random_range(2..=3);
        for d in all.choose_multiple(&mut rng, copies) {
            shares[*d].push(id.clone());
        }
    }
    shares
        .into_iter()
        .enumerate()
        .map(|(d, mut share)| {
            if d % 2 == 0 {
                share.shuffle(&mut rng);
            } else {
                // Ids are `occasion:contact:occurrence`: order by contact.
                share.sort_by(|a, b| {
                    a.as_str()
                        .split(':')
                        .nth(1)
                        .cmp(&b.as_str().split(':').nth(1))
                });
            }
            share.chunks(BATCH).map(<[TouchId]>::to_vec).collect()
        })
        .collect()
}

fn add(total: &mut BatchReport, r: &BatchReport) {
    total.claimed += r.claimed;
    total.sent += r.sent;
    total.deferred += r.deferred;
    total.skipped += r.skipped;
    total.expired += r.expired;
    total.failed += r.failed;
    total.suppressed += r.suppressed;
    total.retried += r.retried;
}

async fn eight_dispatchers_keep_caps_and_priority<S: Store>(store: S, dir: tempfile::TempDir) {
    let started = Instant::now();
    let cfg = Arc::new(race_config(dir.path()));
    let store = Arc::new(store);
    // A whole second, two days after the contacts were first seen: check-ins are due.
    let t0 = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap() + Duration::days(2);
    let clock = Arc::new(FixedClock::new(t0));
    let ids = seed(store.as_ref(), t0).await;
    let renderer = Arc::new(Renderer::load(&cfg.templates_dir).unwrap());
    let mail = Arc::new(Counting::default());
    let seeded = started.elapsed();

    let mut racers = Vec::new();
    for (n, share) in batches(&ids, 7).into_iter().enumerate() {
        let d = dispatcher(&store, &cfg, &renderer, &mail, &clock);
        racers.push(tokio::spawn(async move {
            let mut total = BatchReport::default();
            for batch in share {
                let r = d.dispatch(&batch, &format!("racer-{n}")).await.unwrap();
                add(&mut total, &r);
            }
            total
        }));
    }
    let mut total = BatchReport::default();
    let done = tokio::time::timeout(
        StdDuration::from_secs(60),
        futures::future::join_all(racers),
    )
    .await
    .expect("the dispatchers stalled: no progress for 60 s");
    for r in done {
        add(&mut total, &r.unwrap());
    }
    let raced = started.elapsed() - seeded;

    // A batch that kept losing reservation races hands its touches back a second later,
    // as a new job: run those, as the queue would.
    let d = dispatcher(&store, &cfg, &renderer, &mail, &clock);
    let mut busy = 0;
    for _ in 0..20 {
        let due: Vec<TouchId> = store
            .get_touches(&ids)
            .await
            .unwrap()
            .into_iter()
            .filter(|t| {
                t.status == TouchStatus::Planned && t.next_attempt_at <= t0 + Duration::days(1)
            })
            .map(|t| t.id)
            .collect();
        if due.is_empty() {
            break;
        }
        busy += due.len();
        clock.advance(Duration::seconds(1));
        add(&mut total, &d.dispatch(&due, "drain").await.unwrap());
    }
    eprintln!(
        "{CONTACTS} contacts x 5 touches, {DISPATCHERS} dispatchers: seeded in {seeded:?}, raced in \
         {raced:?}; {total:?}; {busy} handed back as busy"
    );

    check_ledger(store.as_ref(), &ids, &mail, t0).await;
    assert_eq!(total.sent, 2 * CONTACTS, "{total:?}");
    assert_eq!(
        (total.failed, total.suppressed, total.retried),
        (0, 0, 0),
        "{total:?}"
    );
}

/// Every contact: exactly two sent, and they are two of its birthdays; the third birthday
/// and the thank-you held until a place frees up; the check-in skipped. The channel saw
/// each sent touch once and nothing else.
async fn check_ledger<S: Store>(store: &S, ids: &[TouchId], mail: &Counting, t0: DateTime<Utc>) {
    let touches = store.get_touches(ids).await.unwrap();
    assert_eq!(touches.len(), ids.len());
    let counts = store.status_counts().await.unwrap();
    assert_eq!(
        counts.get(&TouchStatus::Sending).copied().unwrap_or(0),
        0,
        "{counts:?}"
    );
    let mut by_contact: BTreeMap<ContactId, Vec<&Touch>> = BTreeMap::new();
    for t in &touches {
        by_contact.entry(t.contact_id.clone()).or_default().push(t);
    }
    let mut wrong_priority = Vec::new();
    for (c, ts) in &by_contact {
        let sent: Vec<&&Touch> = ts
            .iter()
            .filter(|t| t.status == TouchStatus::Sent)
            .collect();
        assert_eq!(sent.len(), 2, "{c}: caps must hold exactly: {ts:#?}");
        for t in &sent {
            let slot = t
                .slot_at
                .unwrap_or_else(|| panic!("sent without a place: {t:?}"));
            assert!(slot >= t0 && slot < t0 + Duration::minutes(1), "{t:?}");
        }
        if sent.iter().any(|t| t.occasion != "birthday") {
            wrong_priority.push(format!(
                "{c}: sent {:?}",
                sent.iter().map(|t| t.id.as_str()).collect::<Vec<_>>()
            ));
        }
        let first_place = sent.iter().filter_map(|t| t.slot_at).min().unwrap();
        for t in ts.iter().filter(|t| t.status != TouchStatus::Sent) {
            assert_eq!(t.slot_at, None, "only a sent touch keeps a place: {t:?}");
            let reason = t.reason.as_deref().unwrap_or_default();
            match t.occasion.as_str() {
                "check_in" => {
                    assert_eq!(t.status, TouchStatus::Skipped, "{t:?}");
                    assert!(reason.starts_with("skipped: "), "{t:?}");
                }
                _ => {
                    // Held (on_throttle = defer) until the first place frees up.
                    assert_eq!(t.status, TouchStatus::Planned, "{t:?}");
                    assert_eq!(t.attempts, 0, "{t:?}");
                    assert!(
                        t.next_attempt_at >= first_place + Duration::days(7),
                        "{t:?}"
                    );
                    assert!(reason.starts_with("held until "), "{t:?}");
                }
            }
        }
    }
    assert_eq!(by_contact.len(), CONTACTS);
    let mailed = mail.sent.lock().unwrap().clone();
    let twice: Vec<_> = mailed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    let ledger_sent: HashSet<&TouchId> = touches
        .iter()
        .filter(|t| t.status == TouchStatus::Sent)
        .map(|t| &t.id)
        .collect();
    let mailed_ids: HashSet<&TouchId> = mailed.keys().collect();
    assert_eq!(
        mailed_ids, ledger_sent,
        "the channel and the ledger disagree"
    );
    assert!(
        wrong_priority.is_empty(),
        "{} contacts got a lower-priority touch in a birthday's place, e.g. {:?}",
        wrong_priority.len(),
        &wrong_priority[..wrong_priority.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sqlite_eight_dispatchers_keep_caps_and_priority() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = race_config(dir.path());
    let store = SqliteStore::open(&cfg.storage.url).await.unwrap();
    eight_dispatchers_keep_caps_and_priority(store, dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn redis_eight_dispatchers_keep_caps_and_priority() {
    let dir = tempfile::tempdir().unwrap();
    let storage = StorageConfig {
        backend: StorageBackend::Redis,
        url: shared_url(),
        prefix: unique_prefix("race"),
    };
    let store = RedisStore::open(&storage).await.unwrap();
    eight_dispatchers_keep_caps_and_priority(store, dir).await;
}
