//! What the scenarios share: a [`Rig`] (one store, a dispatcher sending into a mailbag,
//! a fixed clock), the scenario's days and instants, and what a touch's fate must look
//! like once sent, held or skipped.

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use futures::future::BoxFuture;
use rapport::{
    channels::{DeliveryError, EmailChannel, OutboundEmail},
    config::Config,
    dispatch::{BatchReport, Dispatcher, Recorder},
    domain::{
        Birthday, Clock, Contact, ContactId, EmailAddress, Event, EventId, FixedClock, MonthDay,
        Touch, TouchId, TouchStatus,
    },
    ingest::{self, EventReport},
    planner::runner,
    render::Renderer,
    store::ContactUpsert,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    backends::TestStore,
    ledger::{Backend, day0, open},
};

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

pub(crate) struct Rig<S> {
    _dir: tempfile::TempDir,
    pub(crate) store: Arc<S>,
    cfg: Arc<Config>,
    pub(crate) clock: Arc<FixedClock>,
    mail: Arc<Mailbag>,
    dispatcher: Dispatcher<S>,
    contacts: Mutex<Vec<ContactId>>,
}

/// Day `n` of the scenario at `hh:mm` UTC.
pub(crate) fn at(n: i64, hhmm: &str) -> DateTime<Utc> {
    let (h, m) = hhmm.split_once(':').unwrap();
    day0()
        + Duration::days(n)
        + Duration::hours(h.parse().unwrap())
        + Duration::minutes(m.parse().unwrap())
}

pub(crate) fn date(n: i64) -> NaiveDate {
    (day0() + Duration::days(n)).date_naive()
}

/// How the policy prints an instant in a reason.
pub(crate) fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

pub(crate) fn short(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%MZ").to_string()
}

pub(crate) fn cid(s: &str) -> ContactId {
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

pub(crate) async fn rig<S: TestStore>(backend: Backend, env: &[(&str, &str)]) -> Rig<S> {
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
    pub(crate) async fn contact(
        &self,
        id: &str,
        tier: &str,
        zone: &str,
        birthday: Option<NaiveDate>,
    ) {
        self.contact_since(id, tier, zone, birthday, None).await;
    }

    /// [`Rig::contact`], a customer since `since` (its anniversaries are occasions).
    pub(crate) async fn contact_since(
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
    pub(crate) async fn plan(&self, occasion: &str, now: DateTime<Utc>) -> usize {
        let o = self.cfg.rules.occasion(occasion).unwrap();
        runner::run_once(self.store.as_ref(), &self.cfg, o, now)
            .await
            .unwrap()
            .new
    }

    /// A purchase `order` by `contact` at `happened`, recorded at `now`.
    pub(crate) async fn purchase(
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
    pub(crate) async fn step(&self, now: DateTime<Utc>) -> BatchReport {
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
    pub(crate) async fn dispatch(&self, ids: &[TouchId]) -> BatchReport {
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

    pub(crate) async fn touch(&self, id: &TouchId) -> Touch {
        let mut found = self
            .store
            .get_touches(std::slice::from_ref(id))
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "touch {id} not in the ledger");
        found.remove(0)
    }

    pub(crate) async fn ledger(&self, contact: &str) -> Vec<Touch> {
        self.store.touches_for_contact(&cid(contact)).await.unwrap()
    }

    pub(crate) fn sent(&self) -> Vec<(TouchId, DateTime<Utc>)> {
        self.mail.sent.lock().unwrap().clone()
    }

    pub(crate) async fn last_interaction(&self, contact: &str) -> Option<DateTime<Utc>> {
        let records = self
            .store
            .policy_records(&[cid(contact)], day0() - Duration::days(400), &[])
            .await
            .unwrap();
        records[&cid(contact)].last_interaction
    }
}

pub(crate) fn tid(occasion: &str, contact: &str, occurrence: &str) -> TouchId {
    TouchId::derive(occasion, &cid(contact), occurrence)
}

pub(crate) fn year(n: i64) -> String {
    date(n).format("%Y").to_string()
}

/// A touch sent at `when` holding its place from then.
pub(crate) fn assert_sent(t: &Touch, when: DateTime<Utc>) {
    assert_eq!(t.status, TouchStatus::Sent, "{t:?}");
    assert_eq!(t.sent_at, Some(when), "{t:?}");
    assert_eq!(t.slot_at, Some(when), "a sent touch keeps its place: {t:?}");
}

/// A touch held by the policy: back to `planned` for `until`, the attempt not counted,
/// no place taken, and a reason that starts with `held until <until>: `.
pub(crate) fn assert_held(t: &Touch, until: DateTime<Utc>) {
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

pub(crate) fn assert_skipped(t: &Touch, starts: &str) {
    assert_eq!(t.status, TouchStatus::Skipped, "{t:?}");
    assert_eq!(t.slot_at, None, "{t:?}");
    let reason = t.reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with(starts),
        "{reason:?} should start {starts:?}"
    );
}
