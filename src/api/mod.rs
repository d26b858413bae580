//! The HTTP API (axum): contacts and events in, health and readiness out, one-click
//! unsubscribe for mail recipients, every route described in `openapi.json`.
//!
//! - [`router`] builds the routes; [`serve`] runs them on a listener until a token is
//!   cancelled (tests pass a port-0 listener), [`bind`] opens `api.listen`.
//! - `auth`: bearer tokens from the environment, compared in constant time.
//! - `error`: [`ApiError`], every failure as `{"error": {status, code, message, field?}}`.
//! - `json`: the request-body extractor (content type, size limit, syntax, one object).
//! - `one_click`: the RFC 8058 unsubscribe body (form or multipart).
//! - `routes/`: one file per area (`health`, `contacts`, `events`, `unsubscribe`,
//!   `openapi`).
//!
//! Nothing here logs a request body, an address or a token: a request's log line names
//! its method, route template (`/v1/contacts/{id}`, not the id) and status.

mod auth;
mod error;
mod idempotency;
mod json;
mod one_click;
mod routes;
#[cfg(test)]
mod tests;
pub mod twilio;

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    handler::Handler,
    middleware::{self, Next},
    response::Response,
    routing::{MethodFilter, on},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use auth::Tokens;
pub use error::ApiError;

use crate::{config::Config, domain::Clock, store::Store};

/// What /readyz learns about this process's queue workers: how many run of how many
/// there should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCount {
    pub running: usize,
    pub total: usize,
    /// Why the workers keep stopping, when they do (`queue::worker::QueueHealth`).
    pub failing: Option<String>,
}

/// A live view of the queue workers, read on each /readyz (the app builds it from the
/// queue monitor; the API never sees the queue itself).
#[derive(Clone)]
pub struct WorkerProbe(Arc<dyn Fn() -> WorkerCount + Send + Sync>);

impl WorkerProbe {
    pub fn new(f: impl Fn() -> WorkerCount + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
    pub fn count(&self) -> WorkerCount {
        (self.0)()
    }
}

/// What every handler can reach, over the backend `S` the daemon opened.
pub struct ApiState<S> {
    pub store: Arc<S>,
    pub cfg: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub tokens: Arc<Tokens>,
    /// Checks the tokens of one-click unsubscribe links: the key the dispatcher signs
    /// them with (`Channels::unsubscribe_key`).
    pub unsubscribe_key: Arc<Vec<u8>>,
    /// The Twilio auth token that signs Twilio's webhooks (`None`: no Twilio SMS
    /// transport, and the webhook routes answer 404).
    pub twilio_auth_token: Option<Arc<secrecy::SecretString>>,
    /// `None` in a process that runs no queue workers (`--role api`): readiness then
    /// does not depend on them.
    pub workers: Option<WorkerProbe>,
    /// The store's identity as the daemon holds it: readiness fails while the store is
    /// held after a loss (`None`: not checked, as in tests of the API alone).
    pub custody: Option<crate::custody::Custody>,
}

// By hand: a derived `Clone` would ask `S: Clone`, but only the `Arc` is cloned.
impl<S> Clone for ApiState<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            cfg: self.cfg.clone(),
            clock: self.clock.clone(),
            tokens: self.tokens.clone(),
            unsubscribe_key: self.unsubscribe_key.clone(),
            twilio_auth_token: self.twilio_auth_token.clone(),
            workers: self.workers.clone(),
            custody: self.custody.clone(),
        }
    }
}

/// Routes with the list of what was registered, so the OpenAPI document can be checked
/// against the router itself rather than against a second list kept by hand.
struct Routes<S> {
    router: Router<ApiState<S>>,
    list: Vec<(&'static str, &'static str)>,
}

impl<S: Store> Routes<S> {
    fn new() -> Self {
        Self {
            router: Router::new(),
            list: Vec::new(),
        }
    }

    fn add<H, T>(mut self, method: &'static str, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, ApiState<S>>,
        T: 'static,
    {
        let filter = match method {
            "GET" => MethodFilter::GET,
            "PUT" => MethodFilter::PUT,
            "POST" => MethodFilter::POST,
            "DELETE" => MethodFilter::DELETE,
            "PATCH" => MethodFilter::PATCH,
            other => unreachable!("route method {other} is not one the API uses"),
        };
        self.router = self.router.route(path, on(filter, handler));
        self.list.push((method, path));
        self
    }
}

/// Routes anyone may call: probes, the API's own description, and one-click
/// unsubscribe (its signed token is its authority: RFC 8058 forbids credentials).
fn public_routes<S: Store>() -> Routes<S> {
    Routes::new()
        .add("GET", "/healthz", routes::health::healthz)
        .add("GET", "/readyz", routes::health::readyz::<S>)
        .add("GET", "/openapi.json", routes::openapi::document)
        .add("GET", "/u/{token}", routes::unsubscribe::confirm::<S>)
        .add("POST", "/u/{token}", routes::unsubscribe::one_click::<S>)
        .add("GET", "/c/{token}", routes::clicks::follow::<S>)
        .add("POST", "/v1/twilio/sms", routes::twilio::inbound::<S>)
        .add("POST", "/v1/twilio/status", routes::twilio::status::<S>)
}

/// Routes that need a bearer token.
fn protected_routes<S: Store>() -> Routes<S> {
    Routes::new()
        .add("PUT", "/v1/contacts/{id}", routes::contacts::put::<S>)
        .add("GET", "/v1/contacts/{id}", routes::contacts::get::<S>)
        .add("DELETE", "/v1/contacts/{id}", routes::contacts::delete::<S>)
        .add("POST", "/v1/contacts:batch", routes::batch::post::<S>)
        .add("POST", "/v1/events", routes::events::post::<S>)
        .add("POST", "/v1/responses", routes::responses::post::<S>)
        .add("GET", "/v1/touches", routes::touches::list::<S>)
        .add("GET", "/v1/stats", routes::touches::stats::<S>)
}

/// Every route the router serves, as `(METHOD, path template)`, public ones first.
pub fn routes() -> Vec<(&'static str, &'static str)> {
    // The list does not depend on the backend: any one names the routes.
    let mut all = public_routes::<crate::store::SqliteStore>().list;
    all.extend(protected_routes::<crate::store::SqliteStore>().list);
    all
}

/// The whole API over `state`.
pub fn router<S: Store>(state: ApiState<S>) -> Router {
    // Authentication first, then the idempotency key (an unauthenticated request never
    // takes a key).
    let protected = protected_routes::<S>()
        .router
        .route_layer(middleware::from_fn_with_state(
            idempotency::Keys::new(state.clone()),
            idempotency::layer::<S>,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require::<S>,
        ));
    public_routes::<S>()
        .router
        .merge(protected)
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        // Over the limit, the body extractor answers 413 in the JSON error format.
        .layer(DefaultBodyLimit::max(state.cfg.api.max_body))
        .layer(middleware::from_fn(access_log))
        .with_state(state)
}

/// One debug line per request: method, route template and status, never the path
/// itself (it holds ids) or anything from the body.
async fn access_log(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(no route)".to_owned(), |m| m.as_str().to_owned());
    let response = next.run(req).await;
    tracing::debug!(
        %method,
        route,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "api request"
    );
    response
}

/// Could not listen on `api.listen`.
#[derive(Debug, thiserror::Error)]
#[error(
    "api: cannot listen on {addr}: {source} (set api.listen to a free address, or \"\" for no API in this process)"
)]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// Opens the listener for `addr` (port 0: any free port).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// Serves the API on `listener` until `shutdown` is cancelled, then lets requests in
/// flight finish.
pub async fn serve<S: Store>(
    listener: TcpListener,
    state: ApiState<S>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    if state.tokens.is_empty() {
        tracing::warn!(
            "api: no bearer tokens in {}; every authenticated endpoint answers 401 (public: /healthz, /readyz, /openapi.json, /u/{{token}})",
            state.cfg.api.tokens_env
        );
    }
    tracing::info!("api listening on {addr}");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
