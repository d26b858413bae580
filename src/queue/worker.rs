//! apalis wiring for both queues, with the settings that avoid the traps recorded in
//! RELIABILITY.md: explicit queue names, unique worker names per process and restart,
//! batch size 1 (no prefetched jobs parked on a worker), a short orphan window, our own
//! retries (the handler never returns a retry error), restart on backend errors (with
//! backoff on Redis), and payloads decoded by the handler, so a corrupt one is
//! dead-lettered instead of stopping the worker.
//!
//! A job that fails because the store is unreachable returns a plain error. apalis-redis
//! then runs it again after 1 s, 2 s, ... (up to 25 times, whatever `max_attempts` says);
//! apalis-sqlite does not. Neither matters for correctness: the ledger decides what is
//! sent, and the reconciler re-queues whatever is stranded.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use apalis::prelude::*;
use apalis_core::{
    backend::{
        codec::Codec,
        ext::poll_strategy::{PollSnapshot, PollStrategy},
    },
    error::AbortError,
};
use apalis_redis::RedisStorage;
use apalis_sqlite::SqliteStorage;
use tokio::time::Instant;

use super::DispatchJob;
use crate::{
    config::DispatchConfig,
    dispatch::Dispatcher,
    store::{Store, redis::GatedConnection},
};

/// Hands the stored bytes to the handler as they are. apalis' own codecs decode before
/// the handler runs, and a decode error there stops the whole worker (and, the job
/// staying in flight, the next one after the orphan window, for ever).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec<Vec<u8>> for RawCodec {
    type Error = std::convert::Infallible;
    type Compact = Vec<u8>;
    fn encode(&self, val: &Vec<u8>) -> Result<Vec<u8>, Self::Error> {
        Ok(val.clone())
    }
    fn decode(&self, compact: &Vec<u8>) -> Result<Vec<u8>, Self::Error> {
        Ok(compact.clone())
    }
}

/// Wakes an idle worker every `dispatch.poll_interval`. apalis' own interval strategy
/// re-arms its timer without polling it, so the next wake-up is registered only if the
/// worker is polled again for another reason (a fetch that had to wait); after a fetch
/// that completes at once, as SQLite's often do, the worker slept until its next
/// heartbeat (10 s), and a retry due in 6 s went out after up to 10 (tests/faults
/// `retry_after`).
#[derive(Debug)]
struct EveryInterval {
    every: Duration,
    // Made at the first poll, inside the runtime a tokio timer needs.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl EveryInterval {
    fn new(every: Duration) -> Self {
        Self { every, timer: None }
    }
}

impl PollStrategy for EveryInterval {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let every = self.every;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(every)));
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        timer.as_mut().reset(Instant::now() + every);
        // Polled at once, so the next wake-up is registered whatever the fetch does.
        let _ = timer.as_mut().poll(cx);
        Poll::Ready(Some(()))
    }
}

async fn handle<S: Store>(
    job: Vec<u8>,
    dispatcher: Data<Arc<Dispatcher<S>>>,
    worker: WorkerContext,
) -> Result<(), BoxDynError> {
    // A payload we cannot read is dead on arrival: abort it (apalis' dead state, kept
    // for inspection) rather than let it fail again and again.
    let job = DispatchJob::decode_bytes(&job).map_err(|e| {
        tracing::error!(worker = worker.name(), error = %e, "dead-lettering an undecodable queue job");
        Box::new(AbortError::new(e)) as BoxDynError
    })?;
    // apalis drives every worker's handlers inside the monitor's one task, which would
    // put all sending on one core; each job runs as its own task instead.
    let (d, name) = (dispatcher.0.clone(), worker.name().to_owned());
    let report = dispatcher
        .tasks
        .spawn(async move { d.dispatch(job.touches(), &name).await })
        .await
        .map_err(|e| Box::new(e) as BoxDynError)?
        .inspect_err(|e| {
            tracing::warn!(worker = worker.name(), error = %e, "dispatch job failed; its touches stay in the ledger and are re-queued");
        })?;
    tracing::debug!(worker = worker.name(), ?report, "dispatch job done");
    Ok(())
}

/// A name no other process, and no earlier run of this one, has used: apalis refuses a
/// name seen in the last heartbeat window, and two processes sharing one defeat orphan
/// recovery.
pub fn unique_worker_name(index: usize) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    format!(
        "dispatch-{host}-{}-{index}-{}",
        std::process::id(),
        ulid::Ulid::new()
    )
}

/// How long a restarted worker waits before touching the backend: nothing on a first
/// failure, then doubling up to 30 s while it keeps failing within a minute of its
/// last start.
#[derive(Default)]
struct RestartBackoff {
    slots: Mutex<HashMap<usize, (Instant, u32)>>,
}

impl RestartBackoff {
    fn delay(&self, index: usize, now: Instant) -> Duration {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = slots.entry(index).or_insert((now, 0));
        let streak = if now.duration_since(slot.0) < Duration::from_secs(60) {
            slot.1 + 1
        } else {
            1
        };
        *slot = (now, streak);
        Duration::from_millis(250 << streak.min(7)).min(Duration::from_secs(30))
    }
}

/// How the queue workers fare. A worker stopped by an error is restarted at once; one
/// that keeps stopping (an undecodable job in its way, a store that keeps failing) makes
/// the process unready with the reason, and wakes the reconciler, which moves
/// undecodable jobs aside.
#[derive(Clone, Default)]
pub struct QueueHealth {
    failures: Arc<Mutex<Vec<(Instant, String)>>>,
    /// Notified on every stop: the reconciler runs at once instead of at its next tick.
    pub stopped: Arc<tokio::sync::Notify>,
}

/// Stops within this long that make a worker "keep failing".
const FAILING_WINDOW: Duration = Duration::from_secs(60);
const FAILING_AFTER: usize = 3;

impl QueueHealth {
    fn stopped_with(&self, error: String) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.retain(|(at, _)| now.duration_since(*at) < FAILING_WINDOW);
        failures.push((now, error));
        if failures.len() == FAILING_AFTER {
            tracing::error!(
                stops = failures.len(),
                "queue workers keep stopping; the process reports itself unready (/readyz) until they run for a minute"
            );
        }
        drop(failures);
        self.stopped.notify_one();
    }

    /// Why the workers keep failing (`FAILING_AFTER` stops within `FAILING_WINDOW`), with
    /// the last error.
    pub fn failing(&self) -> Option<String> {
        let now = Instant::now();
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let recent: Vec<&(Instant, String)> = failures
            .iter()
            .filter(|(at, _)| now.duration_since(*at) < FAILING_WINDOW)
            .collect();
        (recent.len() >= FAILING_AFTER).then(|| {
            let last = recent.last().map_or("", |(_, e)| e.as_str());
            format!(
                "queue workers stopped {} times in the last minute; last: {last}",
                recent.len()
            )
        })
    }
}

fn base_monitor(cfg: &DispatchConfig, health: QueueHealth) -> Monitor {
    Monitor::new()
        .should_restart(move |worker, error| {
            tracing::error!(worker = worker.name(), %error, "queue worker stopped; restarting under a new name");
            health.stopped_with(error.to_string());
            true
        })
        // A little past the drain deadline: at the deadline the dispatcher abandons what
        // is still in flight and records it, and the jobs end right after.
        .shutdown_timeout(cfg.drain_timeout + Duration::from_millis(400))
}

/// Workers reading the SQLite queue in `pool` (see [`super::Queue::monitor`]).
pub(crate) fn sqlite_monitor<S: Store>(
    pool: sqlx::SqlitePool,
    dispatcher: Arc<Dispatcher<S>>,
    cfg: &DispatchConfig,
    health: QueueHealth,
) -> Monitor {
    let poll = cfg.poll_interval;
    base_monitor(cfg, health).register_n(cfg.workers as usize, move |index, restarts| {
        if restarts > 0 {
            tracing::info!(index, restarts, "starting a replacement queue worker");
        }
        let config = apalis_sqlite::Config::default()
            .queue(super::DISPATCH_QUEUE)
            .batch_size(1)
            .heartbeat_interval(Duration::from_secs(10))
            .missed_heartbeats(3);
        let backend = SqliteStorage::<Vec<u8>>::new(&pool)
            .with_config(config)
            .with_codec(RawCodec)
            .poll_with_strategy(EveryInterval::new(poll));
        // One job at a time per worker: a job is a batch whose sends already run
        // `dispatch.concurrency` at a time, so messages in flight are bounded by
        // workers x concurrency.
        WorkerBuilder::new(unique_worker_name(index))
            .backend(backend)
            .data(dispatcher.clone())
            .concurrency(1)
            .build(handle::<S>)
    })
}

/// Workers reading the Redis queue on `conn` (see [`super::Queue::monitor`]).
pub(crate) fn redis_monitor<S: Store>(
    conn: redis::aio::ConnectionManager,
    config: apalis_redis::Config,
    dispatcher: Arc<Dispatcher<S>>,
    cfg: &DispatchConfig,
    health: QueueHealth,
) -> Monitor {
    let poll = cfg.poll_interval;
    let backoff = RestartBackoff::default();
    base_monitor(cfg, health).register_n(cfg.workers as usize, move |index, restarts| {
        // A replacement starts on a connection that waits out the backoff first.
        let not_before = (restarts > 0).then(|| {
            let delay = backoff.delay(index, Instant::now());
            tracing::info!(
                index,
                restarts,
                ?delay,
                "starting a replacement queue worker"
            );
            Instant::now() + delay
        });
        let backend =
            RedisStorage::<Vec<u8>, _>::new(GatedConnection::new(conn.clone(), not_before))
                .with_config(config.clone())
                .with_codec(RawCodec)
                .poll_with_strategy(EveryInterval::new(poll));
        WorkerBuilder::new(unique_worker_name(index))
            .backend(backend)
            .data(dispatcher.clone())
            .concurrency(1)
            .build(handle::<S>)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_stops_in_a_minute_make_the_workers_failing() {
        let h = QueueHealth::default();
        h.stopped_with("one".into());
        h.stopped_with("two".into());
        assert_eq!(h.failing(), None);
        h.stopped_with("fetch: bad row".into());
        let why = h.failing().expect("failing after three stops");
        assert!(
            why.contains("3 times") && why.ends_with("fetch: bad row"),
            "{why}"
        );
    }

    #[tokio::test]
    async fn an_idle_worker_is_woken_every_interval_by_the_timer_alone() {
        // A worker as apalis drives it once idle: each wake-up drives the strategy, then
        // a fetch that finds nothing and completes at once. Only the strategy's timer can
        // wake it again; 500 ms at 20 ms is about 25 wake-ups.
        let mut strategy = EveryInterval::new(Duration::from_millis(20));
        let mut polls = 0;
        let idle_worker = std::future::poll_fn(|cx| {
            polls += 1;
            let _ = strategy.poll_drive(cx, &PollSnapshot::default());
            Poll::<()>::Pending
        });
        let _ = tokio::time::timeout(Duration::from_millis(500), idle_worker).await;
        assert!(polls >= 10, "woken {polls} times in 500 ms");
    }

    #[test]
    fn restarts_back_off_while_failing_and_reset_after_a_quiet_minute() {
        let b = RestartBackoff::default();
        let t = Instant::now();
        let first: Vec<_> = (0..9u64)
            .map(|i| b.delay(0, t + Duration::from_secs(i)))
            .collect();
        assert_eq!(first[0], Duration::from_millis(500));
        assert!(first.windows(2).all(|w| w[0] <= w[1]), "{first:?}");
        assert_eq!(*first.last().unwrap(), Duration::from_secs(30));
        // Another slot has its own streak.
        assert_eq!(b.delay(1, t), Duration::from_millis(500));
        let quiet = t + Duration::from_secs(8 + 61);
        assert_eq!(b.delay(0, quiet), Duration::from_millis(500));
    }
}
