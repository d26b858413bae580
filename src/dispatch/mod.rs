//! Dispatch: for a batch of touch ids, claim them in the ledger, re-read each contact,
//! check consent, ask the relationship policy and take each admitted touch's place
//! (`admit`), render for its tier, send, and record the outcome.

mod admit;
mod deliver;
mod recorder;

use std::sync::Arc;

use futures::StreamExt;

pub use recorder::Recorder;

use crate::{
    channels::Channels,
    config::Config,
    domain::{Clock, TouchId},
    render::Renderer,
    store::{Outcome, Store, StoreError},
    telemetry,
};

/// What happened to one batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchReport {
    pub claimed: usize,
    pub expired: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub suppressed: usize,
    pub deferred: usize,
    pub skipped: usize,
    /// Moved on to the occasion's next channel.
    pub fell_back: usize,
}

pub struct Dispatcher<S> {
    pub store: Arc<S>,
    pub cfg: Arc<Config>,
    pub renderer: Arc<Renderer>,
    pub channels: Arc<Channels>,
    pub clock: Arc<dyn Clock>,
    pub recorder: Recorder,
    /// Jobs run as their own tasks here (see `queue::worker`); the app waits on it at
    /// shutdown.
    pub tasks: tokio_util::task::TaskTracker,
    /// Cancelled when the daemon starts stopping: sends not yet started are handed back
    /// to the ledger instead of racing the drain deadline.
    pub stopping: tokio_util::sync::CancellationToken,
}

impl<S: Store> Dispatcher<S> {
    /// Handles one job's touches for `worker` (its unique name).
    pub async fn dispatch(&self, ids: &[TouchId], worker: &str) -> Result<BatchReport, StoreError> {
        // A lease owner unique to this claim, not just this worker: if the worker's own
        // lease lapsed and it claimed the touch again, a late outcome of the first
        // attempt must not land on the second. A bare ULID: it is written with every
        // claimed touch, so it is kept short.
        let owner = ulid::Ulid::new().to_string();
        let owner = owner.as_str();
        tracing::debug!(
            worker,
            claim = owner,
            touches = ids.len(),
            "dispatching a job"
        );
        let now = self.clock.now();
        let lease = chrono::Duration::from_std(self.cfg.dispatch.lease)
            .unwrap_or(chrono::Duration::minutes(2));
        let claimed = self.store.claim(ids, owner, now, now + lease).await?;
        let mut report = BatchReport {
            claimed: claimed.touches.len(),
            expired: claimed.expired.len(),
            ..BatchReport::default()
        };
        for id in &claimed.expired {
            telemetry::touch_expired(id);
        }
        if claimed.touches.is_empty() {
            return Ok(report);
        }
        let mut contact_ids: Vec<_> = claimed
            .touches
            .iter()
            .map(|t| t.contact_id.clone())
            .collect();
        contact_ids.sort();
        contact_ids.dedup();
        let contacts = self.store.get_contacts(&contact_ids).await?;
        let leased: Vec<TouchId> = claimed.touches.iter().map(|t| t.id.clone()).collect();
        // The batch's touches are leased together; keep the lease alive while the batch
        // is still deciding and sending, however slow the server, so nobody else takes
        // them over.
        let renew = async {
            loop {
                tokio::time::sleep(self.cfg.dispatch.lease / 3).await;
                let until = self.clock.now() + lease;
                if let Err(e) = self.store.extend_lease(&leased, owner, until).await {
                    tracing::warn!(error = %e, "could not extend a batch's lease");
                }
            }
        };
        let work = async {
            let (ready, decided) = self.admit(claimed.touches, &contacts, owner).await?;
            // Outcomes already decided go first (recorded, not sent), then the sends.
            let items = decided
                .into_iter()
                .map(|(t, o)| (t, Some(o)))
                .chain(ready.into_iter().map(|t| (t, None)));
            futures::stream::iter(items)
                .map(|(t, decided)| {
                    let contacts = &contacts;
                    async move {
                        let outcome = match decided {
                            Some(o) => o,
                            None if self.stopping.is_cancelled() => Outcome::Defer {
                                id: t.id.clone(),
                                at: self.clock.now(),
                                reason: None,
                            },
                            None => self.deliver(&t, contacts.get(&t.contact_id)).await,
                        };
                        // Recorded inside the buffered future, not in a `.then` after
                        // it: while a `.then` waits, the buffer is not polled, and a
                        // send parked there holding the store's only SQLite connection
                        // (its event lookup) would stall the recorder for good.
                        self.recorder.record(outcome.clone(), owner).await?;
                        telemetry::touch_outcome(&t, &outcome);
                        Ok(outcome)
                    }
                })
                .buffer_unordered(self.cfg.dispatch.concurrency as usize)
                .collect::<Vec<Result<Outcome, StoreError>>>()
                .await
                .into_iter()
                .collect::<Result<Vec<_>, StoreError>>()
        };
        let results = tokio::select! {
            r = work => r?,
            () = renew => unreachable!("the renewal loop never ends"),
        };
        // Every outcome is recorded: the claim is over.
        if let Err(e) = self.store.release_lease(owner).await {
            tracing::warn!(error = %e, "could not release a finished batch's lease; it lapses instead");
        }
        for r in results {
            match r {
                Outcome::Sent { .. } => report.sent += 1,
                Outcome::Retry { .. } => report.retried += 1,
                Outcome::Fallback { .. } => report.fell_back += 1,
                Outcome::Failed { .. } => report.failed += 1,
                Outcome::Suppressed { .. } => report.suppressed += 1,
                Outcome::Expired { .. } => report.expired += 1,
                Outcome::Defer { .. } => report.deferred += 1,
                Outcome::Skipped { .. } => report.skipped += 1,
            }
        }
        Ok(report)
    }
}

/// Re-queues stranded touches and expires overdue ones, on a timer until cancelled.
pub async fn reconcile_loop<S: Store>(
    store: Arc<S>,
    cfg: Arc<Config>,
    clock: Arc<dyn Clock>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let lease =
        chrono::Duration::from_std(cfg.dispatch.lease).unwrap_or(chrono::Duration::minutes(2));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(cfg.dispatch.reconcile_every) => {}
        }
        let now = clock.now();
        match store
            .reconcile(now, now - lease, cfg.dispatch.batch_size as usize)
            .await
        {
            Ok(r) if r.dead_jobs > 0 => tracing::error!(
                expired = r.expired,
                requeued = r.requeued,
                dead_jobs = r.dead_jobs,
                "reconciler dead-lettered queue jobs whose workers kept stopping"
            ),
            Ok(r) if r.expired + r.requeued > 0 => {
                tracing::info!(expired = r.expired, requeued = r.requeued, "reconciler run");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "reconciler run failed"),
        }
    }
}

/// Hands due jobs to the queue workers (see [`Store::pump`]) every poll interval until
/// cancelled. A store that is down is logged once, and again when it is back.
pub async fn pump_loop<S: Store>(
    store: Arc<S>,
    cfg: Arc<Config>,
    clock: Arc<dyn Clock>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let mut failing = false;
    loop {
        loop {
            let moved = store.pump(clock.now()).await;
            match (&moved, failing) {
                (Err(e), false) => {
                    tracing::error!(error = %e, "cannot hand due jobs to the queue; retrying");
                }
                (Ok(_), true) => tracing::info!("queue reachable again"),
                _ => {}
            }
            failing = moved.is_err();
            if !matches!(moved, Ok(n) if n > 0) {
                break;
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(cfg.dispatch.poll_interval) => {}
        }
    }
}
