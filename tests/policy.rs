//! The relationship policy through the dispatcher, on both backends: what a contact
//! actually receives when touches compete for places (the minimum gap and priority, caps,
//! the send window, the tier's channels) and when events move the check-in clock.
//!
//! Each scenario is one `async fn(Backend)`, instantiated for SQLite and Redis by
//! `both!`. Time is a [`FixedClock`] moved by hand; "the daemon" is a step that dispatches
//! every touch due at that instant, as the queue would. Contacts are first seen at the
//! wall clock (`upsert_contacts` stamps it), so simulated time starts 40 days after the
//! real now, at a UTC midnight: the check-in clock has run by then.
//!
//! Scenarios: a check-in the day before a birthday (skipped, or held past the birthday
//! and its gap); a check-in yielding to two touches ahead together, and to one another
//! worker has claimed; one thank-you per purchase, after its delay; a purchase resetting
//! the check-in clock, and overtaking a planned check-in; a cap holding a touch to the
//! exact instant a place frees up (fitted into its window); the send window in the
//! contact's zone; a channel the tier does not allow; jobs mixing sends that read the
//! store with others.

#[path = "support/backends.rs"]
mod backends;
#[path = "support/ledger.rs"]
#[allow(dead_code, unreachable_pub)]
mod ledger;
#[path = "support/redis.rs"]
#[allow(dead_code, unreachable_pub)]
mod redis_server;

use rapport::domain::Channel;
use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use backends::TestStore;
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use futures::future::BoxFuture;
use ledger::{Backend, day0, open};
use rapport::{
    channels::{DeliveryError, EmailChannel, OutboundEmail},
    config::Config,
    dispatch::{BatchReport, Dispatcher, Recorder},
    domain::{
        Birthday, Clock, Contact, ContactId, EmailAddress, Event, EventId, FixedClock, MonthDay,
        NewTouch, Touch, TouchId, TouchStatus,
    },
    ingest::{self, EventReport},
    planner::runner,
    render::Renderer,
    store::ContactUpsert,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// An email transport that keeps what it was given, with the simulated time of each send.
struct Mailbag {
    clock: Arc<FixedClock>,
    sent: Mutex<Vec<(TouchId, DateTime<Utc>)>>,
}

impl EmailChannel for Mailbag {
    fn send_gated<'a>(
        &'a self,
        email: &'a OutboundEmail,
        gate: &'a dyn rapport::channels::Gate,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            gate.admit(std::time::Duration::ZERO).await?;
            let at = self.clock.now();
            self.sent.lock().unwrap().push((email.touch.clone(), at));
            Ok(())
        })
    }
    fn kind(&self) -> &'static str {
        "mailbag"
    }
}

struct Rig<S> {
    _dir: tempfile::TempDir,
    store: Arc<S>,
    cfg: Arc<Config>,
    clock: Arc<FixedClock>,
    mail: Arc<Mailbag>,
    dispatcher: Dispatcher<S>,
    contacts: Mutex<Vec<ContactId>>,
}

/// Day `n` of the scenario at `hh:mm` UTC.
fn at(n: i64, hhmm: &str) -> DateTime<Utc> {
    let (h, m) = hhmm.split_once(':').unwrap();
    day0()
        + Duration::days(n)
        + Duration::hours(h.parse().unwrap())
        + Duration::minutes(m.parse().unwrap())
}

fn date(n: i64) -> NaiveDate {
    (day0() + Duration::days(n)).date_naive()
}

/// How the policy prints an instant in a reason.
fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

fn short(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%MZ").to_string()
}

fn cid(s: &str) -> ContactId {
    ContactId::parse(s).unwrap()
}

/// The shipped config, with `env` overrides (`RAPPORT__...` pairs, TOML values).
fn config(dir: &Path, env: &[(&str, &str)]) -> Config {
    let mut vars = vec![
        (
            "RAPPORT__STORAGE__URL".to_owned(),
            format!("sqlite://{}/r.db", dir.display()),
        ),
        (
            "RAPPORT__TEMPLATES__DIR".to_owned(),
            format!("{REPO}/templates"),
        ),
    ];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::load_with(
        Path::new(&format!("{REPO}/config/rapport.toml")),
        None,
        vars,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn rig<S: TestStore>(backend: Backend, env: &[(&str, &str)]) -> Rig<S> {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Arc::new(config(dir.path(), env));
    let store: Arc<S> = Arc::new(open(backend, &cfg, "p").await);
    let clock = Arc::new(FixedClock::new(day0()));
    let mail = Arc::new(Mailbag {
        clock: clock.clone(),
        sent: Mutex::new(Vec::new()),
    });
    let tasks = TaskTracker::new();
    let dispatcher = Dispatcher {
        store: store.clone(),
        cfg: cfg.clone(),
        renderer: Arc::new(Renderer::load(&cfg.templates_dir).unwrap()),
        channels: std::sync::Arc::new(rapport::channels::Channels::email_only(mail.clone())),
        clock: clock.clone(),
        recorder: Recorder::spawn(store.clone(), clock.clone(), &tasks),
        tasks,
        stopping: CancellationToken::new(),
        abandon: CancellationToken::new(),
        custody: rapport::custody::Custody::holding("test"),
    };
    Rig {
        _dir: dir,
        store,
        cfg,
        clock,
        mail,
        dispatcher,
        contacts: Mutex::new(Vec::new()),
    }
}

impl<S: TestStore> Rig<S> {
    /// A contact of `tier` in `zone`, with a birthday on `birthday` (any year) if given.
    async fn contact(&self, id: &str, tier: &str, zone: &str, birthday: Option<NaiveDate>) {
        self.contact_since(id, tier, zone, birthday, None).await;
    }

    /// [`Rig::contact`], a customer since `since` (its anniversaries are occasions).
    async fn contact_since(
        &self,
        id: &str,
        tier: &str,
        zone: &str,
        birthday: Option<NaiveDate>,
        since: Option<NaiveDate>,
    ) {
        let contact = Contact {
            id: cid(id),
            first_name: Some(format!("Name-{id}")),
            last_name: None,
            email: Some(EmailAddress::parse(&format!("{id}@example.com")).unwrap()),
            phone: None,
            timezone: Some(zone.parse::<Tz>().unwrap()),
            locale: None,
            birthday: birthday.map(|d| Birthday {
                day: MonthDay::of(d),
                year: None,
            }),
            customer_since: since,
            tier: tier.to_owned(),
            attributes: serde_json::Map::new(),
            email_consent: true,
            sms_consent: true,
        };
        self.store
            .upsert_contacts(&[ContactUpsert {
                contact,
                email_consent: Some(true),
                sms_consent: None,
                keep_tier: false,
            }])
            .await
            .unwrap();
        self.contacts.lock().unwrap().push(cid(id));
    }

    /// Runs `occasion`'s planner at `now`; returns how many touches it recorded.
    async fn plan(&self, occasion: &str, now: DateTime<Utc>) -> usize {
        let o = self.cfg.rules.occasion(occasion).unwrap();
        runner::run_once(self.store.as_ref(), &self.cfg, o, now)
            .await
            .unwrap()
            .new
    }

    /// A purchase `order` by `contact` at `happened`, recorded at `now`.
    async fn purchase(
        &self,
        contact: &str,
        order: &str,
        happened: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> EventReport {
        let event = Event {
            contact_id: cid(contact),
            id: EventId::parse(order).unwrap(),
            kind: "purchase".into(),
            at: happened,
            data: serde_json::Map::new(),
        };
        ingest::record_event(self.store.as_ref(), &self.cfg, &event, now)
            .await
            .unwrap()
    }

    async fn all_touches(&self) -> Vec<Touch> {
        let ids = self.contacts.lock().unwrap().clone();
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.store.touches_for_contact(&id).await.unwrap());
        }
        out
    }

    /// The daemon at `now`: every touch due by then is dispatched, as its job would be.
    async fn step(&self, now: DateTime<Utc>) -> BatchReport {
        self.clock.set(now);
        let due: Vec<TouchId> = self
            .all_touches()
            .await
            .into_iter()
            .filter(|t| t.status == TouchStatus::Planned && t.next_attempt_at <= now)
            .map(|t| t.id)
            .collect();
        self.dispatch(&due).await
    }

    /// A job naming `ids` runs at the clock's instant.
    async fn dispatch(&self, ids: &[TouchId]) -> BatchReport {
        if ids.is_empty() {
            return BatchReport::default();
        }
        // A stalled dispatch fails the test rather than hanging it.
        tokio::time::timeout(
            std::time::Duration::from_secs(20),
            self.dispatcher.dispatch(ids, "policy-test"),
        )
        .await
        .expect("the dispatch stalled for 20 s")
        .unwrap()
    }

    async fn touch(&self, id: &TouchId) -> Touch {
        let mut found = self
            .store
            .get_touches(std::slice::from_ref(id))
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "touch {id} not in the ledger");
        found.remove(0)
    }

    async fn ledger(&self, contact: &str) -> Vec<Touch> {
        self.store.touches_for_contact(&cid(contact)).await.unwrap()
    }

    fn sent(&self) -> Vec<(TouchId, DateTime<Utc>)> {
        self.mail.sent.lock().unwrap().clone()
    }

    async fn last_interaction(&self, contact: &str) -> Option<DateTime<Utc>> {
        let records = self
            .store
            .policy_records(&[cid(contact)], day0() - Duration::days(400), &[])
            .await
            .unwrap();
        records[&cid(contact)].last_interaction
    }
}

fn tid(occasion: &str, contact: &str, occurrence: &str) -> TouchId {
    TouchId::derive(occasion, &cid(contact), occurrence)
}

fn year(n: i64) -> String {
    date(n).format("%Y").to_string()
}

/// A touch sent at `when` holding its place from then.
fn assert_sent(t: &Touch, when: DateTime<Utc>) {
    assert_eq!(t.status, TouchStatus::Sent, "{t:?}");
    assert_eq!(t.sent_at, Some(when), "{t:?}");
    assert_eq!(t.slot_at, Some(when), "a sent touch keeps its place: {t:?}");
}

/// A touch held by the policy: back to `planned` for `until`, the attempt not counted,
/// no place taken, and a reason that starts with `held until <until>: `.
fn assert_held(t: &Touch, until: DateTime<Utc>) {
    assert_eq!(t.status, TouchStatus::Planned, "{t:?}");
    assert_eq!(t.next_attempt_at, until, "{t:?}");
    assert_eq!(t.attempts, 0, "a hold is not an attempt: {t:?}");
    assert_eq!(t.slot_at, None, "a held touch holds no place: {t:?}");
    let reason = t.reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with(&format!("held until {}: ", stamp(until))),
        "{reason:?}"
    );
}

fn assert_skipped(t: &Touch, starts: &str) {
    assert_eq!(t.status, TouchStatus::Skipped, "{t:?}");
    assert_eq!(t.slot_at, None, "{t:?}");
    let reason = t.reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with(starts),
        "{reason:?} should start {starts:?}"
    );
}

/// The friend tier with a gap and loose caps: the gap decides.
const GAP_2D: [(&str, &str); 3] = [
    (
        "RAPPORT__TIERS__FRIEND__CAPS",
        r#"[{count = 5, per = "7d"}]"#,
    ),
    ("RAPPORT__TIERS__FRIEND__MIN_GAP", "2d"),
    ("RAPPORT__TIERS__FRIEND__CHECK_IN_EVERY", "30d"),
];

// 1. A check-in due the day before a birthday yields to it.

async fn check_in_before_a_birthday_is_skipped<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &GAP_2D).await;
    rig.contact("ada", "friend", "UTC", Some(date(1))).await;
    assert_eq!(rig.plan("birthday", at(0, "08:00")).await, 0, "not today");
    assert_eq!(rig.plan("check_in", at(0, "08:00")).await, 1);
    let check_in = rig.ledger("ada").await.remove(0);
    assert_eq!(check_in.occasion, "check_in");
    assert_eq!(check_in.scheduled_at, at(0, "09:00"));

    let r = rig.step(at(0, "09:00")).await;
    assert_eq!((r.sent, r.skipped), (0, 1), "{r:?}");
    let t = rig.touch(&check_in.id).await;
    assert_skipped(
        &t,
        &format!(
            "skipped: yields to birthday (priority 100) due {} (min_gap 2d)",
            short(at(1, "09:00"))
        ),
    );

    assert_eq!(rig.plan("birthday", at(1, "00:00")).await, 1);
    let r = rig.step(at(1, "09:00")).await;
    assert_eq!(r.sent, 1, "{r:?}");
    let birthday = tid("birthday", "ada", &year(1));
    assert_sent(&rig.touch(&birthday).await, at(1, "09:00"));
    assert_eq!(rig.sent(), vec![(birthday, at(1, "09:00"))]);
    assert_eq!(rig.touch(&check_in.id).await, t, "a skip is final");
}

async fn deferred_check_in_waits_for_the_birthday_and_its_gap<S: TestStore>(b: Backend) {
    let mut env = GAP_2D.to_vec();
    env.extend([
        ("RAPPORT__OCCASIONS__CHECK_IN__ON_THROTTLE", "defer"),
        ("RAPPORT__OCCASIONS__CHECK_IN__EXPIRES", "5d"),
    ]);
    let rig = rig::<S>(b, &env).await;
    rig.contact("ada", "friend", "UTC", Some(date(1))).await;
    assert_eq!(rig.plan("check_in", at(0, "08:00")).await, 1);
    let check_in = rig.ledger("ada").await.remove(0).id;

    let r = rig.step(at(0, "09:00")).await;
    assert_eq!((r.sent, r.deferred), (0, 1), "{r:?}");
    // The birthday's place is kept free, and the gap after it.
    let t = rig.touch(&check_in).await;
    assert_held(&t, at(3, "09:00"));
    assert!(
        t.reason.as_deref().unwrap().ends_with(&format!(
            "yields to birthday (priority 100) due {} (min_gap 2d)",
            short(at(1, "09:00"))
        )),
        "{t:?}"
    );

    assert_eq!(rig.plan("birthday", at(1, "00:00")).await, 1);
    let r = rig.step(at(1, "09:00")).await;
    assert_eq!(r.sent, 1, "only the birthday is due: {r:?}");
    let birthday = tid("birthday", "ada", &year(1));
    assert_sent(&rig.touch(&birthday).await, at(1, "09:00"));
    assert_eq!(rig.step(at(3, "08:59")).await, BatchReport::default());

    // Its time comes, but the birthday was an interaction: a check-in is no longer due.
    let r = rig.step(at(3, "09:00")).await;
    assert_eq!((r.sent, r.skipped), (0, 1), "{r:?}");
    assert_skipped(
        &rig.touch(&check_in).await,
        &format!(
            "skipped: no longer due: last interaction {} is less than 30d ago",
            short(at(1, "09:00"))
        ),
    );
    assert_eq!(rig.sent(), vec![(birthday, at(1, "09:00"))]);
}

/// Two places a week, no gap: the caps decide.
const CAP_2_PER_7D: [(&str, &str); 3] = [
    (
        "RAPPORT__TIERS__FRIEND__CAPS",
        r#"[{count = 2, per = "7d"}]"#,
    ),
    ("RAPPORT__TIERS__FRIEND__MIN_GAP", "0s"),
    ("RAPPORT__TIERS__FRIEND__CHECK_IN_EVERY", "30d"),
];

async fn check_in_yields_to_every_touch_ahead_not_just_each_one<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &CAP_2_PER_7D).await;
    // Birthday and anniversary both tomorrow: together they need both places this week.
    let since = date(1).with_year(date(1).year() - 4).unwrap();
    rig.contact_since("lu", "friend", "UTC", Some(date(1)), Some(since))
        .await;
    assert_eq!(rig.plan("check_in", at(0, "08:00")).await, 1);
    let check_in = rig.ledger("lu").await.remove(0).id;
    let r = rig.step(at(0, "09:00")).await;
    assert_eq!((r.sent, r.skipped), (0, 1), "{r:?}");
    assert_skipped(&rig.touch(&check_in).await, "skipped: yields to ");

    assert_eq!(rig.plan("birthday", at(1, "00:00")).await, 1);
    assert_eq!(rig.plan("anniversary", at(1, "00:00")).await, 1);
    let r = rig.step(at(1, "09:00")).await;
    assert_eq!(r.sent, 2, "{r:?}");
    let birthday = tid("birthday", "lu", &year(1));
    let anniversary = tid("anniversary", "lu", &year(1));
    assert_sent(&rig.touch(&birthday).await, at(1, "09:00"));
    assert_sent(&rig.touch(&anniversary).await, at(1, "09:00"));
    assert_eq!(rig.sent().len(), 2, "{:?}", rig.sent());
}

// 2. A purchase gives one thank-you, after its delay.

async fn purchase_gives_one_thank_you_after_the_delay<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &[]).await;
    rig.contact("bo", "friend", "UTC", None).await;
    let bought = at(0, "10:00");
    let first = rig.purchase("bo", "order-1", bought, bought).await;
    let thank_you = tid("thank_you", "bo", "order-1");
    assert!(first.new);
    assert_eq!(first.planned, vec![thank_you.clone()]);
    let t = rig.touch(&thank_you).await;
    assert_eq!(
        (t.status, t.scheduled_at, t.expires_at),
        (
            TouchStatus::Planned,
            at(0, "12:00"),
            at(0, "12:00") + Duration::days(3)
        )
    );

    // The same event again, and again with another time: nothing changes.
    let again = rig.purchase("bo", "order-1", bought, at(0, "10:30")).await;
    assert!(!again.new && again.planned.is_empty(), "{again:?}");
    let moved = rig
        .purchase("bo", "order-1", at(0, "11:00"), at(0, "11:00"))
        .await;
    assert!(!moved.new && moved.planned.is_empty(), "{moved:?}");
    assert_eq!(rig.ledger("bo").await, vec![t.clone()]);
    let events = rig.store.events_for_contact(&cid("bo")).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].at, bought, "the first time stands");
    assert_eq!(
        rig.last_interaction("bo").await,
        Some(bought),
        "a repeated event is not a new interaction"
    );

    // Nothing before the delay, even when a job names it early.
    rig.clock.set(at(0, "11:00"));
    let r = rig.dispatch(std::slice::from_ref(&thank_you)).await;
    assert_eq!(r, BatchReport::default());
    assert_eq!(rig.step(at(0, "11:59")).await, BatchReport::default());
    assert_eq!(rig.touch(&thank_you).await, t);
    assert!(rig.sent().is_empty());

    assert_eq!(rig.step(at(0, "12:00")).await.sent, 1);
    assert_sent(&rig.touch(&thank_you).await, at(0, "12:00"));
    // Its job again, later: still once.
    rig.clock.set(at(0, "13:00"));
    assert_eq!(
        rig.dispatch(std::slice::from_ref(&thank_you)).await,
        BatchReport::default()
    );
    let again = rig.purchase("bo", "order-1", bought, at(0, "13:00")).await;
    assert!(!again.new && again.planned.is_empty());
    assert_eq!(rig.step(at(1, "12:00")).await, BatchReport::default());
    assert_eq!(rig.sent(), vec![(thank_you, at(0, "12:00"))]);
}

// 3. A purchase resets the check-in clock.

const CHECK_IN_30D: [(&str, &str); 1] = [("RAPPORT__TIERS__FRIEND__CHECK_IN_EVERY", "30d")];

async fn purchase_resets_the_check_in_clock<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &CHECK_IN_30D).await;
    rig.contact("cy", "friend", "UTC", None).await;
    rig.contact("di", "friend", "UTC", None).await;
    rig.purchase("cy", "order-7", at(0, "07:00"), at(0, "07:00"))
        .await;

    assert_eq!(rig.plan("check_in", at(0, "08:00")).await, 1);
    let occasions = |ts: Vec<Touch>| ts.into_iter().map(|t| t.occasion).collect::<Vec<_>>();
    assert_eq!(occasions(rig.ledger("cy").await), ["thank_you"]);
    assert_eq!(occasions(rig.ledger("di").await), ["check_in"]);
    // Still not due a day short of 30 days after the purchase; due once they are over.
    // (`di`, never checked in with, is due again in every new period.)
    rig.plan("check_in", at(29, "08:00")).await;
    assert_eq!(occasions(rig.ledger("cy").await), ["thank_you"]);
    rig.plan("check_in", at(30, "08:00")).await;
    let cy = rig.ledger("cy").await;
    assert_eq!(occasions(cy.clone()), ["thank_you", "check_in"]);
    assert_eq!(cy[1].scheduled_at, at(30, "09:00"));
}

async fn check_in_overtaken_by_a_purchase_is_not_sent<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &CHECK_IN_30D).await;
    rig.contact("ed", "friend", "UTC", None).await;
    assert_eq!(rig.plan("check_in", at(0, "08:00")).await, 1);
    let check_in = rig.ledger("ed").await.remove(0);
    assert_eq!(
        (check_in.occasion.as_str(), check_in.scheduled_at),
        ("check_in", at(0, "09:00"))
    );
    rig.purchase("ed", "order-9", at(0, "08:30"), at(0, "08:30"))
        .await;

    let r = rig.step(at(0, "09:00")).await;
    assert_eq!((r.sent, r.skipped), (0, 1), "{r:?}");
    assert_skipped(
        &rig.touch(&check_in.id).await,
        &format!(
            "skipped: no longer due: last interaction {} is less than 30d ago",
            short(at(0, "08:30"))
        ),
    );
    // The thank-you is not held back by a check-in that never went out.
    assert_eq!(rig.step(at(0, "10:30")).await.sent, 1);
    let thank_you = tid("thank_you", "ed", "order-9");
    assert_sent(&rig.touch(&thank_you).await, at(0, "10:30"));
    assert_eq!(rig.sent(), vec![(thank_you, at(0, "10:30"))]);
}

/// A purchase just before a planned check-in: the check-in (skipped) and the thank-you
/// (sent) are decided in one job.
async fn check_in_and_thank_you_due_together<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &CHECK_IN_30D).await;
    rig.contact("ni", "friend", "UTC", None).await;
    assert_eq!(rig.plan("check_in", at(0, "08:00")).await, 1);
    let check_in = rig.ledger("ni").await.remove(0).id;
    rig.purchase("ni", "order-6", at(0, "06:30"), at(0, "08:45"))
        .await;
    let thank_you = tid("thank_you", "ni", "order-6");
    assert_eq!(rig.touch(&thank_you).await.scheduled_at, at(0, "09:00"));

    let r = rig.step(at(0, "09:00")).await;
    assert_eq!((r.claimed, r.sent, r.skipped), (2, 1, 1), "{r:?}");
    assert_sent(&rig.touch(&thank_you).await, at(0, "09:00"));
    assert_skipped(&rig.touch(&check_in).await, "skipped: no longer due: ");
    assert_eq!(rig.sent(), vec![(thank_you, at(0, "09:00"))]);
}

/// One job sends a thank-you (whose template reads the purchase from the store) and
/// another contact's birthday: both go out, whatever order their sends finish in.
async fn thank_you_and_another_birthday_in_one_job<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &[]).await;
    rig.contact("ab", "friend", "UTC", None).await;
    rig.contact("zy", "friend", "UTC", Some(date(0))).await;
    assert_eq!(rig.plan("birthday", at(0, "00:00")).await, 1);
    rig.purchase("ab", "order-8", at(0, "06:30"), at(0, "06:30"))
        .await;
    let thank_you = tid("thank_you", "ab", "order-8");
    let birthday = tid("birthday", "zy", &year(0));

    let r = rig.step(at(0, "09:00")).await;
    assert_eq!((r.claimed, r.sent), (2, 2), "{r:?}");
    assert_sent(&rig.touch(&thank_you).await, at(0, "09:00"));
    assert_sent(&rig.touch(&birthday).await, at(0, "09:00"));
}

// 4. Caps with on_throttle = defer.

const CAP_1_PER_7D: [(&str, &str); 3] = [
    (
        "RAPPORT__TIERS__FRIEND__CAPS",
        r#"[{count = 1, per = "7d"}]"#,
    ),
    ("RAPPORT__TIERS__FRIEND__MIN_GAP", "0s"),
    ("RAPPORT__OCCASIONS__THANK_YOU__EXPIRES", "10d"),
];

async fn capped_touch_waits_exactly_for_its_place<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &CAP_1_PER_7D).await;
    rig.contact("fa", "friend", "UTC", Some(date(1))).await;
    assert_eq!(rig.plan("birthday", at(1, "00:00")).await, 1);
    rig.purchase("fa", "order-2", at(1, "06:00"), at(1, "06:00"))
        .await;
    let birthday = tid("birthday", "fa", &year(1));
    let thank_you = tid("thank_you", "fa", "order-2");
    assert_eq!(rig.touch(&thank_you).await.scheduled_at, at(1, "09:00"));

    // Both due in one job: the birthday goes first, the thank-you waits 7 days.
    let r = rig.step(at(1, "09:00")).await;
    assert_eq!((r.claimed, r.sent, r.deferred), (2, 1, 1), "{r:?}");
    assert_sent(&rig.touch(&birthday).await, at(1, "09:00"));
    let t = rig.touch(&thank_you).await;
    assert_held(&t, at(8, "09:00"));
    assert_eq!(
        t.reason.as_deref(),
        Some(
            format!(
                "held until {}: tier friend cap 1 per 7d reached",
                stamp(at(8, "09:00"))
            )
            .as_str()
        )
    );

    assert_eq!(rig.step(at(8, "08:59")).await, BatchReport::default());
    assert_eq!(rig.step(at(8, "09:00")).await.sent, 1);
    assert_sent(&rig.touch(&thank_you).await, at(8, "09:00"));
    assert_eq!(
        rig.sent(),
        vec![(birthday, at(1, "09:00")), (thank_you, at(8, "09:00"))]
    );
}

async fn capped_touch_waits_for_its_place_inside_its_window<S: TestStore>(b: Backend) {
    let mut env = CAP_1_PER_7D.to_vec();
    env.push(("RAPPORT__OCCASIONS__BIRTHDAY__SEND_WINDOW", "06:00-18:00"));
    let rig = rig::<S>(b, &env).await;
    rig.contact("ga", "friend", "UTC", Some(date(1))).await;
    assert_eq!(rig.plan("birthday", at(1, "00:00")).await, 1);
    rig.purchase("ga", "order-3", at(1, "05:00"), at(1, "05:00"))
        .await;
    let birthday = tid("birthday", "ga", &year(1));
    let thank_you = tid("thank_you", "ga", "order-3");

    assert_eq!(rig.step(at(1, "06:00")).await.sent, 1);
    assert_sent(&rig.touch(&birthday).await, at(1, "06:00"));
    let r = rig.step(at(1, "09:00")).await;
    assert_eq!((r.sent, r.deferred), (0, 1), "{r:?}");
    // The cap frees a place at 06:00 a week later; the thank-you's window opens at 09:00.
    assert_held(&rig.touch(&thank_you).await, at(8, "09:00"));
    assert_eq!(rig.step(at(8, "09:00")).await.sent, 1);
    assert_eq!(
        rig.sent(),
        vec![(birthday, at(1, "06:00")), (thank_you, at(8, "09:00"))]
    );
}

/// Another worker has claimed the birthday (it is `sending`, its place not reserved yet:
/// slow, or about to crash): the thank-you must still leave it its place.
async fn claimed_birthday_keeps_its_place_from_a_lower_touch<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &CAP_1_PER_7D).await;
    rig.contact("mo", "friend", "UTC", Some(date(1))).await;
    assert_eq!(rig.plan("birthday", at(1, "00:00")).await, 1);
    rig.purchase("mo", "order-5", at(1, "06:00"), at(1, "06:00"))
        .await;
    let birthday = tid("birthday", "mo", &year(1));
    let thank_you = tid("thank_you", "mo", "order-5");

    let now = at(1, "09:00");
    rig.clock.set(now);
    let other = rig
        .store
        .claim(
            std::slice::from_ref(&birthday),
            "another-worker",
            now,
            now + Duration::minutes(2),
        )
        .await
        .unwrap();
    assert_eq!(other.touches.len(), 1);
    let r = rig.dispatch(std::slice::from_ref(&thank_you)).await;
    assert_eq!(
        (r.sent, r.deferred),
        (0, 1),
        "the thank-you must yield: {r:?}"
    );
    let t = rig.touch(&thank_you).await;
    assert!(
        t.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("held until ") && r.contains("yields to birthday")),
        "{t:?}"
    );

    // The other worker never finished: its lease lapses, the reconciler hands the
    // birthday on, and it goes out.
    rig.clock.set(at(1, "09:03"));
    let r = rig.dispatch(std::slice::from_ref(&birthday)).await;
    assert_eq!(r.sent, 1, "{r:?}");
    assert_sent(&rig.touch(&birthday).await, at(1, "09:03"));
    assert_eq!(rig.sent(), vec![(birthday, at(1, "09:03"))]);
}

// 5. The send window, in the contact's own zone.

async fn touch_outside_the_window_waits_for_it_in_the_contacts_zone<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &[]).await;
    rig.contact("hi", "friend", "Asia/Tokyo", None).await;
    rig.contact("jo", "friend", "America/Los_Angeles", None)
        .await;
    // Due at 10:00 UTC: 19:00 in Tokyo (closed since 18:00), 02:00 or 03:00 in Los
    // Angeles (not open yet). A touch planned for a window that has since changed, or
    // a job that ran late, arrives like this.
    let now = at(0, "10:00");
    for c in ["hi", "jo"] {
        let event = Event {
            contact_id: cid(c),
            id: EventId::parse("late").unwrap(),
            kind: "purchase".into(),
            at: now - Duration::hours(2),
            data: serde_json::Map::new(),
        };
        assert!(rig.store.add_event(&event, now).await.unwrap());
    }
    let touches: Vec<NewTouch> = ["hi", "jo"]
        .iter()
        .map(|c| NewTouch {
            id: tid("thank_you", c, "late"),
            occasion: "thank_you".into(),
            contact_id: cid(c),
            occurrence: "late".into(),
            channel: Channel::Email,
            priority: 80,
            scheduled_at: now,
            due: now,
            expires_at: now + Duration::days(3),
            status: TouchStatus::Planned,
            reason: None,
        })
        .collect();
    assert_eq!(
        rig.store
            .plan_touches(&touches, 10, now)
            .await
            .unwrap()
            .len(),
        2
    );

    let r = rig.step(now).await;
    assert_eq!((r.sent, r.deferred), (0, 2), "{r:?}");
    assert!(rig.sent().is_empty());
    let nine = |zone: Tz, day: NaiveDate| {
        zone.from_local_datetime(&day.and_hms_opt(9, 0, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    let tokyo = nine(chrono_tz::Asia::Tokyo, date(1));
    let la = nine(chrono_tz::America::Los_Angeles, date(0));
    assert_eq!(tokyo, at(1, "00:00"));
    assert!(la > now && la < at(0, "18:00"), "{la}");
    for (c, until) in [("hi", tokyo), ("jo", la)] {
        let t = rig.touch(&tid("thank_you", c, "late")).await;
        assert_held(&t, until);
        assert!(
            t.reason
                .as_deref()
                .unwrap()
                .ends_with(": outside the send window"),
            "{t:?}"
        );
    }

    // Los Angeles opens first (16:00 or 17:00 UTC), then Tokyo (00:00 UTC next day).
    assert_eq!(
        rig.step(la - Duration::seconds(2)).await,
        BatchReport::default()
    );
    assert_eq!(rig.step(la).await.sent, 1);
    assert_eq!(rig.step(tokyo).await.sent, 1);
    assert_eq!(
        rig.sent(),
        vec![
            (tid("thank_you", "jo", "late"), la),
            (tid("thank_you", "hi", "late"), tokyo)
        ]
    );
}

// 6. The tier's channels.

async fn channel_the_tier_does_not_allow_is_skipped<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &[("RAPPORT__TIERS__FRIEND__CHANNELS", r#"["sms"]"#)]).await;
    rig.contact("ka", "friend", "UTC", None).await;
    rig.purchase("ka", "order-4", at(0, "10:00"), at(0, "10:00"))
        .await;
    let r = rig.step(at(0, "12:00")).await;
    assert_eq!((r.sent, r.skipped), (0, 1), "{r:?}");
    assert_skipped(
        &rig.touch(&tid("thank_you", "ka", "order-4")).await,
        "skipped: tier friend does not allow channel email",
    );
    assert!(rig.sent().is_empty());
    assert_eq!(rig.step(at(1, "12:00")).await, BatchReport::default());
}

/// Every scenario on both backends.
macro_rules! both {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case::<rapport::store::SqliteStore>(super::Backend::Sqlite).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case::<rapport::store::RedisStore>(super::Backend::Redis).await;
                }
            )*
        }
    };
}

both!(
    check_in_before_a_birthday_is_skipped,
    check_in_yields_to_every_touch_ahead_not_just_each_one,
    deferred_check_in_waits_for_the_birthday_and_its_gap,
    purchase_gives_one_thank_you_after_the_delay,
    purchase_resets_the_check_in_clock,
    check_in_overtaken_by_a_purchase_is_not_sent,
    check_in_and_thank_you_due_together,
    thank_you_and_another_birthday_in_one_job,
    capped_touch_waits_exactly_for_its_place,
    capped_touch_waits_for_its_place_inside_its_window,
    claimed_birthday_keeps_its_place_from_a_lower_touch,
    touch_outside_the_window_waits_for_it_in_the_contacts_zone,
    channel_the_tier_does_not_allow_is_skipped,
);
