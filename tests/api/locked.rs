//! SQLite out of reach: it has no server to lose; what makes it unavailable is another
//! connection (an operator's `sqlite3` shell, a backup tool) holding the write lock
//! past the store's busy timeout (30 s, so this test takes that long).

use reqwest::Method;
use serde_json::json;
use sqlx::Connection as _;

use crate::{
    harness::{Backend, server},
    outage::{Call, assert_unavailable},
};

/// A write answers 503 and stores nothing; reads go on (WAL); once the lock is let go,
/// the same request succeeds.
#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn while_sqlite_is_locked_past_its_busy_timeout_a_write_is_503() {
    let s = server::<rapport::store::SqliteStore>(Backend::Sqlite).await;
    let sam = s
        .call(
            Method::PUT,
            "/v1/contacts/sam",
            Some(json!({"email": "sam@example.com"})),
        )
        .await;
    assert_eq!(sam.status, 201);
    let mut holder = sqlx::SqliteConnection::connect(&s.cfg().storage.url)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();

    let call = Call::json(
        "put contact",
        Method::PUT,
        "/v1/contacts/neo",
        Some(json!({"email": "neo@example.com"})),
        201,
    );
    let answer = call.send(&s).await;
    assert_unavailable(&call, &answer, None);
    let get = s.call(Method::GET, "/v1/contacts/sam", None).await;
    assert_eq!(get.status, 200, "reads go on while the writer waits");

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    assert!(s.contact("neo").await.is_none(), "nothing stored");
    let (status, _, body) = call.send(&s).await;
    assert_eq!(status.as_u16(), call.ok, "{body}");
    assert!(s.contact("neo").await.is_some());
}
