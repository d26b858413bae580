//! Webhooks per Standard Webhooks: signatures (and rotation), how each answer is
//! classified, redirects, resends and what is refused before anything is sent.

use super::*;

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
