//! What is refused, and that a refusal changes nothing: tokens, 404, 409, 413, 415, and
//! a sweep of malformed bodies.

use crate::support::backends::TestStore;
use rapport::{api::Tokens, domain::ContactId};
use reqwest::{Method, header};
use serde_json::json;

use crate::{
    harness::{Backend, MAX_BODY, OTHER_TOKEN, TOKEN, assert_error, server, server_with},
    resources::ada,
};

pub(crate) async fn tokens_are_required_and_compared_exactly<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    let last_byte_differs = format!("Bearer {}{}", &TOKEN[..TOKEN.len() - 1], "d");
    assert_ne!(last_byte_differs, format!("Bearer {TOKEN}"));
    let (basic, longer) = (format!("Basic {TOKEN}"), format!("Bearer {TOKEN}x"));
    let cases: [(Option<&str>, bool); 6] = [
        (None, false),
        (Some("Bearer not-a-token"), true),
        (Some(&last_byte_differs), true),
        (Some(&basic), true),
        (Some("Bearer "), true),
        (Some(&longer), true),
    ];
    let body = || json!({"first_name": "Mallory"}).to_string().into_bytes();
    for (auth, presented) in cases {
        for (method, path) in [
            (Method::PUT, "/v1/contacts/m1"),
            (Method::GET, "/v1/contacts/m1"),
            (Method::POST, "/v1/events"),
        ] {
            let r = s
                .raw(method.clone(), path, auth, Some("application/json"), body())
                .await;
            assert_error(&r, 401, "unauthorized", None);
            let challenge = r.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
            assert!(challenge.starts_with("Bearer "), "{challenge}");
            assert_eq!(
                challenge.contains("invalid_token"),
                presented,
                "{auth:?}: {challenge}"
            );
        }
    }
    assert_eq!(
        s.store.count_contacts().await.unwrap(),
        0,
        "nothing was written"
    );
    // Both tokens of a rotation work, and the scheme is case-insensitive.
    for auth in [format!("Bearer {TOKEN}"), format!("bearer {OTHER_TOKEN}")] {
        let r = s
            .raw(
                Method::PUT,
                "/v1/contacts/m1",
                Some(&auth),
                Some("application/json"),
                body(),
            )
            .await;
        assert!(r.status.is_success(), "{auth}: {}", r.body);
    }
}

pub(crate) async fn without_tokens_only_the_public_endpoints_answer<S: TestStore>(b: Backend) {
    let s = server_with::<S>(b, Tokens::parse(" , ")).await;
    for auth in [format!("Bearer {TOKEN}"), "Bearer ".into()] {
        let r = s
            .raw(Method::GET, "/v1/contacts/c1", Some(&auth), None, vec![])
            .await;
        assert_error(&r, 401, "unauthorized", None);
    }
    let r = s
        .raw(
            Method::POST,
            "/v1/events",
            Some(&format!("Bearer {TOKEN}")),
            Some("application/json"),
            b"{}".to_vec(),
        )
        .await;
    assert_error(&r, 401, "unauthorized", None);
    assert_eq!(
        s.raw(Method::GET, "/healthz", None, None, vec![])
            .await
            .status,
        200
    );
    assert_eq!(
        s.raw(Method::GET, "/readyz", None, None, vec![])
            .await
            .status,
        200
    );
}

pub(crate) async fn not_found_conflict_too_large_and_wrong_media_type<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    assert_error(
        &s.call(Method::GET, "/v1/contacts/nobody", None).await,
        404,
        "not_found",
        None,
    );
    let r = s
        .call(
            Method::PUT,
            "/v1/contacts/c3",
            Some(json!({"id": "c4", "first_name": "X"})),
        )
        .await;
    assert_error(&r, 409, "id_mismatch", Some("id"));
    let big = json!({"attributes": {"note": "x".repeat(MAX_BODY)}});
    assert_error(
        &s.call(Method::PUT, "/v1/contacts/c3", Some(big.clone()))
            .await,
        413,
        "body_too_large",
        None,
    );
    assert_error(
        &s.call(Method::POST, "/v1/events", Some(big)).await,
        413,
        "body_too_large",
        None,
    );
    // Just under the limit is fine.
    let fits = json!({"attributes": {"note": "x".repeat(MAX_BODY - 40)}});
    assert_eq!(
        s.call(Method::PUT, "/v1/contacts/c5", Some(fits))
            .await
            .status,
        201
    );
    let auth = format!("Bearer {TOKEN}");
    for ctype in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let r = s
            .raw(
                Method::PUT,
                "/v1/contacts/c3",
                Some(&auth),
                ctype,
                b"{}".to_vec(),
            )
            .await;
        assert_error(&r, 415, "unsupported_media_type", None);
        let r = s
            .raw(
                Method::POST,
                "/v1/events",
                Some(&auth),
                ctype,
                b"{}".to_vec(),
            )
            .await;
        assert_error(&r, 415, "unsupported_media_type", None);
    }
    for id in ["c3", "c4"] {
        assert!(s.contact(id).await.is_none(), "{id} must not exist");
    }
}

/// `(method, path, body, status, code, field)`: a request that must be refused.
pub(crate) type Refused = (
    Method,
    &'static str,
    String,
    u16,
    &'static str,
    Option<&'static str>,
);

// A table: one refused request per line.
#[rustfmt::skip]
pub(crate) fn malformed() -> Vec<Refused> {
    let put = |body: &str, status, code, field| (Method::PUT, "/v1/contacts/c-old", body.to_owned(), status, code, field);
    let new = |body: &str, status, code, field| (Method::PUT, "/v1/contacts/c-new", body.to_owned(), status, code, field);
    let ev = |body: &str, status, code, field| (Method::POST, "/v1/events", body.to_owned(), status, code, field);
    let re = |body: &str, status, code, field| (Method::POST, "/v1/responses", body.to_owned(), status, code, field);
    vec![
        put(r#"{"first_name": "Ada", "email": "ada@example.com""#, 400, "malformed_json", None),
        put(r#"{"first_name": "Ada"} {"x": 1}"#, 400, "malformed_json", None),
        put("", 400, "malformed_json", None),
        put(r#"{"first_name": 'Ada'}"#, 400, "malformed_json", None),
        new(r#"[{"first_name": "Ada"}]"#, 422, "not_an_object", Some("(body)")),
        new(r#""Ada""#, 422, "not_an_object", Some("(body)")),
        put(r#"{"first_name": 42}"#, 422, "wrong_type", Some("first_name")),
        put(r#"{"birthday": 19900714}"#, 422, "wrong_type", Some("birthday")),
        put(r#"{"tier": true}"#, 422, "wrong_type", Some("tier")),
        put(r#"{"email_consent": 1}"#, 422, "wrong_type", Some("email_consent")),
        put(r#"{"attributes": "vip"}"#, 422, "wrong_type", Some("attributes")),
        put(r#"{"id": 7}"#, 422, "wrong_type", Some("id")),
        new(r#"{"birthdya": "1990-07-14"}"#, 422, "unknown_field", Some("birthdya")),
        put(r#"{"attributes": {"tier": "family"}}"#, 422, "invalid_field", Some("attributes.tier")),
        put(r#"{"email_consent": "maybe"}"#, 422, "invalid_field", Some("email_consent")),
        put(r#"{"tier": "cousin"}"#, 422, "invalid_field", Some("tier")),
        new(r#"{"birthday": "1990-02-30"}"#, 422, "invalid_field", Some("birthday")),
        put(r#"{"timezone": "Mars/Olympus"}"#, 422, "invalid_field", Some("timezone")),
        put(r#"{"email": "ada-at-example.com"}"#, 422, "invalid_field", Some("email")),
        put(r#"{"phone": "0612345678"}"#, 422, "invalid_field", Some("phone")),
        (Method::PUT, "/v1/contacts/ada@example.com", "{}".into(), 422, "invalid_field", Some("id")),
        put(&format!(r#"{{"first_name": "{}"}}"#, "A".repeat(MAX_BODY)), 413, "body_too_large", None),
        ev(r#"{"contact": "c-old", "type": "purchase""#, 400, "malformed_json", None),
        ev(r#"{"type": "purchase", "id": "o-1"}"#, 422, "missing_field", Some("contact")),
        ev(r#"{"contact": "c-old", "id": "o-1"}"#, 422, "missing_field", Some("type")),
        ev(r#"{"contact": 42, "type": "purchase", "id": "o-1"}"#, 422, "wrong_type", Some("contact")),
        ev(r#"{"contact": "c-old", "type": "purchase", "id": "o-1", "at": 1700000000}"#, 422, "wrong_type", Some("at")),
        ev(r#"{"contact": "c-old", "contact_id": "c-old", "type": "purchase", "id": "o-1"}"#, 422, "unknown_field", Some("contact_id")),
        ev(r#"{"contact": "c-old", "type": "Purchase!", "id": "o-1"}"#, 422, "invalid_field", Some("type")),
        ev(r#"{"contact": "c-old", "type": "purchase", "id": "o 1"}"#, 422, "invalid_field", Some("id")),
        ev(r#"{"contact": "c-old", "type": "purchase", "id": "o-1", "at": "yesterday"}"#, 422, "invalid_field", Some("at")),
        ev(r#"{"contact": "c-old", "type": "purchase", "id": "o-1", "data": [1, 2]}"#, 422, "invalid_field", Some("data")),
        ev(r#"{"contact": "c-old", "type": "purchase", "id": "o-1", "pad": ""}"#, 422, "unknown_field", Some("pad")),
        re(r#"{"kind": "reply", "contact": "c-old""#, 400, "malformed_json", None),
        re(r#"["reply"]"#, 422, "not_an_object", Some("(body)")),
        re(r#"{"kind": ["reply"], "contact": "c-old", "channel": "email"}"#, 422, "wrong_type", Some("kind")),
        re(r#"{"kind": "reply", "contact": "c-old", "channel": "email", "at": 5}"#, 422, "wrong_type", Some("at")),
        re(r#"{"kind": "reply", "contact": "c-old", "channel": "email", "note": "hi"}"#, 422, "unknown_field", Some("note")),
        re(r#"{"kind": "adore", "contact": "c-old", "channel": "email"}"#, 422, "invalid_field", Some("kind")),
        re(&format!(r#"{{"kind": "reply", "contact": "c-old", "channel": "email", "id": "{}"}}"#, "i".repeat(MAX_BODY)), 413, "body_too_large", None),
        (Method::DELETE, "/v1/contacts/ada@example.com", String::new(), 422, "invalid_field", Some("id")),
    ]
}

pub(crate) async fn malformed_input_is_refused_and_changes_nothing<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    let put = s.call(Method::PUT, "/v1/contacts/c-old", Some(ada())).await;
    assert_eq!(put.status, 201, "{}", put.body);
    let before = s.contact("c-old").await.unwrap();
    let auth = format!("Bearer {TOKEN}");
    for (method, path, body, status, code, field) in malformed() {
        let r = s
            .raw(
                method.clone(),
                path,
                Some(&auth),
                Some("application/json"),
                body.clone().into_bytes(),
            )
            .await;
        let case = format!("{method} {path} {body:.80}");
        assert!(r.status.is_client_error(), "{case}: {}", r.status);
        assert_eq!(r.status.as_u16(), status, "{case}: {}", r.body);
        assert_error(&r, status, code, field);
        if status == 400 {
            // Says where, never what: no personal data comes back.
            let msg = r.body["error"]["message"].as_str().unwrap();
            assert!(
                !msg.contains("Ada") && !msg.contains("example.com"),
                "{case}: {msg}"
            );
            assert!(msg.contains("line 1") || body.is_empty(), "{case}: {msg}");
        }
    }
    assert_eq!(s.contact("c-old").await.unwrap(), before);
    assert!(s.contact("c-new").await.is_none());
    assert_eq!(s.store.count_contacts().await.unwrap(), 1);
    let id = ContactId::parse("c-old").unwrap();
    assert!(s.store.events_for_contact(&id).await.unwrap().is_empty());
    assert!(s.store.touches_for_contact(&id).await.unwrap().is_empty());
    assert!(s.store.responses_for_contact(&id).await.unwrap().is_empty());
    assert_eq!(s.store.relationship(&id).await.unwrap(), None);
}
