//! The SMS (Twilio Messages API) and webhook (Standard Webhooks) channels over real TCP
//! against the in-process HTTP stub.
//!
//! What is checked besides delivery: the exact request each provider gets (auth, form
//! fields, signature headers), how every answer is classified, that redirects are never
//! followed, that internal addresses are refused before anything is sent, and that no
//! error reason carries the phone number, the message, a secret or the server's text.
//! Webhook signatures are checked by a verifier written here from the spec, not by the
//! crate's own `sign`.

mod support;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use rapport::{
    channels::{
        DeliveryClass, DeliveryError, OutboundSms, OutboundWebhook, SmsChannel, WebhookChannel,
        sms::{SmsSender, Twilio, TwilioSettings},
        webhook::{Webhook, WebhookSettings, parse_secret},
    },
    domain::{PhoneNumber, TouchId},
};
use support::http_stub::{HttpStub, Reply, Request};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "auth-token-Zx81";
const PHONE: &str = "+15551234567";
const TEXT: &str = "Happy birthday, Ada! Cake's on us.";
/// Put into every error body the stub sends: must never reach an error reason.
const SERVER_TEXT: &str = "SERVERTEXT";
const CALLBACK: &str = "https://rapport.example/twilio/status";
/// Standard Webhooks secrets: 24 and 32 bytes.
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw6jUFzw1vDYk=";
/// The spec's verifier tolerance.
const TOLERANCE_SECS: i64 = 300;

fn touch() -> TouchId {
    TouchId::from_stored("birthday:cus_42:2026".into())
}

fn sms() -> OutboundSms {
    OutboundSms {
        touch: touch(),
        to: PhoneNumber::parse(PHONE).unwrap(),
        body: TEXT.into(),
    }
}

fn twilio_settings(base_url: String) -> TwilioSettings {
    TwilioSettings {
        base_url,
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
        sender: SmsSender::From("+15550001111".into()),
        status_callback: Some(CALLBACK.into()),
        timeout: Duration::from_secs(5),
        allow_private: true,
    }
}

fn twilio(stub: &HttpStub) -> Twilio {
    Twilio::new(twilio_settings(stub.url())).unwrap()
}

/// A Twilio error body, with text that must not leak into reasons.
fn twilio_error(status: u16, code: u32) -> Reply {
    let body = format!(
        r#"{{"code":{code},"message":"{SERVER_TEXT} for {PHONE}","more_info":"https://www.twilio.com/docs/errors/{code}","status":{status}}}"#
    );
    Reply::json(status, body)
}

fn assert_safe(err: &DeliveryError) {
    for secret in [
        PHONE,
        "5551234567",
        TEXT,
        TOKEN,
        SERVER_TEXT,
        SECRET,
        "127.0.0.1",
    ] {
        assert!(!err.reason.contains(secret), "{err} carries {secret:?}");
    }
}

#[tokio::test]
async fn sms_request_has_twilio_shape_auth_and_callback() {
    let stub = HttpStub::always(Reply::json(201, r#"{"sid":"SM1","status":"queued"}"#)).await;
    twilio(&stub).send(&sms()).await.expect("201 is success");

    let reqs = stub.requests();
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.path(),
        format!("/2010-04-01/Accounts/{SID}/Messages.json")
    );
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let auth = req.header("authorization").expect("basic auth");
    let encoded = auth.strip_prefix("Basic ").expect("Basic scheme");
    let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
    assert_eq!(decoded, format!("{SID}:{TOKEN}"));

    assert_eq!(req.form_value("To").as_deref(), Some(PHONE));
    assert_eq!(req.form_value("From").as_deref(), Some("+15550001111"));
    assert_eq!(req.form_value("MessagingServiceSid"), None);
    assert_eq!(req.form_value("Body").as_deref(), Some(TEXT));
    let callback = req.form_value("StatusCallback").expect("status callback");
    let callback = url::Url::parse(&callback).unwrap();
    assert_eq!(callback.as_str().split('?').next(), Some(CALLBACK));
    let pairs: Vec<(String, String)> = callback.query_pairs().into_owned().collect();
    assert_eq!(pairs, [("touch".to_owned(), touch().token())]);
}

#[tokio::test]
async fn sms_from_a_messaging_service_without_callback() {
    let stub = HttpStub::always(Reply::json(200, "{}")).await;
    let mut settings = twilio_settings(stub.url());
    settings.sender = SmsSender::MessagingService("MG0123".into());
    settings.status_callback = None;
    Twilio::new(settings).unwrap().send(&sms()).await.unwrap();

    let req = &stub.requests()[0];
    assert_eq!(
        req.form_value("MessagingServiceSid").as_deref(),
        Some("MG0123")
    );
    assert_eq!(req.form_value("From"), None);
    assert_eq!(req.form_value("StatusCallback"), None);
    let fields: Vec<String> = req.form().into_iter().map(|(n, _)| n).collect();
    assert_eq!(fields, ["To", "MessagingServiceSid", "Body"]);
}

#[tokio::test]
async fn sms_refusals_are_classified_once_and_not_retried() {
    let secs = |s| Some(Duration::from_secs(s));
    let cases = [
        (twilio_error(400, 21610), DeliveryClass::OptedOut, None),
        (twilio_error(400, 21211), DeliveryClass::Permanent, None),
        (
            twilio_error(429, 20429).header("Retry-After", "7"),
            DeliveryClass::Transient,
            secs(7),
        ),
        (twilio_error(500, 20500), DeliveryClass::Transient, None),
        (
            Reply::status(503)
                .header("retry-after", "30")
                .body(SERVER_TEXT),
            DeliveryClass::Transient,
            secs(30),
        ),
        (twilio_error(401, 20003), DeliveryClass::Transient, None),
        // A gateway error may come after the message was created: resent once at most.
        (
            Reply::status(502).body(SERVER_TEXT),
            DeliveryClass::Uncertain,
            None,
        ),
        (
            Reply::status(504).body(SERVER_TEXT),
            DeliveryClass::Uncertain,
            None,
        ),
    ];
    for (reply, class, retry_after) in cases {
        let status = reply.status;
        let stub = HttpStub::always(reply).await;
        let err = twilio(&stub).send(&sms()).await.expect_err("a refusal");
        assert_eq!(
            (err.class, err.retry_after),
            (class, retry_after),
            "{status}: {err}"
        );
        assert_safe(&err);
        assert_eq!(
            stub.count(),
            1,
            "{status}: the channel itself never retries"
        );
    }
    let stub = HttpStub::always(twilio_error(400, 21211)).await;
    let err = twilio(&stub).send(&sms()).await.unwrap_err();
    assert_eq!(err.reason, "twilio 400 code 21211");
    let stub = HttpStub::always(twilio_error(400, 21610)).await;
    let err = twilio(&stub).send(&sms()).await.unwrap_err();
    assert_eq!(err.reason, "twilio 21610 (recipient opted out)");
    let stub = HttpStub::always(twilio_error(401, 20003)).await;
    let err = twilio(&stub).send(&sms()).await.unwrap_err();
    assert!(err.reason.contains("auth token"), "{err}");
}

#[tokio::test]
async fn sms_timeout_after_sending_is_uncertain() {
    let stub = HttpStub::always(Reply::json(201, "{}").after(Duration::from_secs(3))).await;
    let mut settings = twilio_settings(stub.url());
    settings.timeout = Duration::from_millis(400);
    let err = Twilio::new(settings)
        .unwrap()
        .send(&sms())
        .await
        .unwrap_err();
    assert_eq!(err.class, DeliveryClass::Uncertain, "{err}");
    assert_eq!(stub.count(), 1, "the request did reach the server");
    assert_safe(&err);
}

#[tokio::test]
async fn sms_connection_refused_is_transient() {
    // A port that was just free: nothing listens, so nothing can have been sent.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = Twilio::new(twilio_settings(format!("http://127.0.0.1:{port}"))).unwrap();
    let err = t.send(&sms()).await.unwrap_err();
    assert_eq!(err.class, DeliveryClass::Transient, "{err}");
    assert_safe(&err);
}

#[tokio::test]
async fn sms_to_an_internal_address_is_refused_before_sending() {
    let stub = HttpStub::always(Reply::json(201, "{}")).await;
    let mut literal = twilio_settings(stub.url());
    literal.allow_private = false;
    let err = Twilio::new(literal)
        .expect_err("a loopback literal")
        .to_string();
    assert!(err.contains("loopback"), "{err}");

    let mut named = twilio_settings(format!("http://localhost:{}", stub.addr().port()));
    named.allow_private = false;
    let err = Twilio::new(named).unwrap().send(&sms()).await.unwrap_err();
    assert_eq!(err.class, DeliveryClass::Permanent, "{err}");
    assert!(err.reason.contains("refused"), "{err}");
    assert_eq!(stub.count(), 0);
}

// ---- webhooks --------------------------------------------------------------------

const PAYLOAD: &[u8] = br#"{"type":"contact.birthday","timestamp":"2026-03-01T09:00:00Z","data":{"contact":"cus_42"}}"#;

/// The signing key of a `whsec_` secret, decoded here rather than by the crate.
fn key_of(secret: &str) -> Vec<u8> {
    STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap()
}

fn webhook_settings(url: String, secrets: &[&str]) -> WebhookSettings {
    WebhookSettings {
        url,
        keys: secrets.iter().map(|s| parse_secret(s).unwrap()).collect(),
        timeout: Duration::from_secs(5),
        allow_private: true,
    }
}

fn webhook(url: String) -> Webhook {
    Webhook::new(webhook_settings(url, &[SECRET])).unwrap()
}

fn hook() -> OutboundWebhook {
    OutboundWebhook {
        touch: touch(),
        body: PAYLOAD.to_vec(),
    }
}

/// What a Standard Webhooks receiver checks, from the spec text.
struct Signed {
    id: String,
    timestamp: i64,
    /// The base64 part of every `v1,` entry, in order.
    signatures: Vec<String>,
}

/// Verifies like a receiver: timestamp within tolerance, and for each key the index of
/// the `v1` signature that matches it (HMAC-SHA256 over `id.timestamp.body`).
fn verify(req: &Request, keys: &[Vec<u8>]) -> Result<(Signed, Vec<usize>), String> {
    let id = req.header("webhook-id").ok_or("no webhook-id")?.to_owned();
    let ts = req
        .header("webhook-timestamp")
        .ok_or("no webhook-timestamp")?;
    let timestamp: i64 = ts.parse().map_err(|_| format!("timestamp {ts:?}"))?;
    if (Utc::now().timestamp() - timestamp).abs() > TOLERANCE_SECS {
        return Err(format!("timestamp {timestamp} outside tolerance"));
    }
    let header = req
        .header("webhook-signature")
        .ok_or("no webhook-signature")?;
    let signatures: Vec<String> = header
        .split(' ')
        .map(|entry| match entry.split_once(',') {
            Some(("v1", sig)) => Ok(sig.to_owned()),
            _ => Err(format!("entry {entry:?} is not v1")),
        })
        .collect::<Result<_, _>>()?;
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(&req.body);
    let mut matched = Vec::new();
    for (k, key) in keys.iter().enumerate() {
        let found = signatures.iter().position(|sig| {
            let Ok(sig) = STANDARD.decode(sig) else {
                return false;
            };
            let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
            mac.update(&content);
            mac.verify_slice(&sig).is_ok()
        });
        matched.push(found.ok_or(format!("no signature verifies with key {k}"))?);
    }
    Ok((
        Signed {
            id,
            timestamp,
            signatures,
        },
        matched,
    ))
}

#[tokio::test]
async fn webhook_is_signed_per_standard_webhooks() {
    let stub = HttpStub::always(Reply::status(204)).await;
    webhook(stub.url_for("/hooks/in"))
        .send(&hook())
        .await
        .expect("204 is success");

    let req = &stub.requests()[0];
    assert_eq!((req.method.as_str(), req.path()), ("POST", "/hooks/in"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.body, PAYLOAD, "the exact bytes, not re-serialised");
    let (signed, matched) = verify(req, &[key_of(SECRET)]).unwrap();
    assert_eq!(signed.signatures.len(), 1);
    assert_eq!(matched, [0]);
    assert!(
        signed.id.starts_with("msg_") && !signed.id.contains('.'),
        "{}",
        signed.id
    );
    assert!(
        !signed.id.contains("cus_42"),
        "the id must not expose the touch"
    );
    // A wrong key must not verify: the check above can fail.
    assert!(verify(req, &[key_of(OLD_SECRET)]).is_err());
}

#[tokio::test]
async fn webhook_during_rotation_carries_one_signature_per_key() {
    let stub = HttpStub::always(Reply::status(200)).await;
    let settings = webhook_settings(stub.url(), &[SECRET, OLD_SECRET]);
    Webhook::new(settings).unwrap().send(&hook()).await.unwrap();

    let req = &stub.requests()[0];
    let (signed, matched) = verify(req, &[key_of(SECRET), key_of(OLD_SECRET)]).unwrap();
    assert_eq!(signed.signatures.len(), 2);
    assert_eq!(
        matched,
        [0, 1],
        "current key first, each entry with its own key"
    );
}

#[tokio::test]
async fn webhook_redirect_is_a_failure_and_never_followed() {
    let stub = HttpStub::start(|req| match req.path() {
        "/elsewhere" => Reply::status(200),
        _ => Reply::status(301).header("location", "/elsewhere"),
    })
    .await;
    let err = webhook(stub.url_for("/hook"))
        .send(&hook())
        .await
        .unwrap_err();
    assert_eq!(err.class, DeliveryClass::Transient);
    assert_eq!(err.reason, "webhook 301 (redirects are not followed)");
    let paths: Vec<String> = stub
        .requests()
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(paths, ["/hook"]);
}

#[tokio::test]
async fn webhook_answers_are_classified() {
    let secs = |s| Some(Duration::from_secs(s));
    let soon = (Utc::now() + chrono::Duration::seconds(60))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let cases = [
        (Reply::status(410), DeliveryClass::Gone, None),
        (
            Reply::status(429).header("Retry-After", "7"),
            DeliveryClass::Transient,
            secs(7),
        ),
        (
            Reply::status(503).header("Retry-After", "120"),
            DeliveryClass::Transient,
            secs(120),
        ),
        (Reply::status(502), DeliveryClass::Transient, None),
        (
            Reply::status(500).body(SERVER_TEXT),
            DeliveryClass::Transient,
            None,
        ),
        (
            Reply::status(400).body(SERVER_TEXT),
            DeliveryClass::Transient,
            None,
        ),
    ];
    for (reply, class, retry_after) in cases {
        let status = reply.status;
        let stub = HttpStub::always(reply).await;
        let err = webhook(stub.url()).send(&hook()).await.unwrap_err();
        assert_eq!(
            (err.class, err.retry_after),
            (class, retry_after),
            "{status}: {err}"
        );
        assert!(err.reason.contains(&status.to_string()), "{err}");
        assert_safe(&err);
        assert_eq!(stub.count(), 1);
    }
    // Retry-After as an HTTP-date, one minute ahead (whole seconds, so 59 or 60).
    let stub = HttpStub::always(Reply::status(503).header("retry-after", soon)).await;
    let err = webhook(stub.url()).send(&hook()).await.unwrap_err();
    let wait = err.retry_after.expect("a date is honoured");
    assert!((55..=60).contains(&wait.as_secs()), "{wait:?}");
}

#[tokio::test]
async fn webhook_timeout_is_transient() {
    let stub = HttpStub::always(Reply::status(200).after(Duration::from_secs(3))).await;
    let mut settings = webhook_settings(stub.url(), &[SECRET]);
    settings.timeout = Duration::from_millis(400);
    let err = Webhook::new(settings)
        .unwrap()
        .send(&hook())
        .await
        .unwrap_err();
    assert_eq!(err.class, DeliveryClass::Transient, "{err}");
    assert!(err.reason.contains("timed out"), "{err}");
    assert_eq!(stub.count(), 1);
}

#[tokio::test]
async fn webhook_resend_keeps_the_id_and_signs_afresh() {
    let stub = HttpStub::always(Reply::status(200)).await;
    let channel = webhook(stub.url());
    channel.send(&hook()).await.unwrap();
    // Timestamps are whole seconds: wait past the next one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    channel.send(&hook()).await.unwrap();

    let reqs = stub.requests();
    let key = [key_of(SECRET)];
    let (first, _) = verify(&reqs[0], &key).unwrap();
    let (second, _) = verify(&reqs[1], &key).unwrap();
    assert_eq!(first.id, second.id);
    assert!(second.timestamp > first.timestamp);
    assert_ne!(first.signatures, second.signatures);

    let other = OutboundWebhook {
        touch: TouchId::from_stored("birthday:cus_43:2026".into()),
        body: PAYLOAD.to_vec(),
    };
    channel.send(&other).await.unwrap();
    let (third, _) = verify(&stub.requests()[2], &key).unwrap();
    assert_ne!(third.id, first.id, "another touch, another id");
}

#[tokio::test]
async fn webhook_to_an_internal_address_is_refused_before_sending() {
    let stub = HttpStub::always(Reply::status(200)).await;
    let mut literal = webhook_settings(stub.url(), &[SECRET]);
    literal.allow_private = false;
    let err = Webhook::new(literal)
        .expect_err("a loopback literal")
        .to_string();
    assert!(err.contains("loopback"), "{err}");

    let mut named = webhook_settings(
        format!("http://localhost:{}/hook", stub.addr().port()),
        &[SECRET],
    );
    named.allow_private = false;
    let err = Webhook::new(named)
        .unwrap()
        .send(&hook())
        .await
        .unwrap_err();
    assert_eq!(err.class, DeliveryClass::Permanent, "{err}");
    assert!(
        err.reason.contains("refused") && err.reason.contains("loopback"),
        "{err}"
    );
    assert_eq!(stub.count(), 0);
}

#[tokio::test]
async fn webhook_fingerprint_changes_with_url_or_secret() {
    let a = webhook("https://hooks.example/a".into()).fingerprint();
    assert_eq!(a, webhook("https://hooks.example/a".into()).fingerprint());
    assert_ne!(a, webhook("https://hooks.example/b".into()).fingerprint());
    let rotated = Webhook::new(webhook_settings(
        "https://hooks.example/a".into(),
        &[OLD_SECRET],
    ));
    assert_ne!(a, rotated.unwrap().fingerprint());
}
