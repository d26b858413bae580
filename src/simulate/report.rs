//! What a simulation found, per tier: for ops (a table, [`fmt::Display`]) and for tests
//! and `--json` ([`serde::Serialize`]).

mod responses;

use std::{collections::BTreeMap, fmt, time::Duration};

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use responses::{Comparison, LearnedStats, Match, ResponseStats};

use crate::{
    config::format_duration,
    policy::{Limit, Limits, Slot},
};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReport {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub days: u32,
    pub contacts: usize,
    /// Events replayed (their contact known, inside the period).
    pub events: usize,
    /// Events left out: unknown contact, or after the end.
    pub ignored_events: usize,
    /// The seed the contacts' preferences and answers were drawn from.
    pub seed: u64,
    /// Whether the learner steered channel, hour, cadence and tier.
    pub learning: bool,
    /// All tiers together.
    pub responses: ResponseStats,
    /// All tiers together; `None` with learning off.
    pub learned: Option<LearnedStats>,
    /// The config's tiers in its order, then any tier only the contacts name.
    pub tiers: Vec<TierReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierReport {
    pub tier: String,
    /// Contacts in the tier at the start (those the file puts there).
    pub contacts: usize,
    /// Events of those contacts. Everything below counts under the tier the contact was
    /// in when it happened (learning moves contacts between tiers).
    pub events: u64,
    /// One row per enabled occasion, in config order.
    pub occasions: Vec<OccasionReport>,
    /// Throttle decisions (holds, skips, expiries) by the rule that made them, e.g.
    /// `tier acquaintance cap 1 per 14d`, `min_gap 10d`, `yields to birthday (min_gap 10d)`.
    pub caps_hit: BTreeMap<String, u64>,
    /// Touches skipped, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Touches expired, by reason.
    pub expired: BTreeMap<String, u64>,
    /// Touches suppressed before the policy was asked (consent, address), by reason.
    pub suppressed: BTreeMap<String, u64>,
    /// For each cap on the tier's contacts, the most sends one contact had in a window.
    pub caps: Vec<CapCheck>,
    pub min_gap: GapCheck,
    pub responses: ResponseStats,
    /// `None` with learning off.
    pub learned: Option<LearnedStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OccasionReport {
    pub occasion: String,
    /// Touches recorded in the ledger.
    pub planned: u64,
    pub sent: u64,
    /// `sent` per contact of the tier per month (a month being a twelfth of a year).
    pub per_contact_per_month: f64,
    /// Touches the throttle held at least once (window holds are not counted).
    pub deferred: u64,
    pub skipped: u64,
    pub expired: u64,
    pub suppressed: u64,
    /// Still planned when the period ended.
    pub pending: u64,
}

/// The fullest window one contact of the tier saw, against a cap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapCheck {
    /// As the throttle names it: `tier acquaintance cap 1 per 14d`.
    pub rule: String,
    pub count: u32,
    pub per_secs: u64,
    /// The most sends any one contact had in any window of `per` (half-open).
    pub max_in_window: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GapCheck {
    pub min_gap_secs: u64,
    /// The closest two sends to one contact came (`None`: nobody got two).
    pub observed_min_secs: Option<u64>,
}

impl SimReport {
    pub fn tier(&self, name: &str) -> Option<&TierReport> {
        self.tiers.iter().find(|t| t.tier == name)
    }
}

impl TierReport {
    /// No contact got more than a cap allows, nor two sends closer than the gap.
    pub fn within_limits(&self) -> bool {
        self.caps.iter().all(|c| c.max_in_window <= c.count)
            && self
                .min_gap
                .observed_min_secs
                .is_none_or(|g| g >= self.min_gap.min_gap_secs)
    }

    pub fn occasion(&self, name: &str) -> Option<&OccasionReport> {
        self.occasions.iter().find(|o| o.occasion == name)
    }

    pub(super) fn new(tier: &str, limits: &Limits, occasions: &[&str], learning: bool) -> Self {
        Self {
            tier: tier.to_owned(),
            contacts: 0,
            events: 0,
            occasions: occasions
                .iter()
                .map(|o| OccasionReport {
                    occasion: (*o).to_owned(),
                    planned: 0,
                    sent: 0,
                    per_contact_per_month: 0.0,
                    deferred: 0,
                    skipped: 0,
                    expired: 0,
                    suppressed: 0,
                    pending: 0,
                })
                .collect(),
            caps_hit: BTreeMap::new(),
            skipped: BTreeMap::new(),
            expired: BTreeMap::new(),
            suppressed: BTreeMap::new(),
            caps: limits
                .caps
                .iter()
                .map(|(scope, cap)| CapCheck {
                    rule: Limit::Cap(scope.clone(), *cap).to_string(),
                    count: cap.count,
                    per_secs: cap.per.as_secs(),
                    max_in_window: 0,
                })
                .collect(),
            min_gap: GapCheck {
                min_gap_secs: limits.min_gap.as_secs(),
                observed_min_secs: None,
            },
            responses: ResponseStats::default(),
            learned: learning.then(LearnedStats::default),
        }
    }

    /// Folds one contact's sends (in time order) into the cap and gap checks: those made
    /// while the contact was in this tier (`here[i]`), each against the window ending at
    /// it, as the throttle judged it then (earlier sends in another tier count too).
    pub(super) fn observe(&mut self, limits: &Limits, sends: &[Slot], here: &[bool]) {
        for ((scope, cap), check) in limits.caps.iter().zip(&mut self.caps) {
            let times: Vec<(i64, bool)> = sends
                .iter()
                .zip(here)
                .filter(|(s, _)| match scope {
                    crate::policy::Scope::Channel(c) => s.channel == *c,
                    _ => true,
                })
                .map(|(s, h)| (s.at.timestamp(), *h))
                .collect();
            let seen = max_in_window(&times, cap.per.as_secs() as i64);
            check.max_in_window = check.max_in_window.max(seen);
        }
        let gaps = sends.windows(2).zip(&here[1.min(here.len())..]);
        for (w, _) in gaps.filter(|(_, h)| **h) {
            let gap = (w[1].at.timestamp() - w[0].at.timestamp()).max(0) as u64;
            let seen = &mut self.min_gap.observed_min_secs;
            *seen = Some(seen.map_or(gap, |g| g.min(gap)));
        }
    }

    pub(super) fn count(map: &mut BTreeMap<String, u64>, key: String) {
        *map.entry(key).or_default() += 1;
    }
}

/// The most of `times` (in order) inside one half-open window `[a, a + per)` that ends
/// with one of those marked: the fullest window can always end at one of them.
fn max_in_window(times: &[(i64, bool)], per: i64) -> u32 {
    let mut first = 0;
    let mut best = 0;
    for (i, (t, here)) in times.iter().enumerate() {
        while times[first].0 <= t - per {
            first += 1;
        }
        if *here {
            best = best.max(i + 1 - first);
        }
    }
    best as u32
}

fn secs(s: u64) -> String {
    format_duration(Duration::from_secs(s))
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%MZ").to_string();
        writeln!(
            f,
            "Simulated {} days, {} to {}: {} contacts, {} events ({} ignored). Nothing was sent.",
            self.days,
            at(&self.start),
            at(&self.end),
            self.contacts,
            self.events,
            self.ignored_events
        )?;
        let learning = if self.learning { "on" } else { "off" };
        writeln!(
            f,
            "Contacts answer as drawn from seed {}; learning {learning}.",
            self.seed
        )?;
        for t in &self.tiers {
            writeln!(f)?;
            t.fmt(f)?;
        }
        writeln!(f, "\nall tiers")?;
        writeln!(f, "  responses: {}", self.responses)?;
        if let Some(l) = &self.learned {
            l.lines(f, "  ")?;
        }
        Ok(())
    }
}

impl fmt::Display for TierReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "tier {} ({} contacts, {} events)",
            self.tier, self.contacts, self.events
        )?;
        self.occasion_table(f)?;
        self.reason_counts(f)?;
        self.limit_checks(f)?;
        writeln!(f, "  responses: {}", self.responses)?;
        if let Some(l) = &self.learned {
            l.lines(f, "  ")?;
        }
        Ok(())
    }
}

impl TierReport {
    /// One row per occasion, then the row of all of them.
    fn occasion_table(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self
            .occasions
            .iter()
            .map(|o| o.occasion.len())
            .chain([8])
            .max()
            .unwrap_or(8);
        writeln!(
            f,
            "  {:<w$} {:>8} {:>8} {:>15} {:>8} {:>8} {:>8} {:>10} {:>8}",
            "occasion",
            "planned",
            "sent",
            "/contact/month",
            "deferred",
            "skipped",
            "expired",
            "suppressed",
            "pending"
        )?;
        for o in &self.occasions {
            writeln!(
                f,
                "  {:<w$} {:>8} {:>8} {:>15.3} {:>8} {:>8} {:>8} {:>10} {:>8}",
                o.occasion,
                o.planned,
                o.sent,
                o.per_contact_per_month,
                o.deferred,
                o.skipped,
                o.expired,
                o.suppressed,
                o.pending
            )?;
        }
        let total: f64 = self.occasions.iter().map(|o| o.per_contact_per_month).sum();
        let sent: u64 = self.occasions.iter().map(|o| o.sent).sum();
        writeln!(f, "  {:<w$} {:>8} {sent:>8} {total:>15.3}", "all", "")
    }

    /// The throttle decisions, skips, expiries and suppressions by reason (a list only
    /// where there are any).
    fn reason_counts(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (title, map) in [
            ("caps hit (throttle decisions)", &self.caps_hit),
            ("skipped", &self.skipped),
            ("expired", &self.expired),
            ("suppressed", &self.suppressed),
        ] {
            if map.is_empty() {
                continue;
            }
            writeln!(f, "  {title}:")?;
            let w = map.keys().map(String::len).max().unwrap_or(0);
            for (k, n) in map {
                writeln!(f, "    {k:<w$} {n:>8}")?;
            }
        }
        Ok(())
    }

    /// Each cap and the minimum gap against what the fullest contact saw.
    fn limit_checks(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  limits (most sends one contact got in any window):")?;
        let w = self
            .caps
            .iter()
            .map(|c| c.rule.len())
            .max()
            .unwrap_or(0)
            .max(12);
        for c in &self.caps {
            let mark = if c.max_in_window <= c.count {
                "ok"
            } else {
                "EXCEEDED"
            };
            writeln!(
                f,
                "    {:<w$} {:>3} of {:<3} {mark}",
                c.rule, c.max_in_window, c.count
            )?;
        }
        let g = &self.min_gap;
        match g.observed_min_secs {
            Some(seen) => {
                let mark = if seen >= g.min_gap_secs {
                    "ok"
                } else {
                    "BROKEN"
                };
                let rule = format!("min_gap {}", secs(g.min_gap_secs));
                writeln!(f, "    {rule:<w$} closest two sends {} {mark}", secs(seen))
            }
            None => writeln!(f, "    {:<w$} no contact got two sends", "min_gap"),
        }
    }
}
