//! Silence as a signal: a touch sent without a response for the response window becomes
//! `ignored`, and the learner counts it (fatigue, sunset, demotion after long silence).

use crate::store::{Contacts, Coordination, Ledger, Relationships};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{FeedbackError, TRIES, learn_from, stat, stat_key};
use crate::{
    config::Config,
    domain::{Clock, Touch, TouchStatus},
    learning::{Signal, config::minus},
    store::{Learn, LearnOutcome, Settle, StatField},
};

/// How many touches one sweep step reads.
const STEP: usize = 500;

/// Marks every touch whose response window closed by `now` as `ignored`, in steps.
/// Returns how many it marked.
pub async fn sweep<S: Contacts + Ledger + Relationships + Coordination>(
    store: &S,
    cfg: &Config,
    now: DateTime<Utc>,
) -> Result<u64, FeedbackError> {
    let before = minus(now, cfg.learning.model.response_window);
    // Touches sent before learning started: their silence says nothing (the responses
    // to them were never recorded).
    let since = store
        .setting(super::SINCE_SETTING)
        .await?
        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc));
    let mut marked = 0;
    loop {
        let due = store.awaiting(before, STEP).await?;
        let n = due.len();
        let mut settled = 0;
        for touch in due {
            let id = touch.id.clone();
            let learn = since.is_none_or(|s| touch.sent_at.is_some_and(|t| t >= s));
            match ignore(store, cfg, touch, learn, now).await {
                Ok(true) => {
                    marked += 1;
                    settled += 1;
                }
                Ok(false) => settled += 1,
                // One touch that cannot be settled now must not hold up the others.
                Err(e) => {
                    tracing::warn!(touch = id.as_str(), error = %e, "could not mark a touch ignored; will try again")
                }
            }
        }
        // A full page of which none could be settled would be read again for ever.
        if n < STEP || settled == 0 {
            return Ok(marked);
        }
    }
}

/// One touch. `false`: it got a response meanwhile (or is gone).
async fn ignore<S: Contacts + Ledger + Relationships>(
    store: &S,
    cfg: &Config,
    mut touch: Touch,
    learn_from_it: bool,
    now: DateTime<Utc>,
) -> Result<bool, FeedbackError> {
    for _ in 0..TRIES {
        if touch.status != TouchStatus::Sent || touch.responded_at.is_some() {
            return Ok(false);
        }
        let Some(contact) = store.get_contact(&touch.contact_id).await? else {
            return Ok(false);
        };
        let rel = store
            .relationship(&touch.contact_id)
            .await?
            .unwrap_or_default();
        let mut learn = Learn::new(contact.id.clone(), rel.version);
        learn.settle = Some((touch.id.clone(), Settle::Ignored));
        if learn_from_it {
            learn
                .stats
                .push(stat(&stat_key(&contact, &touch), StatField::Settled));
            let signals = [
                Signal::Sent {
                    channel: touch.channel,
                    at: touch.sent_at.unwrap_or(now),
                },
                Signal::Ignored {
                    channel: touch.channel,
                    at: now,
                },
            ];
            learn_from(cfg, &contact, &rel, &signals, now, &mut learn);
        }
        match store.learn(&learn, now).await? {
            LearnOutcome::Applied => return Ok(true),
            LearnOutcome::NoContact => return Ok(false),
            LearnOutcome::Conflict | LearnOutcome::Duplicate(_) => {
                match store
                    .get_touches(std::slice::from_ref(&touch.id))
                    .await?
                    .pop()
                {
                    Some(t) => touch = t,
                    None => return Ok(false),
                }
            }
        }
    }
    Err(FeedbackError::Busy(touch.contact_id))
}

/// Sweeps every reconcile interval until cancelled.
pub async fn sweep_loop<S: Contacts + Ledger + Relationships + Coordination>(
    store: Arc<S>,
    cfg: Arc<Config>,
    clock: Arc<dyn Clock>,
    cancel: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(cfg.dispatch.reconcile_every) => {}
        }
        match sweep(store.as_ref(), &cfg, clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(ignored = n, "touches without a response marked ignored"),
            Err(e) => tracing::error!(error = %e, "ignored-touch sweep failed"),
        }
    }
}
