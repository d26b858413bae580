//! `GET /v1/touches`: a contact's touches filtered by status, bad queries refused naming
//! the field; the statistics need a token.

use crate::support::backends::TestStore;
use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::json;

use crate::harness::{Backend, assert_error, server};
use crate::history::{contact, sent};

pub(crate) async fn touches_list_filters_and_refuses_bad_queries<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    contact(&s, "t1").await;
    let now = Utc::now();
    sent(&s, "t1", "birthday", 1, "email", now - Duration::days(1)).await;
    let all = s.call(Method::GET, "/v1/touches?contact=t1", None).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body["touches"][0]["status"], "sent");
    let none = s
        .call(Method::GET, "/v1/touches?contact=t1&status=failed", None)
        .await;
    assert_eq!(none.body["touches"], json!([]));
    assert_error(
        &s.call(Method::GET, "/v1/touches", None).await,
        422,
        "missing_field",
        Some("contact"),
    );
    assert_error(
        &s.call(Method::GET, "/v1/touches?contact=t1&status=lost", None)
            .await,
        422,
        "invalid_field",
        Some("status"),
    );
    assert_error(
        &s.call(Method::GET, "/v1/touches?contact=zz", None).await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &s.call(Method::GET, "/v1/touches?contact=t1&page=2", None)
            .await,
        400,
        "bad_query",
        None,
    );
    let r = s
        .raw(Method::GET, "/v1/stats", None, None, Vec::new())
        .await;
    assert_error(&r, 401, "unauthorized", None);
}
