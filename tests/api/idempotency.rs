//! `Idempotency-Key`: a retried request gets the original answer replayed, the key with
//! another body is refused, a refused request does not keep its key, and a key that is
//! not one is a 400.

use crate::support::backends::TestStore;
use rapport::domain::ContactId;
use serde_json::{Value, json};

use crate::harness::{Backend, TOKEN, server};
use crate::history::contact;

pub(crate) async fn idempotency_keys_replay_refuse_and_forgive<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    contact(&s, "idem").await;
    let auth = format!("Bearer {TOKEN}");
    let post = |key: Option<&'static str>, body: Value| {
        let mut req = s
            .http
            .post(format!("{}/v1/events", s.base))
            .header("authorization", auth.clone())
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        async move {
            let res = req.send().await.unwrap();
            let replayed = res.headers().get("idempotent-replayed").is_some();
            (
                res.status().as_u16(),
                replayed,
                res.json::<Value>().await.unwrap(),
            )
        }
    };
    let event = json!({"contact": "idem", "type": "purchase", "id": "o-1"});
    let (status, replayed, first) = post(Some("key-1"), event.clone()).await;
    assert_eq!((status, replayed), (201, false), "{first}");
    let (status, replayed, again) = post(Some("key-1"), event.clone()).await;
    assert_eq!(
        (status, replayed),
        (201, true),
        "the original answer, replayed"
    );
    assert_eq!(again, first);
    // Without a key the same event is a repeat (200), not a replay.
    let (status, _, _) = post(None, event.clone()).await;
    assert_eq!(status, 200);
    // The key with another body.
    let other = json!({"contact": "idem", "type": "purchase", "id": "o-2"});
    let (status, _, body) = post(Some("key-1"), other.clone()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(body["error"]["field"], "Idempotency-Key");
    // A refused request does not keep its key: fixed, it goes through.
    let bad = json!({"contact": "nobody", "type": "purchase", "id": "o-3"});
    let (status, _, _) = post(Some("key-2"), bad).await;
    assert_eq!(status, 422);
    let fixed = json!({"contact": "idem", "type": "purchase", "id": "o-3"});
    let (status, replayed, _) = post(Some("key-2"), fixed).await;
    assert_eq!((status, replayed), (201, false));
    // Keys on responses too: a retried response is recorded once.
    let response = json!({"kind": "positive", "contact": "idem", "channel": "email"});
    let r1 = s
        .http
        .post(format!("{}/v1/responses", s.base))
        .header("authorization", auth.clone())
        .header("content-type", "application/json")
        .header("idempotency-key", "resp-1")
        .body(response.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r1.status(), 201);
    let r1: Value = r1.json().await.unwrap();
    let r2 = s
        .http
        .post(format!("{}/v1/responses", s.base))
        .header("authorization", auth.clone())
        .header("content-type", "application/json")
        .header("idempotency-key", "resp-1")
        .body(response.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r2.status(), 201);
    assert_eq!(r2.json::<Value>().await.unwrap(), r1);
    let kept = s
        .store
        .responses_for_contact(&ContactId::parse("idem").unwrap())
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    // Keys that are not keys.
    for key in ["", "a key with spaces", &"k".repeat(256)] {
        let res = s
            .http
            .post(format!("{}/v1/events", s.base))
            .header("authorization", auth.clone())
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(event.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{key:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_idempotency_key");
    }
}
