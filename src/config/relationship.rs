//! Tiers and occasions once validated: who gets how much, and what makes a touch due.

use std::{fmt, time::Duration};

use chrono_tz::Tz;

use super::format_duration;
use crate::domain::Channel;
use crate::domain::SendWindow;

/// At most `count` touches in any window of length `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub count: u32,
    pub per: Duration,
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} per {}", self.count, format_duration(self.per))
    }
}

#[derive(Debug, Clone)]
pub struct Tier {
    pub name: String,
    pub description: Option<String>,
    pub send_window: Option<SendWindow>,
    /// Caps on all touches to one contact of this tier, whatever the channel.
    pub caps: Vec<Cap>,
    /// The least time between any two touches to one contact.
    pub min_gap: Duration,
    /// Channels its contacts may be reached on (`None`: any).
    pub channels: Option<Vec<Channel>>,
    /// Caps per channel, on top of `caps`.
    pub channel_caps: Vec<(Channel, Vec<Cap>)>,
    /// A check-in is due when the last interaction is this long ago (`None`: never).
    pub check_in_every: Option<Duration>,
}

impl Tier {
    pub fn allows_channel(&self, channel: Channel) -> bool {
        self.channels.as_ref().is_none_or(|c| c.contains(&channel))
    }
}

/// Which contact date a yearly occasion follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateField {
    Birthday,
    CustomerSince,
}

impl DateField {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Birthday => "birthday",
            Self::CustomerSince => "customer_since",
        }
    }
}

/// What makes an occasion due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Yearly, on the contact's local date (`trigger = { date = "birthday" }`).
    Date(DateField),
    /// `delay` after each event of `kind` (`trigger = { event = "purchase", delay = "2h" }`),
    /// once per event id.
    Event { kind: String, delay: Duration },
    /// When the last interaction is longer ago than the cadence: the tier's
    /// `check_in_every`, or `every` when the occasion sets its own
    /// (`trigger = { inactivity = "tier" }` or `{ inactivity = "45d" }`).
    Inactivity { every: Option<Duration> },
}

/// What a touch does when the caps, the minimum gap or a higher-priority touch stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnThrottle {
    /// Wait for the earliest instant the caps allow (if before its expiry).
    Defer,
    /// Give up on this occurrence, recording why.
    Skip,
}

#[derive(Debug, Clone)]
pub struct Occasion {
    pub name: String,
    pub enabled: bool,
    pub trigger: Trigger,
    /// When its planner runs; `None` for event-triggered occasions (planned when the
    /// event arrives).
    pub schedule: Option<cron::Schedule>,
    pub priority: u32,
    /// How long the touch stays sendable: after the start of the contact's local day
    /// (dates, check-ins), or after the touch is due (events).
    pub expires: Duration,
    pub send_window: Option<SendWindow>,
    /// The channels to try, in order: a touch goes out on the first one its tier allows,
    /// its contact has an address and consent for; a permanent failure moves it on.
    pub channels: Vec<Channel>,
    /// Transactional mail carries no `List-Unsubscribe`; everything else does.
    pub transactional: bool,
    pub on_throttle: OnThrottle,
}

impl Occasion {
    /// The date field of a yearly occasion.
    pub fn date_field(&self) -> Option<DateField> {
        match self.trigger {
            Trigger::Date(f) => Some(f),
            _ => None,
        }
    }
}

/// The relationship rules, the slice of the config the policy and the planner decide
/// by: the defaults, the tiers, the occasions, the caps on every contact, and which
/// channels exist at all.
#[derive(Debug, Clone)]
pub struct Rules {
    pub defaults: Defaults,
    /// Closest relationship first.
    pub tiers: Vec<Tier>,
    pub occasions: Vec<Occasion>,
    /// Caps on every contact whatever its tier (`[policy] caps`).
    pub contact_caps: Vec<Cap>,
    /// The channels configured (email always is; SMS and webhooks when their section is
    /// set).
    pub channels: Vec<Channel>,
}

/// `[defaults]`.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub timezone: Tz,
    pub send_window: SendWindow,
    pub tier: String,
}

impl Rules {
    pub fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.name == name)
    }

    pub fn occasion(&self, name: &str) -> Option<&Occasion> {
        self.occasions.iter().find(|o| o.name == name)
    }

    /// The check-in cadence of `occasion` for a contact of `tier` (`None`: the occasion
    /// is not an inactivity one, or the tier has no cadence).
    pub fn check_in_every(&self, occasion: &Occasion, tier: &str) -> Option<Duration> {
        match occasion.trigger {
            Trigger::Inactivity { every: Some(e) } => Some(e),
            Trigger::Inactivity { every: None } => self.tier(tier).and_then(|t| t.check_in_every),
            _ => None,
        }
    }

    /// Whether `channel` is configured at all (email always is).
    pub fn has_channel(&self, channel: Channel) -> bool {
        self.channels.contains(&channel)
    }

    /// The send window for a touch: the occasion's own, else the tier's, else the default.
    pub fn send_window(&self, occasion: &Occasion, tier: &str) -> SendWindow {
        occasion
            .send_window
            .or_else(|| self.tier(tier).and_then(|t| t.send_window))
            .unwrap_or(self.defaults.send_window)
    }
}
