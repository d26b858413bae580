//! Whether a touch's channel can still reach its contact, decided right before the
//! policy is asked: by the dispatcher, by `rapport plan` and by the simulator, so the
//! three cannot disagree. Consent (an unsubscribe, a STOP, a hard bounce or a complaint
//! withdraws it), an address, the channel configured and the tier allowing it; a touch
//! whose channel cannot reach the contact moves on to the occasion's next channel that
//! can, or is suppressed.

use crate::{
    config::{Occasion, Rules},
    domain::{Channel, Contact, Touch},
};

/// What the contact's consent, addresses and tier make of a touch's channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Its channel can carry it (or only the tier stands in the way: the policy then
    /// skips it, saying so).
    Go,
    /// Its channel cannot reach the contact, for `why`: it moves on to `to`.
    Move { to: Channel, why: String },
    /// No channel it has not tried can reach the contact, for `why`.
    Suppressed { why: String },
}

/// [`reach_after`] the channels the touch was moved away from.
pub fn reach(rules: &Rules, contact: &Contact, touch: &Touch) -> Reach {
    reach_after(rules, contact, touch, &touch.tried)
}

/// Whether `touch`'s channel can reach `contact` now, checked right before the policy
/// (consent is checked before each send, not only when the touch was planned); `tried`:
/// the channels it was moved away from, which it does not go back to.
pub fn reach_after(rules: &Rules, contact: &Contact, touch: &Touch, tried: &[Channel]) -> Reach {
    let channel = touch.channel;
    let Some(why) = blocked(rules, contact, channel) else {
        return Reach::Go;
    };
    let next = rules
        .occasion(&touch.occasion)
        .and_then(|o| fallback_channel(rules, o, contact, channel, tried));
    match next {
        Some(to) => Reach::Move { to, why },
        None if unreachable(rules, contact, channel).is_none() => Reach::Go,
        None => Reach::Suppressed { why },
    }
}

/// The ledger's reason for a move of `touch` to `to`: its earlier moves, then
/// `channel: why; trying to`.
pub fn move_reason(touch: &Touch, to: Channel, why: &str) -> String {
    hops(touch, format!("{}: {why}; trying {to}", touch.channel))
}

/// Why `contact` cannot be reached on `channel` at all, checked right before the
/// policy is asked (and so right before any send): the channel not configured, no
/// consent, or no address. The touch then moves to its occasion's next channel, or is
/// `suppressed` with this reason.
pub fn unreachable(rules: &Rules, contact: &Contact, channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Email if !contact.email_consent => Some("no email consent"),
        Channel::Email if contact.email.is_none() => Some("no email address"),
        Channel::Sms if !rules.has_channel(Channel::Sms) => Some("no SMS channel configured"),
        Channel::Sms if !contact.sms_consent => Some("no SMS consent"),
        Channel::Sms if contact.phone.is_none() => Some("no phone number"),
        Channel::Webhook if !rules.has_channel(Channel::Webhook) => {
            Some("no webhook endpoint configured")
        }
        Channel::Email | Channel::Sms | Channel::Webhook => None,
    }
}

/// Why `channel` cannot carry a touch to `contact` now: the contact's tier does not
/// allow it (the contact may have changed tier since the touch was planned), or
/// [`unreachable`].
pub fn blocked(rules: &Rules, contact: &Contact, channel: Channel) -> Option<String> {
    match rules.tier(&contact.tier) {
        Some(t) if !t.allows_channel(channel) => {
            Some(format!("tier {} does not allow {channel}", t.name))
        }
        _ => unreachable(rules, contact, channel).map(str::to_owned),
    }
}

/// The channel a touch of `occasion` for `contact` goes out on: the first of the
/// occasion's channels after `after` (from the start when `None`, or when `after` is no
/// longer in the list: the config changed) that is not [`blocked`]. `None`: no channel
/// left.
pub fn next_channel(
    rules: &Rules,
    occasion: &Occasion,
    contact: &Contact,
    after: Option<Channel>,
) -> Option<Channel> {
    let start = after
        .and_then(|a| occasion.channels.iter().position(|c| *c == a))
        .map_or(0, |i| i + 1);
    occasion.channels[start..]
        .iter()
        .copied()
        .filter(|c| Some(*c) != after)
        .find(|c| blocked(rules, contact, *c).is_none())
}

/// The channel a touch on `current` moves to when `current` cannot take it: the first
/// of the occasion's channels after it, then (a touch may have started further down the
/// list: its channel chosen by what was learned) those before it, skipping `tried`
/// (where it has been) and any [`blocked`]. `None`: no channel left.
pub fn fallback_channel(
    rules: &Rules,
    occasion: &Occasion,
    contact: &Contact,
    current: Channel,
    tried: &[Channel],
) -> Option<Channel> {
    let at = occasion.channels.iter().position(|c| *c == current);
    let (before, after) = match at {
        Some(i) => (&occasion.channels[..i], &occasion.channels[i + 1..]),
        None => (&[][..], &occasion.channels[..]),
    };
    after
        .iter()
        .chain(before)
        .copied()
        .filter(|c| *c != current && !tried.contains(c))
        .find(|c| blocked(rules, contact, *c).is_none())
}

/// The channel to plan a touch on: the first that can reach the contact now, else the
/// occasion's first (the dispatcher then records why nothing could).
pub fn planned_channel(rules: &Rules, occasion: &Occasion, contact: &Contact) -> Channel {
    next_channel(rules, occasion, contact, None).unwrap_or(occasion.channels[0])
}

/// The reason for a move to the next channel, after the earlier moves' reasons: the
/// ledger keeps why each channel was left, not only the last.
pub fn hops(touch: &Touch, this: String) -> String {
    match touch.reason.as_deref() {
        Some(before) if before.contains("; trying ") => format!("{before}; {this}"),
        _ => this,
    }
}
