//! The learned state in words, for `rapport contacts show` and the API.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{ChannelPrior, LearningConfig, RelationshipState, answer_hour, posterior_mean};
use crate::domain::Channel;

/// One line per thing learned, e.g. `prefers SMS (5 of 6 responses)`, `answers around
/// 19:00`, `friend since 2026-03-02 (3 replies in 60 days)`. Nothing is claimed without
/// the evidence for it: no preference from a single answer or a tie, no hour before
/// `min_hour_observations`, no "since" for a tier set outside the learner.
pub fn describe(
    state: &RelationshipState,
    current_tier: &str,
    cfg: &LearningConfig,
    zone: Tz,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(line) = preference(state) {
        out.push(line);
    }
    if let Some(h) = answer_hour(state, cfg.min_hour_observations) {
        out.push(format!("answers around {h:02}:00"));
    }
    if let Some(mv) = state.entered(current_tier) {
        out.push(format!(
            "{current_tier} since {} ({})",
            date(mv.at, zone),
            mv.reason
        ));
    }
    let n = state.ignored_in_row();
    if state.is_sunset() {
        out.push(format!(
            "sunset: {n} ignored in a row; check-ins stop until the contact interacts"
        ));
    } else if n >= cfg.fatigue_after {
        out.push(format!("backed off: {n} ignored in a row"));
    }
    if let Some(at) = state.last_interaction() {
        out.push(format!("last interaction {}", date(at, zone)));
    }
    out
}

/// The channel with the most answered touches (the better rate breaks a tie in
/// counts); said only with two answers or more and a clear winner.
fn preference(state: &RelationshipState) -> Option<String> {
    let total: u32 = state.channels().map(|(_, s)| s.responded).sum();
    if total < 2 {
        return None;
    }
    let none = ChannelPrior::new();
    let key = |c: Channel, responded: u32| (responded, posterior_mean(state, c, &none));
    let mut ranked: Vec<_> = state
        .channels()
        .map(|(c, s)| (c, key(c, s.responded)))
        .collect();
    ranked.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    let (top, (responded, _)) = *ranked.first()?;
    if ranked.get(1).is_some_and(|second| second.1 == ranked[0].1) {
        return None;
    }
    Some(format!(
        "prefers {} ({responded} of {total} responses)",
        top.label()
    ))
}

fn date(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%Y-%m-%d").to_string()
}
