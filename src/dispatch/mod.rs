//! Dispatch: for a batch of touch ids, claim them in the ledger, re-read each contact,
//! check consent, ask the relationship policy and take each admitted touch's place
//! (`admit`), render for its tier, send, and record the outcome.

mod admit;
mod claim;
mod deliver;
mod recorder;
mod settle;

use std::sync::Arc;

use claim::{Claim, HandBack, TouchGate};
use deliver::Delivered;
use futures::StreamExt;
use tracing::Instrument;

pub use recorder::Recorder;
use tokio_util::sync::CancellationToken;

use crate::{
    channels::Channels,
    config::Config,
    custody::Custody,
    domain::{Clock, Contact, ContactId, Outcome, Touch, TouchId},
    render::Renderer,
    store::{Store, StoreError},
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

impl BatchReport {
    /// Counts one recorded outcome.
    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Sent { .. } => self.sent += 1,
            Outcome::Retry { .. } => self.retried += 1,
            Outcome::Fallback { .. } => self.fell_back += 1,
            Outcome::Failed { .. } => self.failed += 1,
            Outcome::Suppressed { .. } => self.suppressed += 1,
            Outcome::Expired { .. } => self.expired += 1,
            Outcome::Defer { .. } => self.deferred += 1,
            Outcome::Skipped { .. } => self.skipped += 1,
        }
    }
}

/// A claimed batch's contacts, read once for the batch.
type Contacts = std::collections::HashMap<ContactId, Contact>;

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
    /// Cancelled when the daemon starts stopping: no provider call starts after it, and
    /// every claimed send that has not started is handed back to the ledger at once.
    pub stopping: CancellationToken,
    /// Cancelled at the drain deadline: sends still in flight are abandoned and recorded
    /// as uncertain (resent at most once, with the same Message-ID).
    pub abandon: CancellationToken,
    /// Whether the store is the one this process works with: nothing is claimed from a
    /// store that was lost (see `custody`).
    pub custody: Custody,
}

impl<S: Store> Dispatcher<S> {
    /// Handles one job's touches for `worker` (its unique name).
    pub async fn dispatch(&self, ids: &[TouchId], worker: &str) -> Result<BatchReport, StoreError> {
        let span = tracing::info_span!("claim", worker, touches = ids.len());
        self.dispatch_job(ids, worker).instrument(span).await
    }

    async fn dispatch_job(&self, ids: &[TouchId], worker: &str) -> Result<BatchReport, StoreError> {
        // A lease owner unique to this claim, not just this worker: if the worker's own
        // lease lapsed and it claimed the touch again, a late outcome of the first
        // attempt must not land on the second. A bare ULID: it is written with every
        // claimed touch, so it is kept short.
        if let Some(why) = self.custody.lost() {
            // The job is dropped; the ledger keeps the touches, and the reconciler queues
            // them again once the store is adopted.
            tracing::debug!(worker, %why, "the store is held; the job claims nothing");
            return Ok(BatchReport::default());
        }
        let owner = ulid::Ulid::new().to_string();
        let owner = owner.as_str();
        tracing::debug!(
            worker,
            claim = owner,
            touches = ids.len(),
            "dispatching a job"
        );
        let now = self.clock.now();
        let lease = lease(&self.cfg);
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
        let claim = Claim::new(
            owner.to_owned(),
            lease,
            now,
            claimed.touches.iter().map(|t| t.id.clone()),
        );
        let contacts = self.contacts_of(&claimed.touches).await?;
        let results = self.run_claim(&claim, claimed.touches, &contacts).await?;
        // Every outcome is recorded: the claim is over. One that is not (the store
        // failed, the deadline came) keeps its lease, which lapses: the reconciler then
        // finds its touches still `sending` and queues them again; released, they
        // would be stranded (on Redis it finds them through the lease).
        if claim.settled() {
            if let Err(e) = self.store.release_lease(owner).await {
                tracing::warn!(error = %e, "could not release a finished batch's lease; it lapses instead");
            }
        }
        // Handed back by the drain: recorded there, deferred all the same.
        report.deferred += claim.released_count();
        for r in results.into_iter().flatten() {
            report.count(&r);
        }
        Ok(report)
    }

    /// The contacts of a claimed batch's touches, each read once.
    async fn contacts_of(&self, touches: &[Touch]) -> Result<Contacts, StoreError> {
        let mut contact_ids: Vec<_> = touches.iter().map(|t| t.contact_id.clone()).collect();
        contact_ids.sort();
        contact_ids.dedup();
        self.store.get_contacts(&contact_ids).await
    }

    /// Works through a claimed batch ([`Self::work`]) while keeping its lease alive and
    /// watching for the stop (the drain) and the drain deadline. `None` for a touch that
    /// left nothing for this batch to record.
    async fn run_claim(
        &self,
        claim: &Claim,
        touches: Vec<Touch>,
        contacts: &Contacts,
    ) -> Result<Vec<Option<Outcome>>, StoreError> {
        let owner = claim.owner.as_str();
        // Renewed every quarter lease, so a send finds at least three quarters of a lease
        // left (the gate renews at once when it finds less).
        let renew = async {
            loop {
                tokio::time::sleep(self.cfg.dispatch.lease / 4).await;
                if let Err(e) = claim.renew(self.store.as_ref(), self.clock.as_ref()).await {
                    tracing::warn!(claim = owner, error = %e, "could not extend a batch's lease");
                }
            }
        };
        let drain = self.drain(claim);
        let work = self.work(claim, touches, contacts);
        // One task polls all of them, so the drain's records never wait on a send that
        // holds the store's connection.
        let results = tokio::select! {
            biased;
            r = work => r?,
            () = renew => unreachable!("the renewal loop never ends"),
            () = drain => unreachable!("the drain never ends"),
            () = self.abandon.cancelled() => {
                self.abandon_started(claim, contacts).await.into_iter().map(Some).collect()
            }
        };
        Ok(results)
    }

    /// Decides the batch ([`Self::admit`]), then takes every touch to its record,
    /// `dispatch.concurrency` at a time.
    async fn work(
        &self,
        claim: &Claim,
        touches: Vec<Touch>,
        contacts: &Contacts,
    ) -> Result<Vec<Option<Outcome>>, StoreError> {
        let (ready, decided) = self
            .admit(touches, contacts, &claim.owner)
            .instrument(tracing::debug_span!("decide"))
            .await?;
        // Outcomes already decided go first (recorded, not sent), then the sends.
        let items = decided
            .into_iter()
            .map(|(t, o)| (t, Some(o)))
            .chain(ready.into_iter().map(|t| (t, None)));
        futures::stream::iter(items)
            .map(|(t, decided)| {
                // Every line logged for this touch, down to its record, carries it.
                let span = tracing::info_span!(
                    "touch",
                    touch = t.id.as_str(),
                    channel = t.channel.as_str()
                );
                self.complete(claim, contacts, t, decided).instrument(span)
            })
            .buffer_unordered(self.cfg.dispatch.concurrency as usize)
            .collect::<Vec<Result<Option<Outcome>, StoreError>>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, StoreError>>()
    }

    /// Takes one touch of the batch to its record: its outcome `decided` already, or the
    /// outcome of sending it. `None`: nothing for this batch to record.
    async fn complete(
        &self,
        claim: &Claim,
        contacts: &Contacts,
        t: Touch,
        decided: Option<Outcome>,
    ) -> Result<Option<Outcome>, StoreError> {
        let outcome = match decided {
            Some(o) => claim.decide(&t.id).then_some(o),
            None => self.send_one(claim, &t, contacts.get(&t.contact_id)).await,
        };
        let Some(outcome) = outcome else {
            return Ok(None);
        };
        // The drain may have handed it back meanwhile (an outcome
        // reached before the gate: held, late, a template that fails).
        if !claim.begin_record(&t.id) {
            return Ok(None);
        }
        // Recorded inside the buffered future, not in a `.then` after
        // it: while a `.then` waits, the buffer is not polled, and a
        // send parked there holding the store's only SQLite connection
        // (its event lookup) would stall the recorder for good.
        self.recorder.record(outcome.clone(), &claim.owner).await?;
        claim.done(&t.id);
        telemetry::touch_outcome(&t, &outcome);
        Ok(Some(outcome))
    }

    /// Waits for the daemon to start stopping, then hands every send of `claim` that has
    /// not started back to the ledger at once (another replica, or the next start, takes
    /// it without waiting for the lease to run out). Never returns.
    async fn drain(&self, claim: &Claim) {
        self.stopping.cancelled().await;
        self.hand_back_unstarted(claim).await;
        futures::future::pending::<()>().await;
    }

    /// Hands every send of `claim` that has not started back to the ledger, recorded
    /// `planned` as it was: the drain, and the deadline (which may come first).
    async fn hand_back_unstarted(&self, claim: &Claim) {
        let released = claim.release_unstarted();
        if released.is_empty() {
            return;
        }
        tracing::info!(
            claim = %claim.owner,
            touches = released.len(),
            "stopping: handing back claimed sends that have not started"
        );
        let now = self.clock.now();
        let records = released.into_iter().map(|id| async move {
            let defer = Outcome::Defer {
                id: id.clone(),
                at: now,
                reason: None,
            };
            (id, self.recorder.record(defer, &claim.owner).await)
        });
        for (id, r) in futures::future::join_all(records).await {
            match r {
                Ok(()) => claim.done(&id),
                Err(e) => {
                    tracing::warn!(claim = %claim.owner, error = %e, "could not hand a send back; its lease lapses instead")
                }
            }
        }
    }

    /// Sends one admitted touch through its gate. `None`: nothing for this caller to
    /// record (the drain handed it back, or its lease passed to another worker).
    async fn send_one(
        &self,
        claim: &Claim,
        t: &Touch,
        contact: Option<&Contact>,
    ) -> Option<Outcome> {
        if !claim.waiting(&t.id) {
            return None;
        }
        let gate = TouchGate {
            claim,
            touch: &t.id,
            store: &self.store,
            clock: self.clock.as_ref(),
            stopping: &self.stopping,
            custody: &self.custody,
        };
        // A send the drain released while it waited (for a connection, a rate-limit
        // place) is refused at its gate and ends here without a record: the drain made
        // it. Nothing here waits on the stop itself: one waiter per claim, not per send.
        match self.deliver(t, contact, &gate).await {
            Delivered::Outcome(o) => Some(o),
            Delivered::NotStarted => match claim.hand_back(&t.id) {
                HandBack::Record => Some(Outcome::Defer {
                    id: t.id.clone(),
                    at: self.clock.now(),
                    reason: None,
                }),
                HandBack::Skip => None,
            },
        }
    }

    /// At the drain deadline: the batch's sends still in flight are dropped, and each is
    /// recorded as uncertain (the server may have taken it): resent once, same
    /// Message-ID. An outcome already on its way to the store wins: the record of a
    /// touch no longer `sending` under this claim is fenced off.
    async fn abandon_started(&self, claim: &Claim, contacts: &Contacts) -> Vec<Outcome> {
        // The deadline may be seen before the drain's hand-back ran (a claim that was
        // slow to come back): hand back what has not started first.
        self.hand_back_unstarted(claim).await;
        let ids = claim.in_flight();
        if ids.is_empty() {
            return Vec::new();
        }
        tracing::warn!(
            claim = %claim.owner,
            touches = ids.len(),
            "sends still in flight at the drain deadline are abandoned and recorded as uncertain"
        );
        let touches = match self.store.get_touches(&ids).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(claim = %claim.owner, error = %e, "cannot read the abandoned sends; their lease lapses instead");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        // One whose outcome was recorded meanwhile is not `sending` any more.
        for t in touches
            .into_iter()
            .filter(|t| t.status == crate::domain::TouchStatus::Sending)
        {
            let Some(contact) = contacts.get(&t.contact_id) else {
                continue;
            };
            if !claim.begin_record(&t.id) {
                continue;
            }
            let e = crate::channels::DeliveryError::uncertain("abandoned at the drain deadline");
            let outcome = self.settle(&t, contact, e).await;
            match self.recorder.record(outcome.clone(), &claim.owner).await {
                Ok(()) => {
                    claim.done(&t.id);
                    telemetry::touch_outcome(&t, &outcome);
                    out.push(outcome);
                }
                Err(e) => {
                    tracing::warn!(touch = t.id.as_str(), error = %e, "cannot record an abandoned send; its lease lapses instead");
                }
            }
        }
        out
    }
}

fn lease(cfg: &Config) -> chrono::Duration {
    chrono::Duration::from_std(cfg.dispatch.lease).unwrap_or(chrono::Duration::seconds(30))
}

/// Re-queues stranded touches and expires overdue ones, on a timer until cancelled.
pub async fn reconcile_loop<S: Store>(
    store: Arc<S>,
    cfg: Arc<Config>,
    clock: Arc<dyn Clock>,
    custody: Custody,
    // A queue worker stopped: run now (it may be an undecodable job in the way).
    worker_stopped: Arc<tokio::sync::Notify>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let lease = lease(&cfg);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(cfg.dispatch.reconcile_every) => {}
            () = worker_stopped.notified() => {}
        }
        if custody.lost().is_some() {
            continue;
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
                "reconciler dead-lettered queue jobs (undecodable, or whose workers kept stopping)"
            ),
            Ok(r) if r.expired + r.requeued > 0 => {
                tracing::info!(expired = r.expired, requeued = r.requeued, "reconciler run");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "reconciler run failed"),
        }
    }
}
