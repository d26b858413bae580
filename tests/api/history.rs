//! What the response tests start from: an acquaintance reachable by email and SMS,
//! touches already sent to it, and a response posted, with the effects it reports.

use crate::support::backends::TestStore;
use chrono::{DateTime, Utc};
use rapport::domain::TouchId;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::Server;

/// A contact: acquaintance, reachable by email and SMS.
pub(crate) async fn contact<S: TestStore>(s: &Server<S>, id: &str) {
    let body = json!({"first_name": "Ada", "email": format!("{id}@example.com"),
        "phone": "+14155550199", "tier": "acquaintance", "timezone": "UTC",
        "email_consent": true, "sms_consent": true});
    let put = s
        .call(Method::PUT, &format!("/v1/contacts/{id}"), Some(body))
        .await;
    assert!(put.status.is_success(), "{}", put.body);
}

/// A touch of `occasion` for `contact`, sent on `channel` at `at`.
pub(crate) async fn sent<S: TestStore>(
    s: &Server<S>,
    contact: &str,
    occasion: &str,
    n: u32,
    channel: &str,
    at: DateTime<Utc>,
) -> TouchId {
    let occurrence = n.to_string();
    crate::support::sent::sent(
        s.store.as_ref(),
        contact,
        occasion,
        &occurrence,
        channel,
        at,
    )
    .await
}

pub(crate) async fn respond<S: TestStore>(s: &Server<S>, body: Value) -> crate::harness::Reply {
    s.call(Method::POST, "/v1/responses", Some(body)).await
}

pub(crate) fn effects(reply: &crate::harness::Reply) -> Vec<String> {
    reply.body["response"]["effects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect()
}
