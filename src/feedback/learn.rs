//! The learner's verdict on a contact's signals, written into one [`Learn`]: the
//! state, consent, suppression, tier and notes, and the statistics' keys.

use crate::domain::Channel;
use chrono::{DateTime, Utc};

use crate::{
    config::Config,
    domain::{Contact, Touch},
    learning::{self, Effect, Signal},
    store::{Learn, Note, Relationship, StatDelta, StatField, StatKey, Suppression},
};

/// Runs `signals` through the learner and writes what follows into `learn`: the state
/// (when learning is on), consent, suppression, tier, notes. Returns the effects in
/// words. With learning off only what the contact asked for acts: an unsubscribe, a
/// complaint, a hard bounce.
pub(crate) fn learn_from(
    cfg: &Config,
    contact: &Contact,
    rel: &Relationship,
    signals: &[Signal],
    now: DateTime<Utc>,
    learn: &mut Learn,
) -> Vec<String> {
    let model = &cfg.learning.model;
    let zone = contact.zone(cfg.rules.defaults.timezone);
    let mut state = rel.state.clone();
    let mut effects = Vec::new();
    for s in signals {
        let (next, more) = learning::apply(&state, s, &contact.tier, model, zone, now);
        state = next;
        effects.extend(more);
    }
    let enabled = cfg.learning.enabled;
    let mut words = Vec::new();
    for e in effects {
        let acts = match &e {
            Effect::WithdrawConsent { channel } => {
                learn.consent.push((*channel, false));
                true
            }
            Effect::Suppress { reason } => {
                // Which addresses: ResponseKind::suppresses decides (a complaint every
                // one, a hard bounce the one that bounced).
                let channels: Vec<Channel> = Suppression::all(reason.clone())
                    .channels
                    .into_iter()
                    .filter(|c| {
                        signals.iter().any(|s| {
                            matches!(s, Signal::Response(r) if r.kind.suppresses(r.channel, *c))
                        })
                    })
                    .collect();
                learn.suppress = Some(if channels.is_empty() {
                    Suppression::all(reason.clone())
                } else {
                    Suppression {
                        reason: reason.clone(),
                        channels,
                    }
                });
                true
            }
            Effect::MoveTier { to, .. } if enabled && cfg.rules.tier(to).is_some() => {
                learn.tier = Some(to.clone());
                true
            }
            Effect::MoveTier { .. } => false,
            _ => enabled,
        };
        if acts {
            let text = e.to_string();
            learn.notes.push(Note {
                at: now,
                text: text.clone(),
            });
            words.push(text);
        }
    }
    if enabled {
        learn.state = Some(state);
    }
    words
}

pub(super) fn stat_key(contact: &Contact, t: &Touch) -> StatKey {
    StatKey {
        tier: contact.tier.clone(),
        channel: t.channel.to_string(),
        occasion: t.occasion.clone(),
    }
}

pub(super) fn stat(key: &StatKey, field: StatField) -> StatDelta {
    StatDelta {
        key: key.clone(),
        field,
    }
}
