//! Erasure on SQLite leaves nothing readable: after `DELETE /v1/contacts/{id}` none of
//! the contact's values (name, address, phone, attributes, event data, a kept
//! `Idempotency-Key` answer) is in the bytes of the database file, its WAL or its shm.

use crate::support::backends::TestStore;
use reqwest::{Method, header};
use serde_json::json;

use crate::harness::{Backend, Server, TOKEN, server};

/// What was sent about the erased contact, each where a reader of the files could
/// find it: the contact row (names, address, phone, attribute), the event, the
/// response, and the kept answers of an event and of a batch line quoting a field.
const ERASED: [&str; 8] = [
    "Zephyrine",
    "Quillfeather",
    "zephyrine.quillfeather@erasure.example",
    "15550147263",
    "Wobblesnout",
    "Obsidian-Tuba-7731",
    "msg-Kestrel-9912",
    "Erasure/Nowhere-4471",
];
/// Another contact's value, which must survive.
const KEPT: &str = "Untouched-Persimmon";

/// The bytes of `r.db`, `r.db-wal` and `r.db-shm` (a missing file counts as empty).
fn files<S: TestStore>(s: &Server<S>) -> Vec<(&'static str, Vec<u8>)> {
    ["r.db", "r.db-wal", "r.db-shm"]
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(s._dir.path().join(name)).unwrap_or_default();
            (name, bytes)
        })
        .collect()
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn found_in<S: TestStore>(s: &Server<S>, needle: &str) -> Vec<&'static str> {
    files(s)
        .into_iter()
        .filter(|(_, bytes)| holds(bytes, needle))
        .map(|(name, _)| name)
        .collect()
}

/// A POST with an `Idempotency-Key`, so its answer is kept.
async fn post_keyed<S: TestStore>(
    s: &Server<S>,
    path: &str,
    key: &str,
    content_type: &str,
    body: String,
) -> u16 {
    s.http
        .request(Method::POST, format!("{}{path}", s.base))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, content_type)
        .header("idempotency-key", key)
        .body(body)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_erased_contact_cannot_be_read_back_from_the_sqlite_files() {
    let s = server::<rapport::store::SqliteStore>(Backend::Sqlite).await;
    let put = |id: &str, body: serde_json::Value| {
        let path = format!("/v1/contacts/{id}");
        let s = &s;
        async move {
            let r = s.call(Method::PUT, &path, Some(body)).await;
            assert!(r.status.is_success(), "{}", r.body);
        }
    };
    put(
        "ers-1",
        json!({"first_name": "Zephyrine", "last_name": "Quillfeather",
            "email": "zephyrine.quillfeather@erasure.example", "phone": "+15550147263",
            "tier": "friend", "timezone": "UTC", "attributes": {"nickname": "Wobblesnout"},
            "email_consent": true, "sms_consent": true}),
    )
    .await;
    put(
        "keep-1",
        json!({"first_name": KEPT, "email": "keep@example.com", "tier": "friend"}),
    )
    .await;
    let event = json!({"contact": "ers-1", "type": "purchase", "id": "o-1",
        "data": {"gift": "Obsidian-Tuba-7731"}});
    let status = post_keyed(
        &s,
        "/v1/events",
        "k-event",
        "application/json",
        event.to_string(),
    );
    assert_eq!(status.await, 201);
    // A batch line that fails quotes the bad value in its kept answer.
    let line = json!({"id": "ers-1", "timezone": "Erasure/Nowhere-4471"});
    let status = post_keyed(
        &s,
        "/v1/contacts:batch",
        "k-batch",
        "application/x-ndjson",
        format!("{line}\n"),
    );
    assert_eq!(status.await, 200);
    let reply = json!({"kind": "reply", "contact": "ers-1", "channel": "email",
        "id": "msg-Kestrel-9912"});
    let r = s.call(Method::POST, "/v1/responses", Some(reply)).await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Before: every value is in the files, so the check below can fail.
    for value in ERASED.iter().chain([&KEPT]) {
        assert!(
            !found_in(&s, value).is_empty(),
            "{value} is not in the files before the erasure: the test reads the wrong files"
        );
    }

    assert_eq!(s.status_of(Method::DELETE, "/v1/contacts/ers-1").await, 204);

    for value in ERASED {
        let found = found_in(&s, value);
        assert!(
            found.is_empty(),
            "{value} can still be read after the erasure, in {found:?}"
        );
    }
    assert!(
        found_in(&s, KEPT).contains(&"r.db"),
        "the other contact must survive, checkpointed into the database file"
    );
}
