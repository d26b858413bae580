//! The API in a whole `App` and in the real binary: roles, readiness with the workers
//! and with Redis gone, start-up failures, shutdown.

use crate::support::backends::TestStore;
use rapport::store::Ledger;
use std::{sync::Arc, time::Duration};

use rapport::{
    api::Tokens,
    app::App,
    cli::Role,
    config::{StorageBackend, StorageConfig},
    domain::SystemClock,
    store::{RedisStore, SqliteStore},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    harness::{Backend, Server, TOKEN, backend_config, config, serve, server},
    support::{
        daemon::{Guard, Workspace, signal, wait_exit},
        people::people,
        redis::{RedisServer, unique_prefix},
        smtp::{SmtpOptions, SmtpServer},
    },
};

/// The API inside a whole `App` (`--role all`): readiness sees the queue workers, the
/// API stops with the rest on the one token.
pub(crate) async fn the_app_serves_the_api_beside_its_workers<S: TestStore>(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = backend_config(b, dir.path());
    let app = App::build(
        cfg.clone(),
        S::open_for(&cfg.storage).await,
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    assert!(
        app.bind_api(Role::Worker).await.unwrap().is_none(),
        "a worker serves no API"
    );
    let listener = app
        .bind_api(Role::All)
        .await
        .unwrap()
        .expect("api.listen is set");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let run = tokio::spawn(app.run(Role::All, Some(listener), stop.clone()));
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let ready = loop {
        let r = http.get(format!("{base}/readyz")).send().await.unwrap();
        let (status, body): (StatusCode, Value) = (r.status(), r.json().await.unwrap());
        if status == 200 || tokio::time::Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ready.0, 200, "{}", ready.1);
    let workers = cfg.dispatch.workers;
    assert_eq!(
        ready.1["checks"]["workers"],
        format!("ok: {workers} of {workers} running")
    );
    let r = http
        .get(format!("{base}/v1/contacts/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "RAPPORT_API_TOKENS is not set in tests");

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the app stops")
        .unwrap()
        .unwrap();
    assert!(
        http.get(format!("{base}/healthz")).send().await.is_err(),
        "the API stopped with it"
    );
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn readyz_is_503_while_redis_is_down_and_200_again_after() {
    let mut redis = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let storage = StorageConfig {
        backend: StorageBackend::Redis,
        url: redis.url(),
        prefix: unique_prefix("ready"),
    };
    let cfg = config(
        dir.path(),
        &[
            ("RAPPORT__STORAGE__BACKEND", "redis".into()),
            ("RAPPORT__STORAGE__URL", storage.url.clone()),
            ("RAPPORT__STORAGE__PREFIX", storage.prefix.clone()),
        ],
    );
    let store = RedisStore::open(&storage).await.unwrap();
    let s = serve(cfg, store, Tokens::new([TOKEN]), dir).await;
    let ready = |s: &Server<RedisStore>| {
        let req = s
            .http
            .get(format!("{}/readyz", s.base))
            .timeout(Duration::from_secs(10));
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(ready(&s).await.0, 200);
    redis = tokio::task::spawn_blocking(move || {
        redis.stop();
        redis
    })
    .await
    .unwrap();
    let (status, body) = ready(&s).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["failed"], json!(["store"]));
    assert!(
        body["checks"]["store"]
            .as_str()
            .unwrap()
            .starts_with("failing"),
        "{body}"
    );
    assert!(
        !body.to_string().contains(&redis.port.to_string()),
        "no address in a public answer"
    );
    let health = s.raw(Method::GET, "/healthz", None, None, vec![]).await;
    assert_eq!(health.status, 200, "the process is still up");

    redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while ready(&s).await.0 != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready again after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(redis);
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn serve_stops_on_its_token() {
    let mut s = server::<rapport::store::SqliteStore>(Backend::Sqlite).await;
    assert_eq!(
        s.raw(Method::GET, "/healthz", None, None, vec![])
            .await
            .status,
        200
    );
    s.stop.cancel();
    let task = s.task.take().unwrap();
    let done = tokio::time::timeout(Duration::from_secs(10), task).await;
    done.expect("serve returns after the token is cancelled")
        .unwrap()
        .unwrap();
}

// ---- the real binary -------------------------------------------------------------------

/// Waits for the daemon's "api listening on ADDR" line and returns `http://ADDR`.
pub(crate) fn api_base(ws: &Workspace, n: usize, child: &mut std::process::Child) -> String {
    ws.api_base(n, child)
}

pub(crate) fn spawn(ws: &Workspace, n: usize, args: &[&str], env: &[(&str, &str)]) -> Guard {
    let log = std::fs::File::create(ws.path(&format!("daemon-{n}.log"))).unwrap();
    let mut cmd = ws.command();
    cmd.args(args)
        .stdout(std::process::Stdio::null())
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Guard(Some(cmd.spawn().expect("spawn rapport")))
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn role_api_serves_and_sends_nothing_while_role_all_does_both() {
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let ws = Workspace::new(&smtp.url(), "[api]\nlisten = \"127.0.0.1:0\"\n");
    let (csv, people) = people(30);
    ws.import_csv(&csv);
    let due = people.iter().filter(|p| p.due).count();
    assert!(due > 10);
    let http = reqwest::Client::new();

    let mut api_only = spawn(
        &ws,
        0,
        &["run", "--role", "api"],
        &[("RAPPORT_API_TOKENS", TOKEN)],
    );
    let base = api_base(&ws, 0, api_only.0.as_mut().unwrap());
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: Value = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ready["checks"]["workers"], "not run by this process (--role api)",
        "{ready}"
    );
    let contact = http
        .get(format!("{base}/v1/contacts/{}", people[0].id))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        contact.status(),
        200,
        "the token from the environment is accepted"
    );
    // The planners of a worker would have run at start and then every second.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ledger = SqliteStore::open(&ws.db_url()).await.unwrap();
    let counts = ledger.status_counts().await.unwrap();
    assert!(
        counts.values().all(|n| *n == 0),
        "an api-only process planned: {counts:?}"
    );
    assert_eq!(smtp.count(), 0, "an api-only process sent mail");
    api_only.stop_gracefully();
    assert!(!ws.log(0).contains("no bearer tokens"), "{}", ws.log(0));

    // The default role does everything; without tokens it warns and answers 401.
    let mut all = spawn(&ws, 1, &["run"], &[]);
    let base = api_base(&ws, 1, all.0.as_mut().unwrap());
    assert!(
        smtp.wait_for_count(due, Duration::from_secs(60)).await,
        "only {} of {due} sent; log:\n{}",
        smtp.count(),
        ws.log(1)
    );
    let r = http
        .get(format!("{base}/v1/contacts/p0000"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    all.stop_gracefully();
    let log = ws.log(1);
    assert!(
        log.contains("no bearer tokens in RAPPORT_API_TOKENS"),
        "{log}"
    );
    assert!(
        !log.contains(TOKEN) && !log.contains("@example.com"),
        "{log}"
    );
}

#[test]
pub(crate) fn an_api_address_in_use_fails_start_up_with_69_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let ws = Workspace::new(
        "smtp://127.0.0.1:1",
        &format!("[api]\nlisten = \"{addr}\"\n"),
    );
    for args in [&["run"][..], &["run", "--role", "api"][..]] {
        let out = ws.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(69), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot listen on {addr}")),
            "{stderr}"
        );
    }
    // A worker does not listen, so the address does not matter to it; an api-only
    // process with no address is a configuration error.
    let ws = Workspace::new("smtp://127.0.0.1:1", "[api]\nlisten = \"\"\n");
    let out = ws.run(&["run", "--role", "api"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("api.listen"), "{stderr}");
    drop(taken);
}

#[test]
pub(crate) fn a_worker_role_starts_without_an_api_and_stops_cleanly() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    // The API's address is taken, which a worker never notices.
    let ws = Workspace::new(
        "smtp://127.0.0.1:1",
        &format!("[api]\nlisten = \"{addr}\"\n"),
    );
    let mut worker = spawn(&ws, 0, &["run", "--role", "worker"], &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !ws.log(0).contains("rapport running") {
        assert!(std::time::Instant::now() < deadline, "{}", ws.log(0));
        if let Some(status) = worker.0.as_mut().unwrap().try_wait().unwrap() {
            panic!("exited with {status}: {}", ws.log(0));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let child = worker.0.as_mut().unwrap();
    signal(child, "TERM");
    assert!(
        wait_exit(child, Duration::from_secs(20)).success(),
        "{}",
        ws.log(0)
    );
    worker.0 = None;
    let log = ws.log(0);
    assert!(!log.contains("api listening"), "{log}");
    assert!(
        log.contains("role=\"worker\"") || log.contains("role=worker"),
        "{log}"
    );
    drop(taken);
}
