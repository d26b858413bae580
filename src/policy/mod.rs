//! Policy: pure decisions about when a message may go out. Time and randomness are
//! passed in.
//!
//! [`evaluate`] is the whole relationship policy for one touch at one instant, used the
//! same way by the dispatcher (with the history the store holds) and the simulator
//! (with its own): the tier must allow the channel, a check-in must still be due, the
//! send window must be open, and the caps, the minimum gap and higher-priority touches
//! must leave it a place.

mod admit;
mod reach;
pub mod retry;
pub mod throttle;

#[cfg(test)]
mod tests;

use crate::domain::Channel;
use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

pub use admit::{Admission, Settled, admit, admit_through, moved};
pub use reach::{
    Reach, blocked, fallback_channel, hops, move_reason, next_channel, planned_channel, reach,
    reach_after, unreachable,
};
pub use throttle::{Candidate, Limit, Limits, Scope, Slot, Throttled, Upcoming};

use crate::{
    config::{Occasion, OnThrottle, Rules, Trigger, format_duration},
    domain::{Contact, SendWindow, Touch, TouchId},
};

/// What the store knows about a contact that the policy needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Places taken against the caps (sends, and sends in progress).
    pub slots: Vec<Slot>,
    /// Touches still to go (planned), any priority; the caller adds the yearly ones
    /// not planned yet (see `planner::upcoming`).
    pub upcoming: Vec<Upcoming>,
    /// The last touch sent, event or response.
    pub last_interaction: Option<DateTime<Utc>>,
}

/// Why a touch is held, skipped or expired.
#[derive(Debug, Clone, PartialEq)]
pub enum Why {
    /// Outside the send window: held until it opens.
    Window,
    /// The throttle (caps, gap, priority).
    Throttled(Throttled),
    /// The tier does not allow the channel.
    ChannelNotAllowed { tier: String, channel: Channel },
    /// A check-in whose contact interacted since it was planned, or whose tier has no
    /// check-in cadence any more.
    NotDue(String),
    /// Its window closed, or the caps hold it past its expiry.
    TooLate(String),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Window => f.write_str("outside the send window"),
            Self::Throttled(t) => t.fmt(f),
            Self::ChannelNotAllowed { tier, channel } => {
                write!(f, "tier {tier} does not allow channel {channel}")
            }
            Self::NotDue(s) | Self::TooLate(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Take the place and send now.
    Send,
    /// Not now: due again at `until`.
    Hold { until: DateTime<Utc>, why: Why },
    /// Never, for this occurrence.
    Skip { why: Why },
    /// Never: it could not go out before its expiry.
    Expire { why: Why },
}

impl Verdict {
    /// The line recorded on the touch.
    pub fn reason(&self) -> Option<String> {
        let at = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%SZ").to_string();
        match self {
            Self::Send => None,
            Self::Hold { until, why } => Some(format!("held until {}: {why}", at(until))),
            Self::Skip { why } => Some(format!("skipped: {why}")),
            Self::Expire { why } => Some(format!("expired: {why}")),
        }
    }
}

/// How far back a contact's history is read for a decision: the limits' horizon, and
/// at least two days, so a yearly touch already sent today (or yesterday, in a zone
/// behind) is found in the ledger instead of being projected as still to go.
pub fn lookback(horizon: std::time::Duration) -> chrono::Duration {
    let two_days = std::time::Duration::from_secs(2 * 86_400);
    chrono::Duration::from_std(horizon.max(two_days)).unwrap_or(chrono::Duration::MAX)
}

/// The policy for `touch` to `contact` at `now`.
pub fn evaluate(
    rules: &Rules,
    contact: &Contact,
    touch: &Touch,
    history: &History,
    now: DateTime<Utc>,
) -> Verdict {
    let occasion = rules.occasion(&touch.occasion);
    if let Some(refused) = channel_refused(rules, contact, touch) {
        return refused;
    }
    if let Some(not_due) = occasion.and_then(|o| check_in_not_due(rules, o, contact, history, now))
    {
        return not_due;
    }
    let window = occasion.map_or(rules.defaults.send_window, |o| {
        rules.send_window(o, &contact.tier)
    });
    let zone = contact.zone(rules.defaults.timezone);
    match window.fit(now, zone, touch.expires_at) {
        None => {
            return Verdict::Expire {
                why: Why::TooLate(format!(
                    "its send window closed before it could be sent ({window}, {})",
                    zone.name()
                )),
            };
        }
        Some(at) if at > now + chrono::Duration::seconds(1) => {
            return Verdict::Hold {
                until: at,
                why: Why::Window,
            };
        }
        Some(_) => {}
    }
    let limits = Limits::for_tier(rules, &contact.tier);
    if limits.is_unlimited() {
        return Verdict::Send;
    }
    let candidate = Candidate {
        touch: &touch.id,
        channel: touch.channel,
        priority: touch.priority,
        at: now,
    };
    match throttle::check(&limits, &history.slots, &history.upcoming, &candidate) {
        Ok(()) => Verdict::Send,
        Err((throttled, until)) => {
            let skip = occasion.is_some_and(|o| o.on_throttle == OnThrottle::Skip);
            throttled_verdict(Why::Throttled(throttled), until, skip, window, zone, touch)
        }
    }
}

/// A skip when the contact's tier does not allow the touch's channel.
fn channel_refused(rules: &Rules, contact: &Contact, touch: &Touch) -> Option<Verdict> {
    let t = rules.tier(&contact.tier)?;
    (!t.allows_channel(touch.channel)).then(|| Verdict::Skip {
        why: Why::ChannelNotAllowed {
            tier: t.name.clone(),
            channel: touch.channel,
        },
    })
}

/// A skip when `occasion` is a check-in that is no longer due: the contact's tier has
/// no check-in cadence, or the contact interacted within it.
fn check_in_not_due(
    rules: &Rules,
    occasion: &Occasion,
    contact: &Contact,
    history: &History,
    now: DateTime<Utc>,
) -> Option<Verdict> {
    if !matches!(occasion.trigger, Trigger::Inactivity { .. }) {
        return None;
    }
    let Some(every) = rules.check_in_every(occasion, &contact.tier) else {
        return Some(Verdict::Skip {
            why: Why::NotDue(format!("tier {} has no check_in_every", contact.tier)),
        });
    };
    let every = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
    let last = history.last_interaction?;
    (last + every > now).then(|| Verdict::Skip {
        why: Why::NotDue(format!(
            "no longer due: last interaction {} is less than {} ago",
            last.format("%Y-%m-%d %H:%MZ"),
            format_duration(every.to_std().unwrap_or_default())
        )),
    })
}

/// What the throttle's refusal comes to (`why`, no place before `until`): a skip if
/// the occasion says so (`skip`), else a hold until the first place the send window
/// has from `until`, or an expiry when that is past the touch's.
fn throttled_verdict(
    why: Why,
    until: DateTime<Utc>,
    skip: bool,
    window: SendWindow,
    zone: Tz,
    touch: &Touch,
) -> Verdict {
    if skip {
        return Verdict::Skip { why };
    }
    // The earliest place is a lower bound: never rounded down to its second.
    match window.fit_not_before(until, zone, touch.expires_at) {
        Some(at) => Verdict::Hold { until: at, why },
        None => Verdict::Expire {
            why: Why::TooLate(format!(
                "{why}; the earliest place ({}) is after its expiry",
                until.format("%Y-%m-%d %H:%MZ")
            )),
        },
    }
}

/// The order a batch of touches is decided in: contact by contact, and within a
/// contact the higher priority first (it takes its place first).
pub fn decision_order(a: &Touch, b: &Touch) -> std::cmp::Ordering {
    (&a.contact_id, std::cmp::Reverse(a.priority), &a.id).cmp(&(
        &b.contact_id,
        std::cmp::Reverse(b.priority),
        &b.id,
    ))
}

impl History {
    /// Decides `touch` at `now` ([`evaluate`]) and updates the history as the decision
    /// will play out, for the contact's next touch decided after it: the touch is no
    /// longer among those still to go, a send takes its place at `now`, and a hold
    /// keeps it still to go at its new time.
    pub fn decide(
        &mut self,
        rules: &Rules,
        contact: &Contact,
        touch: &Touch,
        now: DateTime<Utc>,
    ) -> Verdict {
        let verdict = evaluate(rules, contact, touch, self, now);
        self.upcoming.retain(|u| u.touch != touch.id);
        match &verdict {
            Verdict::Send => self.slots.push(Slot {
                touch: touch.id.clone(),
                at: now,
                channel: touch.channel,
            }),
            Verdict::Hold { until, .. } => self.upcoming.push(Upcoming {
                touch: touch.id.clone(),
                occasion: touch.occasion.clone(),
                priority: touch.priority,
                at: *until,
                channel: touch.channel,
            }),
            Verdict::Skip { .. } | Verdict::Expire { .. } => {}
        }
        verdict
    }

    /// From the places taken, the contact's recent touches (any status) and the yearly
    /// touches the planner would create (`planner::upcoming`): planned touches and
    /// projected ones not in the ledger yet are what is still to go.
    pub fn new(
        slots: Vec<Slot>,
        touches: &[Touch],
        projected: Vec<Upcoming>,
        last_interaction: Option<DateTime<Utc>>,
    ) -> Self {
        let known: std::collections::HashSet<&TouchId> = touches.iter().map(|t| &t.id).collect();
        let mut upcoming: Vec<Upcoming> = touches
            .iter()
            // A touch another worker has claimed but not yet given a place is still to go.
            .filter(|t| match t.status {
                crate::domain::TouchStatus::Planned => true,
                crate::domain::TouchStatus::Sending => t.slot_at.is_none(),
                _ => false,
            })
            .map(|t| Upcoming {
                touch: t.id.clone(),
                occasion: t.occasion.clone(),
                priority: t.priority,
                at: t.next_attempt_at,
                channel: t.channel,
            })
            .collect();
        upcoming.extend(projected.into_iter().filter(|p| !known.contains(&p.touch)));
        Self {
            slots,
            upcoming,
            last_interaction,
        }
    }
}
