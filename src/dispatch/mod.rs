//! Dispatch: for a batch of touch ids, claim them in the ledger, re-read each contact,
//! check consent, render for its tier, send, and record the outcome.

mod recorder;

use std::{collections::HashMap, sync::Arc};

use futures::StreamExt;

pub use recorder::Recorder;

use crate::{
    channels::{DeliveryClass, EmailChannel, OutboundEmail},
    config::{Config, Trigger},
    domain::{Clock, Contact, ContactId, Touch, TouchId},
    planner,
    policy::{
        self, History, Limits, Slot, Verdict,
        retry::{self, RetryDecision, RetryInput},
    },
    render::{self, Renderer},
    store::{Outcome, Reservation, Store, StoreError},
    telemetry,
};

/// How often a batch decides again after losing reservation races before it hands the
/// losers back as a new job.
const ADMIT_ROUNDS: usize = 8;

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
}

pub struct Dispatcher<S> {
    pub store: Arc<S>,
    pub cfg: Arc<Config>,
    pub renderer: Arc<Renderer>,
    pub email: Arc<dyn EmailChannel>,
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
                Outcome::Failed { .. } => report.failed += 1,
                Outcome::Suppressed { .. } => report.suppressed += 1,
                Outcome::Expired { .. } => report.expired += 1,
                Outcome::Defer { .. } => report.deferred += 1,
                Outcome::Skipped { .. } => report.skipped += 1,
            }
        }
        Ok(report)
    }

    /// The relationship policy for a claimed batch: each touch either gets its place
    /// against its contact's caps (reserved in the store, atomically with the check)
    /// and is returned ready to send, or gets its outcome now (suppressed, held,
    /// skipped, expired). A reservation that loses a race (another worker took a place
    /// for the same contact meanwhile) is decided again on fresh history.
    async fn admit(
        &self,
        touches: Vec<Touch>,
        contacts: &HashMap<ContactId, Contact>,
        owner: &str,
    ) -> Result<(Vec<Touch>, Vec<(Touch, Outcome)>), StoreError> {
        let mut ready = Vec::with_capacity(touches.len());
        let mut decided = Vec::new();
        let mut pending = Vec::with_capacity(touches.len());
        for t in touches {
            match self.precheck(&t, contacts.get(&t.contact_id)) {
                Some(o) => decided.push((t, o)),
                None => pending.push(t),
            }
        }
        let horizon = self.horizon();
        let span = policy::lookback(horizon);
        // The batch's own touches are not read back from the store: they are here.
        let batch: Vec<TouchId> = pending.iter().map(|t| t.id.clone()).collect();
        for _round in 0..ADMIT_ROUNDS {
            if pending.is_empty() {
                break;
            }
            let now = self.clock.now();
            let mut ids: Vec<ContactId> = pending.iter().map(|t| t.contact_id.clone()).collect();
            ids.sort();
            ids.dedup();
            let mut records = self.store.policy_records(&ids, now - span, &batch).await?;
            // Closest to the contact first: within a contact, higher priority decides
            // (and takes its place) first.
            pending.sort_by(|a, b| {
                (&a.contact_id, std::cmp::Reverse(a.priority), &a.id).cmp(&(
                    &b.contact_id,
                    std::cmp::Reverse(b.priority),
                    &b.id,
                ))
            });
            let mut asks: Vec<(Reservation, Touch)> = Vec::new();
            let mut groups: Vec<Vec<Touch>> = Vec::new();
            for t in std::mem::take(&mut pending) {
                match groups.last_mut() {
                    Some(g) if g[0].contact_id == t.contact_id => g.push(t),
                    _ => groups.push(vec![t]),
                }
            }
            for group in groups {
                let Some(contact) = contacts.get(&group[0].contact_id) else {
                    continue;
                };
                let mut record = records.remove(&contact.id).unwrap_or_default();
                // This contact's touches in the batch, as the store would have returned
                // them (left out of the read: they are here).
                record.touches.extend(group.iter().cloned());
                let projected = planner::upcoming(&self.cfg, contact, now, horizon);
                let mut h = History::new(
                    record.slots,
                    &record.touches,
                    projected,
                    record.last_interaction,
                );
                let mut version = record.version;
                for t in group {
                    let h = &mut h;
                    let version = &mut version;
                    let verdict = policy::evaluate(&self.cfg, contact, &t, h, now);
                    // Decided now: no longer among the contact's touches still to go (a held
                    // one goes back in below, at its new time).
                    h.upcoming.retain(|u| u.touch != t.id);
                    match verdict {
                        Verdict::Send
                            if Limits::for_tier(&self.cfg, &contact.tier).is_unlimited() =>
                        {
                            ready.push(t)
                        }
                        Verdict::Send => {
                            h.slots.push(Slot {
                                touch: t.id.clone(),
                                at: now,
                                channel: t.channel.clone(),
                            });
                            asks.push((
                                Reservation {
                                    touch: t.id.clone(),
                                    contact: t.contact_id.clone(),
                                    channel: t.channel.clone(),
                                    at: now,
                                    version: *version,
                                },
                                t,
                            ));
                            *version += 1;
                        }
                        v @ Verdict::Hold { until, .. } => {
                            // Still to go: lower-priority touches of this contact decided
                            // after it must leave it its place.
                            h.upcoming.push(policy::Upcoming {
                                touch: t.id.clone(),
                                occasion: t.occasion.clone(),
                                priority: t.priority,
                                at: until,
                                channel: t.channel.clone(),
                            });
                            let o = Outcome::Defer {
                                id: t.id.clone(),
                                at: until,
                                reason: v.reason(),
                            };
                            decided.push((t, o));
                        }
                        v @ Verdict::Skip { .. } => {
                            let o = Outcome::Skipped {
                                id: t.id.clone(),
                                reason: v.reason().unwrap_or_default(),
                            };
                            decided.push((t, o));
                        }
                        v @ Verdict::Expire { .. } => {
                            let o = Outcome::Expired {
                                id: t.id.clone(),
                                reason: v.reason().unwrap_or_default(),
                            };
                            decided.push((t, o));
                        }
                    }
                }
            }
            if asks.is_empty() {
                break;
            }
            let reservations: Vec<Reservation> = asks.iter().map(|(r, _)| r.clone()).collect();
            let taken = self.store.reserve(&reservations, owner).await?;
            for ((_, t), ok) in asks.into_iter().zip(taken) {
                if ok {
                    ready.push(t);
                } else {
                    pending.push(t);
                }
            }
        }
        // Still racing after every round: try again shortly, as a new job.
        for t in pending {
            let o = Outcome::Defer {
                id: t.id.clone(),
                at: self.clock.now() + chrono::Duration::seconds(1),
                reason: Some("held: its contact's caps were busy; trying again".into()),
            };
            decided.push((t, o));
        }
        Ok((ready, decided))
    }

    /// How far back (and ahead) a contact's history can matter to any tier.
    fn horizon(&self) -> std::time::Duration {
        self.cfg
            .tiers
            .iter()
            .map(|t| Limits::for_tier(&self.cfg, &t.name).horizon())
            .chain([Limits::for_tier(&self.cfg, "").horizon()])
            .max()
            .unwrap_or_default()
    }

    /// What settles a touch before the policy is asked: the contact gone, no consent,
    /// no address.
    fn precheck(&self, touch: &Touch, contact: Option<&Contact>) -> Option<Outcome> {
        let suppressed = |reason: &str| {
            Some(Outcome::Suppressed {
                id: touch.id.clone(),
                reason: reason.to_owned(),
            })
        };
        let Some(contact) = contact else {
            return suppressed("contact no longer exists");
        };
        // Consent is checked right before the send, not when the touch was planned.
        policy::unreachable(contact, &touch.channel).and_then(suppressed)
    }

    /// Renders and sends a touch that has its place.
    async fn deliver(&self, touch: &Touch, contact: Option<&Contact>) -> Outcome {
        let id = touch.id.clone();
        let (Some(contact), Some(to)) = (contact, contact.and_then(|c| c.email.clone())) else {
            return Outcome::Suppressed {
                id,
                reason: "contact no longer exists".into(),
            };
        };
        let year = touch.occurrence.parse::<i32>().unwrap_or_else(|_| {
            touch
                .scheduled_at
                .format("%Y")
                .to_string()
                .parse()
                .unwrap_or(0)
        });
        let mut ctx = render::context(contact, &touch.occasion, year, &self.cfg.brand_name);
        if let Some(Trigger::Event { .. }) = self.cfg.occasion(&touch.occasion).map(|o| &o.trigger)
        {
            // The event is the touch's occurrence; a template may use its data.
            match self.store.events_for_contact(&contact.id).await {
                Ok(events) => {
                    if let Some(e) = events.iter().find(|e| e.id.as_str() == touch.occurrence) {
                        ctx = render::with_event(ctx, e);
                    }
                }
                Err(e) => return self.retry_or_fail(touch, contact, &format!("store: {e}")),
            }
        }
        let content = match self
            .renderer
            .render_email(&touch.occasion, &contact.tier, &ctx)
        {
            Ok(c) => c,
            Err(e) => {
                return Outcome::Failed {
                    id,
                    reason: format!("render: {e}"),
                };
            }
        };
        let email = OutboundEmail {
            touch: touch.id.clone(),
            to,
            to_name: ctx["contact"]["full_name"].as_str().map(str::to_owned),
            content,
        };
        match self.email.send(&email).await {
            Ok(()) => Outcome::Sent { id },
            Err(e) if e.class == DeliveryClass::Permanent => Outcome::Failed {
                id,
                reason: e.to_string(),
            },
            // RELIABILITY.md: an uncertain outcome is retried at most once, so a server
            // that accepts but never answers cannot receive the note six times.
            Err(e)
                if e.class == DeliveryClass::Uncertain
                    && touch
                        .reason
                        .as_deref()
                        .is_some_and(|r| r.ends_with("(uncertain)")) =>
            {
                Outcome::Failed {
                    id,
                    reason: format!("uncertain twice, not retried again: {e}"),
                }
            }
            Err(e) => self.retry_or_fail(touch, contact, &e.to_string()),
        }
    }

    fn retry_or_fail(&self, touch: &Touch, contact: &Contact, reason: &str) -> Outcome {
        let occasion = self.cfg.occasion(&touch.occasion);
        let window = occasion.map_or(self.cfg.defaults.send_window, |o| {
            self.cfg.send_window(o, &contact.tier)
        });
        let decision = retry::decide(&RetryInput {
            cfg: &self.cfg.dispatch,
            attempts: touch.attempts,
            scheduled_at: touch.scheduled_at,
            expires_at: touch.expires_at,
            window,
            zone: contact.zone(self.cfg.defaults.timezone),
            now: self.clock.now(),
            jitter: rand::random::<f64>(),
            reason,
        });
        match decision {
            RetryDecision::RetryAt(at) => Outcome::Retry {
                id: touch.id.clone(),
                at,
                reason: reason.to_owned(),
            },
            RetryDecision::GiveUp(reason) => Outcome::Failed {
                id: touch.id.clone(),
                reason,
            },
        }
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
