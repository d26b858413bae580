//! The success paths: probes, the document, contacts, events.

use crate::support::backends::TestStore;
use rapport::domain::ContactId;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::harness::{Backend, assert_error, server};

pub(crate) async fn probes_and_the_document_are_public<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    let health = s.raw(Method::GET, "/healthz", None, None, vec![]).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body, json!({"status": "ok"}));
    let ready = s.raw(Method::GET, "/readyz", None, None, vec![]).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.body["checks"]["store"], "ok");
    // A wrong token does not matter on public routes.
    let bad = Some("Bearer nope");
    assert_eq!(
        s.raw(Method::GET, "/healthz", bad, None, vec![])
            .await
            .status,
        200
    );
    let doc = s
        .raw(Method::GET, "/openapi.json", None, None, vec![])
        .await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(doc.body["openapi"], "3.1.0");
    // Every documented operation is served (the router's own 404 and 405 say otherwise).
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for (method, _) in item
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "parameters")
        {
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let body = matches!(m, Method::PUT | Method::POST).then(|| json!({}));
            let r = s
                .call(m.clone(), &path.replace("{id}", "c-doc"), body)
                .await;
            let routed = r.status != 405
                && !(r.status == 404 && r.body.to_string().contains("no such endpoint"));
            assert!(
                routed,
                "{m} {path} is documented but not served: {}",
                r.body
            );
        }
    }
    assert_error(
        &s.call(Method::GET, "/v1/nothing", None).await,
        404,
        "not_found",
        None,
    );
    let wrong = s.raw(Method::DELETE, "/healthz", None, None, vec![]).await;
    assert_error(&wrong, 405, "method_not_allowed", None);
}

pub(crate) fn ada() -> Value {
    json!({
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "phone": "+33 6 12 34 56 78",
        "timezone": "Europe/Paris",
        "locale": "fr_CA",
        "birthday": "1990-07-14",
        "customer_since": "2020-01-02",
        "tier": "friend",
        "email_consent": true,
        "sms_consent": "no",
        "attributes": {"vip": true, "city": "Paris"},
    })
}

pub(crate) async fn put_creates_then_replaces_and_get_shows_the_contact<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    let created = s.call(Method::PUT, "/v1/contacts/c1", Some(ada())).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.headers[header::LOCATION], "/v1/contacts/c1");
    let stored = json!({
        "id": "c1", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
        "phone": "+33612345678", "timezone": "Europe/Paris", "locale": "fr-CA",
        "birthday": "1990-07-14", "customer_since": "2020-01-02", "tier": "friend",
        "email_consent": true, "sms_consent": false,
        "attributes": {"vip": true, "city": "Paris"},
    });
    assert_eq!(created.body, stored);
    let c = s.contact("c1").await.expect("stored");
    assert_eq!(c.phone.unwrap().as_str(), "+33612345678");
    assert!(!c.sms_consent);
    assert_eq!(c.attributes["vip"], true);

    // What GET shows can be PUT back unchanged.
    let got = s.call(Method::GET, "/v1/contacts/c1", None).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.body["contact"], stored);
    assert_eq!(got.body["consent"], json!({"email": true, "sms": false}));
    assert!(got.body["last_interaction"].is_string(), "{}", got.body);
    assert_eq!(got.body["timeline"], json!([]));
    let again = s
        .call(
            Method::PUT,
            "/v1/contacts/c1",
            Some(got.body["contact"].clone()),
        )
        .await;
    assert_eq!((again.status, &again.body), (StatusCode::OK, &stored));

    // A second PUT replaces: fields left out are cleared, consents left out are kept.
    let replaced = s
        .call(
            Method::PUT,
            "/v1/contacts/c1",
            Some(json!({"id": "c1", "first_name": "Ada", "tier": "family", "birthday": "--07-14"})),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    let c = s.contact("c1").await.unwrap();
    assert_eq!(c.tier, "family");
    assert_eq!((c.last_name, c.email), (None, None));
    assert_eq!(c.birthday.unwrap().to_field(), "--07-14");
    assert!(c.attributes.is_empty());
    assert!(c.email_consent && !c.sms_consent, "consents kept");
    assert_eq!(replaced.body["sms_consent"], false);
    assert_eq!(s.store.count_contacts().await.unwrap(), 1);
}

pub(crate) async fn events_plan_once_and_show_on_the_timeline<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    let put = s
        .call(
            Method::PUT,
            "/v1/contacts/c2",
            Some(json!({"email": "c2@example.com", "tier": "friend"})),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.body);
    let event =
        json!({"contact": "c2", "type": "purchase", "id": "order-1", "data": {"product": "tea"}});
    let first = s
        .call(Method::POST, "/v1/events", Some(event.clone()))
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["new"], true);
    assert_eq!(first.body["event"]["data"]["product"], "tea");
    let touches = first.body["touches"].as_array().unwrap();
    assert_eq!(touches.len(), 1, "{}", first.body);
    assert_eq!(touches[0]["id"], "thank_you:c2:order-1");
    assert_eq!(touches[0]["status"], "planned");
    assert_eq!(touches[0]["new"], true);

    let repeat = s.call(Method::POST, "/v1/events", Some(event)).await;
    assert_eq!(repeat.status, 200, "{}", repeat.body);
    assert_eq!(repeat.body["new"], false);
    assert_eq!(repeat.body["touches"][0]["new"], false);
    let id = ContactId::parse("c2").unwrap();
    assert_eq!(s.store.events_for_contact(&id).await.unwrap().len(), 1);
    let planned = s.store.touches_for_contact(&id).await.unwrap();
    assert_eq!(planned.len(), 1, "planned once: {planned:?}");

    // An event no occasion listens to still counts as an interaction.
    let other = json!({"contact": "c2", "type": "newsletter_open", "id": "n-1", "at": "2026-01-05T10:00:00+01:00"});
    let r = s.call(Method::POST, "/v1/events", Some(other)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["touches"], json!([]));
    assert_eq!(r.body["event"]["at"], "2026-01-05T09:00:00Z");

    let got = s.call(Method::GET, "/v1/contacts/c2", None).await;
    assert_eq!(got.status, 200, "{}", got.body);
    let timeline = got.body["timeline"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = timeline
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["id"].as_str().unwrap()))
        .collect();
    // Oldest first: the January event, the purchase (now), the thank-you (in 2h).
    assert_eq!(
        kinds,
        [
            ("event", "n-1"),
            ("event", "order-1"),
            ("touch", "thank_you:c2:order-1")
        ],
        "{}",
        got.body
    );
    assert_eq!(timeline[1]["type"], "purchase");
    assert_eq!(timeline[1]["data"], json!({"product": "tea"}));
    assert_eq!(timeline[2]["status"], "planned");
    assert_eq!(timeline[2]["channel"], "email");
    assert_eq!(timeline[2]["occasion"], "thank_you");
    assert!(got.body["last_interaction"].is_string());
}

pub(crate) async fn an_event_for_an_unknown_contact_is_422_naming_contact<S: TestStore>(
    b: Backend,
) {
    let s = server::<S>(b).await;
    let r = s
        .call(
            Method::POST,
            "/v1/events",
            Some(json!({"contact": "ghost", "type": "purchase", "id": "o-1"})),
        )
        .await;
    assert_error(&r, 422, "unknown_contact", Some("contact"));
    let ghost = ContactId::parse("ghost").unwrap();
    assert!(s.store.events_for_contact(&ghost).await.unwrap().is_empty());
    assert!(
        s.store
            .touches_for_contact(&ghost)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.store.count_contacts().await.unwrap(), 0);
}
