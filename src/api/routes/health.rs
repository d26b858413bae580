//! `/healthz` (the process is up) and `/readyz` (it can do its work: the store answers
//! and, where this process runs them, the queue workers are running).

use crate::store::Store;
use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use crate::api::{ApiState, WorkerCount};

/// How long the store may take to answer a readiness probe.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

pub(in crate::api) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub(in crate::api) async fn readyz<S: Store>(
    State(state): State<ApiState<S>>,
) -> (StatusCode, Json<Value>) {
    let mut failed = Vec::new();
    // One read of one key: a round trip to the store, whatever its size (a COUNT over
    // the contacts would scan them on SQLite).
    let store = match tokio::time::timeout(STORE_TIMEOUT, state.store.setting("readyz")).await {
        Ok(Ok(_)) => "ok".to_owned(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readyz: the store does not answer");
            failed.push("store");
            "failing: the store returned an error (see the log)".to_owned()
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = STORE_TIMEOUT.as_millis() as u64,
                "readyz: the store does not answer in time"
            );
            failed.push("store");
            format!("failing: no answer within {}s", STORE_TIMEOUT.as_secs_f64())
        }
    };
    let identity = match state.custody.as_ref() {
        None => "not checked".to_owned(),
        Some(c) => match c.lost() {
            None => format!("ok: {}", c.id().unwrap_or_default()),
            Some(why) => {
                failed.push("store_identity");
                format!("failing: {why}")
            }
        },
    };
    let workers = match state.workers.as_ref().map(|p| p.count()) {
        None => "not run by this process (--role api)".to_owned(),
        Some(WorkerCount {
            failing: Some(why), ..
        }) => {
            failed.push("workers");
            format!("failing: {why}")
        }
        Some(WorkerCount { running, total, .. }) if total > 0 && running == total => {
            format!("ok: {running} of {total} running")
        }
        Some(WorkerCount { running, total, .. }) => {
            failed.push("workers");
            format!("failing: {running} of {total} running")
        }
    };
    let status = if failed.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if failed.is_empty() { "ready" } else { "unavailable" },
        "failed": failed,
        "checks": { "store": store, "store_identity": identity, "workers": workers },
    });
    (status, Json(body))
}
