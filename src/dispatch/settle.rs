//! Settling a failed send: what the provider's refusal teaches (an opt-out, a hard
//! bounce), and the ledger's outcome (moved on to the occasion's next channel,
//! retried on the channel's schedule, or failed).

use super::Dispatcher;
use crate::domain::Channel;
use crate::policy::hops;
use crate::{
    channels::{DeliveryClass, DeliveryError},
    domain::{Contact, Outcome, Touch},
    policy::{
        self,
        retry::{self, Plan, RetryDecision, RetryInput},
    },
    store::Store,
};

impl<S: Store> Dispatcher<S> {
    /// The outcome of a failed send.
    pub(super) async fn settle(
        &self,
        touch: &Touch,
        contact: &Contact,
        e: DeliveryError,
    ) -> Outcome {
        let id = touch.id.clone();
        let channel = touch.channel.as_str();
        match e.class {
            DeliveryClass::Permanent
            | DeliveryClass::Gone
            | DeliveryClass::OptedOut
            | DeliveryClass::HardBounce => self.settle_refused(touch, contact, e).await,
            // RELIABILITY.md: an uncertain outcome (a timeout after the request or the
            // message went out: it may have been accepted) is retried at most once, so a
            // server that accepts but never answers cannot deliver the note six times. An
            // SMS API has no idempotency key, so this bounds a duplicate text to one.
            DeliveryClass::Uncertain if touch.uncertain > 0 => Outcome::Failed {
                id,
                reason: format!("uncertain twice, not retried again: {channel}: {e}"),
            },
            // Never started: back to the ledger as it was (the dispatcher normally
            // handles this before a send is settled).
            DeliveryClass::NotStarted => Outcome::Defer {
                id,
                at: self.clock.now(),
                reason: None,
            },
            DeliveryClass::Uncertain | DeliveryClass::Transient => self.retry_or_fail(
                touch,
                contact,
                &e.to_string(),
                e.retry_after,
                e.class == DeliveryClass::Uncertain,
            ),
        }
    }

    /// The outcome of a send the provider refused for good (permanent, gone, opted
    /// out, hard bounce): what the refusal teaches is recorded first, then the touch
    /// moves on to the occasion's next channel that can reach the contact, or ends.
    async fn settle_refused(&self, touch: &Touch, contact: &Contact, e: DeliveryError) -> Outcome {
        let id = touch.id.clone();
        let channel = touch.channel;
        if e.class == DeliveryClass::OptedOut {
            self.withdraw_consent(contact, channel).await;
        }
        if e.class == DeliveryClass::HardBounce {
            self.suppress_bounced(touch, contact, &e).await;
        }
        let next = self.cfg.rules.occasion(&touch.occasion).and_then(|o| {
            policy::fallback_channel(&self.cfg.rules, o, contact, channel, &touch.tried)
        });
        match next {
            Some(next) => Outcome::Fallback {
                id,
                channel: next,
                reason: hops(touch, format!("{channel}: {e}; trying {next}")),
            },
            None if e.class == DeliveryClass::OptedOut => Outcome::Suppressed {
                id,
                reason: format!("{channel}: {e}"),
            },
            None => Outcome::Failed {
                id,
                reason: format!("failed permanently: {channel}: {e}"),
            },
        }
    }

    /// A hard bounce is learned as a `bounce_hard` response, as the API would record
    /// one: the address is suppressed before the outcome is. If the store cannot take
    /// it now, the touch still moves on; the address bounces again next time and is
    /// suppressed then.
    async fn suppress_bounced(&self, touch: &Touch, contact: &Contact, e: &DeliveryError) {
        let channel = touch.channel.as_str();
        let now = self.clock.now();
        let bounce = crate::feedback::Bounce {
            touch: touch.id.clone(),
            contact: contact.id.clone(),
            channel: touch.channel,
            detail: e.reason.clone(),
            at: now,
        };
        match crate::feedback::bounced(self.store.as_ref(), &self.cfg, bounce, now).await {
            Ok(_) => tracing::warn!(
                contact = contact.id.as_str(),
                channel,
                reason = %e,
                "hard bounce: the address is suppressed"
            ),
            Err(err) => tracing::error!(
                contact = contact.id.as_str(),
                channel,
                reason = %e,
                error = %err,
                "hard bounce, but the suppression could not be recorded"
            ),
        }
    }

    /// The provider says the contact opted out: no message on `channel` until they opt
    /// in again.
    async fn withdraw_consent(&self, contact: &Contact, channel: Channel) {
        match self.store.set_consent(&contact.id, channel, false).await {
            Ok(_) => tracing::warn!(
                contact = contact.id.as_str(),
                channel = channel.as_str(),
                "the provider reports an opt-out: consent withdrawn"
            ),
            Err(e) => tracing::error!(
                contact = contact.id.as_str(),
                channel = channel.as_str(),
                error = %e,
                "the provider reports an opt-out but it could not be recorded"
            ),
        }
    }

    fn retry_or_fail(
        &self,
        touch: &Touch,
        contact: &Contact,
        reason: &str,
        retry_after: Option<std::time::Duration>,
        uncertain: bool,
    ) -> Outcome {
        let occasion = self.cfg.rules.occasion(&touch.occasion);
        let window = occasion.map_or(self.cfg.rules.defaults.send_window, |o| {
            self.cfg.rules.send_window(o, &contact.tier)
        });
        let plan = match (&self.cfg.webhook, touch.channel) {
            (Some(w), Channel::Webhook) => Plan::Schedule {
                waits: &w.retry_schedule,
                max_age: w.max_age,
            },
            _ => Plan::Backoff,
        };
        let decision = retry::decide(&RetryInput {
            cfg: &self.cfg.dispatch,
            plan,
            retry_after,
            attempts: touch.attempts,
            scheduled_at: touch.scheduled_at,
            expires_at: touch.expires_at,
            window,
            zone: contact.zone(self.cfg.rules.defaults.timezone),
            now: self.clock.now(),
            jitter: rand::random::<f64>(),
            reason,
        });
        match decision {
            RetryDecision::RetryAt(at) => Outcome::Retry {
                id: touch.id.clone(),
                at,
                reason: reason.to_owned(),
                uncertain,
            },
            RetryDecision::GiveUp(reason) => Outcome::Failed {
                id: touch.id.clone(),
                reason,
            },
        }
    }
}
