//! The simulated contacts' side of the conversation: what each one truly prefers (a
//! channel, a local hour, how often they answer, how easily they opt out), and how they
//! react to one touch. Everything is drawn from a seed and the contact's id, so the
//! same seed gives the same population, and a run with learning on meets exactly the
//! people a run with learning off met.
//!
//! Per contact, unless its attributes say otherwise (`sim_channel`, `sim_hour`,
//! `sim_rate`, `sim_opt_out`):
//! - the preferred channel: one of the configured channels some occasion uses and the
//!   contact has an address for, uniformly;
//! - the local hour they answer at: uniformly 08..=20;
//! - the answer rate (on the preferred channel, at that hour): `closest_rate` for the
//!   config's first tier, `tier_decay` times less per tier after it, times a personal
//!   factor in 0.6..1.4; a share `never` answers nothing at all;
//! - the opt-out rate per touch: `opt_out`.
//!
//! A touch is answered with probability rate x (1, or `off_channel` off the preferred
//! channel) x (1 - `per_hour` per hour between the send's local hour and theirs, at
//! least `hour_floor`); the answer (a reply or a click) comes at their hour, give or
//! take one, within three days. Before that, they opt out with probability opt-out rate
//! x (2 off the preferred channel) x (1 + half the touches they left unanswered in a
//! row, so every ignored touch annoys a little more), at most 0.5: an unsubscribe, or
//! on email a complaint one time in ten. A webhook has no consent to withdraw, so it
//! gets no opt-outs.

use crate::domain::Channel;
use std::fmt;

use chrono::{DateTime, Duration, Timelike, Utc};
use chrono_tz::Tz;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::Value;

use crate::{
    config::Config,
    domain::{Contact, time::local_instant},
    learning::ResponseKind,
};

/// The population's knobs; [`Default`] is what `rapport simulate` uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseModel {
    pub seed: u64,
    /// The answer rate of the config's first (closest) tier.
    pub closest_rate: f64,
    /// Each tier after the first answers this many times as often as the one before.
    pub tier_decay: f64,
    /// The share of contacts who never answer.
    pub never: f64,
    /// The answer rate off the preferred channel, as a share of the rate on it.
    pub off_channel: f64,
    /// What the answer rate loses per hour between the send and the preferred hour...
    pub per_hour: f64,
    /// ...down to this share of it.
    pub hour_floor: f64,
    /// The opt-out rate per touch.
    pub opt_out: f64,
    /// The share of opt-outs on email that are complaints.
    pub complaint_share: f64,
}

/// The default seed of `rapport simulate`.
pub const DEFAULT_SEED: u64 = 1;

impl Default for ResponseModel {
    fn default() -> Self {
        Self {
            seed: DEFAULT_SEED,
            closest_rate: 0.6,
            tier_decay: 0.7,
            never: 0.15,
            off_channel: 0.35,
            per_hour: 0.1,
            hour_floor: 0.4,
            opt_out: 0.005,
            complaint_share: 0.1,
        }
    }
}

impl ResponseModel {
    /// Nobody answers and nobody opts out (unless their attributes say so): the policy
    /// alone, as the simulator was before responses.
    pub fn silent() -> Self {
        Self {
            closest_rate: 0.0,
            never: 1.0,
            opt_out: 0.0,
            ..Self::default()
        }
    }

    pub fn with_seed(self, seed: u64) -> Self {
        Self { seed, ..self }
    }
}

/// A contact attribute that does not say what it should.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadAttribute {
    pub contact: String,
    pub attribute: &'static str,
    pub message: String,
}

impl fmt::Display for BadAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, a, m) = (&self.contact, self.attribute, &self.message);
        write!(f, "contact {c}: {a}: {m}")
    }
}

/// What one contact truly prefers.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Truth {
    /// `None`: no channel reaches them.
    pub(super) channel: Option<Channel>,
    pub(super) hour: u32,
    pub(super) rate: f64,
    pub(super) opt_out: f64,
}

/// A contact's reaction to one touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Answer {
    pub(super) kind: ResponseKind,
    pub(super) at: DateTime<Utc>,
}

/// A random stream of its own per contact and purpose: what one contact does never
/// shifts what another does.
pub(super) fn stream(seed: u64, contact: &str, purpose: u64) -> StdRng {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let id = contact.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    StdRng::seed_from_u64(mix(mix(seed ^ purpose.rotate_left(32)) ^ id))
}

/// SplitMix64's finaliser: nearby inputs give unrelated outputs.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Truth {
    /// Draws `contact`'s preferences (`tier`: its position among the tiers, closest
    /// first), then applies its `sim_*` attributes.
    pub(super) fn draw(
        model: &ResponseModel,
        cfg: &Config,
        contact: &Contact,
        tier: usize,
    ) -> Result<Self, Vec<BadAttribute>> {
        let mut rng = stream(model.seed, contact.id.as_str(), 0);
        let reachable: Vec<Channel> = Channel::ALL
            .into_iter()
            .filter(|c| reaches(cfg, contact, *c))
            .collect();
        let channel = match reachable.len() {
            0 => None,
            n => Some(reachable[rng.random_range(0..n)]),
        };
        let hour = rng.random_range(8..=20);
        let personal: f64 = rng.random_range(0.6..1.4);
        let never = rng.random_bool(model.never.clamp(0.0, 1.0));
        let base = model.closest_rate * model.tier_decay.powi(tier.min(64) as i32);
        let rate = if never {
            0.0
        } else {
            (base * personal).clamp(0.0, 1.0)
        };
        let mut truth = Self {
            channel,
            hour,
            rate,
            opt_out: model.opt_out.clamp(0.0, 1.0),
        };
        truth.override_with(contact)?;
        Ok(truth)
    }

    fn override_with(&mut self, contact: &Contact) -> Result<(), Vec<BadAttribute>> {
        let mut bad = Vec::new();
        let attrs = &contact.attributes;
        let mut fail = |attribute, message: String| {
            bad.push(BadAttribute {
                contact: contact.id.to_string(),
                attribute,
                message,
            });
        };
        if let Some(v) = attrs.get("sim_channel").and_then(text) {
            match v.to_ascii_lowercase().parse::<Channel>() {
                Ok(c) => self.channel = Some(c),
                Err(_) => fail(
                    "sim_channel",
                    format!("{v:?} is not a channel ({})", Channel::known()),
                ),
            }
        }
        if let Some(v) = attrs.get("sim_hour").and_then(text) {
            match v.parse::<u32>() {
                Ok(h) if h < 24 => self.hour = h,
                _ => fail("sim_hour", format!("{v:?} is not an hour (0 to 23)")),
            }
        }
        for (attribute, slot) in [
            ("sim_rate", &mut self.rate),
            ("sim_opt_out", &mut self.opt_out),
        ] {
            if let Some(v) = attrs.get(attribute).and_then(text) {
                match v.parse::<f64>() {
                    Ok(p) if (0.0..=1.0).contains(&p) => *slot = p,
                    _ => fail(attribute, format!("{v:?} is not a probability (0 to 1)")),
                }
            }
        }
        if bad.is_empty() { Ok(()) } else { Err(bad) }
    }

    /// How the contact reacts to a touch sent on `channel` at `sent_at`, after leaving
    /// `unanswered` touches in a row unanswered; `None`: silence.
    pub(super) fn react(
        &self,
        model: &ResponseModel,
        channel: Channel,
        sent_at: DateTime<Utc>,
        zone: Tz,
        unanswered: u32,
        rng: &mut StdRng,
    ) -> Option<Answer> {
        let on = self.channel == Some(channel);
        let (opt_roll, answer_roll): (f64, f64) = (rng.random(), rng.random());
        let annoyance = 1.0 + f64::from(unanswered.min(1000)) / 2.0;
        let opt_out = self.opt_out * if on { 1.0 } else { 2.0 } * annoyance;
        if opt_roll < opt_out.min(0.5) && matches!(channel, Channel::Email | Channel::Sms) {
            let complaint = channel == Channel::Email && rng.random_bool(model.complaint_share);
            let kind = if complaint {
                ResponseKind::Complaint
            } else {
                ResponseKind::Unsubscribe
            };
            let after = Duration::minutes(rng.random_range(10..360));
            return Some(Answer {
                kind,
                at: sent_at + after,
            });
        }
        let local = sent_at.with_timezone(&zone).hour();
        let distance = local
            .abs_diff(self.hour)
            .min(24 - local.abs_diff(self.hour));
        let timing = (1.0 - model.per_hour * f64::from(distance)).max(model.hour_floor);
        let channel_factor = if on { 1.0 } else { model.off_channel };
        if answer_roll >= self.rate * channel_factor * timing {
            return None;
        }
        let kind = if rng.random_bool(0.5) {
            ResponseKind::Reply
        } else {
            ResponseKind::Click
        };
        Some(Answer {
            kind,
            at: self.answer_time(sent_at, zone, rng),
        })
    }

    /// At their hour (70%), or the hour before or after it, on the first day that is
    /// after the send, then 0 (60%), 1 (25%) or 2 days later.
    fn answer_time(&self, sent_at: DateTime<Utc>, zone: Tz, rng: &mut StdRng) -> DateTime<Utc> {
        let hour = match rng.random_range(0..20) {
            0..=13 => self.hour,
            14..=16 => (self.hour + 23) % 24,
            _ => (self.hour + 1) % 24,
        };
        let minute = hour * 60 + rng.random_range(0..60);
        let later = match rng.random_range(0..20) {
            0..=11 => 0,
            12..=16 => 1,
            _ => 2,
        };
        let earliest = sent_at + Duration::minutes(5);
        let mut day = sent_at.with_timezone(&zone).date_naive();
        let mut at = local_instant(day, minute, zone);
        while at < earliest {
            day = day.succ_opt().unwrap_or(day);
            let next = local_instant(day, minute, zone);
            if next <= at {
                return earliest + Duration::days(later);
            }
            at = next;
        }
        at + Duration::days(later)
    }
}

/// Whether `contact` has an address on `channel`, the channel is configured and some
/// enabled occasion may use it.
fn reaches(cfg: &Config, contact: &Contact, channel: Channel) -> bool {
    let address = match channel {
        Channel::Email => contact.email.is_some(),
        Channel::Sms => contact.phone.is_some(),
        Channel::Webhook => true,
    };
    address
        && cfg.rules.has_channel(channel)
        && cfg
            .rules
            .occasions
            .iter()
            .any(|o| o.enabled && o.channels.contains(&channel))
}

/// An attribute's value as text (CSV gives strings, JSONL may give numbers); anything
/// else is shown as JSON, which then fails to parse with a message naming it.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        other => Some(other.to_string()),
    }
}
