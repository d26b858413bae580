//! Provider rate limits through the `Store` trait, on every backend: racing callers get
//! places an interval apart, a burst goes at once, keys are independent, and on Redis
//! two stores (two replicas) share one schedule.
//!
//! Nothing waits for its place: a reservation says when the place is, so a test reads
//! the places instead of sleeping through them (only the idle cases sleep, briefly: idle
//! is measured on the store's own clock). A place is the caller's clock before the call
//! plus the wait, but the store counted the wait from some moment during the call, so
//! each place is known within `[before + wait, after + wait]`; every check uses the
//! bound that holds whatever the call's latency.

#[path = "support/redis.rs"]
#[allow(dead_code, unreachable_pub)]
mod redis_server;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use ::redis::AsyncCommands;
use rapport::{
    config::{StorageBackend, StorageConfig},
    store::{RedisStore, SqliteStore, Store},
};
use tokio::task::JoinSet;

/// Redis' clock and the tests' may run at slightly different rates (NTP slews one of
/// them): allowed between neighbouring places, and over a whole schedule.
const TICK: Duration = Duration::from_millis(1);
const DRIFT: Duration = Duration::from_millis(10);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One place as its caller saw it.
#[derive(Debug, Clone, Copy)]
struct Place {
    /// The earliest and latest the place can be, on the caller's clock.
    lo: Instant,
    hi: Instant,
    wait: Duration,
    /// Which store gave it (a replica).
    by: usize,
}

async fn reserve<S: Store>(store: &S, key: &str, interval: Duration, burst: u32) -> Place {
    let before = Instant::now();
    let wait = store
        .rate_reserve(key, interval, burst)
        .await
        .expect("rate_reserve");
    let after = Instant::now();
    Place {
        lo: before + wait,
        hi: after + wait,
        wait,
        by: 0,
    }
}

/// `n` reservations of `key` from 16 racing tasks, task `i` using `stores[i % len]`.
async fn race<S: Store>(stores: &[Arc<S>], key: &str, interval: Duration, n: usize) -> Vec<Place> {
    let taken = Arc::new(AtomicUsize::new(0));
    let stores_len = stores.len();
    let mut tasks = JoinSet::new();
    for i in 0..16 {
        let (store, taken, key) = (
            stores[i % stores.len()].clone(),
            taken.clone(),
            key.to_owned(),
        );
        tasks.spawn(async move {
            let mut mine = Vec::new();
            while taken.fetch_add(1, Ordering::Relaxed) < n {
                let place = reserve(&*store, &key, interval, 1).await;
                mine.push(Place {
                    by: i % stores_len,
                    ..place
                });
            }
            mine
        });
    }
    let mut places: Vec<Place> = tasks.join_all().await.into_iter().flatten().collect();
    assert_eq!(places.len(), n);
    places.sort_by_key(|p| p.lo);
    places
}

/// Sorted places are one `interval` apart at least (so all distinct), and, taken
/// faster than the rate allows, span exactly `(n - 1) * interval`.
fn assert_spaced(places: &[Place], interval: Duration) {
    for (i, w) in places.windows(2).enumerate() {
        let most = w[1].hi.saturating_duration_since(w[0].lo);
        assert!(
            most + TICK >= interval,
            "places {i} and {} are at most {most:?} apart, under the {interval:?} interval",
            i + 1
        );
    }
    let (first, last) = (places[0], places[places.len() - 1]);
    let want = interval * (places.len() as u32 - 1);
    let most = last.hi.saturating_duration_since(first.lo);
    let least = last.lo.saturating_duration_since(first.hi);
    assert!(
        most + DRIFT >= want && least <= want + DRIFT,
        "places span {least:?} to {most:?}, want {want:?}"
    );
}

async fn racing_callers_get_spaced_places<S: Store>(store: Arc<S>) {
    let interval = ms(50);
    let places = race(&[store], "sms", interval, 200).await;
    assert_spaced(&places, interval);
}

async fn keys_are_independent<S: Store>(store: Arc<S>) {
    let interval = ms(20);
    let mut last = None;
    for _ in 0..10 {
        last = Some(reserve(&*store, "sms", interval, 1).await);
    }
    // "sms" is booked 200 ms ahead; "email" has not been used.
    assert_eq!(
        reserve(&*store, "email", interval, 1).await.wait,
        Duration::ZERO
    );
    let (last, next) = (
        last.expect("ten places"),
        reserve(&*store, "sms", interval, 1).await,
    );
    assert!(next.hi.saturating_duration_since(last.lo) + TICK >= interval);
    assert!(next.lo.saturating_duration_since(last.hi) <= interval + TICK);
}

async fn a_burst_goes_at_once_then_spaced<S: Store>(store: Arc<S>) {
    let interval = ms(20);
    let mut places = Vec::new();
    for _ in 0..10 {
        places.push(reserve(&*store, "webhook", interval, 5).await);
    }
    let waits: Vec<Duration> = places[..5].iter().map(|p| p.wait).collect();
    assert_eq!(waits, [Duration::ZERO; 5], "the burst goes at once");
    // Then one an interval after the last of the burst: place k (from 0) is at
    // max(first + (k - 4) intervals, when it was asked), never earlier.
    let first = places[0];
    for (k, p) in places.iter().enumerate().skip(5) {
        let due = interval * (k as u32 - 4);
        assert!(p.hi + TICK >= first.lo + due, "place {k} comes too early");
        let asked = p.hi - p.wait;
        assert!(
            p.lo <= (first.hi + due).max(asked) + TICK,
            "place {k} comes later than it needs to"
        );
    }
}

async fn an_idle_limiter_starts_afresh<S: Store>(store: Arc<S>) {
    let interval = ms(10);
    let mut last = reserve(&*store, "sms", interval, 1).await;
    for _ in 0..3 {
        last = reserve(&*store, "sms", interval, 1).await;
    }
    assert!(last.wait > Duration::ZERO, "four places at once are spaced");
    // Past the last place and the interval after it, the limiter has no memory of them.
    tokio::time::sleep_until((last.hi + interval + ms(5)).into()).await;
    assert_eq!(
        reserve(&*store, "sms", interval, 1).await.wait,
        Duration::ZERO
    );
}

macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let (store, _dir) = crate::open_sqlite().await;
                    crate::$case(store).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let cfg = crate::redis_config();
                    crate::$case(crate::open_redis(&cfg).await).await;
                }
            )*
        }
    };
}

on_every_backend!(
    racing_callers_get_spaced_places,
    keys_are_independent,
    a_burst_goes_at_once_then_spaced,
    an_idle_limiter_starts_afresh,
);

async fn open_sqlite() -> (Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let store = SqliteStore::open(&url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    (Arc::new(store), dir)
}

/// A fresh prefix on the shared test Redis (a missing `redis-server` fails with how to
/// get one).
fn redis_config() -> StorageConfig {
    StorageConfig {
        backend: StorageBackend::Redis,
        url: redis_server::shared_url(),
        prefix: redis_server::unique_prefix("rl"),
    }
}

async fn open_redis(cfg: &StorageConfig) -> Arc<RedisStore> {
    let store = RedisStore::open(cfg)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", cfg.url));
    Arc::new(store)
}

/// Two replicas (two stores, two connections, one prefix) racing for one limit take
/// turns through one schedule: together they never exceed the rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_share_one_limit() {
    let cfg = redis_config();
    let replicas = [open_redis(&cfg).await, open_redis(&cfg).await];
    let interval = ms(20);
    let places = race(&replicas, "sms", interval, 100).await;
    assert_spaced(&places, interval);
    for by in 0..2 {
        let (early, late) = places.split_at(50);
        assert!(
            early.iter().any(|p| p.by == by) && late.iter().any(|p| p.by == by),
            "replica {by} should hold places early and late in the schedule"
        );
    }
    // Each one sees what the other booked.
    let last = places[places.len() - 1];
    let next = reserve(&*replicas[0], "sms", interval, 1).await;
    assert!(next.hi.saturating_duration_since(last.lo) + TICK >= interval);
}

/// The limiter is one key, `PREFIX:rate:KEY`, that lives only while it matters.
#[tokio::test]
async fn an_idle_limiter_leaves_no_key() {
    let cfg = redis_config();
    let store = open_redis(&cfg).await;
    let interval = ms(10);
    let mut last = reserve(&*store, "sms", interval, 1).await;
    for _ in 0..3 {
        last = reserve(&*store, "sms", interval, 1).await;
    }
    let key = format!("{}:rate:sms", cfg.prefix);
    let mut conn = store.connection();
    let ttl: i64 = conn.pttl(&key).await.expect("PTTL");
    assert!(
        ttl > 0 && ttl <= 50,
        "the key lives {ttl} ms, until its next place"
    );
    tokio::time::sleep_until((last.hi + interval + ms(5)).into()).await;
    let exists: bool = conn.exists(&key).await.expect("EXISTS");
    assert!(!exists, "an idle limiter's key is gone");
}
