//! Channels through the dispatcher, on both backends, against real HTTP servers standing
//! in for the SMS API and the webhook receiver: a 21610 withdraws SMS consent and moves
//! the touch (and the next occasion) to email; a 410 disables the endpoint for every
//! later touch; a failing webhook is retried on its schedule under one `webhook-id`,
//! ends as a dead letter, and replays exactly once; Retry-After is honoured; a
//! permanent SMS failure with no channel left is a dead letter.
//!
//! Time is a [`FixedClock`] moved by hand; "the daemon" is a step that dispatches every
//! touch due at that instant, as its job would. Emails land in an outbox folder.

#[path = "support/backends.rs"]
mod backends;
#[path = "support/http_stub.rs"]
#[allow(dead_code, unreachable_pub)]
mod http_stub;
#[path = "support/ledger.rs"]
#[allow(dead_code, unreachable_pub)]
mod ledger;
#[path = "support/redis.rs"]
#[allow(dead_code, unreachable_pub)]
mod redis_server;

use rapport::domain::Channel;
use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use backends::TestStore;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use http_stub::{HttpStub, Reply};
use ledger::{Backend, day0, open};
use rapport::{
    channels::{Channels, unsubscribe},
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

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// 24 random bytes, as `whsec_` + base64.
const HOOK_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

struct Rig<S> {
    dir: tempfile::TempDir,
    store: Arc<S>,
    cfg: Arc<Config>,
    clock: Arc<FixedClock>,
    channels: Arc<Channels>,
    dispatcher: Dispatcher<S>,
    contacts: std::sync::Mutex<Vec<ContactId>>,
}

fn at(day: i64, hour: i64) -> DateTime<Utc> {
    day0() + Duration::days(day) + Duration::hours(hour)
}

fn date(day: i64) -> NaiveDate {
    (day0() + Duration::days(day)).date_naive()
}

/// The same day `n` years earlier (the tests avoid Feb 29).
fn years_before(d: NaiveDate, n: i32) -> NaiveDate {
    use chrono::Datelike;
    d.with_year(d.year() - n)
        .unwrap_or_else(|| d.pred_opt().unwrap().with_year(d.year() - n).unwrap())
}

fn cid(s: &str) -> ContactId {
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

fn secrets(name: &str) -> Option<String> {
    match name {
        "TEST_TWILIO_TOKEN" => Some("token-123".into()),
        "TEST_HOOK_SECRET" => Some(HOOK_SECRET.into()),
        _ => None,
    }
}

async fn rig<S: TestStore>(
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
async fn stubbed<S: TestStore>(
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
    async fn contact(&self, id: &str, day: i64, email: bool, phone: bool) {
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
    async fn customer_since(&self, id: &str, since: NaiveDate) {
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

    async fn plan(&self, occasion: &str, now: DateTime<Utc>) -> usize {
        let o = self.cfg.rules.occasion(occasion).unwrap();
        runner::run_once(self.store.as_ref(), &self.cfg, o, now)
            .await
            .unwrap()
            .new
    }

    async fn touches(&self) -> Vec<Touch> {
        let ids = self.contacts.lock().unwrap().clone();
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.store.touches_for_contact(&id).await.unwrap());
        }
        out
    }

    async fn touch(&self, contact: &str, occasion: &str) -> Touch {
        self.touches()
            .await
            .into_iter()
            .find(|t| t.contact_id == cid(contact) && t.occasion == occasion)
            .unwrap_or_else(|| panic!("no {occasion} touch for {contact}"))
    }

    /// `contact`'s `occasion` touch was sent on `channel`, and its reason (kept from the
    /// channels it left) mentions `why`.
    async fn assert_sent_on(&self, contact: &str, occasion: &str, channel: &str, why: &str) {
        let t = self.touch(contact, occasion).await;
        assert_eq!((t.status, t.channel.as_str()), (TouchStatus::Sent, channel));
        assert!(
            t.reason.as_deref().is_some_and(|r| r.contains(why)),
            "{:?}",
            t.reason
        );
    }

    /// Every touch due by `now` is dispatched, as the queue would.
    async fn step(&self, now: DateTime<Utc>) -> BatchReport {
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
    fn emails(&self) -> Vec<String> {
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

fn opted_out() -> Reply {
    Reply::json(
        400,
        r#"{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}"#,
    )
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name::<rapport::store::SqliteStore>(super::Backend::Sqlite).await; })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name::<rapport::store::RedisStore>(super::Backend::Redis).await; })*
        }
    };
}

both!(
    an_sms_opt_out_withdraws_consent_and_moves_the_touch_to_email,
    a_webhook_410_disables_the_endpoint_for_later_touches,
    a_failing_webhook_retries_on_schedule_then_is_a_dead_letter_replayed_once,
    retry_after_is_honoured,
    a_permanent_sms_failure_with_no_channel_left_is_a_dead_letter,
    an_sms_timed_out_after_sending_is_retried_once_then_a_dead_letter,
    a_moved_touch_gets_the_new_channels_full_retries,
    a_contact_moved_to_a_tier_without_the_channel_gets_the_next_one,
    a_rate_limit_place_after_expiry_is_not_waited_for,
    every_channel_left_behind_is_named_on_the_touch,
);

async fn an_sms_opt_out_withdraws_consent_and_moves_the_touch_to_email<S: TestStore>(
    backend: Backend,
) {
    let (rig, sms, _hook) = stubbed::<S>(
        backend,
        opted_out(),
        Reply::status(200),
        &[
            ("OCCASIONS__BIRTHDAY__CHANNELS", r#"["sms", "email"]"#),
            ("OCCASIONS__ANNIVERSARY__CHANNELS", r#"["sms", "email"]"#),
        ],
    )
    .await;
    rig.contact("c1", 1, true, true).await;
    // Email only: planned on email from the start, no SMS request.
    rig.contact("mail", 1, true, false).await;
    // Neither: nothing can reach them.
    rig.contact("none", 1, false, false).await;
    assert_eq!(rig.plan("birthday", at(1, 0)).await, 3);
    assert_eq!(rig.touch("c1", "birthday").await.channel, Channel::Sms);
    assert_eq!(rig.touch("mail", "birthday").await.channel, Channel::Email);

    let report = rig.step(at(1, 9)).await;
    assert_eq!(
        (report.sent, report.fell_back, report.suppressed),
        (1, 1, 1),
        "{report:?}"
    );
    // The SMS API was asked once, for c1, with its credentials.
    let asked = sms.requests();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].path(), "/2010-04-01/Accounts/ACtest/Messages.json");
    assert_eq!(asked[0].form_value("To").as_deref(), Some("+15551230000"));
    let c1 = rig.store.get_contact(&cid("c1")).await.unwrap().unwrap();
    assert!(!c1.sms_consent && c1.email_consent, "SMS consent withdrawn");
    let moved = rig.touch("c1", "birthday").await;
    assert_eq!(
        (moved.status, moved.channel.as_str()),
        (TouchStatus::Planned, "email")
    );
    assert!(
        moved
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("twilio 21610") && r.ends_with("trying email")),
        "{:?}",
        moved.reason
    );
    let none = rig.touch("none", "birthday").await;
    assert_eq!(
        (none.status, none.reason.as_deref()),
        (TouchStatus::Suppressed, Some("no phone number"))
    );

    // Its job runs: sent by email, and the ledger says how it got there.
    let report = rig.step(at(1, 9)).await;
    assert_eq!(report.sent, 1, "{report:?}");
    rig.assert_sent_on("c1", "birthday", "email", "sms: twilio 21610")
        .await;
    // Marketing email carries the one-click unsubscribe link with c1's token.
    let emails = rig.emails();
    assert_eq!(emails.len(), 2);
    let c1_mail = emails
        .iter()
        .find(|m| m.contains("c1@example.com"))
        .unwrap();
    let header = c1_mail
        .lines()
        .find(|l| l.starts_with("List-Unsubscribe: "))
        .expect("List-Unsubscribe");
    let token = header
        .split("https://rapport.example/u/")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .expect("an https link under api.public_url");
    assert_eq!(
        unsubscribe::verify(&rig.channels.unsubscribe_key, token),
        Some(cid("c1"))
    );
    assert!(c1_mail.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));

    // The next occasion goes straight to email: no SMS attempt.
    rig.customer_since("c1", years_before(date(10), 3)).await;
    assert_eq!(rig.plan("anniversary", at(10, 0)).await, 1);
    assert_eq!(rig.touch("c1", "anniversary").await.channel, Channel::Email);
    assert_eq!(rig.step(at(10, 9)).await.sent, 1);
    assert_eq!(sms.count(), 1, "no second SMS request");
    assert!(
        !rig.store
            .get_contact(&cid("c1"))
            .await
            .unwrap()
            .unwrap()
            .sms_consent
    );
}

async fn a_webhook_410_disables_the_endpoint_for_later_touches<S: TestStore>(backend: Backend) {
    let (rig, _sms, hook) = stubbed::<S>(
        backend,
        Reply::status(201),
        Reply::status(410),
        &[("OCCASIONS__BIRTHDAY__CHANNELS", r#"["webhook", "email"]"#)],
    )
    .await;
    rig.contact("w1", 1, true, false).await;
    rig.contact("w2", 2, true, false).await;
    rig.plan("birthday", at(1, 0)).await;
    let report = rig.step(at(1, 9)).await;
    assert_eq!(report.fell_back, 1, "{report:?}");
    assert_eq!(hook.count(), 1);
    assert_eq!(rig.step(at(1, 9)).await.sent, 1);
    rig.assert_sent_on("w1", "birthday", "email", "webhook 410")
        .await;

    // The next day's touch never reaches the endpoint: disabled, it moves on at once.
    rig.plan("birthday", at(2, 0)).await;
    assert_eq!(rig.step(at(2, 9)).await.fell_back, 1);
    assert_eq!(rig.step(at(2, 9)).await.sent, 1);
    assert_eq!(hook.count(), 1, "a disabled endpoint is not called");
    let w2 = rig.touch("w2", "birthday").await;
    assert!(
        w2.reason
            .as_deref()
            .is_some_and(|r| r.contains("disabled after a 410")),
        "{:?}",
        w2.reason
    );

    // Another replica (a fresh channel set over the same store) sees it disabled too;
    // a changed endpoint config is a new endpoint, enabled.
    let again = Channels::build(&rig.cfg, rig.store.as_ref(), secrets)
        .await
        .unwrap();
    assert!(again.webhook_disabled(rig.store.as_ref()).await);
    let mut moved = (*rig.cfg).clone();
    if let Some(w) = moved.webhook.as_mut() {
        w.url = format!("{}/other", hook.url());
    }
    let changed = Channels::build(&moved, rig.store.as_ref(), secrets)
        .await
        .unwrap();
    assert!(!changed.webhook_disabled(rig.store.as_ref()).await);
}

async fn a_failing_webhook_retries_on_schedule_then_is_a_dead_letter_replayed_once<S: TestStore>(
    backend: Backend,
) {
    let sms = HttpStub::always(Reply::status(201)).await;
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let hook = HttpStub::start(move |_| {
        if flag.load(Ordering::SeqCst) {
            Reply::status(204)
        } else {
            Reply::status(500)
        }
    })
    .await;
    let rig = rig::<S>(
        backend,
        &sms,
        &hook,
        &[
            ("OCCASIONS__BIRTHDAY__CHANNELS", r#"["webhook"]"#),
            ("CHANNELS__WEBHOOK__RETRY_SCHEDULE", r#"["5s", "1m"]"#),
        ],
    )
    .await;
    rig.contact("h1", 1, true, false).await;
    rig.plan("birthday", at(1, 0)).await;
    let t0 = at(1, 9);
    assert_eq!(rig.step(t0).await.retried, 1);
    let first = rig.touch("h1", "birthday").await;
    // The schedule's first step (jitter only shortens it, by up to a fifth).
    let wait = first.next_attempt_at - t0;
    assert!(
        wait >= Duration::seconds(4) && wait <= Duration::seconds(5),
        "{wait}"
    );
    let t1 = first.next_attempt_at;
    assert_eq!(rig.step(t1).await.retried, 1);
    let second = rig.touch("h1", "birthday").await;
    let wait = second.next_attempt_at - t1;
    assert!(
        wait >= Duration::seconds(48) && wait <= Duration::seconds(60),
        "{wait}"
    );
    // The schedule is used up: a dead letter.
    assert_eq!(rig.step(second.next_attempt_at).await.failed, 1);
    let dead = rig.store.dead_letters(None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].reason.as_deref(),
        Some("gave up after 3 attempts: webhook 500 (transient)")
    );

    // Replayed once the receiver is healthy: delivered, once, under the same id.
    healthy.store(true, Ordering::SeqCst);
    let now = second.next_attempt_at + Duration::minutes(5);
    let revived = rig.store.revive(&[dead[0].id.clone()], now).await.unwrap();
    assert_eq!(revived.len(), 1);
    assert!(
        rig.store
            .revive(&[dead[0].id.clone()], now)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(rig.step(now).await.sent, 1);
    assert_eq!(
        rig.step(now + Duration::minutes(1)).await,
        BatchReport::default()
    );
    let calls = hook.requests();
    assert_eq!(calls.len(), 4);
    let ids: std::collections::BTreeSet<_> = calls
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "one webhook-id for every attempt: {ids:?}");
    let body: serde_json::Value = serde_json::from_slice(&calls[3].body).unwrap();
    assert_eq!(body["type"], "touch.due");
    assert_eq!(body["data"]["touch_id"], dead[0].id.as_str());
    assert_eq!(
        (
            body["data"]["occasion"].as_str(),
            body["data"]["tier"].as_str(),
            body["data"]["contact_id"].as_str()
        ),
        (Some("birthday"), Some("family"), Some("h1"))
    );
    assert!(
        body["data"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Name-h1"))
    );
    assert!(rig.store.dead_letters(None, 10).await.unwrap().is_empty());
}

async fn retry_after_is_honoured<S: TestStore>(backend: Backend) {
    let (rig, _sms, _hook) = stubbed::<S>(
        backend,
        Reply::status(429).header("Retry-After", "90"),
        Reply::status(503).header("Retry-After", "120"),
        &[
            ("OCCASIONS__BIRTHDAY__CHANNELS", r#"["webhook"]"#),
            ("OCCASIONS__ANNIVERSARY__CHANNELS", r#"["sms"]"#),
        ],
    )
    .await;
    rig.contact("r1", 1, true, true).await;
    rig.plan("birthday", at(1, 0)).await;
    let now = at(1, 9);
    assert_eq!(rig.step(now).await.retried, 1);
    // The schedule says 5 s; the receiver asked for 120.
    let wait = rig.touch("r1", "birthday").await.next_attempt_at - now;
    assert_eq!(wait, Duration::seconds(120));

    rig.customer_since("r1", years_before(date(20), 2)).await;
    rig.plan("anniversary", at(20, 0)).await;
    // Within dispatch.max_age (6 h) of the planned time, so a retry is still possible.
    let now = at(20, 1);
    assert_eq!(rig.step(now).await.retried, 1);
    // Backoff would be 15 to 30 s; the API asked for 90.
    let wait = rig.touch("r1", "anniversary").await.next_attempt_at - now;
    assert_eq!(wait, Duration::seconds(90));
}

async fn a_permanent_sms_failure_with_no_channel_left_is_a_dead_letter<S: TestStore>(
    backend: Backend,
) {
    let (rig, sms, _hook) = stubbed::<S>(backend, Reply::json(
        400,
        r#"{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}"#,
    ), Reply::status(200), &[("OCCASIONS__BIRTHDAY__CHANNELS", r#"["sms"]"#)]).await;
    rig.contact("p1", 1, true, true).await;
    rig.plan("birthday", at(1, 0)).await;
    assert_eq!(rig.step(at(1, 9)).await.failed, 1);
    let dead = rig.store.dead_letters(None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].reason.as_deref(),
        Some("failed permanently: sms: twilio 400 code 21211 (permanent)")
    );
    // Not an opt-out: consent stays.
    assert!(
        rig.store
            .get_contact(&cid("p1"))
            .await
            .unwrap()
            .unwrap()
            .sms_consent
    );
    assert_eq!(sms.count(), 1);
}

async fn an_sms_timed_out_after_sending_is_retried_once_then_a_dead_letter<S: TestStore>(
    backend: Backend,
) {
    // The API takes the request and answers after the client's 2 s timeout.
    let (rig, sms, _hook) = stubbed::<S>(
        backend,
        Reply::status(201).after(std::time::Duration::from_secs(4)),
        Reply::status(200),
        &[("OCCASIONS__BIRTHDAY__CHANNELS", r#"["sms"]"#)],
    )
    .await;
    rig.contact("u1", 1, true, true).await;
    rig.plan("birthday", at(1, 0)).await;
    let now = at(1, 1);
    assert_eq!(rig.step(now).await.retried, 1);
    let retry = rig.touch("u1", "birthday").await;
    assert!(
        retry
            .reason
            .as_deref()
            .is_some_and(|r| r.ends_with("(uncertain)")),
        "{:?}",
        retry.reason
    );
    assert_eq!(rig.step(retry.next_attempt_at).await.failed, 1);
    let dead = rig.store.dead_letters(None, 10).await.unwrap();
    assert!(
        dead[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("uncertain twice, not retried again: sms:")),
        "{:?}",
        dead[0].reason
    );
    // Sent (as far as the API knows) at most twice, never more.
    assert_eq!(sms.count(), 2);
}

async fn a_moved_touch_gets_the_new_channels_full_retries<S: TestStore>(backend: Backend) {
    let (rig, _sms, hook) = stubbed::<S>(
        backend,
        Reply::json(400, r#"{"code":21211,"status":400}"#),
        Reply::status(500),
        &[
            ("OCCASIONS__BIRTHDAY__CHANNELS", r#"["sms", "webhook"]"#),
            ("CHANNELS__WEBHOOK__RETRY_SCHEDULE", r#"["5s", "1m"]"#),
        ],
    )
    .await;
    rig.contact("m1", 1, true, true).await;
    rig.plan("birthday", at(1, 0)).await;
    let now = at(1, 1);
    assert_eq!(rig.step(now).await.fell_back, 1);
    assert_eq!(rig.touch("m1", "birthday").await.attempts, 0);
    // On the webhook: the schedule from its first step, all three attempts.
    assert_eq!(rig.step(now).await.retried, 1);
    let first = rig.touch("m1", "birthday").await;
    let wait = first.next_attempt_at - now;
    assert!(wait <= Duration::seconds(5), "{wait}");
    assert_eq!(rig.step(first.next_attempt_at).await.retried, 1);
    let second = rig.touch("m1", "birthday").await;
    assert_eq!(rig.step(second.next_attempt_at).await.failed, 1);
    assert_eq!(hook.count(), 3);
    let dead = rig.touch("m1", "birthday").await;
    assert_eq!(
        dead.reason.as_deref(),
        Some("gave up after 3 attempts: webhook 500 (transient)")
    );
}

async fn a_contact_moved_to_a_tier_without_the_channel_gets_the_next_one<S: TestStore>(
    backend: Backend,
) {
    let (rig, sms, _hook) = stubbed::<S>(
        backend,
        Reply::status(201),
        Reply::status(200),
        &[("OCCASIONS__BIRTHDAY__CHANNELS", r#"["sms", "email"]"#)],
    )
    .await;
    rig.contact("t1", 1, true, true).await;
    rig.plan("birthday", at(1, 0)).await;
    assert_eq!(rig.touch("t1", "birthday").await.channel, Channel::Sms);
    // Demoted before the send: acquaintances are reached by email only.
    let stored = rig.store.get_contact(&cid("t1")).await.unwrap().unwrap();
    rig.store
        .upsert_contacts(&[ContactUpsert {
            contact: Contact {
                tier: "acquaintance".into(),
                ..stored
            },
            email_consent: None,
            sms_consent: None,
            keep_tier: false,
        }])
        .await
        .unwrap();
    // Inside the acquaintance window (10:00-17:00).
    let now = at(1, 11);
    assert_eq!(rig.step(now).await.fell_back, 1);
    assert_eq!(rig.step(now).await.sent, 1);
    rig.assert_sent_on(
        "t1",
        "birthday",
        "email",
        "tier acquaintance does not allow sms",
    )
    .await;
    assert_eq!(sms.count(), 0);
}

async fn a_rate_limit_place_after_expiry_is_not_waited_for<S: TestStore>(backend: Backend) {
    let (rig, sms, _hook) = stubbed::<S>(
        backend,
        Reply::status(201),
        Reply::status(200),
        &[
            ("OCCASIONS__BIRTHDAY__CHANNELS", r#"["sms"]"#),
            ("CHANNELS__SMS__RATE", "1/h"),
        ],
    )
    .await;
    rig.contact("a1", 1, true, true).await;
    rig.contact("a2", 1, true, true).await;
    rig.plan("birthday", at(1, 0)).await;
    // 23:30: one place now, the next an hour later, after the birthday's end.
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        rig.step(at(1, 23) + Duration::minutes(30)),
    )
    .await
    .expect("a place past the expiry is not waited for");
    assert_eq!((report.sent, report.expired), (1, 1), "{report:?}");
    let late = rig
        .touches()
        .await
        .into_iter()
        .find(|t| t.status == TouchStatus::Expired)
        .unwrap();
    assert_eq!(
        late.reason.as_deref(),
        Some("the sms rate limit (1/1h) has no place before its expiry")
    );
    assert_eq!(sms.count(), 1);
}

async fn every_channel_left_behind_is_named_on_the_touch<S: TestStore>(backend: Backend) {
    let (rig, _sms, _hook) = stubbed::<S>(
        backend,
        Reply::json(400, r#"{"code":21211,"status":400}"#),
        Reply::status(410),
        &[(
            "OCCASIONS__BIRTHDAY__CHANNELS",
            r#"["sms", "webhook", "email"]"#,
        )],
    )
    .await;
    rig.contact("j1", 1, true, true).await;
    rig.plan("birthday", at(1, 0)).await;
    let now = at(1, 1);
    assert_eq!(rig.step(now).await.fell_back, 1);
    assert_eq!(rig.step(now).await.fell_back, 1);
    assert_eq!(rig.step(now).await.sent, 1);
    let sent = rig.touch("j1", "birthday").await;
    assert_eq!(
        (sent.status, sent.channel.as_str()),
        (TouchStatus::Sent, "email")
    );
    assert_eq!(
        sent.reason.as_deref(),
        Some(
            "sms: twilio 400 code 21211 (permanent); trying webhook; \
             webhook: webhook 410 (gone); trying email"
        )
    );
}
