//! apalis wiring for the SQLite queue, with the settings that avoid the traps recorded in
//! RELIABILITY.md: explicit queue name, unique worker names per process and restart,
//! batch size 1 (no prefetched jobs parked on a worker), a short orphan window, our own
//! retries (the handler never returns a retry error), restart on backend errors.

use std::{sync::Arc, time::Duration};

use apalis::prelude::*;
use apalis_core::error::AbortError;
use apalis_sqlite::SqliteStorage;

use super::{DISPATCH_QUEUE, DispatchJob};
use crate::{config::DispatchConfig, dispatch::Dispatcher, store::Store};

async fn handle<S: Store>(
    job: serde_json::Value,
    dispatcher: Data<Arc<Dispatcher<S>>>,
    worker: WorkerContext,
) -> Result<(), BoxDynError> {
    // A payload we cannot read is dead on arrival: abort it rather than let it fail
    // again and again.
    let job = DispatchJob::decode(job).map_err(|e| Box::new(AbortError::new(e)) as BoxDynError)?;
    // apalis drives every worker's handlers inside the monitor's one task, which would
    // put all sending on one core; each job runs as its own task instead.
    let (d, name) = (dispatcher.0.clone(), worker.name().to_owned());
    let report = dispatcher
        .tasks
        .spawn(async move { d.dispatch(job.touches(), &name).await })
        .await
        .map_err(|e| Box::new(e) as BoxDynError)??;
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

pub fn monitor<S: Store>(
    pool: sqlx::SqlitePool,
    dispatcher: Arc<Dispatcher<S>>,
    cfg: &DispatchConfig,
) -> Monitor {
    let poll = cfg.poll_interval;
    Monitor::new()
        .should_restart(|worker, error| {
            tracing::error!(worker = worker.name(), %error, "queue worker stopped; restarting under a new name");
            true
        })
        .shutdown_timeout(cfg.drain_timeout)
        .register_n(cfg.workers as usize, move |index, restarts| {
            let config = apalis_sqlite::Config::default()
                .queue(DISPATCH_QUEUE)
                .batch_size(1)
                .heartbeat_interval(Duration::from_secs(10))
                .missed_heartbeats(3);
            if restarts > 0 {
                tracing::info!(index, restarts, "starting a replacement queue worker");
            }
            let backend = SqliteStorage::<serde_json::Value>::new(&pool)
                .with_config(config)
                .poll_with_interval(poll);
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
