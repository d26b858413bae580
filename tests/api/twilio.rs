//! Twilio's webhooks: inbound SMS (STOP, START, HELP, replies, retries stored once) and
//! status callbacks, each signed as Twilio signs them; a wrong signature, a changed
//! field or another URL is a 403 that stores nothing.

use crate::support::backends::TestStore;
use chrono::{Duration, Utc};
use rapport::{
    api::twilio::signature,
    domain::{ContactId, TouchId},
};
use reqwest::Method;
use serde_json::json;

use crate::harness::{
    Backend, Server, TOKEN, UNSUBSCRIBE_KEY, backend_config_with, serve_with_twilio,
};

const AUTH: &str = "twilio-auth-token-for-tests";
const PUBLIC: &str = "https://rapport.example";
const PHONE: &str = "+14155550142";

async fn twilio_server<S: TestStore>(b: Backend) -> Server<S> {
    let dir = tempfile::tempdir().unwrap();
    let cfg = backend_config_with(
        b,
        dir.path(),
        &[("RAPPORT__API__PUBLIC_URL", PUBLIC.into())],
    );
    let store = S::open_for(&cfg.storage).await;
    let s = serve_with_twilio(
        cfg,
        store,
        rapport::api::Tokens::new([TOKEN]),
        UNSUBSCRIBE_KEY.to_vec(),
        Some(AUTH),
        dir,
    )
    .await;
    let body = json!({"first_name": "Sam", "phone": PHONE, "email": "sam@example.com",
        "tier": "friend", "email_consent": true, "sms_consent": true});
    assert_eq!(
        s.call(Method::PUT, "/v1/contacts/sam", Some(body))
            .await
            .status,
        201
    );
    s
}

fn form(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Posts `fields` to `path` signed for `signed_url` (normally the public URL of `path`).
async fn post<S: TestStore>(
    s: &Server<S>,
    path: &str,
    fields: &[(String, String)],
    signed_url: &str,
    token: &str,
) -> (u16, String) {
    let sig = signature(token, signed_url, fields);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish();
    let res = s
        .http
        .post(format!("{}{path}", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn inbound<S: TestStore>(s: &Server<S>, sid: &str, text: &str) -> (u16, String) {
    let fields = form(&[
        ("MessageSid", sid),
        ("From", PHONE),
        ("To", "+15005550006"),
        ("Body", text),
        ("NumSegments", "1"),
    ]);
    post(
        s,
        "/v1/twilio/sms",
        &fields,
        &format!("{PUBLIC}/v1/twilio/sms"),
        AUTH,
    )
    .await
}

async fn sms_consent<S: TestStore>(s: &Server<S>) -> bool {
    s.contact("sam").await.unwrap().sms_consent
}

async fn responses<S: TestStore>(s: &Server<S>) -> Vec<String> {
    s.store
        .responses_for_contact(&ContactId::parse("sam").unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|r| format!("{}:{}", r.id, r.kind))
        .collect()
}

pub(crate) async fn inbound_sms_keywords_and_replies<S: TestStore>(b: Backend) {
    let s = twilio_server::<S>(b).await;
    let (status, xml) = inbound(&s, "SM1", "Thanks, see you Friday!").await;
    assert_eq!(status, 200, "{xml}");
    assert!(xml.contains("<Response/>"), "{xml}");
    // Twilio retries the same message: stored once.
    assert_eq!(inbound(&s, "SM1", "Thanks, see you Friday!").await.0, 200);
    assert_eq!(responses(&s).await, ["sms:SM1:reply"]);

    let (_, xml) = inbound(&s, "SM2", " help ").await;
    assert!(
        xml.contains("<Message>") && xml.contains("reply STOP"),
        "{xml}"
    );
    assert_eq!(responses(&s).await.len(), 1, "HELP is not a response");

    assert!(sms_consent(&s).await);
    let (status, xml) = inbound(&s, "SM3", "STOP").await;
    assert_eq!(status, 200);
    assert!(
        xml.contains("<Response/>"),
        "Twilio confirms STOP itself: {xml}"
    );
    assert!(!sms_consent(&s).await);
    assert!(s.contact("sam").await.unwrap().email_consent, "only SMS");
    assert_eq!(inbound(&s, "SM4", "start").await.0, 200);
    assert!(sms_consent(&s).await);
    for (i, word) in [
        "stopall",
        "Unsubscribe",
        "CANCEL",
        "end",
        "quit",
        "revoke",
        "optout",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(inbound(&s, "SM1", "start").await.0, 200);
        assert!(sms_consent(&s).await);
        assert_eq!(inbound(&s, &format!("SMx{i}"), word).await.0, 200);
        assert!(!sms_consent(&s).await, "{word}");
    }
    // "Please stop" is a reply, not a keyword.
    inbound(&s, "SM5", "UNSTOP").await;
    inbound(&s, "SM6", "please stop texting me on Sundays").await;
    assert!(sms_consent(&s).await);
    assert!(responses(&s).await.contains(&"sms:SM6:reply".to_owned()));

    // "Yes" from someone subscribed is an answer.
    inbound(&s, "SM7", "yes").await;
    assert!(responses(&s).await.contains(&"sms:SM7:reply".to_owned()));
    // A shared number: STOP is for everyone with it.
    let kin = json!({"first_name": "Kim", "phone": PHONE, "tier": "friend", "sms_consent": true});
    assert_eq!(
        s.call(Method::PUT, "/v1/contacts/kim", Some(kin))
            .await
            .status,
        201
    );
    inbound(&s, "SM8", "stop").await;
    assert!(!sms_consent(&s).await);
    assert!(!s.contact("kim").await.unwrap().sms_consent);
    inbound(&s, "SM8b", "start").await;
    assert!(sms_consent(&s).await && s.contact("kim").await.unwrap().sms_consent);

    // A number nobody has: HELP is answered, anything else ignored.
    let fields = form(&[
        ("MessageSid", "SM9h"),
        ("From", "+14155550000"),
        ("Body", "HELP"),
    ]);
    let (status, xml) = post(
        &s,
        "/v1/twilio/sms",
        &fields,
        &format!("{PUBLIC}/v1/twilio/sms"),
        AUTH,
    )
    .await;
    assert_eq!(status, 200);
    assert!(xml.contains("<Message>"), "{xml}");
    let fields = form(&[
        ("MessageSid", "SM9"),
        ("From", "+14155550000"),
        ("Body", "STOP"),
    ]);
    let (status, _) = post(
        &s,
        "/v1/twilio/sms",
        &fields,
        &format!("{PUBLIC}/v1/twilio/sms"),
        AUTH,
    )
    .await;
    assert_eq!(status, 200);
}

pub(crate) async fn twilio_signatures_are_checked<S: TestStore>(b: Backend) {
    let s = twilio_server::<S>(b).await;
    let url = format!("{PUBLIC}/v1/twilio/sms");
    let fields = form(&[("MessageSid", "SM1"), ("From", PHONE), ("Body", "STOP")]);
    // Another token, another URL, a field changed after signing: 403, nothing stored.
    assert_eq!(
        post(&s, "/v1/twilio/sms", &fields, &url, "not-the-token")
            .await
            .0,
        403
    );
    assert_eq!(
        post(
            &s,
            "/v1/twilio/sms",
            &fields,
            "https://evil.example/v1/twilio/sms",
            AUTH
        )
        .await
        .0,
        403
    );
    let sig = signature(AUTH, &url, &fields);
    let tampered = "MessageSid=SM1&From=%2B14155550142&Body=START";
    let res = s
        .http
        .post(format!("{}/v1/twilio/sms", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = s
        .http
        .post(format!("{}/v1/twilio/sms", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("MessageSid=SM1&From=%2B14155550142&Body=STOP")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "no signature at all");
    assert!(sms_consent(&s).await);
    assert!(responses(&s).await.is_empty());
    // The default port spelled out is the same URL.
    assert_eq!(
        post(
            &s,
            "/v1/twilio/sms",
            &fields,
            &format!("{PUBLIC}:443/v1/twilio/sms"),
            AUTH
        )
        .await
        .0,
        200
    );
    assert!(!sms_consent(&s).await);

    // Without Twilio configured the webhooks do not exist.
    let plain = crate::harness::server::<S>(b).await;
    let (status, _) = post(&plain, "/v1/twilio/sms", &fields, &url, AUTH).await;
    assert_eq!(status, 404);
}

pub(crate) async fn status_callbacks_teach_what_failed<S: TestStore>(b: Backend) {
    let s = twilio_server::<S>(b).await;
    let now = Utc::now();
    let contact = ContactId::parse("sam").unwrap();
    let mut ids = Vec::new();
    for n in 0..3 {
        let at = now - Duration::minutes(10);
        let occurrence = n.to_string();
        ids.push(
            crate::support::sent::sent(s.store.as_ref(), "sam", "birthday", &occurrence, "sms", at)
                .await,
        );
    }
    let callback = |touch: &TouchId, sid: &str, status: &str, code: Option<&str>| {
        let mut fields = vec![
            ("MessageSid".to_owned(), sid.to_owned()),
            ("MessageStatus".to_owned(), status.to_owned()),
        ];
        if let Some(c) = code {
            fields.push(("ErrorCode".to_owned(), c.to_owned()));
        }
        let path = format!("/v1/twilio/status?touch={}", touch.token());
        (path.clone(), fields, format!("{PUBLIC}{path}"))
    };
    let (path, fields, url) = callback(&ids[0], "SMa", "delivered", None);
    assert_eq!(post(&s, &path, &fields, &url, AUTH).await.0, 204);
    assert!(responses(&s).await.is_empty(), "delivered teaches nothing");
    // A temporary failure: a soft bounce on that touch.
    let (path, fields, url) = callback(&ids[0], "SMa", "undelivered", Some("30003"));
    assert_eq!(post(&s, &path, &fields, &url, AUTH).await.0, 204);
    assert_eq!(
        post(&s, &path, &fields, &url, AUTH).await.0,
        204,
        "a retried callback"
    );
    assert_eq!(
        responses(&s).await,
        ["twilio_status:SMa:undelivered:bounce_soft"]
    );
    assert!(sms_consent(&s).await);
    // 21610: opted out at the carrier.
    let (path, fields, url) = callback(&ids[1], "SMb", "failed", Some("21610"));
    assert_eq!(post(&s, &path, &fields, &url, AUTH).await.0, 204);
    assert!(!sms_consent(&s).await);
    // An invalid number: the number is suppressed, email is not.
    let (path, fields, url) = callback(&ids[2], "SMc", "failed", Some("21211"));
    assert_eq!(post(&s, &path, &fields, &url, AUTH).await.0, 204);
    let c = s.contact("sam").await.unwrap();
    assert!(c.email_consent && !c.sms_consent);
    let touches = s.store.touches_for_contact(&contact).await.unwrap();
    assert!(
        touches.iter().all(|t| t.responded_at.is_some()),
        "{touches:?}"
    );
    // The touch in the URL is part of what is signed.
    let (path, fields, _) = callback(&ids[0], "SMd", "failed", Some("21610"));
    let (_, _, other_url) = callback(&ids[1], "SMd", "failed", Some("21610"));
    assert_eq!(post(&s, &path, &fields, &other_url, AUTH).await.0, 403);

    // A report that beats our record of the send (the touch still `sending`) still
    // counts for the contact.
    let pat = json!({"first_name": "Pat", "phone": "+14155550143", "tier": "friend", "sms_consent": true});
    assert_eq!(
        s.call(Method::PUT, "/v1/contacts/pat", Some(pat))
            .await
            .status,
        201
    );
    let at = now - Duration::minutes(10);
    let sending =
        crate::support::sent::sending(s.store.as_ref(), "pat", "birthday", "9", "sms", at).await;
    let (path, fields, url) = callback(&sending, "SMe", "failed", Some("21610"));
    assert_eq!(post(&s, &path, &fields, &url, AUTH).await.0, 204);
    assert!(!s.contact("pat").await.unwrap().sms_consent);
}
