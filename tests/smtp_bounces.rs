//! SMTP hard bounces through the dispatcher, on both backends, against the in-process
//! SMTP server announcing ENHANCEDSTATUSCODES: a `550 5.1.1` (at RCPT, or after the
//! body) fails the touch on email, moves it to SMS when the contact has a number, and
//! suppresses the address as a `bounce_hard` response would (a later occasion never
//! reaches the server on email); a `550 5.7.1` fails the touch but suppresses nothing
//! (the next occasion tries the address again). `rapport contacts show` says why the
//! address is suppressed. Reasons carry codes only.
//!
//! Time is a [`FixedClock`] moved by hand; "the daemon" is a step that dispatches every
//! touch due at that instant, as its job would.

#[path = "support/backends.rs"]
mod backends;
#[path = "support/ledger.rs"]
#[allow(dead_code, unreachable_pub)]
mod ledger;
#[path = "support/redis.rs"]
#[allow(dead_code, unreachable_pub)]
mod redis_server;
#[path = "support/smtp/mod.rs"]
#[allow(dead_code, unreachable_pub)]
mod smtp;

use std::{path::Path, process::Command, sync::Arc};

use backends::TestStore;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use ledger::{Backend, day0};
use rapport::{
    channels::Channels,
    config::Config,
    dispatch::{BatchReport, Dispatcher, Recorder},
    domain::{
        Birthday, Contact, ContactId, EmailAddress, FixedClock, MonthDay, PhoneNumber, Touch,
        TouchId, TouchStatus,
    },
    learning::ResponseKind,
    planner::runner,
    render::Renderer,
    store::ContactUpsert,
};
use smtp::{SmtpOptions, SmtpServer};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_rapport");
/// Put into every refusal the server sends: must never reach a reason, a record or
/// `contacts show`.
const SERVER_TEXT: &str = "SERVERTEXT";

fn cid(s: &str) -> ContactId {
    ContactId::parse(s).unwrap()
}

struct Rig<S> {
    dir: tempfile::TempDir,
    /// The environment `rapport` needs to open this rig's store.
    env: Vec<(String, String)>,
    store: Arc<S>,
    cfg: Arc<Config>,
    clock: Arc<FixedClock>,
    dispatcher: Dispatcher<S>,
}

async fn rig<S: TestStore>(backend: Backend, smtp: &SmtpServer) -> Rig<S> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let storage = match backend {
        Backend::Sqlite => vec![("STORAGE__URL", format!("sqlite://{d}/r.db"))],
        Backend::Redis => vec![
            ("STORAGE__BACKEND", "redis".into()),
            ("STORAGE__URL", redis_server::shared_url()),
            ("STORAGE__PREFIX", redis_server::unique_prefix("bounce")),
        ],
    };
    // No AUTH against the test server, whatever the machine's environment holds.
    let unset = "RAPPORT_BOUNCE_TEST_UNSET".to_owned();
    let env: Vec<(String, String)> = storage
        .into_iter()
        .chain([
            ("TEMPLATES__DIR", format!("{REPO}/templates")),
            ("CHANNELS__EMAIL__TRANSPORT", "smtp".into()),
            ("CHANNELS__EMAIL__URL", smtp.url()),
            ("CHANNELS__EMAIL__TLS", "none".into()),
            ("CHANNELS__EMAIL__USERNAME_ENV", unset.clone()),
            ("CHANNELS__EMAIL__PASSWORD_ENV", unset),
            ("CHANNELS__SMS__OUTBOX_DIR", format!("{d}/outbox")),
            ("DEFAULTS__SEND_WINDOW", "\"00:00-24:00\"".into()),
        ])
        .map(|(k, v)| (format!("RAPPORT__{k}"), v))
        .collect();
    let cfg = Arc::new(
        Config::load_with(
            Path::new(&format!("{REPO}/config/rapport.toml")),
            None,
            env.clone(),
        )
        .unwrap_or_else(|e| panic!("{e}")),
    );
    let store = Arc::new(S::open_for(&cfg.storage).await);
    let clock = Arc::new(FixedClock::new(day0()));
    let channels = Channels::build(&cfg, store.as_ref(), |_| None)
        .await
        .unwrap();
    let tasks = TaskTracker::new();
    let dispatcher = Dispatcher {
        store: store.clone(),
        cfg: cfg.clone(),
        renderer: Arc::new(Renderer::load(&cfg.templates_dir).unwrap()),
        channels: Arc::new(channels),
        clock: clock.clone(),
        recorder: Recorder::spawn(store.clone(), clock.clone(), &tasks),
        tasks,
        stopping: CancellationToken::new(),
        abandon: CancellationToken::new(),
        custody: rapport::custody::Custody::holding("test"),
    };
    Rig {
        dir,
        env,
        store,
        cfg,
        clock,
        dispatcher,
    }
}

impl<S: TestStore> Rig<S> {
    fn at(&self, day: i64, hour: i64) -> DateTime<Utc> {
        day0() + Duration::days(day) + Duration::hours(hour)
    }

    fn date(&self, day: i64) -> NaiveDate {
        self.at(day, 0).date_naive()
    }

    /// A family contact (email and SMS allowed) with an email address, a birthday on
    /// `birthday`, an anniversary (customer since a year earlier) on `anniversary` and,
    /// optionally, a phone number.
    async fn contact(&self, id: &str, phone: bool, birthday: i64, anniversary: i64) {
        use chrono::Datelike;
        let since = self.date(anniversary);
        let contact = Contact {
            id: cid(id),
            first_name: Some(format!("Name-{id}")),
            last_name: None,
            email: Some(EmailAddress::parse(&format!("{id}@example.com")).unwrap()),
            phone: phone.then(|| PhoneNumber::parse("+15551230000").unwrap()),
            timezone: Some(chrono_tz::UTC),
            locale: None,
            birthday: Some(Birthday {
                day: MonthDay::of(self.date(birthday)),
                year: None,
            }),
            customer_since: since.with_year(since.year() - 1),
            tier: "family".into(),
            attributes: serde_json::Map::new(),
            email_consent: true,
            sms_consent: true,
        };
        self.upsert(contact, Some(true)).await;
    }

    async fn upsert(&self, contact: Contact, email_consent: Option<bool>) {
        self.store
            .upsert_contacts(&[ContactUpsert {
                contact,
                email_consent,
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

    async fn touch(&self, contact: &str, occasion: &str) -> Touch {
        self.store
            .touches_for_contact(&cid(contact))
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.occasion == occasion)
            .unwrap_or_else(|| panic!("no {occasion} touch for {contact}"))
    }

    /// Every planned touch due by `now` is dispatched, as the queue would.
    async fn step(&self, now: DateTime<Utc>, contacts: &[&str]) -> BatchReport {
        self.clock.set(now);
        let mut due: Vec<TouchId> = Vec::new();
        for c in contacts {
            due.extend(
                self.store
                    .touches_for_contact(&cid(c))
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|t| t.status == TouchStatus::Planned && t.next_attempt_at <= now)
                    .map(|t| t.id),
            );
        }
        if due.is_empty() {
            return BatchReport::default();
        }
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            self.dispatcher.dispatch(&due, "bounce-test"),
        )
        .await
        .expect("the dispatch stalled")
        .unwrap()
    }

    async fn email_consent(&self, id: &str) -> bool {
        let c = self.store.get_contact(&cid(id)).await.unwrap().unwrap();
        c.email_consent
    }

    /// `rapport contacts show ID` on this rig's store.
    fn show(&self, id: &str) -> String {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir.path())
            .args(["contacts", "show", id]);
        for (k, _) in std::env::vars() {
            if k.starts_with("RAPPORT") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        let out = cmd.envs(self.env.iter().cloned()).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

/// The SMTP server: `rcpt@` refused at RCPT with 5.1.1, `data@` refused after the body
/// with 5.1.1, `policy@` refused at RCPT with 5.7.1; anyone else accepted.
async fn server() -> SmtpServer {
    let server = SmtpServer::start(SmtpOptions {
        enhanced_status_codes: true,
        ..SmtpOptions::default()
    })
    .await;
    let reply = |status: &str, who: &str| format!("550 {status} <{who}@example.com> {SERVER_TEXT}");
    server.reject_rcpt("rcpt@", reply("5.1.1", "rcpt"));
    server.fail_always("data@", reply("5.1.1", "data"));
    server.reject_rcpt("policy@", reply("5.7.1", "policy"));
    server
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

both!(a_hard_bounce_suppresses_the_address_and_a_policy_refusal_does_not);

async fn a_hard_bounce_suppresses_the_address_and_a_policy_refusal_does_not<S: TestStore>(
    backend: Backend,
) {
    let smtp = server().await;
    let rig = rig::<S>(backend, &smtp).await;
    let all = ["rcpt", "data", "policy", "ok"];
    // Birthdays on day 1, anniversaries on day 5 (after the family tier's 2-day gap).
    rig.contact("rcpt", true, 1, 5).await;
    rig.contact("data", false, 1, 5).await;
    rig.contact("policy", false, 1, 5).await;
    rig.contact("ok", false, 1, 5).await;
    assert_eq!(rig.plan("birthday", rig.at(1, 0)).await, 4);

    // Day 1: the bounced touch with a number moves to SMS, the others fail for good.
    let now = rig.at(1, 1);
    let report = rig.step(now, &all).await;
    assert_eq!(
        (report.sent, report.fell_back, report.failed),
        (1, 1, 2),
        "{report:?}"
    );
    assert_eq!(rig.step(now, &all).await.sent, 1, "rcpt's note goes by SMS");
    assert_eq!(
        (smtp.rcpts_for("rcpt@"), smtp.attempts_for("data@")),
        (1, 1),
        "each address tried once"
    );
    assert_eq!(smtp.rcpts_for("policy@"), 1);
    assert_eq!(smtp.count(), 1, "only ok's note is accepted");

    let moved = rig.touch("rcpt", "birthday").await;
    assert_eq!(
        (moved.status, moved.channel.as_str()),
        (TouchStatus::Sent, "sms")
    );
    assert_eq!(
        moved.reason.as_deref(),
        Some("email: smtp 550 5.1.1 (hard bounce); trying sms")
    );
    let failed = rig.touch("data", "birthday").await;
    assert_eq!(failed.status, TouchStatus::Failed);
    assert_eq!(
        failed.reason.as_deref(),
        Some("failed permanently: email: smtp 550 5.1.1 (hard bounce)")
    );
    let refused = rig.touch("policy", "birthday").await;
    assert_eq!(refused.status, TouchStatus::Failed);
    assert_eq!(
        refused.reason.as_deref(),
        Some("failed permanently: email: smtp 550 5.7.1 (permanent)")
    );

    // Suppressed exactly as a `bounce_hard` response would: consent withdrawn, a
    // response on the timeline naming the touch with the codes, and the address on the
    // suppression list (a re-import giving consent back does not lift it).
    assert!(!rig.email_consent("rcpt").await);
    assert!(!rig.email_consent("data").await);
    assert!(
        rig.email_consent("policy").await,
        "5.7.1 suppresses nothing"
    );
    assert!(rig.email_consent("ok").await);
    for (who, touch) in [("rcpt", &moved), ("data", &failed)] {
        let responses = rig.store.responses_for_contact(&cid(who)).await.unwrap();
        assert_eq!(responses.len(), 1, "{who}: {responses:?}");
        let r = &responses[0];
        assert_eq!(
            (r.kind, r.channel.as_str(), r.source.as_str()),
            (ResponseKind::BounceHard, "email", "delivery")
        );
        assert_eq!(r.detail.as_deref(), Some("smtp 550 5.1.1"));
        assert_eq!(r.touch.as_ref(), Some(&touch.id));
        assert_eq!(r.at, now);
        let stored = rig.store.get_contact(&cid(who)).await.unwrap().unwrap();
        rig.upsert(stored, Some(true)).await;
        assert!(
            !rig.email_consent(who).await,
            "{who}: the suppression holds"
        );
    }
    assert!(
        rig.store
            .responses_for_contact(&cid("policy"))
            .await
            .unwrap()
            .is_empty()
    );

    // Day 5: the anniversaries. The suppressed addresses are not tried again (rcpt's
    // goes by SMS, data's has no channel left); the refused-by-policy one is.
    assert_eq!(rig.plan("anniversary", rig.at(5, 0)).await, 4);
    let now = rig.at(5, 1);
    for _ in 0..2 {
        rig.step(now, &all).await;
    }
    assert_eq!(
        smtp.rcpts_for("rcpt@"),
        1,
        "no second attempt at a hard bounce"
    );
    assert_eq!(
        smtp.rcpts_for("data@"),
        1,
        "no second attempt at a hard bounce"
    );
    assert_eq!(
        smtp.rcpts_for("policy@"),
        2,
        "a policy refusal is tried again"
    );
    assert_eq!(smtp.count(), 2, "ok's two notes");
    let by_sms = rig.touch("rcpt", "anniversary").await;
    assert_eq!(
        (by_sms.status, by_sms.channel.as_str()),
        (TouchStatus::Sent, "sms")
    );
    assert_eq!(
        rig.touch("data", "anniversary").await.status,
        TouchStatus::Suppressed
    );
    assert_eq!(
        rig.touch("policy", "anniversary").await.status,
        TouchStatus::Failed
    );

    // `contacts show` says why and since when; nothing of the server's text.
    let show = rig.show("rcpt");
    let day = rig.date(1).format("%Y-%m-%d");
    assert!(show.contains("rcpt@example.com (suppressed)"), "{show}");
    assert!(
        show.contains(&format!(
            "email suppressed: hard bounce (smtp 550 5.1.1) on {day}"
        )),
        "{show}"
    );
    assert!(show.contains("reply  bounce_hard by email to"), "{show}");
    assert!(!show.contains(SERVER_TEXT), "{show}");
    let show = rig.show("policy");
    assert!(!show.contains("suppressed"), "{show}");
    assert!(
        show.contains("smtp 550 5.7.1"),
        "the touch's reason: {show}"
    );
}
