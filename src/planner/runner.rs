//! The planner loop: each occasion wakes on its cron schedule (and once at start-up, so a
//! restart catches up), asks the store who is due and records their touches.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::{
    config::{Config, Occasion, Trigger},
    domain::Clock,
    store::{Store, StoreError},
};

const PAGE: usize = 5000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanReport {
    /// Touches due now (already recorded or not).
    pub due: usize,
    /// Touches recorded by this run.
    pub new: usize,
}

pub async fn run_once<S: Store>(
    store: &S,
    cfg: &Config,
    occasion: &Occasion,
    now: DateTime<Utc>,
) -> Result<PlanReport, StoreError> {
    let mut report = PlanReport::default();
    let field = match &occasion.trigger {
        Trigger::Date(f) => *f,
        Trigger::Inactivity { .. } => return run_check_ins(store, cfg, occasion, now).await,
        // Planned as each event arrives (`ingest::record_event`).
        Trigger::Event { .. } => return Ok(report),
    };
    // Page by page, so a day with a hundred thousand birthdays is never all in memory.
    for day in super::candidate_days(now) {
        let mut after = None;
        loop {
            let page = store
                .contacts_on_page(field, day, after.as_ref(), PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let touches = super::plan(cfg, occasion, &page, now);
            let new = store
                .plan_touches(&touches, cfg.dispatch.batch_size as usize, now)
                .await?;
            report.due += touches.len();
            report.new += new.len();
        }
    }
    Ok(report)
}

/// Check-ins: contacts whose last interaction is older than the shortest cadence any
/// tier has are read page by page, and each is checked against its own tier's.
async fn run_check_ins<S: Store>(
    store: &S,
    cfg: &Config,
    occasion: &Occasion,
    now: DateTime<Utc>,
) -> Result<PlanReport, StoreError> {
    let mut report = PlanReport::default();
    let shortest = cfg
        .tiers
        .iter()
        .filter_map(|t| cfg.check_in_every(occasion, &t.name))
        .min();
    let Some(shortest) = shortest else {
        return Ok(report);
    };
    let before = now - chrono::Duration::from_std(shortest).unwrap_or(chrono::Duration::MAX);
    let mut offset = 0;
    loop {
        let page = store.idle_contacts(before, offset, PAGE).await?;
        if page.is_empty() {
            break;
        }
        offset += page.len();
        let touches: Vec<_> = page
            .iter()
            .filter_map(|(c, last)| super::check_in(cfg, occasion, c, *last, now))
            .collect();
        let new = store
            .plan_touches(&touches, cfg.dispatch.batch_size as usize, now)
            .await?;
        report.due += touches.len();
        report.new += new.len();
    }
    Ok(report)
}

pub async fn run_loop<S: Store>(
    store: Arc<S>,
    cfg: Arc<Config>,
    occasion: Occasion,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) {
    // Replicas take turns: the one holding the lock plans this tick, the others skip it.
    // Planning is insert-if-absent, so a lock that lapses mid-run costs only duplicate
    // work; the lock is held at most `lease` (the lease bounds a planner run too).
    let lock = format!("planner:{}", occasion.name);
    let Some(schedule) = occasion.schedule.clone() else {
        return;
    };
    loop {
        let now = clock.now();
        match store.try_lock(&lock, cfg.dispatch.lease).await {
            Ok(Some(token)) => {
                match run_once(store.as_ref(), &cfg, &occasion, now).await {
                    Ok(r) => {
                        tracing::info!(occasion = %occasion.name, due = r.due, new = r.new, "planner run")
                    }
                    Err(e) => {
                        tracing::error!(occasion = %occasion.name, error = %e, "planner run failed; will retry at the next tick")
                    }
                }
                if let Err(e) = store.unlock(&lock, &token).await {
                    tracing::warn!(occasion = %occasion.name, error = %e, "could not release the planner lock; it lapses");
                }
            }
            Ok(None) => {
                tracing::debug!(occasion = %occasion.name, "another replica is planning this tick")
            }
            Err(e) => {
                tracing::error!(occasion = %occasion.name, error = %e, "planner run failed; will retry at the next tick")
            }
        }
        let Some(next) = schedule.after(&clock.now()).next() else {
            tracing::warn!(occasion = %occasion.name, "cron schedule has no future tick; planner stops");
            return;
        };
        let wait = (next - clock.now()).to_std().unwrap_or_default();
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}
