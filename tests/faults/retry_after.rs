//! A provider's `Retry-After` is a lower bound, to the millisecond, on both backends: a
//! webhook receiver (and, on SQLite, a Twilio-compatible SMS API) answers each touch's
//! first request `429` with `Retry-After: 6`, then accepts it. The second request of
//! each touch arrives at least 6 s after the first (the daemon reads the answer after
//! the receiver took the request, so the gap at the receiver can only be longer than
//! what the daemon waited), and within 8 s (the retry is not lost or held back), with
//! exactly two requests per touch, under one `webhook-id`.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::{Datelike, Utc};
use rapport::{
    channels::webhook::webhook_id,
    domain::{ContactId, TouchId},
};

use crate::{
    rig::{Backend, On, a_zone_far_from_midnight, eventually, start_with},
    support::{
        daemon::{Guard, Workspace},
        http_stub::{HttpStub, Reply, Request},
        smtp::{SmtpOptions, SmtpServer},
    },
};

const ASKED: Duration = Duration::from_secs(6);
/// Past this, the retry counts as held back: the wait is rounded up to the second, then
/// a poll (100 ms) and a claim.
const LATEST: Duration = Duration::from_secs(8);
const CONTACTS: usize = 3;
const SECRET_VAR: &str = "FAULTS_RETRY_AFTER_WEBHOOK_SECRET";
/// 26 bytes (Standard Webhooks asks for 24 to 64), as `whsec_` + base64.
const SECRET: &str = "whsec_cmV0cnktYWZ0ZXIgZmF1bHQgdGVzdCBrZXk=";
const TOKEN_VAR: &str = "FAULTS_RETRY_AFTER_TWILIO_TOKEN";
const SID: &str = "ACfaults0retry0after";

/// A receiver that answers the first request of each touch (told apart by `key`) with
/// `first`, and every later one with `then`.
async fn throttling_stub(
    key: impl Fn(&Request) -> String + Send + Sync + 'static,
    first: Reply,
    then: Reply,
) -> HttpStub {
    let seen = Mutex::new(HashSet::new());
    HttpStub::start(move |r| {
        let fresh = seen.lock().expect("seen").insert(key(r));
        if fresh { first.clone() } else { then.clone() }
    })
    .await
}

fn too_many(body: &str) -> Reply {
    Reply::json(429, body).header("Retry-After", ASKED.as_secs().to_string())
}

/// `CONTACTS` family contacts with a phone number and their birthday today; returns
/// the CSV and each one's birthday touch.
fn birthdays_today() -> (String, Vec<TouchId>) {
    let (zone, today) = a_zone_far_from_midnight();
    let tz: chrono_tz::Tz = zone.parse().expect("zone");
    let year = Utc::now().with_timezone(&tz).year().to_string();
    let mut csv = String::from("id,first_name,email,phone,timezone,birthday,tier\n");
    let mut touches = Vec::new();
    for i in 0..CONTACTS {
        let id = format!("ra{i}");
        csv.push_str(&format!(
            "{id},Name{i},{id}@example.com,+1555010{i:04},{zone},{today},family\n"
        ));
        let contact = ContactId::parse(&id).expect("contact id");
        touches.push(TouchId::derive("birthday", &contact, &year));
    }
    (csv, touches)
}

/// Runs the daemon until `stub` has two requests per touch, a few seconds more (no
/// third may follow), and stops it. Returns the requests grouped by `key`.
async fn run(
    ws: &Workspace,
    env: &[(&str, &str)],
    stub: &HttpStub,
    key: impl Fn(&Request) -> String,
) -> BTreeMap<String, Vec<Request>> {
    let mut daemon: Guard = start_with(ws, 0, env);
    assert!(
        eventually(Duration::from_secs(60), || stub.count() >= 2 * CONTACTS).await,
        "{} of {} requests; log:\n{}",
        stub.count(),
        2 * CONTACTS,
        ws.log(0)
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    daemon.stop_gracefully();
    let mut by_touch: BTreeMap<String, Vec<Request>> = BTreeMap::new();
    for r in stub.requests() {
        by_touch.entry(key(&r)).or_default().push(r);
    }
    by_touch
}

/// Two requests per touch, the second `ASKED` to `LATEST` after the first; returns the
/// gaps.
fn assert_waited(label: &str, by_touch: &BTreeMap<String, Vec<Request>>) -> Vec<Duration> {
    assert_eq!(by_touch.len(), CONTACTS, "{label}: {:?}", by_touch.keys());
    let mut gaps = Vec::new();
    for (touch, requests) in by_touch {
        assert_eq!(requests.len(), 2, "{label}: {touch}");
        let mut at: Vec<Instant> = requests.iter().map(|r| r.received_at).collect();
        at.sort();
        let gap = at[1] - at[0];
        assert!(
            gap >= ASKED,
            "{label}: {touch} retried {gap:?} after a Retry-After of {ASKED:?}"
        );
        assert!(gap < LATEST, "{label}: {touch} retried only after {gap:?}");
        gaps.push(gap);
    }
    eprintln!("retry-after ({label}): second requests {gaps:?} after the first");
    gaps
}

async fn webhook_retry_after(backend: Backend, label: &str) {
    let key = |r: &Request| r.header("webhook-id").unwrap_or_default().to_owned();
    let hook = throttling_stub(key, too_many("{}"), Reply::status(200)).await;
    // The base config has an email channel; nothing may reach it.
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let config = format!(
        r#"[occasions.birthday]
channels = ["webhook"]
[channels.webhook]
url = "{url}"
secret_env = "{SECRET_VAR}"
allow_private = true
timeout = "1s"
"#,
        url = hook.url_for("/hooks/rapport"),
    );
    let on = On::new(backend, &smtp.url(), &config);
    let (csv, touches) = birthdays_today();
    on.ws.import_csv(&csv);
    let by_touch = run(&on.ws, &[(SECRET_VAR, SECRET)], &hook, key).await;
    let mut expected: Vec<String> = touches.iter().map(webhook_id).collect();
    expected.sort();
    assert_eq!(
        by_touch.keys().cloned().collect::<Vec<_>>(),
        expected,
        "{label}: one webhook-id per touch, the same on its retry"
    );
    assert_waited(label, &by_touch);
    assert_eq!(smtp.count(), 0, "nothing goes by email");
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_a_webhook_retry_never_comes_before_its_retry_after() {
    webhook_retry_after(Backend::Sqlite, "webhook, SQLite").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_a_webhook_retry_never_comes_before_its_retry_after() {
    webhook_retry_after(Backend::Redis, "webhook, Redis").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_an_sms_retry_never_comes_before_its_retry_after() {
    let key = |r: &Request| r.form_value("To").unwrap_or_default();
    let api = throttling_stub(
        key,
        too_many(r#"{"code": 20429, "message": "Too Many Requests", "status": 429}"#),
        Reply::json(201, r#"{"sid": "SM0", "status": "queued"}"#),
    )
    .await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let config = format!(
        r#"[occasions.birthday]
channels = ["sms"]
[channels.sms]
transport = "twilio"
base_url = "{url}"
account_sid = "{SID}"
auth_token_env = "{TOKEN_VAR}"
from = "+15550000000"
allow_private = true
timeout = "1s"
"#,
        url = api.url(),
    );
    let ws = Workspace::new(&smtp.url(), &config);
    let (csv, _) = birthdays_today();
    ws.import_csv(&csv);
    let by_touch = run(&ws, &[(TOKEN_VAR, "token-faults")], &api, key).await;
    let numbers: Vec<String> = (0..CONTACTS).map(|i| format!("+1555010{i:04}")).collect();
    assert_eq!(by_touch.keys().cloned().collect::<Vec<_>>(), numbers);
    for r in by_touch.values().flatten() {
        assert_eq!(
            r.path(),
            format!("/2010-04-01/Accounts/{SID}/Messages.json")
        );
    }
    assert_waited("SMS, SQLite", &by_touch);
    assert_eq!(smtp.count(), 0, "nothing goes by email");
}
