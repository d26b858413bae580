//! What has been learned about one contact. Serialized as JSON by the store, so every
//! field has a default: a state written by an older version still reads.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{LearningConfig, ResponseKind};
use crate::domain::Channel;

/// Past this many observations the histogram halves, so a contact whose habits change
/// is followed within months rather than years.
const HOUR_MEMORY: u32 = 240;

/// Promotion needs a handful of responses; a flood (a bot clicking every link) must not
/// grow the stored state without bound.
const EVIDENCE_MEMORY: usize = 256;

/// Changes only through [`apply`](super::apply) and [`record_move`](Self::record_move),
/// which is what keeps its counters consistent with each other.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RelationshipState {
    engagement: f64,
    engagement_at: Option<DateTime<Utc>>,
    channels: BTreeMap<Channel, ChannelStats>,
    /// Engaged responses per hour of the contact's local day.
    hours: [u32; 24],
    ignored_in_row: u32,
    sunset: bool,
    tier_history: Vec<TierMove>,
    /// Engaged responses inside the longest promotion window.
    evidence: Vec<Evidence>,
    first_seen: Option<DateTime<Utc>>,
    last_touch: Option<DateTime<Utc>>,
    last_interaction: Option<DateTime<Utc>>,
}

/// Touches sent on one channel and how many of them were answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelStats {
    pub sent: u32,
    pub responded: u32,
    /// The send time of the last touch credited, so a reply and a click on the same
    /// touch count once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_credited: Option<DateTime<Utc>>,
}

/// One change of tier, kept forever: the timeline explains every move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierMove {
    pub from: String,
    pub to: String,
    pub at: DateTime<Utc>,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Evidence {
    pub(crate) at: DateTime<Utc>,
    pub(crate) kind: ResponseKind,
}

impl RelationshipState {
    /// The score as of `now`: decayed since its last update.
    pub fn engagement(&self, cfg: &LearningConfig, now: DateTime<Utc>) -> f64 {
        decayed(self.engagement, self.engagement_at, now, cfg.half_life)
    }
    pub fn channel(&self, name: Channel) -> ChannelStats {
        self.channels.get(&name).copied().unwrap_or_default()
    }
    pub fn channels(&self) -> impl Iterator<Item = (Channel, ChannelStats)> + '_ {
        self.channels.iter().map(|(k, v)| (*k, *v))
    }
    pub fn hours(&self) -> &[u32; 24] {
        &self.hours
    }
    pub fn ignored_in_row(&self) -> u32 {
        self.ignored_in_row
    }
    pub fn is_sunset(&self) -> bool {
        self.sunset
    }
    pub fn tier_history(&self) -> &[TierMove] {
        &self.tier_history
    }
    pub fn first_seen(&self) -> Option<DateTime<Utc>> {
        self.first_seen
    }
    pub fn last_touch(&self) -> Option<DateTime<Utc>> {
        self.last_touch
    }
    /// The last engaged response or reported interaction; negative signals and soft
    /// bounces do not count.
    pub fn last_interaction(&self) -> Option<DateTime<Utc>> {
        self.last_interaction
    }

    /// When the contact entered `tier`, if the history says they did (a tier set from
    /// outside without [`record_move`](Self::record_move) has no date).
    pub fn entered(&self, tier: &str) -> Option<&TierMove> {
        self.tier_history.last().filter(|m| m.to == tier)
    }

    /// Records a move decided outside [`apply`](super::apply): a [`review`](super::review)
    /// result, or an operator setting the tier by hand (with their reason), so hysteresis
    /// and the timeline see it too.
    pub fn record_move(&mut self, mv: TierMove) {
        self.tier_history.push(mv);
    }

    pub(crate) fn evidence(&self) -> &[Evidence] {
        &self.evidence
    }

    pub(crate) fn seen(&mut self, at: DateTime<Utc>) {
        self.first_seen = Some(self.first_seen.map_or(at, |t| t.min(at)));
    }

    /// Decays to `at`, then adds `weight`. A signal older than the last update adds its
    /// weight undecayed rather than moving the clock back.
    pub(crate) fn add_engagement(&mut self, weight: f64, at: DateTime<Utc>, half_life: Duration) {
        let last = self.engagement_at.map_or(at, |t| t.max(at));
        self.engagement = decayed(self.engagement, self.engagement_at, last, half_life) + weight;
        self.engagement_at = Some(last);
    }

    pub(crate) fn sent(&mut self, channel: Channel, at: DateTime<Utc>) {
        let stats = self.channels.entry(channel).or_default();
        stats.sent = stats.sent.saturating_add(1);
        self.last_touch = Some(self.last_touch.map_or(at, |t| t.max(at)));
    }

    /// Credits the touch sent at `sent_at` once; never more answered than sent.
    pub(crate) fn credit(&mut self, channel: Channel, sent_at: DateTime<Utc>) {
        let Some(stats) = self.channels.get_mut(&channel) else {
            return;
        };
        if stats.last_credited != Some(sent_at) && stats.responded < stats.sent {
            stats.responded += 1;
            stats.last_credited = Some(sent_at);
        }
    }

    pub(crate) fn observe_hour(&mut self, hour: u32) {
        if self.hours.iter().sum::<u32>() >= HOUR_MEMORY {
            self.hours.iter_mut().for_each(|h| *h /= 2);
        }
        self.hours[hour as usize % 24] += 1;
    }

    /// Keeps only what a promotion rule could still count.
    pub(crate) fn add_evidence(&mut self, e: Evidence, keep_since: DateTime<Utc>) {
        self.evidence.push(e);
        self.evidence.retain(|e| e.at > keep_since);
        let excess = self.evidence.len().saturating_sub(EVIDENCE_MEMORY);
        self.evidence.drain(..excess);
    }

    pub(crate) fn interacted(&mut self, at: DateTime<Utc>) {
        self.last_interaction = Some(self.last_interaction.map_or(at, |t| t.max(at)));
    }

    /// Returns the count after this one.
    pub(crate) fn ignored(&mut self) -> u32 {
        self.ignored_in_row = self.ignored_in_row.saturating_add(1);
        self.ignored_in_row
    }

    /// Returns whether a sunset was lifted.
    pub(crate) fn reset_fatigue(&mut self) -> bool {
        self.ignored_in_row = 0;
        std::mem::replace(&mut self.sunset, false)
    }

    /// Returns whether this started the sunset.
    pub(crate) fn set_sunset(&mut self) -> bool {
        !std::mem::replace(&mut self.sunset, true)
    }
}

/// `score * 0.5^(elapsed / half_life)`; time never runs backwards here.
pub(crate) fn decayed(
    score: f64,
    since: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
    half_life: Duration,
) -> f64 {
    let Some(since) = since else { return score };
    let elapsed = (to - since).num_milliseconds().max(0) as f64 / 1000.0;
    if elapsed == 0.0 {
        return score;
    }
    if half_life.is_zero() {
        return 0.0;
    }
    score * 0.5f64.powf(elapsed / half_life.as_secs_f64())
}
