//! The server under test: config, an in-process API on a free port over a backend,
//! requests through reqwest, and the JSON error check.

use crate::support::backends::TestStore;
use std::{path::Path, sync::Arc};

use rapport::{
    api::{self, ApiState, Tokens},
    config::Config,
    domain::{ContactId, SystemClock},
};
use reqwest::{Method, StatusCode, header};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::redis::{shared_url, unique_prefix};

pub(crate) const REPO: &str = env!("CARGO_MANIFEST_DIR");
pub(crate) const TOKEN: &str = "tok-3f9a1c7e5b2d4a6f8e0c";
/// A second token, as during a rotation.
pub(crate) const OTHER_TOKEN: &str = "tok-rotated-7d2e9b1a4c6f";
pub(crate) const MAX_BODY: usize = 4096;
/// The key the servers check unsubscribe tokens with.
pub(crate) const UNSUBSCRIBE_KEY: &[u8] = b"the unsubscribe key of the api tests";

#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    Sqlite,
    Redis,
}

pub(crate) fn config(dir: &Path, extra: &[(&str, String)]) -> Config {
    let mut vars = vec![
        (
            "RAPPORT__STORAGE__URL".to_owned(),
            format!("sqlite://{}/r.db", dir.display()),
        ),
        (
            "RAPPORT__TEMPLATES__DIR".to_owned(),
            format!("{REPO}/templates"),
        ),
        ("RAPPORT__API__LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("RAPPORT__API__MAX_BODY".to_owned(), "4KiB".to_owned()),
        (
            "RAPPORT__CHANNELS__EMAIL__OUTBOX_DIR".to_owned(),
            format!("{}/outbox", dir.display()),
        ),
        (
            "RAPPORT__CHANNELS__SMS__OUTBOX_DIR".to_owned(),
            format!("{}/outbox", dir.display()),
        ),
    ];
    vars.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let cfg = Config::load_with(
        Path::new(&format!("{REPO}/config/rapport.toml")),
        None,
        vars,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.api.max_body, MAX_BODY);
    cfg
}

/// The config for `backend`: SQLite in `dir`, or the shared Redis under a fresh prefix.
pub(crate) fn backend_config(backend: Backend, dir: &Path) -> Config {
    backend_config_with(backend, dir, &[])
}

/// As [`backend_config`], with `extra` environment overrides.
pub(crate) fn backend_config_with(
    backend: Backend,
    dir: &Path,
    extra: &[(&str, String)],
) -> Config {
    let mut vars = extra.to_vec();
    if let Backend::Redis = backend {
        vars.extend([
            ("RAPPORT__STORAGE__BACKEND", "redis".into()),
            ("RAPPORT__STORAGE__URL", shared_url()),
            ("RAPPORT__STORAGE__PREFIX", unique_prefix("api")),
        ]);
    }
    config(dir, &vars)
}

/// An API server on a free port, and the store behind it.
pub(crate) struct Server<S> {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) store: Arc<S>,
    pub(crate) config: Arc<Config>,
    pub(crate) stop: CancellationToken,
    pub(crate) task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub(crate) _dir: tempfile::TempDir,
}

impl<S> Drop for Server<S> {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub(crate) async fn serve<S: TestStore>(
    cfg: Config,
    store: S,
    tokens: Tokens,
    dir: tempfile::TempDir,
) -> Server<S> {
    serve_keyed(cfg, store, tokens, UNSUBSCRIBE_KEY.to_vec(), dir).await
}

/// As [`serve`], checking unsubscribe tokens with `unsubscribe_key`.
pub(crate) async fn serve_keyed<S: TestStore>(
    cfg: Config,
    store: S,
    tokens: Tokens,
    unsubscribe_key: Vec<u8>,
    dir: tempfile::TempDir,
) -> Server<S> {
    serve_with_twilio(cfg, store, tokens, unsubscribe_key, None, dir).await
}

/// As [`serve_keyed`], checking Twilio's webhooks against `twilio_auth_token`.
pub(crate) async fn serve_with_twilio<S: TestStore>(
    cfg: Config,
    store: S,
    tokens: Tokens,
    unsubscribe_key: Vec<u8>,
    twilio_auth_token: Option<&str>,
    dir: tempfile::TempDir,
) -> Server<S> {
    let listener = api::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let store = Arc::new(store);
    let config = Arc::new(cfg);
    let state = ApiState {
        store: store.clone(),
        cfg: config.clone(),
        clock: Arc::new(SystemClock),
        tokens: Arc::new(tokens),
        unsubscribe_key: Arc::new(unsubscribe_key),
        twilio_auth_token: twilio_auth_token.map(|t| Arc::new(t.to_owned().into())),
        workers: None,
        custody: None,
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(api::serve(listener, state, stop.clone()));
    Server {
        base,
        http: reqwest::Client::new(),
        store,
        config,
        stop,
        task: Some(task),
        _dir: dir,
    }
}

pub(crate) async fn server_with<S: TestStore>(backend: Backend, tokens: Tokens) -> Server<S> {
    let dir = tempfile::tempdir().unwrap();
    let cfg = backend_config(backend, dir.path());
    let store = S::open_for(&cfg.storage).await;
    serve(cfg, store, tokens, dir).await
}

pub(crate) async fn server<S: TestStore>(backend: Backend) -> Server<S> {
    server_with::<S>(backend, Tokens::new([TOKEN, OTHER_TOKEN])).await
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: header::HeaderMap,
    pub(crate) body: Value,
}

impl<S: TestStore> Server<S> {
    /// A request with `authorization` (a full header value) and a raw body.
    pub(crate) async fn raw(
        &self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        if let Some(c) = content_type {
            req = req.header(header::CONTENT_TYPE, c);
        }
        let res = req.body(body).send().await.expect("request");
        let (status, headers) = (res.status(), res.headers().clone());
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{status}: the body is not JSON ({e}): {text:?}"));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// An authorized JSON request.
    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.raw(
            method,
            path,
            Some(&format!("Bearer {TOKEN}")),
            Some("application/json"),
            bytes,
        )
        .await
    }

    pub(crate) fn cfg(&self) -> Arc<Config> {
        self.config.clone()
    }

    /// An authorized request without a body, for its status alone (a 204 has no body).
    pub(crate) async fn status_of(&self, method: Method, path: &str) -> StatusCode {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .send()
            .await
            .expect("request")
            .status()
    }

    pub(crate) async fn contact(&self, id: &str) -> Option<rapport::domain::Contact> {
        let id = ContactId::parse(id).unwrap();
        self.store.get_contact(&id).await.unwrap()
    }
}

/// `reply` is the JSON error `status`/`code`, naming `field` if given.
pub(crate) fn assert_error(reply: &Reply, status: u16, code: &str, field: Option<&str>) {
    let what = format!("{} {}", reply.status, reply.body);
    assert_eq!(reply.status.as_u16(), status, "{what}");
    let e = &reply.body["error"];
    assert_eq!(e["status"], status, "{what}");
    assert_eq!(e["code"], code, "{what}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}"
    );
    match field {
        Some(f) => assert_eq!(e["field"], f, "{what}"),
        None => assert!(e.get("field").is_none(), "{what}"),
    }
}
