//! The router against its OpenAPI document, the error shape, and readiness.

mod unavailable;

use crate::store::Coordination;
use std::{collections::BTreeSet, sync::Arc};

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use serde_json::Value;

use super::{
    ApiError, ApiState, Tokens, WorkerCount, WorkerProbe, protected_routes, public_routes,
    routes::{health, openapi::DOCUMENT},
};
use crate::{config::Config, domain::SystemClock, store::SqliteStore};

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi.json is valid JSON")
}

/// `(METHOD, path)` of every operation in the document.
fn documented() -> BTreeSet<(String, String)> {
    let doc = document();
    let paths = doc["paths"].as_object().expect("paths");
    let mut out = BTreeSet::new();
    for (path, item) in paths {
        for m in METHODS {
            if item.get(m).is_some() {
                out.insert((m.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn openapi_documents_every_route_and_nothing_else() {
    let registered: BTreeSet<(String, String)> = super::routes()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    assert_eq!(registered.len(), super::routes().len(), "a route twice");
    let documented = documented();
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "openapi.json documents routes the router lacks: {unrouted:?}"
    );
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    // Public routes opt out of the document-wide bearer requirement; protected ones
    // keep it and document their 401.
    for (method, path) in public_routes::<SqliteStore>().list {
        let op = &doc["paths"][path][method.to_ascii_lowercase()];
        assert_eq!(
            op["security"],
            serde_json::json!([]),
            "{method} {path} should be public"
        );
    }
    for (method, path) in protected_routes::<SqliteStore>().list {
        let op = &doc["paths"][path][method.to_ascii_lowercase()];
        assert!(
            op.get("security").is_none(),
            "{method} {path} must need a token"
        );
        assert!(
            op["responses"].get("401").is_some(),
            "{method} {path}: no 401"
        );
    }
    assert!(doc["security"][0].get("bearer").is_some());
}

#[test]
fn every_reference_in_the_document_resolves() {
    fn walk(v: &Value, doc: &Value, bad: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let pointer = r.trim_start_matches('#');
                    if doc.pointer(pointer).is_none() {
                        bad.push(r.clone());
                    }
                }
                m.values().for_each(|x| walk(x, doc, bad));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, doc, bad)),
            _ => {}
        }
    }
    let doc = document();
    let mut bad = Vec::new();
    walk(&doc, &doc, &mut bad);
    assert!(bad.is_empty(), "dangling $ref: {bad:?}");
}

#[test]
fn errors_have_one_json_shape() {
    let e = ApiError::field("invalid_field", "birthday", "\"1990-02-30\" is not a date");
    assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = e.body();
    assert_eq!(body["error"]["status"], 422);
    assert_eq!(body["error"]["code"], "invalid_field");
    assert_eq!(body["error"]["field"], "birthday");
    assert_eq!(
        body["error"]["message"],
        "birthday: \"1990-02-30\" is not a date"
    );
    assert!(body["error"].get("errors").is_none());

    let several = ApiError::invalid(
        "invalid_field",
        vec![
            super::error::FieldProblem {
                field: "tier".into(),
                message: "unknown tier".into(),
            },
            super::error::FieldProblem {
                field: "phone".into(),
                message: "not E.164".into(),
            },
        ],
    );
    let body = several.body();
    assert_eq!(body["error"]["field"], "tier");
    assert_eq!(body["error"]["errors"].as_array().map(Vec::len), Some(2));

    // A 500 says nothing of its cause.
    let cause = std::io::Error::other("disk on fire at /var/lib/secret");
    let response = ApiError::internal(cause).into_response();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = ApiError::internal(std::io::Error::other("disk on fire")).body();
    assert_eq!(body["error"]["message"], "internal error");
    assert!(!body.to_string().contains("fire"));

    let unauthorized = ApiError::Unauthorized {
        message: "invalid bearer token",
        invalid: true,
    }
    .into_response();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    let challenge = unauthorized.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

async fn state(dir: &std::path::Path, workers: Option<WorkerProbe>) -> ApiState<SqliteStore> {
    let repo = env!("CARGO_MANIFEST_DIR");
    let cfg = Config::load_with(
        std::path::Path::new(&format!("{repo}/config/rapport.toml")),
        None,
        [
            (
                "RAPPORT__STORAGE__URL".to_owned(),
                format!("sqlite://{}/r.db", dir.display()),
            ),
            (
                "RAPPORT__TEMPLATES__DIR".to_owned(),
                format!("{repo}/templates"),
            ),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let store = SqliteStore::open(&cfg.storage.url)
        .await
        .expect("open store");
    ApiState {
        store: Arc::new(store),
        cfg: Arc::new(cfg),
        clock: Arc::new(SystemClock),
        tokens: Arc::new(Tokens::default()),
        unsubscribe_key: Arc::new(b"a key for the api unit tests".to_vec()),
        twilio_auth_token: None,
        workers,
        custody: None,
    }
}

async fn ready(state: &ApiState<SqliteStore>) -> (StatusCode, Value) {
    let (status, body) = health::readyz(State(state.clone())).await;
    (status, body.0)
}

#[tokio::test]
async fn readyz_checks_the_store_and_the_workers() {
    let dir = tempfile::tempdir().unwrap();
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(2));
    let probe = {
        let running = running.clone();
        WorkerProbe::new(move || WorkerCount {
            running: running.load(std::sync::atomic::Ordering::SeqCst),
            total: 2,
            failing: None,
        })
    };
    let st = state(dir.path(), Some(probe)).await;
    let (status, body) = ready(&st).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["workers"], "ok: 2 of 2 running");

    running.store(1, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = ready(&st).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["failed"], serde_json::json!(["workers"]));
    assert_eq!(body["checks"]["workers"], "failing: 1 of 2 running");
    assert_eq!(body["checks"]["store"], "ok");

    // The store gone (its pool closed): the store check fails too.
    st.store.close().await;
    let (status, body) = ready(&st).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["failed"], serde_json::json!(["store", "workers"]));

    // Without workers in the process, only the store counts.
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path(), None).await;
    let (status, body) = ready(&st).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["checks"]["workers"],
        "not run by this process (--role api)"
    );
}
