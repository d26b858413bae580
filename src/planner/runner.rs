//! The planner loop: each occasion wakes on its cron schedule (and once at start-up, so a
//! restart catches up), asks the store who is due and records their touches.

use crate::store::{Contacts, Coordination, Ledger, Relationships};
use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Learned;
use crate::{
    config::{Config, Occasion, Trigger},
    domain::{Clock, Contact, ContactId, NewTouch},
    learning::ChannelPrior,
    store::{Relationship, StatField, StoreError},
};

const PAGE: usize = 5000;

#[derive(Default)]
struct Knowledge {
    priors: HashMap<String, ChannelPrior>,
    /// Per tier, the hour its contacts answer at most (local time).
    hours: HashMap<String, u32>,
    /// The same over every tier.
    hour: Option<u32>,
    states: HashMap<ContactId, Relationship>,
    none: ChannelPrior,
    /// The state of a contact nothing is known of yet.
    fresh: crate::learning::RelationshipState,
}

impl Knowledge {
    /// Per tier, each channel's touches answered and not (the statistics the learner
    /// keeps), scaled down to [`PRIOR_WEIGHT`](crate::learning::PRIOR_WEIGHT). Nothing is read with learning off.
    async fn priors<S: Relationships>(store: &S, cfg: &Config) -> Result<Self, StoreError> {
        let mut out = Self::default();
        if !cfg.learning.enabled {
            return Ok(out);
        }
        let mut counts: HashMap<String, HashMap<String, (u64, u64)>> = HashMap::new();
        let mut hours: HashMap<String, [u64; 24]> = HashMap::new();
        let mut all = [0u64; 24];
        for (key, field, n) in store.stats().await? {
            if let StatField::AnsweredAt(h) = field {
                hours.entry(key.tier).or_insert([0; 24])[usize::from(h) % 24] += n;
                all[usize::from(h) % 24] += n;
                continue;
            }
            let entry = counts
                .entry(key.tier)
                .or_default()
                .entry(key.channel)
                .or_default();
            match field {
                StatField::Settled => entry.0 += n,
                StatField::Responded => entry.1 += n,
                StatField::OptOut | StatField::AnsweredAt(_) => {}
            }
        }
        out.priors = counts
            .into_iter()
            .map(|(tier, channels)| {
                let prior = crate::learning::tier_prior(
                    channels.iter().map(|(c, (s, r))| (c.as_str(), *s, *r)),
                );
                (tier, prior)
            })
            .collect();
        out.hours = hours
            .into_iter()
            .filter_map(|(tier, h)| crate::learning::answer_mode(&h).map(|m| (tier, m)))
            .collect();
        out.hour = crate::learning::answer_mode(&all);
        Ok(out)
    }

    /// Reads the states of `contacts` (replacing the previous page's).
    async fn page<S: Relationships>(
        &mut self,
        store: &S,
        cfg: &Config,
        contacts: &[&Contact],
    ) -> Result<(), StoreError> {
        self.states.clear();
        if cfg.learning.enabled {
            let ids: Vec<ContactId> = contacts.iter().map(|c| c.id.clone()).collect();
            self.states = store.relationships(&ids).await?;
        }
        Ok(())
    }

    /// `None` with learning off; a contact with nothing learned yet gets its tier's.
    fn of<'a>(&'a self, c: &Contact, cfg: &'a Config) -> Option<Learned<'a>> {
        if !cfg.learning.enabled {
            return None;
        }
        let state = self.states.get(&c.id).map_or(&self.fresh, |r| &r.state);
        Some(Learned {
            learning: &cfg.learning,
            state,
            prior: self.priors.get(&c.tier).unwrap_or(&self.none),
            fallback_hour: self.hours.get(&c.tier).copied().or(self.hour),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanReport {
    /// Touches due now (already recorded or not).
    pub due: usize,
    /// Touches recorded by this run.
    pub new: usize,
}

/// Where a planner run's touches go: into the ledger (the daemon), or into a list
/// (`rapport plan`, which writes nothing). Everything before that is the same code, so
/// the dry run says what the daemon will record.
enum Into<'a> {
    Ledger,
    List(&'a mut Vec<NewTouch>),
}

impl PlanReport {
    /// Records `touches` (insert-if-absent; those an adoption of the store settles as
    /// skipped) and counts them.
    async fn add<S: Contacts + Ledger + Coordination>(
        &mut self,
        store: &S,
        cfg: &Config,
        mut touches: Vec<NewTouch>,
        now: DateTime<Utc>,
        into: &mut Into<'_>,
    ) -> Result<(), StoreError> {
        crate::custody::settle_adopted(store, &mut touches).await?;
        self.due += touches.len();
        match into {
            Into::Ledger => {
                let new = store
                    .plan_touches(&touches, cfg.dispatch.batch_size as usize, now)
                    .await?;
                self.new += new.len();
            }
            Into::List(list) => list.extend(touches),
        }
        Ok(())
    }
}

/// One run of `occasion`'s planner at `now`: the touches due, recorded in the ledger.
pub async fn run_once<S: Contacts + Ledger + Relationships + Coordination>(
    store: &S,
    cfg: &Config,
    occasion: &Occasion,
    now: DateTime<Utc>,
) -> Result<PlanReport, StoreError> {
    plan(store, cfg, occasion, now, &mut Into::Ledger).await
}

/// The touches `occasion`'s planner would record at `now` (learned where learning is
/// on, settled by an adoption of the store), recording nothing: `rapport plan`.
pub async fn would_plan<S: Contacts + Ledger + Relationships + Coordination>(
    store: &S,
    cfg: &Config,
    occasion: &Occasion,
    now: DateTime<Utc>,
) -> Result<Vec<NewTouch>, StoreError> {
    let mut list = Vec::new();
    plan(store, cfg, occasion, now, &mut Into::List(&mut list)).await?;
    Ok(list)
}

async fn plan<S: Contacts + Ledger + Relationships + Coordination>(
    store: &S,
    cfg: &Config,
    occasion: &Occasion,
    now: DateTime<Utc>,
    into: &mut Into<'_>,
) -> Result<PlanReport, StoreError> {
    let mut report = PlanReport::default();
    let field = match &occasion.trigger {
        Trigger::Date(f) => *f,
        Trigger::Inactivity { .. } => return run_check_ins(store, cfg, occasion, now, into).await,
        // Planned as each event arrives (`ingest::record_event`).
        Trigger::Event { .. } => return Ok(report),
    };
    let mut known = Knowledge::priors(store, cfg).await?;
    // Page by page, so a day with a hundred thousand birthdays is never all in memory.
    for day in super::candidate_days(now) {
        let mut after = None;
        loop {
            let page = store
                .contacts_on_page(field, day, after.as_ref(), PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            known
                .page(store, cfg, &page.iter().collect::<Vec<_>>())
                .await?;
            let touches =
                super::plan_learned(&cfg.rules, occasion, &page, |c| known.of(c, cfg), now);
            report.add(store, cfg, touches, now, into).await?;
        }
    }
    Ok(report)
}

/// Contacts whose last interaction is at or before this may be due `occasion` (an
/// inactivity one) at `now`: the shortest cadence any tier has (`None`: no tier has one).
pub fn idle_before(cfg: &Config, occasion: &Occasion, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let shortest = cfg
        .rules
        .tiers
        .iter()
        .filter_map(|t| cfg.rules.check_in_every(occasion, &t.name))
        .min()?;
    Some(now - chrono::Duration::from_std(shortest).unwrap_or(chrono::Duration::MAX))
}

/// Check-ins: contacts whose last interaction is older than the shortest cadence any
/// tier has are read page by page, and each is checked against its own tier's.
async fn run_check_ins<S: Contacts + Ledger + Relationships + Coordination>(
    store: &S,
    cfg: &Config,
    occasion: &Occasion,
    now: DateTime<Utc>,
    into: &mut Into<'_>,
) -> Result<PlanReport, StoreError> {
    let mut report = PlanReport::default();
    let Some(before) = idle_before(cfg, occasion, now) else {
        return Ok(report);
    };
    let mut known = Knowledge::priors(store, cfg).await?;
    let mut after = None;
    loop {
        let page = store.idle_contacts(before, after.as_ref(), PAGE).await?;
        let Some((last, at)) = page.last() else {
            break;
        };
        after = Some((*at, last.id.clone()));
        known
            .page(store, cfg, &page.iter().map(|(c, _)| c).collect::<Vec<_>>())
            .await?;
        let touches: Vec<_> = page
            .iter()
            .filter_map(|(c, last)| {
                super::check_in_learned(&cfg.rules, occasion, c, *last, known.of(c, cfg), now)
            })
            .collect();
        report.add(store, cfg, touches, now, into).await?;
    }
    Ok(report)
}

pub async fn run_loop<S: Contacts + Ledger + Relationships + Coordination>(
    store: Arc<S>,
    cfg: Arc<Config>,
    occasion: Occasion,
    clock: Arc<dyn Clock>,
    custody: crate::custody::Custody,
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
        let held = custody.lost();
        if held.is_some() {
            tracing::debug!(occasion = %occasion.name, "the store is held; this tick plans nothing");
        }
        let lock_taken = match held {
            Some(_) => Ok(None),
            None => store.try_lock(&lock, cfg.dispatch.lease).await,
        };
        match lock_taken {
            Ok(Some(token)) => {
                let span = tracing::info_span!("plan", occasion = occasion.name.as_str());
                let run = run_once(store.as_ref(), &cfg, &occasion, now)
                    .instrument(span.clone())
                    .await;
                span.in_scope(|| match run {
                    Ok(r) => {
                        tracing::info!(occasion = %occasion.name, due = r.due, new = r.new, "planner run")
                    }
                    Err(e) => {
                        tracing::error!(occasion = %occasion.name, error = %e, "planner run failed; will retry at the next tick")
                    }
                });
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
