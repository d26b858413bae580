//! One-click unsubscribe (RFC 8058): `POST /u/{token}` withdraws email consent in
//! either encoding, answers 200 without a redirect and again on a repeat; the `GET`
//! page changes nothing; every token that leads to nobody gets one identical 404; a
//! wrong body is a 400 that changes nothing; and a link taken from an email the
//! dispatcher really sent works.

use crate::support::backends::TestStore;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rapport::{
    channels::{Channels, unsubscribe},
    dispatch::{Dispatcher, Recorder},
    domain::{ContactId, FixedClock, TouchStatus},
    planner::runner,
    render::Renderer,
};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::harness::{
    Backend, Server, TOKEN, UNSUBSCRIBE_KEY, backend_config_with, serve_keyed, server,
};

const FORM: &str = "application/x-www-form-urlencoded";
const ONE_CLICK: &[u8] = b"List-Unsubscribe=One-Click";

struct Answer {
    status: StatusCode,
    headers: header::HeaderMap,
    text: String,
}

/// A request to `/u/{token}` as a mailbox provider makes it: no credentials, and
/// redirects not followed (so one would show).
async fn send<S: TestStore>(
    s: &Server<S>,
    method: Method,
    token: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Answer {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = http.request(method, format!("{}/u/{token}", s.base));
    if let Some(c) = content_type {
        req = req.header(header::CONTENT_TYPE, c);
    }
    let res = req.body(body.to_vec()).send().await.expect("request");
    Answer {
        status: res.status(),
        headers: res.headers().clone(),
        text: res.text().await.expect("body"),
    }
}

/// `body` as the RFC recommends sending it: multipart, under `boundary`.
fn multipart(boundary: &str, name: &str, value: &str) -> (String, Vec<u8>) {
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n--{boundary}--\r\n"
    );
    (
        format!("multipart/form-data; boundary={boundary}"),
        body.into_bytes(),
    )
}

fn token_for(id: &str) -> String {
    unsubscribe::token(UNSUBSCRIBE_KEY, &ContactId::parse(id).unwrap())
}

/// A contact with both consents given.
async fn subscribed<S: TestStore>(s: &Server<S>, id: &str) {
    let body = json!({"email": format!("{id}@example.com"), "phone": "+15551230000",
        "email_consent": true, "sms_consent": true});
    let r = s
        .call(Method::PUT, &format!("/v1/contacts/{id}"), Some(body))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

/// (email consent, SMS consent) as stored.
async fn consents<S: TestStore>(s: &Server<S>, id: &str) -> (bool, bool) {
    let c = s.contact(id).await.expect("stored");
    (c.email_consent, c.sms_consent)
}

fn assert_page(a: &Answer, title: &str) {
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(
        a.headers.get(header::LOCATION).is_none(),
        "never a redirect"
    );
    assert_eq!(
        a.headers[header::CONTENT_TYPE],
        "text/html; charset=utf-8",
        "{}",
        a.text
    );
    assert_eq!(a.headers[header::CACHE_CONTROL], "no-store");
    assert!(a.text.contains(&format!("<h1>{title}</h1>")), "{}", a.text);
}

pub(crate) async fn one_click_withdraws_email_consent_in_either_encoding<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    subscribed(&s, "c-form").await;
    subscribed(&s, "c-multi").await;

    let form = token_for("c-form");
    let done = send(&s, Method::POST, &form, Some(FORM), ONE_CLICK).await;
    assert_page(&done, "Unsubscribed");
    assert!(!done.text.contains(&form), "the token is not echoed");
    assert_eq!(consents(&s, "c-form").await, (false, true), "SMS untouched");
    assert_eq!(consents(&s, "c-multi").await, (true, true), "only that one");

    let (content_type, body) = multipart("rapport-test-7Hq2", "List-Unsubscribe", "One-Click");
    let multi = token_for("c-multi");
    let done = send(&s, Method::POST, &multi, Some(&content_type), &body).await;
    assert_page(&done, "Unsubscribed");
    assert_eq!(consents(&s, "c-multi").await, (false, true));

    // Idempotent: a repeat (as a provider retrying) is 200 and changes nothing more.
    for _ in 0..2 {
        let again = send(&s, Method::POST, &form, Some(FORM), ONE_CLICK).await;
        assert_page(&again, "Unsubscribed");
        let again = send(&s, Method::POST, &multi, Some(&content_type), &body).await;
        assert_page(&again, "Unsubscribed");
    }
    assert_eq!(consents(&s, "c-form").await, (false, true));
    assert_eq!(consents(&s, "c-multi").await, (false, true));

    // Cookies and credentials are neither needed nor looked at.
    subscribed(&s, "c-cookie").await;
    let r = s
        .http
        .post(format!("{}/u/{}", s.base, token_for("c-cookie")))
        .header(header::COOKIE, "session=whatever")
        .header(header::AUTHORIZATION, "Bearer not-a-token")
        .header(header::CONTENT_TYPE, FORM)
        .body(ONE_CLICK)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(consents(&s, "c-cookie").await, (false, true));
    // The contact's view shows it.
    let view = s.call(Method::GET, "/v1/contacts/c-form", None).await;
    assert_eq!(view.body["consent"], json!({"email": false, "sms": true}));
}

pub(crate) async fn the_page_shows_a_form_and_changes_nothing<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    subscribed(&s, "c-page").await;
    let token = token_for("c-page");
    // Link scanners fetch it, perhaps more than once.
    for _ in 0..3 {
        let page = send(&s, Method::GET, &token, None, b"").await;
        assert_page(&page, "Unsubscribe");
        for part in [
            "<form method=\"post\">",
            "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">",
            "Rapport Demo Co",
        ] {
            assert!(page.text.contains(part), "{part}: {}", page.text);
        }
        assert!(!page.text.contains("action="), "posts back to its own URL");
        assert!(!page.text.contains(&token), "the token is not echoed");
        assert_eq!(page.headers[header::REFERRER_POLICY], "no-referrer");
    }
    assert_eq!(consents(&s, "c-page").await, (true, true));
    // What the form's button sends.
    let done = send(&s, Method::POST, &token, Some(FORM), ONE_CLICK).await;
    assert_page(&done, "Unsubscribed");
    assert_eq!(consents(&s, "c-page").await, (false, true));
}

pub(crate) async fn tokens_that_lead_to_nobody_get_one_404<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    subscribed(&s, "ada").await;
    let good = token_for("ada");
    let forged = {
        // One character of the signature changed.
        let mut bytes = good.clone().into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    };
    let other_key = unsubscribe::token(b"another key entirely", &ContactId::parse("ada").unwrap());
    let cases = [
        forged,
        other_key,
        token_for("ghost"),
        "garbage".to_owned(),
        "YWRh.c2ln".to_owned(),
        "%FF%FE".to_owned(),
        "x".repeat(5000),
    ];
    let (content_type, multi) = multipart("b0und", "List-Unsubscribe", "One-Click");
    let mut bodies = Vec::new();
    for token in &cases {
        let answers = [
            send(&s, Method::GET, token, None, b"").await,
            send(&s, Method::POST, token, Some(FORM), ONE_CLICK).await,
            send(&s, Method::POST, token, Some(&content_type), &multi).await,
        ];
        for a in answers {
            let what = format!("{}: {} {}", &token[..token.len().min(40)], a.status, a.text);
            assert_eq!(a.status, 404, "{what}");
            assert!(a.headers.get(header::LOCATION).is_none(), "{what}");
            assert!(!a.text.contains(token.as_str()), "{what}");
            bodies.push(a.text);
        }
    }
    let first = &bodies[0];
    assert!(
        bodies.iter().all(|b| b == first),
        "one body for all: {bodies:?}"
    );
    let e: Value = serde_json::from_str(first).unwrap();
    assert_eq!(e["error"]["status"], 404);
    assert_eq!(e["error"]["code"], "not_found");
    assert_eq!(consents(&s, "ada").await, (true, true));
    assert!(s.contact("ghost").await.is_none(), "nobody created");
}

pub(crate) async fn a_body_that_is_not_one_click_is_400_and_changes_nothing<S: TestStore>(
    b: Backend,
) {
    let s = server::<S>(b).await;
    subscribed(&s, "c-body").await;
    let token = token_for("c-body");
    let (multi_ct, wrong_name) = multipart("b0und", "List-Unsubscribe2", "One-Click");
    let (_, wrong_value) = multipart("b0und", "List-Unsubscribe", "one-click");
    let cases: Vec<(Option<&str>, Vec<u8>)> = vec![
        (Some(FORM), vec![]),
        (None, vec![]),
        (Some(FORM), b"List-Unsubscribe=Yes".to_vec()),
        (Some(FORM), b"unsubscribe=1".to_vec()),
        (
            Some("application/json"),
            br#"{"List-Unsubscribe":"One-Click"}"#.to_vec(),
        ),
        (Some("text/plain"), ONE_CLICK.to_vec()),
        (Some(&multi_ct), wrong_name),
        (Some(&multi_ct), wrong_value),
        (Some("multipart/form-data"), ONE_CLICK.to_vec()),
    ];
    for (content_type, body) in cases {
        let a = send(&s, Method::POST, &token, content_type, &body).await;
        let what = format!(
            "{content_type:?} {:?}: {}",
            String::from_utf8_lossy(&body),
            a.text
        );
        assert_eq!(a.status, 400, "{what}");
        let e: Value = serde_json::from_str(&a.text).unwrap();
        assert_eq!(e["error"]["code"], "not_one_click", "{what}");
        assert!(!a.text.contains(&token), "{what}");
    }
    let mut big = ONE_CLICK.to_vec();
    big.extend(b"&pad=".iter().chain(&[b'x'; 8192]));
    let a = send(&s, Method::POST, &token, Some(FORM), &big).await;
    assert_eq!(a.status, 413, "{}", a.text);
    assert_eq!(consents(&s, "c-body").await, (true, true));
}

/// Midnight UTC, 40 days from now (contacts are first seen at the wall clock).
fn day0() -> DateTime<Utc> {
    let d = (Utc::now() + Duration::days(40)).date_naive();
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
}

/// A server whose app has sent `bday` a birthday email for real (the dispatcher
/// writing to the outbox), with `extra` config; and that email as written.
pub(crate) async fn sent_birthday<S: TestStore>(
    b: Backend,
    extra: &[(&str, String)],
) -> (Server<S>, String) {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let mut vars = vec![
        (
            "RAPPORT__API__PUBLIC_URL",
            "https://rapport.example".to_owned(),
        ),
        ("RAPPORT__DEFAULTS__SEND_WINDOW", "\"00:00-24:00\"".into()),
    ];
    vars.extend(extra.iter().cloned());
    let cfg = backend_config_with(b, dir.path(), &vars);
    let store = S::open_for(&cfg.storage).await;
    let channels = Arc::new(Channels::build(&cfg, &store, |_| None).await.unwrap());
    let key = channels.unsubscribe_key.to_vec();
    let s = serve_keyed(
        cfg.clone(),
        store,
        rapport::api::Tokens::new([TOKEN]),
        key,
        dir,
    )
    .await;
    let day = day0() + Duration::days(1);
    let birthday = day.format("--%m-%d").to_string();
    let body = json!({"first_name": "Bea", "email": "bday@example.com", "tier": "family", "timezone": "UTC",
        "birthday": birthday, "email_consent": true, "sms_consent": true});
    let put = s.call(Method::PUT, "/v1/contacts/bday", Some(body)).await;
    assert_eq!(put.status, 201, "{}", put.body);
    let occasion = cfg.rules.occasion("birthday").unwrap();
    let planned = runner::run_once(s.store.as_ref(), &cfg, occasion, day)
        .await
        .unwrap();
    assert_eq!(planned.new, 1);

    let clock = Arc::new(FixedClock::new(day + Duration::hours(9)));
    let tasks = TaskTracker::new();
    let cfg = Arc::new(cfg);
    let dispatcher = Dispatcher {
        store: s.store.clone(),
        cfg: cfg.clone(),
        renderer: Arc::new(Renderer::load(&cfg.templates_dir).unwrap()),
        channels,
        clock: clock.clone(),
        recorder: Recorder::spawn(s.store.clone(), clock, &tasks),
        tasks,
        stopping: CancellationToken::new(),
        abandon: CancellationToken::new(),
        custody: rapport::custody::Custody::holding("test"),
    };
    let id = ContactId::parse("bday").unwrap();
    let due: Vec<_> = s.store.touches_for_contact(&id).await.unwrap();
    let due: Vec<_> = due.into_iter().map(|t| t.id).collect();
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        dispatcher.dispatch(&due, "unsubscribe-test"),
    )
    .await
    .expect("the dispatch stalled")
    .unwrap();
    let touch = &s.store.touches_for_contact(&id).await.unwrap()[0];
    assert_eq!(report.sent, 1, "{report:?} {touch:?}");
    assert_eq!(
        (touch.status, touch.channel.as_str()),
        (TouchStatus::Sent, "email")
    );

    let email = std::fs::read_dir(&outbox)
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .expect("an email in the outbox");
    (s, email)
}

/// The `List-Unsubscribe` link of a birthday email the dispatcher writes to the outbox
/// works against the API, with the signing key the app keeps in the store.
pub(crate) async fn a_link_from_a_sent_email_unsubscribes<S: TestStore>(b: Backend) {
    let (s, email) = sent_birthday::<S>(b, &[]).await;
    let link = email
        .lines()
        .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
        .and_then(|l| l.split('>').next())
        .expect("a List-Unsubscribe header");
    assert!(email.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    let token = link
        .strip_prefix("https://rapport.example/u/")
        .expect("under api.public_url");
    assert_eq!(consents(&s, "bday").await, (true, true));
    let (content_type, multi) = multipart("provider-b0undary", "List-Unsubscribe", "One-Click");
    let done = send(&s, Method::POST, token, Some(&content_type), &multi).await;
    assert_page(&done, "Unsubscribed");
    assert_eq!(consents(&s, "bday").await, (false, true));
}
