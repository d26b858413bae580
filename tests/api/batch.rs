//! `POST /v1/contacts:batch`: NDJSON only, each line answered on its own (created,
//! updated, or refused naming the field) without failing the others.

use crate::support::backends::TestStore;
use reqwest::Method;
use serde_json::json;

use crate::harness::{Backend, TOKEN, assert_error, server};
use crate::history::contact;

pub(crate) async fn a_batch_answers_each_line<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    contact(&s, "old").await;
    let lines = [
        json!({"id": "n1", "email": "n1@example.com", "tier": "friend"}).to_string(),
        String::new(),
        json!({"id": "n2", "birthday": "1990-02-30"}).to_string(),
        "{not json".to_owned(),
        json!({"id": "old", "first_name": "Changed"}).to_string(),
        json!({"email": "noid@example.com"}).to_string(),
        json!({"id": "n1", "first_name": "Twice"}).to_string(),
    ];
    let body = lines.join("\n").into_bytes();
    let auth = format!("Bearer {TOKEN}");
    let r = s
        .raw(
            Method::POST,
            "/v1/contacts:batch",
            Some(&auth),
            Some("application/x-ndjson"),
            body.clone(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (
            r.body["created"].as_u64(),
            r.body["updated"].as_u64(),
            r.body["failed"].as_u64()
        ),
        (Some(1), Some(2), Some(3)),
        "{}",
        r.body
    );
    let results = r.body["results"].as_array().unwrap();
    let by_line: Vec<(u64, String)> = results
        .iter()
        .map(|v| {
            let outcome = v["result"].as_str().map(str::to_owned).unwrap_or_else(|| {
                format!(
                    "{}:{}",
                    v["error"]["code"].as_str().unwrap(),
                    v["error"]["field"].as_str().unwrap_or("")
                )
            });
            (v["line"].as_u64().unwrap(), outcome)
        })
        .collect();
    assert_eq!(
        by_line,
        [
            (1, "created".to_owned()),
            (3, "invalid_field:birthday".to_owned()),
            (4, "malformed_json:".to_owned()),
            (5, "updated".to_owned()),
            (6, "missing_field:id".to_owned()),
            (7, "updated".to_owned()),
        ]
    );
    assert_eq!(
        s.contact("old").await.unwrap().first_name.as_deref(),
        Some("Changed")
    );
    assert_eq!(
        s.contact("n1").await.unwrap().first_name.as_deref(),
        Some("Twice")
    );
    assert!(s.contact("n2").await.is_none());
    let wrong = s
        .raw(
            Method::POST,
            "/v1/contacts:batch",
            Some(&auth),
            Some("application/json"),
            body,
        )
        .await;
    assert_error(&wrong, 415, "unsupported_media_type", None);
}
