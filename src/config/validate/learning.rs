//! `[learning]`: how responses and silence turn into per-contact behaviour. Mapped onto
//! the pure [`LearningConfig`]; its own coherence checks ([`LearningConfig::issues`])
//! are reported under `learning.` beside the ones only the config knows (tier names).

use super::Issues;
use crate::{
    config::{
        LearningSettings, Tier,
        raw::{RawLearning, RawRule},
    },
    learning::{LearningConfig, ResponseKind, TierRule, Weights},
};

pub(super) fn learning(
    issues: &mut Issues<'_>,
    raw: &RawLearning,
    tiers: &[Tier],
) -> LearningSettings {
    let d = LearningConfig::default();
    let mut model = LearningConfig {
        response_window: issues.duration(
            "learning.response_window",
            raw.response_window.as_deref(),
            d.response_window,
        ),
        half_life: issues.duration("learning.half_life", raw.half_life.as_deref(), d.half_life),
        weights: weights(issues, raw),
        fatigue_after: raw.fatigue_after.unwrap_or(d.fatigue_after),
        sunset_after: raw.sunset_after.unwrap_or(d.sunset_after),
        max_backoff: raw.max_backoff.unwrap_or(d.max_backoff),
        min_hour_observations: raw.min_hour_observations.unwrap_or(d.min_hour_observations),
        rules: Vec::new(),
        hold: issues.duration("learning.hold", raw.hold.as_deref(), d.hold),
    };
    let known = |name: &str| tiers.iter().any(|t| t.name == name);
    model.rules = match &raw.rules {
        Some(rules) => rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| rule(issues, i, r, &known, tiers))
            .collect(),
        // The default rules name the shipped tiers; a config without them gets none
        // rather than an error about rules it never wrote.
        None => d
            .rules
            .into_iter()
            .filter(|r| known(&r.from) && known(&r.to))
            .collect(),
    };
    // Rules were checked one by one above (with their indexes as written).
    for problem in model
        .issues()
        .into_iter()
        .filter(|p| !p.starts_with("rules["))
    {
        // "rules[0]: ..." / "half_life must ...": the key is the message's first word.
        let key = problem
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_owned();
        issues.push(&format!("learning.{key}"), problem);
    }
    LearningSettings {
        enabled: raw.enabled.unwrap_or(true),
        model,
    }
}

fn weights(issues: &mut Issues<'_>, raw: &RawLearning) -> Weights {
    let mut w = Weights::default();
    for (key, value) in raw.weights.iter().flatten() {
        let slot = match key.as_str() {
            "ignored" => &mut w.ignored,
            other => match other.parse::<ResponseKind>() {
                Ok(kind) if kind.as_str() == other => weight_of(&mut w, kind),
                _ => {
                    let known: Vec<_> = ResponseKind::ALL.iter().map(|k| k.as_str()).collect();
                    issues.push(
                        &format!("learning.weights.{key}"),
                        format!("unknown weight (known: {}, ignored)", known.join(", ")),
                    );
                    continue;
                }
            },
        };
        if value.is_finite() {
            *slot = *value;
        } else {
            issues.push(
                &format!("learning.weights.{key}"),
                "must be a finite number",
            );
        }
    }
    w
}

fn weight_of(w: &mut Weights, kind: ResponseKind) -> &mut f64 {
    match kind {
        ResponseKind::Reply => &mut w.reply,
        ResponseKind::Click => &mut w.click,
        ResponseKind::Positive => &mut w.positive,
        ResponseKind::Negative => &mut w.negative,
        ResponseKind::Unsubscribe => &mut w.unsubscribe,
        ResponseKind::BounceHard => &mut w.bounce_hard,
        ResponseKind::BounceSoft => &mut w.bounce_soft,
        ResponseKind::Complaint => &mut w.complaint,
    }
}

fn rule(
    issues: &mut Issues<'_>,
    i: usize,
    r: &RawRule,
    known: &dyn Fn(&str) -> bool,
    tiers: &[Tier],
) -> Option<TierRule> {
    let at = format!("learning.rules[{i}]");
    let example = "e.g. { from = \"acquaintance\", to = \"friend\", responses = 3, within = \"60d\" } or { from = \"friend\", to = \"acquaintance\", silent_for = \"180d\" }";
    let mut tier = |key: &str, v: &Option<String>| -> Option<String> {
        let Some(name) = v else {
            issues.missing(&format!("{at}.{key}"), example);
            return None;
        };
        if known(name) {
            return Some(name.clone());
        }
        let names: Vec<_> = tiers.iter().map(|t| t.name.as_str()).collect();
        issues.push(
            &format!("{at}.{key}"),
            format!("unknown tier {name:?} (known: {})", names.join(", ")),
        );
        None
    };
    let (from, to) = (tier("from", &r.from), tier("to", &r.to));
    let kind = match (r.responses, r.within.as_deref(), r.silent_for.as_deref()) {
        (Some(n), Some(within), None) => {
            let within = positive(issues, &format!("{at}.within"), within);
            if n == 0 {
                issues.push(&format!("{at}.responses"), "must be at least 1");
            }
            within
                .filter(|_| n > 0)
                .map(|w| TierRule::promote("", "", n, w))
        }
        (None, None, Some(silent)) => positive(issues, &format!("{at}.silent_for"), silent)
            .map(|d| TierRule::demote("", "", d)),
        (Some(_), None, None) => {
            issues.missing(
                &format!("{at}.within"),
                "the period the responses must fall in, e.g. \"60d\"",
            );
            None
        }
        (None, Some(_), None) => {
            issues.missing(
                &format!("{at}.responses"),
                "how many engaged responses promote, e.g. 3",
            );
            None
        }
        (None, None, None) => {
            issues.push(
                &at,
                format!(
                    "needs responses and within (a promotion) or silent_for (a demotion): {example}"
                ),
            );
            None
        }
        _ => {
            issues.push(&at, "a rule is either a promotion (responses, within) or a demotion (silent_for), not both");
            None
        }
    };
    let (mut rule, from, to) = (kind?, from?, to?);
    if from == to {
        // Here rather than in `LearningConfig::issues`, whose index would count only
        // the rules that parsed.
        issues.push(&at, format!("moves {from:?} to itself"));
        return None;
    }
    rule.from = from;
    rule.to = to;
    Some(rule)
}

/// A duration longer than zero, or the problem reported.
fn positive(issues: &mut Issues<'_>, path: &str, raw: &str) -> Option<std::time::Duration> {
    match crate::config::parse_duration(raw) {
        Ok(d) if !d.is_zero() => Some(d),
        Ok(_) => {
            issues.push(path, "must be longer than 0");
            None
        }
        Err(e) => {
            issues.push(path, e);
            None
        }
    }
}
