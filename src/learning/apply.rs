//! One signal in, the next state and what the caller must do out.

use crate::domain::Channel;
use std::fmt;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{
    LearningConfig, RelationshipState, Response, ResponseKind, Signal, config::minus,
    fatigue::backoff_factor, review, state::Evidence,
};

/// What a signal changes outside the relationship state. The caller acts on each
/// (consent and suppression in the store, the tier on the contact) and writes it to the
/// contact's timeline, whose wording is the `Display`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// An unsubscribe or STOP: nothing more on this channel.
    WithdrawConsent { channel: Channel },
    /// A complaint or hard bounce: all marketing to the contact stops.
    Suppress { reason: String },
    MoveTier {
        from: String,
        to: String,
        reason: String,
    },
    /// The check-in cadence is now `factor` times the tier's (before the tier's bound).
    BackedOff { factor: u32, reason: String },
    /// Routine check-ins stop; birthdays and thank-yous still go.
    Sunset { reason: String },
    /// The contact interacted after a sunset: check-ins resume at the tier's cadence.
    Revived,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WithdrawConsent { channel } => {
                write!(f, "consent withdrawn on {}", channel.label())
            }
            Self::Suppress { reason } => write!(f, "suppressed: {reason}"),
            Self::MoveTier { from, to, reason } => write!(f, "moved from {from} to {to}: {reason}"),
            Self::BackedOff { factor, reason } => {
                write!(f, "check-ins backed off to {factor}x the cadence: {reason}")
            }
            Self::Sunset { reason } => write!(
                f,
                "sunset: {reason}; check-ins stop until the contact interacts"
            ),
            Self::Revived => f.write_str("revived: the contact interacted; check-ins resume"),
        }
    }
}

/// Learns from one signal. `tier` is the contact's tier now (the contact record owns
/// it; the state only keeps the history), `zone` their time zone for the hour, and `now`
/// the instant tier rules are judged at. Pure: same inputs, same outputs.
///
/// Signals are expected in the order they happened; one that arrives late still counts,
/// but never moves a clock (last touch, last interaction, the score's) backwards.
pub fn apply(
    state: &RelationshipState,
    signal: &Signal,
    tier: &str,
    cfg: &LearningConfig,
    zone: Tz,
    now: DateTime<Utc>,
) -> (RelationshipState, Vec<Effect>) {
    let mut next = state.clone();
    let mut effects = Vec::new();
    next.seen(signal.at());
    match signal {
        Signal::Sent { channel, at } => next.sent(*channel, *at),
        Signal::Ignored { at, .. } => {
            next.add_engagement(cfg.weights.ignored, *at, cfg.half_life);
            ignored(&mut next, cfg, &mut effects);
        }
        Signal::Interaction { at } => interacted(&mut next, *at, &mut effects),
        Signal::Response(r) => respond(&mut next, r, cfg, zone, now, &mut effects),
    }
    if let Some(mv) = review(&next, tier, cfg, now) {
        effects.push(Effect::MoveTier {
            from: mv.from.clone(),
            to: mv.to.clone(),
            reason: mv.reason.clone(),
        });
        next.record_move(mv);
    }
    (next, effects)
}

fn ignored(next: &mut RelationshipState, cfg: &LearningConfig, effects: &mut Vec<Effect>) {
    let n = next.ignored();
    let reason = format!("{n} ignored in a row");
    if n >= cfg.sunset_after {
        // Only the transition is news; further ignored birthdays change nothing.
        if next.set_sunset() {
            effects.push(Effect::Sunset { reason });
        }
    } else if n >= cfg.fatigue_after {
        effects.push(Effect::BackedOff {
            factor: backoff_factor(n, cfg),
            reason,
        });
    }
}

fn respond(
    next: &mut RelationshipState,
    r: &Response,
    cfg: &LearningConfig,
    zone: Tz,
    now: DateTime<Utc>,
    effects: &mut Vec<Effect>,
) {
    next.add_engagement(cfg.weights.of(r.kind), r.at, cfg.half_life);
    let on = r.channel.label();
    match r.kind {
        ResponseKind::Reply | ResponseKind::Click | ResponseKind::Positive => {
            if let Some(touch) = &r.touch {
                next.credit(touch.channel, touch.sent_at);
            }
            next.observe_hour(r.at.with_timezone(&zone).hour());
            let keep_since = minus(now, cfg.evidence_horizon());
            next.add_evidence(
                Evidence {
                    at: r.at,
                    kind: r.kind,
                },
                keep_since,
            );
            interacted(next, r.at, effects);
        }
        ResponseKind::Unsubscribe => effects.push(Effect::WithdrawConsent { channel: r.channel }),
        ResponseKind::Complaint => effects.push(Effect::Suppress {
            reason: format!("complaint on {on}"),
        }),
        ResponseKind::BounceHard => effects.push(Effect::Suppress {
            reason: format!("hard bounce on {on}"),
        }),
        // The score has dropped; a "no thanks" or a full mailbox is not an interaction
        // and does not lift a sunset.
        ResponseKind::Negative | ResponseKind::BounceSoft => {}
    }
}

fn interacted(next: &mut RelationshipState, at: DateTime<Utc>, effects: &mut Vec<Effect>) {
    next.interacted(at);
    if next.reset_fatigue() {
        effects.push(Effect::Revived);
    }
}
