//! `Idempotency-Key` on POSTs: a client that retries (a timeout, a dropped connection)
//! sends the same key, and gets the original answer instead of a second effect.
//!
//! - The first request with a key takes it (for 5 minutes while it is answered), and its
//!   answer is kept for 24 hours if it succeeded (2xx). A failure lets go of the key,
//!   so a client can fix the request and retry with the same key.
//! - The same key with the same request (method, path, body) -> the kept answer, with
//!   `Idempotent-Replayed: true`.
//! - The same key with a different request -> 422 naming the header.
//! - The same key while the first request is still being answered -> 409.
//! - A request that failed after taking its key lets go of it, so its retry runs. When
//!   the store fails under it (a 503), letting go fails too: the process keeps the key
//!   ([`Keys`]) and lets go of it before the next keyed request it serves, the retry
//!   with that key first of all. (A retry that reaches another replica first finds the
//!   key held until it lapses, 5 minutes after it was taken, and gets a 409.)
//!
//! Keys are shared by all clients of this deployment (tokens are one organisation's).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header::CONTENT_TYPE},
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{ApiError, ApiState};
use crate::store::{Idempotency, KeptAnswer, RequestKeys, Store};

pub(super) const HEADER: &str = "idempotency-key";
/// How long an answer is kept.
const KEEP: Duration = Duration::from_secs(24 * 3600);
const MAX_KEY: usize = 255;
/// A key this process could not let go of is let go of later only within this long of
/// the failure: the store lets an unanswered key lapse 5 minutes after it was taken,
/// and after that it may be another request's, which must not lose it.
const GIVE_BACK_WITHIN: Duration = Duration::from_secs(4 * 60);
/// At most this many such keys are kept (each lapses by itself anyway).
const MAX_HELD: usize = 10_000;

/// The layer's state: the API's, and the keys this process took for requests that
/// failed but could not let go of (the store failed under them), with when.
pub(super) struct Keys<S> {
    api: ApiState<S>,
    held: Arc<Mutex<HashMap<String, Instant>>>,
}

// By hand: a derived `Clone` would ask `S: Clone`.
impl<S> Clone for Keys<S> {
    fn clone(&self) -> Self {
        Self {
            api: self.api.clone(),
            held: self.held.clone(),
        }
    }
}

impl<S: Store> Keys<S> {
    pub(super) fn new(api: ApiState<S>) -> Self {
        Self {
            api,
            held: Arc::default(),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets go of `key` in the store; if the store fails, remembers to do it later.
    async fn let_go(&self, store: &S, key: &str) {
        if let Err(e) = store.forget_key(key).await {
            tracing::warn!(
                error = %e,
                "could not let go of an idempotency key; it is let go of once the store answers"
            );
            let mut held = self.held();
            if held.len() < MAX_HELD {
                held.insert(key.to_owned(), Instant::now());
            }
        }
    }

    /// Keeps a successful answer under `key` and hands it on.
    async fn keep(
        &self,
        store: &S,
        key: &str,
        fingerprint: String,
        response: Response,
        now: DateTime<Utc>,
    ) -> Result<Response, ApiError> {
        let (parts, body) = response.into_parts();
        let body = to_bytes(body, usize::MAX)
            .await
            .map_err(ApiError::internal)?;
        let kept = KeptAnswer {
            fingerprint,
            status: parts.status.as_u16(),
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        // The effect has happened: if the answer cannot be kept, the client still gets it
        // (a retry would then run again, which is what it would do without a key).
        if let Err(e) = store.keep_answer(key, &kept, KEEP, now).await {
            tracing::error!(error = %e, "could not keep the answer for an idempotency key");
            self.let_go(store, key).await;
        }
        Ok(Response::from_parts(parts, Body::from(body)))
    }

    /// Lets go of the keys held since a failure, now that the store may answer again;
    /// those it still cannot are kept for the next try.
    async fn give_back(&self, store: &S) {
        let due: Vec<(String, Instant)> = {
            let mut held = self.held();
            held.retain(|_, at| at.elapsed() < GIVE_BACK_WITHIN);
            held.iter().map(|(k, at)| (k.clone(), *at)).collect()
        };
        for (key, at) in due {
            if store.forget_key(&key).await.is_err() {
                // Still failing: the rest waits for the next request rather than make
                // this one wait on each.
                break;
            }
            let mut held = self.held();
            if held.get(&key) == Some(&at) {
                held.remove(&key);
            }
        }
    }
}

pub(super) async fn layer<S: Store>(
    State(keys): State<Keys<S>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let state = &keys.api;
    if req.method() != Method::POST {
        return Ok(next.run(req).await);
    }
    let Some(key) = req.headers().get(HEADER) else {
        return Ok(next.run(req).await);
    };
    let key = parse_key(key)?;
    let (parts, body) = req.into_parts();
    let limit = state.cfg.api.max_body;
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge { limit })?;
    let fingerprint = fingerprint(&parts.method, parts.uri.path(), &bytes);
    let store = state.store.as_ref();
    let now = state.clock.now();
    // Keys left held by requests that failed with the store: before this one takes its
    // key (which may be one of them, retried).
    keys.give_back(store).await;
    if let Some(kept) = take(store, &key, &fingerprint, now).await? {
        return Ok(replay(kept));
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if !response.status().is_success() {
        keys.let_go(store, &key).await;
        return Ok(response);
    }
    keys.keep(store, &key, fingerprint, response, now).await
}

fn parse_key(key: &HeaderValue) -> Result<String, ApiError> {
    Ok(key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| ApiError::BadRequest {
            code: "invalid_idempotency_key",
            message: format!(
                "Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters (a UUID is a good key)"
            ),
        })?
        .to_owned())
}

/// What makes two requests the same: method, path and body (hex SHA-256).
fn fingerprint(method: &Method, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_str().as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// Takes `key` for this request: `None` if it is this request's to answer, the kept
/// answer if the same request was answered before, an error if the key is busy or was
/// used for another request.
async fn take<S: RequestKeys>(
    store: &S,
    key: &str,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<Option<KeptAnswer>, ApiError> {
    match store
        .begin_key(key, fingerprint, KEEP, now)
        .await
        .map_err(ApiError::internal)?
    {
        Idempotency::Began => Ok(None),
        Idempotency::Done(kept) if kept.fingerprint == fingerprint => Ok(Some(kept)),
        Idempotency::InProgress { fingerprint: f } if f == fingerprint => Err(ApiError::Conflict {
            code: "idempotency_key_in_progress",
            field: None,
            message:
                "a request with this Idempotency-Key is still being answered; retry in a moment"
                    .into(),
        }),
        Idempotency::Done(_) | Idempotency::InProgress { .. } => Err(ApiError::field(
            "idempotency_key_reused",
            "Idempotency-Key",
            "was used for a different request (method, path or body); use a new key for a new request",
        )),
    }
}

fn replay(kept: KeptAnswer) -> Response {
    let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    let mut response = (status, kept.body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
