//! The store out of reach: a 503 with `Retry-After`, documented on every operation that
//! reads or writes the store, and an `Idempotency-Key` the failed request could not let
//! go of let go of before its retry.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    Router,
    http::{StatusCode, header::RETRY_AFTER},
    middleware,
    response::IntoResponse,
    routing::post,
};

use super::{ApiError, document, state};
use crate::store::StoreError;

fn outage() -> StoreError {
    StoreError::Query(Box::new(sqlx::Error::PoolTimedOut))
}

#[test]
fn a_store_out_of_reach_is_a_503_with_retry_after_and_no_detail() {
    let response = ApiError::internal(outage()).into_response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[RETRY_AFTER], "5");
    let body = ApiError::internal(outage()).body();
    assert_eq!(body["error"]["code"], "store_unavailable");
    assert_eq!(body["error"]["status"], 503);
    assert!(!body.to_string().contains("pool"), "{body}");
    // Through FeedbackError, as the response routes map it.
    let e = super::super::routes::responses::feedback_error(outage().into());
    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Other store errors stay 500, and say nothing.
    let corrupt = ApiError::internal(StoreError::Corrupt("row 7".into()));
    assert_eq!(corrupt.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let query = StoreError::Query(Box::new(sqlx::Error::RowNotFound));
    assert_eq!(
        ApiError::internal(query).status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

/// Every operation that can fail with the store (those that document a 500: each one
/// reads or writes it) documents the 503 too, with its `Retry-After`.
#[test]
fn every_operation_on_the_store_documents_the_503() {
    let doc = document();
    let unavailable = &doc["components"]["responses"]["StoreUnavailable"];
    assert!(unavailable["headers"].get("Retry-After").is_some());
    let mut on_store = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(responses) = op.get("responses") else {
                continue;
            };
            if responses.get("500").is_none() {
                continue;
            }
            on_store += 1;
            assert_eq!(
                responses["503"]["$ref"], "#/components/responses/StoreUnavailable",
                "{method} {path}"
            );
        }
    }
    assert_eq!(on_store, 12);
}

/// A request fails with the store after taking its key, and letting go of the key
/// fails too (here the key's table is renamed away under it; in life the store is
/// down): the process holds on to the key and lets go of it before the retry, which
/// then runs instead of answering 409 for five minutes.
#[tokio::test]
async fn a_key_a_failed_request_could_not_let_go_of_is_let_go_of_before_its_retry() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path(), None).await;
    let pool = st.store.pool().clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (calls, pool) = (calls.clone(), pool.clone());
        move || async move {
            if calls.fetch_add(1, Ordering::SeqCst) > 0 {
                return Ok(StatusCode::CREATED);
            }
            sqlx::query("ALTER TABLE idempotency RENAME TO idempotency_away")
                .execute(&pool)
                .await
                .unwrap();
            Err::<StatusCode, _>(ApiError::internal(outage()))
        }
    };
    let app = Router::new()
        .route("/t", post(handler))
        .route_layer(middleware::from_fn_with_state(
            super::super::idempotency::Keys::new(st.clone()),
            super::super::idempotency::layer,
        ))
        .with_state(st.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/t", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let send = || {
        client
            .post(&url)
            .header("idempotency-key", "k-1")
            .body("{}")
            .send()
    };

    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(first.headers()[RETRY_AFTER], "5");
    // The store answers again; the key is still taken there.
    sqlx::query("ALTER TABLE idempotency_away RENAME TO idempotency")
        .execute(&pool)
        .await
        .unwrap();
    let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM idempotency WHERE key = 'k-1'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(taken, 1);

    let retry = send().await.unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the retry ran");
    let replay = send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    server.abort();
}
