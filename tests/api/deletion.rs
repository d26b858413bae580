//! `DELETE /v1/contacts/{id}`: the contact and its history are gone (404 after), and
//! the same address imported again under a new id is not marketed to.

use crate::support::backends::TestStore;
use chrono::{Duration, Utc};
use rapport::domain::Channel;
use reqwest::Method;
use serde_json::json;

use crate::harness::{Backend, assert_error, server};
use crate::history::{contact, respond, sent};

pub(crate) async fn delete_erases_and_a_reimport_is_not_marketed<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    contact(&s, "gone").await;
    let now = Utc::now();
    sent(&s, "gone", "birthday", 1, "email", now - Duration::days(1)).await;
    respond(
        &s,
        json!({"kind": "reply", "contact": "gone", "channel": "email"}),
    )
    .await;
    let event = json!({"contact": "gone", "type": "purchase", "id": "o-1"});
    assert_eq!(
        s.call(Method::POST, "/v1/events", Some(event)).await.status,
        201
    );

    assert_eq!(s.status_of(Method::DELETE, "/v1/contacts/gone").await, 204);
    assert_error(
        &s.call(Method::GET, "/v1/contacts/gone", None).await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &s.call(Method::DELETE, "/v1/contacts/gone", None).await,
        404,
        "not_found",
        None,
    );
    let touches = s.call(Method::GET, "/v1/touches?contact=gone", None).await;
    assert_error(&touches, 404, "not_found", None);

    // The same address under a new id, consent given: no consent, so no marketing.
    let body = json!({"email": "GONE@example.com", "tier": "family", "email_consent": true});
    let put = s.call(Method::PUT, "/v1/contacts/back", Some(body)).await;
    assert_eq!(put.status, 201, "{}", put.body);
    assert_eq!(put.body["email_consent"], false, "{}", put.body);
    let cfg = s.cfg();
    let back = s.contact("back").await.unwrap();
    assert_eq!(
        rapport::policy::unreachable(&cfg.rules, &back, Channel::Email),
        Some("no email consent")
    );
}
