//! What the fault tests share: counting deliveries over several SMTP servers, waiting,
//! starting a daemon with secrets in its environment, opening the ledgers the daemons
//! write, reading `/readyz`, and a local "today" that cannot turn into tomorrow while a
//! test runs.

use rapport::store::Ledger;
use std::{
    collections::HashMap,
    process::Stdio,
    time::{Duration, Instant},
};

use chrono::{Timelike, Utc};
use chrono_tz::Tz;

use rapport::{
    config::{StorageBackend, StorageConfig},
    domain::TouchStatus,
    store::{AnyStore, RedisStore, SqliteStore},
};

use crate::support::{
    daemon::{Guard, Workspace},
    people::Person,
    redis::RedisServer,
    smtp::{Received, SmtpServer},
};

/// Every message the servers accepted, per recipient, with the index of the server.
pub(crate) struct Tally(pub HashMap<String, Vec<(usize, Received)>>);

impl Tally {
    pub(crate) fn of(servers: &[&SmtpServer]) -> Tally {
        let mut m: HashMap<String, Vec<(usize, Received)>> = HashMap::new();
        for (i, s) in servers.iter().enumerate() {
            for r in s.messages() {
                m.entry(r.rcpt_to.join(",")).or_default().push((i, r));
            }
        }
        Tally(m)
    }

    pub(crate) fn copies(&self, p: &Person) -> usize {
        self.0.get(&p.email).map_or(0, Vec::len)
    }

    /// The recipients that got more than one message; each such pair must carry one
    /// Message-ID (a resend, never a second note).
    pub(crate) fn repeated(&self) -> Vec<(&String, &Vec<(usize, Received)>)> {
        let mut out: Vec<_> = self.0.iter().filter(|(_, v)| v.len() > 1).collect();
        out.sort_by_key(|(k, _)| *k);
        for (who, copies) in &out {
            let ids: Vec<_> = copies.iter().map(|(_, r)| &r.message_id).collect();
            assert!(
                ids.windows(2).all(|w| w[0] == w[1]),
                "{who} got {} different notes: {ids:?}",
                copies.len()
            );
        }
        out
    }

    /// Every one of `due` got exactly one note.
    pub(crate) fn assert_once_each(&self, due: &[&Person]) {
        let missing: Vec<&str> = due
            .iter()
            .filter(|p| self.copies(p) == 0)
            .map(|p| p.id.as_str())
            .collect();
        let twice: Vec<(&str, usize)> = due
            .iter()
            .filter(|p| self.copies(p) > 1)
            .map(|p| (p.id.as_str(), self.copies(p)))
            .collect();
        assert!(
            missing.is_empty() && twice.is_empty(),
            "{} never got their note: {missing:?}; {} got more than one: {twice:?}",
            missing.len(),
            twice.len()
        );
    }

    pub(crate) fn total(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }
}

pub(crate) fn delivered(servers: &[&SmtpServer]) -> usize {
    servers.iter().map(|s| s.count()).sum()
}

/// Polls `done` every 50 ms until it holds (true) or `timeout` passes (false).
pub(crate) async fn eventually(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `rapport run` for `ws` with `env` added to its environment (the secrets a config
/// names by variable), logging to `daemon-N.log`.
pub(crate) fn start_with(ws: &Workspace, n: usize, env: &[(&str, &str)]) -> Guard {
    let log = std::fs::File::create(ws.path(&format!("daemon-{n}.log"))).expect("log file");
    let child = ws
        .command()
        .envs(env.iter().copied())
        .arg("run")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn rapport run");
    Guard(Some(child))
}

/// Where a test's daemons keep their store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Redis,
}

/// A workspace on one backend: its storage section (to open the ledger), and the
/// private Redis server on Redis, which lives as long as this.
pub(crate) struct On {
    pub(crate) ws: Workspace,
    pub(crate) storage: StorageConfig,
    _redis: Option<RedisServer>,
}

impl On {
    /// A workspace sending through `smtp_url` with `extra` config, on `backend` (the
    /// SQLite file of the workspace, or a private Redis server).
    pub(crate) fn new(backend: Backend, smtp_url: &str, extra: &str) -> On {
        match backend {
            Backend::Sqlite => {
                let ws = Workspace::new(smtp_url, extra);
                let storage = StorageConfig {
                    backend: StorageBackend::Sqlite,
                    url: ws.db_url(),
                    prefix: String::new(),
                };
                On {
                    ws,
                    storage,
                    _redis: None,
                }
            }
            Backend::Redis => {
                let redis = RedisServer::start(&[]);
                let (ws, storage) = Workspace::redis(smtp_url, &redis.url(), extra);
                On {
                    ws,
                    storage,
                    _redis: Some(redis),
                }
            }
        }
    }

    /// The store, as a daemon opens it.
    pub(crate) async fn ledger(&self) -> AnyStore {
        AnyStore::open(&self.storage)
            .await
            .expect("open the ledger")
    }
}

/// The Redis store at `storage`, as a daemon opens it.
pub(crate) async fn redis_store(storage: &StorageConfig) -> RedisStore {
    RedisStore::open(storage)
        .await
        .expect("open the Redis ledger")
}

/// The SQLite store of `ws`, as a daemon opens it.
pub(crate) async fn sqlite_store(ws: &Workspace) -> SqliteStore {
    SqliteStore::open(&ws.db_url())
        .await
        .expect("open the SQLite ledger")
}

/// How many touches the Redis ledger at `storage` holds in `status`.
pub(crate) async fn redis_count(storage: &StorageConfig, status: TouchStatus) -> u64 {
    let counts = redis_store(storage)
        .await
        .status_counts()
        .await
        .expect("status counts");
    counts.get(&status).copied().unwrap_or(0)
}

/// `GET base/readyz`: the status code and the body.
pub(crate) async fn readyz(base: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("GET /readyz");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

/// A zone whose local time is not within 30 minutes of midnight, and today there as a
/// yearless birthday (`--MM-DD`): a birthday on it stays due while the test runs.
pub(crate) fn a_zone_far_from_midnight() -> (&'static str, String) {
    let now = Utc::now();
    ["UTC", "Asia/Tokyo", "America/New_York"]
        .into_iter()
        .find_map(|name| {
            let local = now.with_timezone(&name.parse::<Tz>().expect("a zone"));
            let minutes = local.hour() * 60 + local.minute();
            (30..=1410)
                .contains(&minutes)
                .then(|| (name, local.format("--%m-%d").to_string()))
        })
        .expect("three zones 9 and 5 hours apart cannot all be near midnight")
}
