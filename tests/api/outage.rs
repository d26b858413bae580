//! The store out of reach. Redis: a private server, stopped (every endpoint that reads
//! or writes the store answers 503 with `Retry-After`, never 500, and stores nothing:
//! after the restart the store holds exactly what it held before) and started again
//! (it keeps its append-only file); then the very same requests, the same
//! `Idempotency-Key`s included, succeed. SQLite: see `locked.rs`.

use crate::support::backends::TestStore;
use rapport::store::{Contacts, Ledger, Relationships};
use std::time::Duration;

use chrono::Utc;
use rapport::{
    api::{Tokens, twilio::signature},
    channels::{clicks, unsubscribe},
    config::{StorageBackend, StorageConfig},
    domain::{ContactId, TouchId},
    store::RedisStore,
};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::{
    harness::{Server, TOKEN, UNSUBSCRIBE_KEY, config, serve_with_twilio},
    support::{
        redis::{RedisServer, unique_prefix},
        sent::sent,
    },
};

const AUTH: &str = "twilio-auth-token-for-the-outage-tests";
const PUBLIC: &str = "https://rapport.example";
const PHONE: &str = "+14155550199";
/// Where the tracked link leads.
const SHOP: &str = "https://shop.example/gift";
/// Contacts the requests touch.
const IDS: [&str; 4] = ["sam", "gone", "neo", "neo2"];

/// One request, as sent: the same bytes while the store is down and after.
pub(crate) struct Call {
    name: &'static str,
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Its status once the store is back.
    pub(crate) ok: u16,
}

impl Call {
    pub(crate) fn json(
        name: &'static str,
        method: Method,
        path: &str,
        body: Option<Value>,
        ok: u16,
    ) -> Self {
        Call {
            name,
            method,
            path: path.to_owned(),
            headers: vec![
                ("authorization", format!("Bearer {TOKEN}")),
                ("content-type", "application/json".into()),
            ],
            body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
            ok,
        }
    }

    fn with(mut self, name: &'static str, value: &str) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.to_owned()));
        self
    }

    /// A Twilio webhook to `path`, signed as Twilio signs it.
    fn twilio(name: &'static str, path: &str, fields: &[(&str, &str)], ok: u16) -> Self {
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let sig = signature(AUTH, &format!("{PUBLIC}{path}"), &fields);
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .finish();
        Call {
            name,
            method: Method::POST,
            path: path.to_owned(),
            headers: vec![
                ("content-type", "application/x-www-form-urlencoded".into()),
                ("x-twilio-signature", sig),
            ],
            body: body.into_bytes(),
            ok,
        }
    }

    pub(crate) async fn send<S: TestStore>(
        &self,
        s: &Server<S>,
    ) -> (StatusCode, header::HeaderMap, String) {
        let mut req = s
            .http
            .request(self.method.clone(), format!("{}{}", s.base, self.path))
            .timeout(Duration::from_secs(60))
            .body(self.body.clone());
        for (n, v) in &self.headers {
            req = req.header(*n, v);
        }
        let res = req.send().await.expect("an answer");
        let (status, headers) = (res.status(), res.headers().clone());
        (status, headers, res.text().await.unwrap())
    }
}

/// Everything the store holds about the contacts the calls touch, and its counters.
async fn snapshot<S: TestStore>(store: &S) -> String {
    let mut out = String::new();
    for id in IDS {
        let id = ContactId::parse(id).unwrap();
        out.push_str(&format!(
            "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n",
            store.get_contact(&id).await.unwrap(),
            store.touches_for_contact(&id).await.unwrap(),
            store.events_for_contact(&id).await.unwrap(),
            store.responses_for_contact(&id).await.unwrap(),
            store.relationship(&id).await.unwrap(),
        ));
    }
    let counts: std::collections::BTreeMap<_, _> = store
        .status_counts()
        .await
        .unwrap()
        .into_iter()
        .map(|(s, n)| (s.as_str(), n))
        .collect();
    let mut stats = store.stats().await.unwrap();
    stats.sort_by_key(|s| format!("{s:?}"));
    out.push_str(&format!("{counts:?}\n{stats:?}\n"));
    out
}

/// The 503 of a store out of reach: `Retry-After`, the JSON error, nothing internal.
pub(crate) fn assert_unavailable(
    call: &Call,
    (status, headers, body): &(StatusCode, header::HeaderMap, String),
    port: Option<u16>,
) {
    let what = format!("{} {}: {status} {body}", call.name, call.path);
    assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{what}");
    assert_eq!(headers[header::RETRY_AFTER], "5", "{what}");
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(body["error"]["status"], 503, "{what}");
    assert_eq!(body["error"]["code"], "store_unavailable", "{what}");
    assert_eq!(
        body["error"]["message"], "the store is unavailable; retry in a few seconds",
        "{what}"
    );
    let text = body.to_string().to_lowercase();
    let port = port.map(|p| p.to_string());
    for leak in ["redis", "refused", "sqlite", "locked", "busy"]
        .into_iter()
        .chain(port.as_deref())
    {
        assert!(!text.contains(leak), "{what}: {leak:?} in the answer");
    }
}

/// 503 while Redis is down, nothing stored, and the same requests succeed after.
#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn while_redis_is_down_every_endpoint_is_503_and_stores_nothing() {
    let mut redis = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let port = redis.port;
    let dir = tempfile::tempdir().unwrap();
    let storage = StorageConfig {
        backend: StorageBackend::Redis,
        url: redis.url(),
        prefix: unique_prefix("outage"),
    };
    let cfg = config(
        dir.path(),
        &[
            ("RAPPORT__STORAGE__BACKEND", "redis".into()),
            ("RAPPORT__STORAGE__URL", storage.url.clone()),
            ("RAPPORT__STORAGE__PREFIX", storage.prefix.clone()),
            ("RAPPORT__API__PUBLIC_URL", PUBLIC.into()),
        ],
    );
    let store = RedisStore::open(&storage).await.unwrap();
    let s = serve_with_twilio(
        cfg,
        store,
        Tokens::new([TOKEN]),
        UNSUBSCRIBE_KEY.to_vec(),
        Some(AUTH),
        dir,
    )
    .await;
    let sam = json!({"first_name": "Sam", "email": "sam@example.com", "phone": PHONE,
        "tier": "friend", "email_consent": true, "sms_consent": true});
    let gone = json!({"email": "gone@example.com"});
    for (id, body) in [("sam", sam), ("gone", gone)] {
        let put = s
            .call(Method::PUT, &format!("/v1/contacts/{id}"), Some(body))
            .await;
        assert_eq!(put.status, 201, "{}", put.body);
    }
    let at = Utc::now() - chrono::Duration::minutes(30);
    let email = sent(s.store.as_ref(), "sam", "birthday", "2026", "email", at).await;
    let sms = sent(s.store.as_ref(), "sam", "anniversary", "2026", "sms", at).await;

    let calls = calls(&email, &sms);
    let before = snapshot(s.store.as_ref()).await;
    redis = tokio::task::spawn_blocking(move || {
        redis.stop();
        redis
    })
    .await
    .unwrap();

    for call in &calls {
        let answer = call.send(&s).await;
        assert_unavailable(call, &answer, Some(port));
    }
    // A tracked link still takes the reader where they were going (its click is lost).
    let link = clicks::token(UNSUBSCRIBE_KEY, email.as_str(), SHOP).unwrap();
    let reader = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let follow = || {
        reader
            .get(format!("{}/c/{link}", s.base))
            .timeout(Duration::from_secs(60))
            .send()
    };
    let res = follow().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()[header::LOCATION], SHOP);

    redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .unwrap();
    ready(&s).await;
    assert_eq!(
        snapshot(s.store.as_ref()).await,
        before,
        "nothing was stored half-way"
    );

    // The very same requests, now that the store answers.
    for call in &calls {
        let (status, _, body) = call.send(&s).await;
        assert_eq!(
            status.as_u16(),
            call.ok,
            "{} {}: {body}",
            call.name,
            call.path
        );
    }
    let res = follow().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let sam = ContactId::parse("sam").unwrap();
    let contact = s.store.get_contact(&sam).await.unwrap().unwrap();
    assert!(
        !contact.email_consent && !contact.sms_consent,
        "{contact:?}"
    );
    assert_eq!(contact.first_name.as_deref(), Some("Samuel"), "the batch");
    for id in ["neo", "neo2"] {
        assert!(s.contact(id).await.is_some(), "{id}");
    }
    assert!(s.contact("gone").await.is_none(), "erased");
    let events = s.store.events_for_contact(&sam).await.unwrap();
    assert_eq!(events.len(), 1);
    let touches = s.store.touches_for_contact(&sam).await.unwrap();
    assert!(
        touches.iter().any(|t| t.occasion == "thank_you"),
        "{touches:?}"
    );
    let kinds: Vec<String> = s
        .store
        .responses_for_contact(&sam)
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{}:{}", r.source, r.kind))
        .collect();
    for want in [
        "api:reply",
        "sms:unsubscribe",
        "twilio_status:bounce_hard",
        "unsubscribe:unsubscribe",
        "click:click",
    ] {
        assert!(kinds.iter().any(|k| k == want), "{want} in {kinds:?}");
    }
    drop(redis);
}

/// Every request that reads or writes the store, each with the status it gets once the
/// store answers. `gone` is erased last (the others need `sam`).
fn calls(email: &TouchId, sms: &TouchId) -> Vec<Call> {
    let unsubscribe = format!(
        "/u/{}",
        unsubscribe::token(UNSUBSCRIBE_KEY, &ContactId::parse("sam").unwrap())
    );
    let status_path = format!("/v1/twilio/status?touch={}", sms.token());
    let batch = "{\"id\": \"neo2\", \"email\": \"neo2@example.com\"}\n\
                 {\"id\": \"sam\", \"first_name\": \"Samuel\", \"email\": \"sam@example.com\", \"phone\": \"+14155550199\", \"tier\": \"friend\"}\n";
    vec![
        Call::json("get contact", Method::GET, "/v1/contacts/sam", None, 200),
        Call::json(
            "put contact",
            Method::PUT,
            "/v1/contacts/neo",
            Some(json!({"email": "neo@example.com"})),
            201,
        ),
        Call {
            body: batch.as_bytes().to_vec(),
            ..Call::json("batch", Method::POST, "/v1/contacts:batch", None, 200)
        }
        .with("content-type", "application/x-ndjson")
        .with("idempotency-key", "outage-batch-1"),
        Call::json(
            "event",
            Method::POST,
            "/v1/events",
            Some(json!({"contact": "sam", "type": "purchase", "id": "order-1"})),
            201,
        ),
        Call::json(
            "response",
            Method::POST,
            "/v1/responses",
            Some(json!({"kind": "reply", "touch_id": email.as_str()})),
            201,
        )
        .with("idempotency-key", "outage-response-1"),
        Call::json("touches", Method::GET, "/v1/touches?contact=sam", None, 200),
        Call::json("stats", Method::GET, "/v1/stats", None, 200),
        Call::twilio(
            "twilio inbound",
            "/v1/twilio/sms",
            &[
                ("MessageSid", "SM-outage-1"),
                ("From", PHONE),
                ("To", "+15005550006"),
                ("Body", "STOP"),
            ],
            200,
        ),
        Call::twilio(
            "twilio status",
            &status_path,
            &[
                ("MessageSid", "SM-outage-2"),
                ("MessageStatus", "undelivered"),
                ("ErrorCode", "30005"),
            ],
            204,
        ),
        Call {
            name: "unsubscribe page",
            method: Method::GET,
            path: unsubscribe.clone(),
            headers: vec![],
            body: vec![],
            ok: 200,
        },
        Call {
            name: "one-click unsubscribe",
            method: Method::POST,
            path: unsubscribe,
            headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
            body: b"List-Unsubscribe=One-Click".to_vec(),
            ok: 200,
        },
        Call::json(
            "delete contact",
            Method::DELETE,
            "/v1/contacts/gone",
            None,
            204,
        ),
    ]
}

/// Until /readyz says the store answers again.
async fn ready<S: TestStore>(s: &Server<S>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = s
            .http
            .get(format!("{}/readyz", s.base))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready again after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
