//! The rig the channel tests drive: the shipped config with SMS by Twilio and the webhook
//! at loopback stubs, a store on either backend, a dispatcher on a clock moved by hand,
//! and a step that dispatches every touch due, as the daemon's job would.

use std::{path::Path, sync::Arc};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rapport::{
    channels::Channels,
    config::Config,
    dispatch::{BatchReport, Dispatcher, Recorder},
    domain::{
        Birthday, Contact, ContactId, EmailAddress, FixedClock, MonthDay, PhoneNumber, Touch,
        TouchId, TouchStatus,
    },
    planner::runner,
    render::Renderer,
    store::ContactUpsert,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::ledger::{Backend, day0, open};
use crate::support::{
    backends::TestStore,
    http_stub::{HttpStub, Reply},
};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// 24 random bytes, as `whsec_` + base64.
const HOOK_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

pub(crate) struct Rig<S> {
    dir: tempfile::TempDir,
    pub(crate) store: Arc<S>,
    pub(crate) cfg: Arc<Config>,
    clock: Arc<FixedClock>,
    pub(crate) channels: Arc<Channels>,
    dispatcher: Dispatcher<S>,
    contacts: std::sync::Mutex<Vec<ContactId>>,
}

pub(crate) fn at(day: i64, hour: i64) -> DateTime<Utc> {
    day0() + Duration::days(day) + Duration::hours(hour)
}

pub(crate) fn date(day: i64) -> NaiveDate {
    (day0() + Duration::days(day)).date_naive()
}

/// The same day `n` years earlier (the tests avoid Feb 29).
pub(crate) fn years_before(d: NaiveDate, n: i32) -> NaiveDate {
    use chrono::Datelike;
    d.with_year(d.year() - n)
        .unwrap_or_else(|| d.pred_opt().unwrap().with_year(d.year() - n).unwrap())
}

pub(crate) fn cid(s: &str) -> ContactId {
    ContactId::parse(s).unwrap()
}

/// The shipped config with `env` overrides (TOML values), SMS by Twilio at `sms`, the
/// webhook at `hook`, both on loopback.
fn config(dir: &Path, sms: &str, hook: &str, env: &[(&str, &str)]) -> Config {
    let mut vars: Vec<(String, String)> = [
        ("STORAGE__URL", format!("sqlite://{}/r.db", dir.display())),
        ("TEMPLATES__DIR", format!("{REPO}/templates")),
        (
            "CHANNELS__EMAIL__OUTBOX_DIR",
            format!("{}/outbox", dir.display()),
        ),
        ("API__PUBLIC_URL", "https://rapport.example".into()),
        ("CHANNELS__SMS__TRANSPORT", "twilio".into()),
        ("CHANNELS__SMS__BASE_URL", sms.into()),
        ("CHANNELS__SMS__ACCOUNT_SID", "ACtest".into()),
        ("CHANNELS__SMS__AUTH_TOKEN_ENV", "TEST_TWILIO_TOKEN".into()),
        ("CHANNELS__SMS__FROM", "+15550000000".into()),
        ("CHANNELS__SMS__ALLOW_PRIVATE", "true".into()),
        ("CHANNELS__SMS__TIMEOUT", "2s".into()),
        ("CHANNELS__WEBHOOK__URL", format!("{hook}/hook")),
        ("CHANNELS__WEBHOOK__SECRET_ENV", "TEST_HOOK_SECRET".into()),
        ("CHANNELS__WEBHOOK__ALLOW_PRIVATE", "true".into()),
        ("CHANNELS__WEBHOOK__TIMEOUT", "2s".into()),
        ("DEFAULTS__SEND_WINDOW", "\"00:00-24:00\"".into()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("RAPPORT__{k}"), v))
    .collect();
    vars.extend(
        env.iter()
            .map(|(k, v)| (format!("RAPPORT__{k}"), v.to_string())),
    );
    Config::load_with(
        Path::new(&format!("{REPO}/config/rapport.toml")),
        None,
        vars,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn secrets(name: &str) -> Option<String> {
    match name {
        "TEST_TWILIO_TOKEN" => Some("token-123".into()),
        "TEST_HOOK_SECRET" => Some(HOOK_SECRET.into()),
        _ => None,
    }
}

pub(crate) async fn rig<S: TestStore>(
    backend: Backend,
    sms: &HttpStub,
    hook: &HttpStub,
    env: &[(&str, &str)],
) -> Rig<S> {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Arc::new(config(dir.path(), &sms.url(), &hook.url(), env));
    let store: Arc<S> = Arc::new(open(backend, &cfg, "ch").await);
    let clock = Arc::new(FixedClock::new(day0()));
    let channels = Arc::new(
        Channels::build(&cfg, store.as_ref(), secrets)
            .await
            .unwrap(),
    );
    let tasks = TaskTracker::new();
    let dispatcher = Dispatcher {
        store: store.clone(),
        cfg: cfg.clone(),
        renderer: Arc::new(Renderer::load(&cfg.templates_dir).unwrap()),
        channels: channels.clone(),
        clock: clock.clone(),
        recorder: Recorder::spawn(store.clone(), clock.clone(), &tasks),
        tasks,
        stopping: CancellationToken::new(),
        abandon: CancellationToken::new(),
        custody: rapport::custody::Custody::holding("test"),
    };
    Rig {
        dir,
        store,
        cfg,
        clock,
        channels,
        dispatcher,
        contacts: std::sync::Mutex::new(Vec::new()),
    }
}

/// A rig whose SMS API and webhook receiver always answer `sms` and `hook`.
pub(crate) async fn stubbed<S: TestStore>(
    backend: Backend,
    sms: Reply,
    hook: Reply,
    env: &[(&str, &str)],
) -> (Rig<S>, HttpStub, HttpStub) {
    let (sms, hook) = (HttpStub::always(sms).await, HttpStub::always(hook).await);
    (rig::<S>(backend, &sms, &hook, env).await, sms, hook)
}

impl<S: TestStore> Rig<S> {
    /// A family contact (every channel allowed) with a birthday on `day` and,
    /// optionally, an email address and a phone number.
    pub(crate) async fn contact(&self, id: &str, day: i64, email: bool, phone: bool) {
        let contact = Contact {
            id: cid(id),
            first_name: Some(format!("Name-{id}")),
            last_name: None,
            email: email.then(|| EmailAddress::parse(&format!("{id}@example.com")).unwrap()),
            phone: phone.then(|| PhoneNumber::parse("+15551230000").unwrap()),
            timezone: Some(chrono_tz::UTC),
            locale: None,
            birthday: Some(Birthday {
                day: MonthDay::of(date(day)),
                year: None,
            }),
            customer_since: None,
            tier: "family".into(),
            attributes: serde_json::Map::new(),
            email_consent: true,
            sms_consent: true,
        };
        self.store
            .upsert_contacts(&[ContactUpsert {
                contact,
                email_consent: None,
                sms_consent: None,
                keep_tier: false,
            }])
            .await
            .unwrap();
        self.contacts.lock().unwrap().push(cid(id));
    }

    /// Makes `id` a customer since `since` (its anniversaries become occasions).
    pub(crate) async fn customer_since(&self, id: &str, since: NaiveDate) {
        let stored = self.store.get_contact(&cid(id)).await.unwrap().unwrap();
        let contact = Contact {
            customer_since: Some(since),
            ..stored
        };
        self.store
            .upsert_contacts(&[ContactUpsert {
                contact,
                email_consent: None,
                sms_consent: None,
                keep_tier: false,
            }])
            .await
            .unwrap();
    }

    pub(crate) async fn plan(&self, occasion: &str, now: DateTime<Utc>) -> usize {
        let o = self.cfg.rules.occasion(occasion).unwrap();
        runner::run_once(self.store.as_ref(), &self.cfg, o, now)
            .await
            .unwrap()
            .new
    }

    pub(crate) async fn touches(&self) -> Vec<Touch> {
        let ids = self.contacts.lock().unwrap().clone();
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.store.touches_for_contact(&id).await.unwrap());
        }
        out
    }

    pub(crate) async fn touch(&self, contact: &str, occasion: &str) -> Touch {
        self.touches()
            .await
            .into_iter()
            .find(|t| t.contact_id == cid(contact) && t.occasion == occasion)
            .unwrap_or_else(|| panic!("no {occasion} touch for {contact}"))
    }

    /// `contact`'s `occasion` touch was sent on `channel`, and its reason (kept from the
    /// channels it left) mentions `why`.
    pub(crate) async fn assert_sent_on(
        &self,
        contact: &str,
        occasion: &str,
        channel: &str,
        why: &str,
    ) {
        let t = self.touch(contact, occasion).await;
        assert_eq!((t.status, t.channel.as_str()), (TouchStatus::Sent, channel));
        assert!(
            t.reason.as_deref().is_some_and(|r| r.contains(why)),
            "{:?}",
            t.reason
        );
    }

    /// Every touch due by `now` is dispatched, as the queue would.
    pub(crate) async fn step(&self, now: DateTime<Utc>) -> BatchReport {
        self.clock.set(now);
        let due: Vec<TouchId> = self
            .touches()
            .await
            .into_iter()
            .filter(|t| t.status == TouchStatus::Planned && t.next_attempt_at <= now)
            .map(|t| t.id)
            .collect();
        if due.is_empty() {
            return BatchReport::default();
        }
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            self.dispatcher.dispatch(&due, "channel-test"),
        )
        .await
        .expect("the dispatch stalled")
        .unwrap()
    }

    /// The emails written to the outbox, raw.
    pub(crate) fn emails(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.dir.path().join("outbox"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .map(|e| std::fs::read_to_string(e.path()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }
}
