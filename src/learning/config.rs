//! The learner's knobs. A plain struct: the `[learning]` TOML table is mapped onto it
//! by the config module, so this file never parses anything.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::ResponseKind;

const DAY: u64 = 86_400;

fn days(n: u64) -> Duration {
    Duration::from_secs(n * DAY)
}

#[derive(Debug, Clone, PartialEq)]
pub struct LearningConfig {
    /// A touch with no response within this long is `ignored`.
    pub response_window: Duration,
    /// The engagement score halves over this long without new signals.
    pub half_life: Duration,
    pub weights: Weights,
    /// Consecutive ignored touches before the check-in cadence starts doubling.
    pub fatigue_after: u32,
    /// Consecutive ignored touches before routine check-ins stop altogether.
    pub sunset_after: u32,
    /// The backed-off cadence never exceeds this multiple of the base (nor the tier's
    /// maximum).
    pub max_backoff: u32,
    /// Responses needed before the contact's own hour beats the tier's pattern.
    pub min_hour_observations: u32,
    /// Tried in order; the first that fires moves the contact.
    pub rules: Vec<TierRule>,
    /// Hysteresis: no tier move within this long of the previous one.
    pub hold: Duration,
}

impl Default for LearningConfig {
    fn default() -> Self {
        Self {
            response_window: days(7),
            half_life: days(90),
            weights: Weights::default(),
            fatigue_after: 2,
            sunset_after: 5,
            max_backoff: 8,
            min_hour_observations: 5,
            rules: vec![
                TierRule::promote("acquaintance", "friend", 3, days(60)),
                TierRule::demote("friend", "acquaintance", days(180)),
            ],
            hold: days(30),
        }
    }
}

impl LearningConfig {
    /// When a touch sent at `sent_at` without a response becomes `ignored`.
    pub fn ignored_after(&self, sent_at: DateTime<Utc>) -> DateTime<Utc> {
        plus(sent_at, self.response_window)
    }

    /// Every incoherence at once, each naming its key, for the config validator to
    /// report beside its own (tier names in rules are its job: it knows the tiers).
    pub fn issues(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |bad: bool, msg: String| {
            if bad {
                out.push(msg);
            }
        };
        check(
            self.response_window.is_zero(),
            "response_window must be longer than 0".into(),
        );
        check(
            self.half_life.is_zero(),
            "half_life must be longer than 0".into(),
        );
        check(
            self.hold.is_zero(),
            "hold must be longer than 0 (it is what stops flip-flopping)".into(),
        );
        check(
            self.fatigue_after == 0,
            "fatigue_after must be at least 1".into(),
        );
        check(
            self.sunset_after < self.fatigue_after,
            format!(
                "sunset_after ({}) must not be below fatigue_after ({})",
                self.sunset_after, self.fatigue_after
            ),
        );
        check(
            self.max_backoff == 0,
            "max_backoff must be at least 1".into(),
        );
        for kind in ResponseKind::ALL.into_iter().filter(|k| k.is_negative()) {
            let w = self.weights.of(kind);
            check(
                w > 0.0,
                format!("weights.{kind} is {w}: a negative signal must not raise engagement"),
            );
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let key = format!("rules[{i}]");
            check(
                rule.from == rule.to,
                format!("{key} moves {:?} to itself", rule.from),
            );
            match rule.kind {
                RuleKind::Promote { responses, within } => {
                    check(
                        responses == 0,
                        format!("{key}: responses must be at least 1"),
                    );
                    check(
                        within.is_zero(),
                        format!("{key}: within must be longer than 0"),
                    );
                }
                RuleKind::Demote { silent_for } => {
                    check(
                        silent_for.is_zero(),
                        format!("{key}: silent_for must be longer than 0"),
                    );
                }
            }
        }
        out
    }

    /// How far back promotion evidence is kept: the longest promotion window.
    pub(crate) fn evidence_horizon(&self) -> Duration {
        self.rules
            .iter()
            .filter_map(|r| match r.kind {
                RuleKind::Promote { within, .. } => Some(within),
                RuleKind::Demote { .. } => None,
            })
            .max()
            .unwrap_or_default()
    }
}

/// How much each signal moves the engagement score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub reply: f64,
    pub click: f64,
    pub positive: f64,
    pub negative: f64,
    pub unsubscribe: f64,
    pub bounce_hard: f64,
    pub bounce_soft: f64,
    pub complaint: f64,
    /// Silence is a (weak) signal too.
    pub ignored: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            reply: 3.0,
            click: 1.0,
            positive: 4.0,
            negative: -4.0,
            unsubscribe: -10.0,
            bounce_hard: -5.0,
            bounce_soft: -1.0,
            complaint: -10.0,
            ignored: -0.5,
        }
    }
}

impl Weights {
    pub fn of(&self, kind: ResponseKind) -> f64 {
        match kind {
            ResponseKind::Reply => self.reply,
            ResponseKind::Click => self.click,
            ResponseKind::Positive => self.positive,
            ResponseKind::Negative => self.negative,
            ResponseKind::Unsubscribe => self.unsubscribe,
            ResponseKind::BounceHard => self.bounce_hard,
            ResponseKind::BounceSoft => self.bounce_soft,
            ResponseKind::Complaint => self.complaint,
        }
    }
}

/// One edge between tiers and what makes the contact take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierRule {
    pub from: String,
    pub to: String,
    pub kind: RuleKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// At least `responses` engaged responses (reply, click, positive) within the last
    /// `within`, all since the contact entered `from`.
    Promote { responses: u32, within: Duration },
    /// No interaction for `silent_for` (counted from entering `from` at the earliest).
    Demote { silent_for: Duration },
}

impl TierRule {
    pub fn promote(from: &str, to: &str, responses: u32, within: Duration) -> Self {
        Self {
            from: from.to_owned(),
            to: to.to_owned(),
            kind: RuleKind::Promote { responses, within },
        }
    }
    pub fn demote(from: &str, to: &str, silent_for: Duration) -> Self {
        Self {
            from: from.to_owned(),
            to: to.to_owned(),
            kind: RuleKind::Demote { silent_for },
        }
    }
}

/// Config durations are `std`; instants are `chrono`. Anything too long to represent
/// is as good as forever.
pub(crate) fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// `t + d`, saturating at the end of representable time.
pub(crate) fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(delta(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - d`, saturating at the start of representable time.
pub(crate) fn minus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_sub_signed(delta(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `"60 days"`, `"1 day"`, or the config notation (`"36h"`) when not whole days.
pub(crate) fn words(d: Duration) -> String {
    let secs = d.as_secs();
    if secs > 0 && secs % DAY == 0 && d.subsec_nanos() == 0 {
        let n = secs / DAY;
        format!("{n} day{}", if n == 1 { "" } else { "s" })
    } else {
        crate::config::format_duration(d)
    }
}
