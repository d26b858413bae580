//! Tier progression: configured promotion and demotion rules, with hysteresis so a
//! contact sitting on a threshold does not bounce between tiers.
//!
//! Two things make it stick. No move comes within `hold` of the previous one (which
//! also rules out going straight back along the same edge). And promotion counts only
//! responses since the contact entered their current tier, so the evidence that lifted
//! someone, or the replies from before a demotion, cannot lift them again: every move
//! up is earned afresh.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{
    LearningConfig, RelationshipState, ResponseKind, RuleKind, TierMove, TierRule,
    config::{delta, minus, words},
};

/// The move `current_tier`'s rules call for at `now`, if any; [`apply`](super::apply)
/// runs it after every signal, and the caller runs it periodically so silence is
/// noticed without a signal. The caller records the move with
/// [`RelationshipState::record_move`] and sets the contact's tier.
pub fn review(
    state: &RelationshipState,
    current_tier: &str,
    cfg: &LearningConfig,
    now: DateTime<Utc>,
) -> Option<TierMove> {
    let held = state
        .tier_history()
        .last()
        .is_some_and(|m| now - m.at < delta(cfg.hold));
    if held {
        return None;
    }
    let entered = state.entered(current_tier).map(|m| m.at);
    cfg.rules
        .iter()
        .filter(|rule| rule.from == current_tier)
        .find_map(|rule| {
            reason(state, rule, entered, now).map(|reason| TierMove {
                from: rule.from.clone(),
                to: rule.to.clone(),
                at: now,
                reason,
            })
        })
}

/// Why `rule` fires now, in words, or `None` if it does not.
fn reason(
    state: &RelationshipState,
    rule: &TierRule,
    entered: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<String> {
    match rule.kind {
        RuleKind::Promote { responses, within } => {
            let since = minus(now, within).max(entered.unwrap_or(DateTime::<Utc>::MIN_UTC));
            let counted: Vec<ResponseKind> = state
                .evidence()
                .iter()
                .filter(|e| e.at > since && e.at <= now)
                .map(|e| e.kind)
                .collect();
            (counted.len() as u64 >= u64::from(responses)).then(|| evidence(&counted, within))
        }
        RuleKind::Demote { silent_for } => {
            let since = [state.last_interaction(), entered, state.first_seen()]
                .into_iter()
                .flatten()
                .max()?;
            let silence = now - since;
            (silence >= delta(silent_for)).then(|| {
                let days = silence.num_days().max(0) as u64;
                let shown = if days >= 1 {
                    Duration::from_secs(days * 86_400)
                } else {
                    silence.to_std().unwrap_or_default()
                };
                format!("no interaction for {}", words(shown))
            })
        }
    }
}

/// `"3 replies in 60 days"`, or `"3 responses in 60 days (2 replies, 1 click)"`.
fn evidence(kinds: &[ResponseKind], within: Duration) -> String {
    let n = kinds.len() as u32;
    let mut by_kind: Vec<(ResponseKind, u32)> = Vec::new();
    for &k in kinds {
        match by_kind.iter_mut().find(|(seen, _)| *seen == k) {
            Some((_, c)) => *c += 1,
            None => by_kind.push((k, 1)),
        }
    }
    by_kind.sort();
    let period = words(within);
    match by_kind.as_slice() {
        [] => format!("0 responses in {period}"),
        [(kind, _)] => format!("{} in {period}", kind.counted(n)),
        parts => {
            let parts: Vec<String> = parts.iter().map(|(k, c)| k.counted(*c)).collect();
            format!("{n} responses in {period} ({})", parts.join(", "))
        }
    }
}
