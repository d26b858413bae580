//! Caps, the minimum gap and priority: whether one more touch fits a contact's history.
//!
//! A *slot* is a send (or a send in progress) that counts against the contact's caps. A
//! cap `{count, per}` holds when no window of length `per` (half-open: a touch at 10:00
//! frees its place at 10:00 `per` later) contains more than `count` slots; the minimum
//! gap holds when no two slots are closer than `min_gap`. Slots may lie in the future
//! too (the touches a candidate must not crowd out), so every check looks both ways.

use crate::domain::Channel;
use std::{fmt, time::Duration};

use chrono::{DateTime, Utc};

use crate::{
    config::{Cap, Rules, format_duration},
    domain::TouchId,
};

/// Which touches a cap counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The contact's tier's caps: every channel.
    Tier(String),
    /// `[policy] caps`: every contact, every tier, every channel.
    Contact,
    /// A tier's per-channel caps: only touches on that channel.
    Channel(Channel),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tier(t) => write!(f, "tier {t} cap"),
            Self::Contact => f.write_str("per-contact cap"),
            Self::Channel(c) => write!(f, "{c} cap"),
        }
    }
}

/// Everything that limits how often one contact hears from us.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Limits {
    pub caps: Vec<(Scope, Cap)>,
    pub min_gap: Duration,
}

impl Limits {
    /// The limits for a contact of `tier`: its caps and gap, its channel caps, and the
    /// per-contact caps. A tier the config no longer has keeps only the latter.
    pub fn for_tier(rules: &Rules, tier: &str) -> Self {
        let mut caps: Vec<(Scope, Cap)> = rules
            .contact_caps
            .iter()
            .map(|c| (Scope::Contact, *c))
            .collect();
        let mut min_gap = Duration::ZERO;
        if let Some(t) = rules.tier(tier) {
            caps.extend(t.caps.iter().map(|c| (Scope::Tier(t.name.clone()), *c)));
            for (channel, list) in &t.channel_caps {
                caps.extend(list.iter().map(|c| (Scope::Channel(*channel), *c)));
            }
            min_gap = t.min_gap;
        }
        Self { caps, min_gap }
    }

    /// The longest horizon of any tier's limits (or of the per-contact caps alone, for a
    /// tier the config no longer has): how far back and ahead a contact's history can
    /// matter to a decision, whatever the contact's tier.
    pub fn widest_horizon(rules: &Rules) -> Duration {
        rules
            .tiers
            .iter()
            .map(|t| Self::for_tier(rules, &t.name).horizon())
            .chain([Self::for_tier(rules, "").horizon()])
            .max()
            .unwrap_or_default()
    }

    /// How far back (and ahead) a slot can matter.
    pub fn horizon(&self) -> Duration {
        self.caps
            .iter()
            .map(|(_, c)| c.per)
            .chain([self.min_gap])
            .max()
            .unwrap_or_default()
    }

    pub fn is_unlimited(&self) -> bool {
        self.caps.is_empty() && self.min_gap.is_zero()
    }
}

/// A touch holding (or about to hold) a place against the caps.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub touch: TouchId,
    pub at: DateTime<Utc>,
    pub channel: Channel,
}

/// A touch still to go, that a lower-priority one must not crowd out.
#[derive(Debug, Clone, PartialEq)]
pub struct Upcoming {
    pub touch: TouchId,
    pub occasion: String,
    pub priority: u32,
    /// When it is due.
    pub at: DateTime<Utc>,
    pub channel: Channel,
}

/// Which rule stopped a touch.
#[derive(Debug, Clone, PartialEq)]
pub enum Limit {
    Cap(Scope, Cap),
    MinGap(Duration),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cap(scope, cap) => write!(f, "{scope} {cap}"),
            Self::MinGap(g) => write!(f, "min_gap {}", format_duration(*g)),
        }
    }
}

/// Why the throttle said no.
#[derive(Debug, Clone, PartialEq)]
pub enum Throttled {
    /// A cap or the gap is full at the candidate's instant.
    Limited(Limit),
    /// Sending now would cost `to` (higher priority, due at `at`) its place.
    Yields {
        to: TouchId,
        occasion: String,
        priority: u32,
        at: DateTime<Utc>,
        limit: Limit,
    },
}

impl fmt::Display for Throttled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Limited(l) => write!(f, "{l} reached"),
            Self::Yields {
                occasion,
                priority,
                at,
                limit,
                ..
            } => write!(
                f,
                "yields to {occasion} (priority {priority}) due {} ({limit})",
                at.format("%Y-%m-%d %H:%MZ")
            ),
        }
    }
}

/// The first rule a slot at `at` on `channel` would break among `slots`, if any.
pub fn violation(
    limits: &Limits,
    slots: &[Slot],
    channel: Channel,
    at: DateTime<Utc>,
) -> Option<Limit> {
    let t = at.timestamp();
    if !limits.min_gap.is_zero() {
        let gap = limits.min_gap.as_secs() as i64;
        if slots.iter().any(|s| (s.at.timestamp() - t).abs() < gap) {
            return Some(Limit::MinGap(limits.min_gap));
        }
    }
    for (scope, cap) in &limits.caps {
        let counted = |s: &&Slot| match scope {
            Scope::Channel(c) => s.channel == *c,
            _ => true,
        };
        if matches!(scope, Scope::Channel(c) if *c != channel) {
            continue;
        }
        let per = cap.per.as_secs() as i64;
        let mut times: Vec<i64> = slots
            .iter()
            .filter(counted)
            .map(|s| s.at.timestamp())
            .filter(|x| (x - t).abs() < per)
            .collect();
        if (times.len() as u64) < u64::from(cap.count) {
            continue;
        }
        times.sort_unstable();
        // The fullest window containing `t` starts at `t` or at a slot before it.
        let starts = times
            .iter()
            .copied()
            .filter(|x| *x <= t && *x > t - per)
            .chain([t]);
        for a in starts {
            let inside = times.iter().filter(|x| **x >= a && **x < a + per).count();
            if inside as u64 + 1 > u64::from(cap.count) {
                return Some(Limit::Cap(scope.clone(), *cap));
            }
        }
    }
    None
}

/// The earliest instant at or after `from` where a slot on `channel` breaks no rule.
pub fn earliest(
    limits: &Limits,
    slots: &[Slot],
    channel: Channel,
    from: DateTime<Utc>,
) -> DateTime<Utc> {
    if violation(limits, slots, channel, from).is_none() {
        return from;
    }
    // Where a rule can start to hold again: a gap or a window ending after a slot.
    let mut candidates: Vec<DateTime<Utc>> = Vec::new();
    let lengths = limits
        .caps
        .iter()
        .map(|(_, c)| c.per)
        .chain([limits.min_gap]);
    for len in lengths {
        let len = chrono::Duration::from_std(len).unwrap_or(chrono::Duration::zero());
        candidates.extend(slots.iter().map(|s| s.at + len).filter(|c| *c > from));
    }
    candidates.sort();
    candidates.dedup();
    candidates
        .into_iter()
        .find(|c| violation(limits, slots, channel, *c).is_none())
        // Past the last slot by the longest window nothing applies; unreachable in
        // practice, as that instant is among the candidates.
        .unwrap_or(from)
}

/// A touch asking for a place now.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub touch: &'a TouchId,
    pub channel: Channel,
    pub priority: u32,
    pub at: DateTime<Utc>,
}

/// `Ok(())` when `c` may take its place now; otherwise why not, and the earliest
/// instant it could instead (which never costs a higher-priority touch its place).
///
/// `slots` are the contact's places already taken (a candidate's own, left by an
/// earlier attempt, is ignored); `upcoming` the touches still to go, of any priority.
// The `Err` is a decision read once by `evaluate`, not an error passed up with `?`:
// boxing it would buy nothing.
#[allow(clippy::result_large_err)]
pub fn check(
    limits: &Limits,
    slots: &[Slot],
    upcoming: &[Upcoming],
    c: &Candidate<'_>,
) -> Result<(), (Throttled, DateTime<Utc>)> {
    let slots: Vec<Slot> = slots
        .iter()
        .filter(|s| s.touch != *c.touch)
        .cloned()
        .collect();
    if let Some(limit) = violation(limits, &slots, c.channel, c.at) {
        let until = earliest(limits, &slots, c.channel, c.at);
        return Err((Throttled::Limited(limit), until));
    }
    let horizon = chrono::Duration::from_std(limits.horizon()).unwrap_or(chrono::Duration::MAX);
    // Higher-priority touches still to go, each where it would take its place (an
    // overdue one goes at once, however long overdue), in the order they take them.
    let mut ahead: Vec<(&Upcoming, DateTime<Utc>)> = upcoming
        .iter()
        .filter(|u| u.touch != *c.touch && u.priority > c.priority)
        .map(|u| (u, u.at.max(c.at)))
        .filter(|(_, at)| *at < c.at + horizon)
        .collect();
    // Soonest first; at the same instant, the higher priority (then the lower id) first.
    ahead.sort_by(|(a, x), (b, y)| {
        (x, std::cmp::Reverse(a.priority), &a.touch).cmp(&(
            y,
            std::cmp::Reverse(b.priority),
            &b.touch,
        ))
    });
    // Why together, not one by one: two of them may each leave room for us, but not
    // both. Those that get their places without us are the places to keep free.
    let place = |u: &Upcoming, at| Slot {
        touch: u.touch.clone(),
        at,
        channel: u.channel,
    };
    let mut reserved = slots.clone();
    let mut kept = Vec::new();
    for (u, at) in ahead {
        if violation(limits, &reserved, u.channel, at).is_none() {
            reserved.push(place(u, at));
            kept.push((u, at));
        }
    }
    if violation(limits, &reserved, c.channel, c.at).is_none() {
        return Ok(());
    }
    // We would cost one of them its place: name the first to lose it if we go first.
    let mut with_us = slots;
    with_us.push(Slot {
        touch: c.touch.clone(),
        at: c.at,
        channel: c.channel.to_owned(),
    });
    for (u, at) in kept {
        if let Some(limit) = violation(limits, &with_us, u.channel, at) {
            // Wait until a place exists that leaves all of them theirs.
            let until = earliest(limits, &reserved, c.channel, c.at);
            return Err((
                Throttled::Yields {
                    to: u.touch.clone(),
                    occasion: u.occasion.clone(),
                    priority: u.priority,
                    at: u.at,
                    limit,
                },
                until,
            ));
        }
        with_us.push(place(u, at));
    }
    // Unreachable: a window or gap we would crowd holds one of them, which the replay
    // reaches with us already placed.
    Ok(())
}
