//! Tiers and occasions: the relationship policy's keys (caps, gaps, channels, cadence,
//! triggers, what to do when throttled).

use std::{str::FromStr, time::Duration};

use super::{Issues, names, valid_name};
use crate::config::{
    DateField, Occasion, OnThrottle, Tier, Trigger, parse_duration,
    raw::{RawConfig, RawOccasion, RawTier},
};
use crate::domain::Channel;

/// Every `[tiers.<name>]`, closest first as written; at least one is required.
pub(super) fn tiers(issues: &mut Issues<'_>, raw: &RawConfig) -> Vec<Tier> {
    let mut tiers = Vec::new();
    for (name, t) in &raw.tiers {
        if !valid_name(name) {
            issues.push(
                &format!("tiers.{name}"),
                "tier names use lower-case letters, digits and _",
            );
        }
        tiers.push(tier(issues, name, t));
    }
    if tiers.is_empty() {
        issues.push(
            "tiers",
            "at least one tier is required (e.g. [tiers.family])",
        );
    }
    tiers
}

/// `defaults.tier`, else the last (most distant) tier; it must be one of `tiers`.
pub(super) fn default_tier(issues: &mut Issues<'_>, raw: &RawConfig, tiers: &[Tier]) -> String {
    let default_tier = raw
        .defaults
        .tier
        .clone()
        .or_else(|| tiers.last().map(|t| t.name.clone()))
        .unwrap_or_default();
    if !tiers.is_empty() && !tiers.iter().any(|t| t.name == default_tier) {
        issues.push(
            "defaults.tier",
            format!("unknown tier {default_tier:?} (known: {})", names(tiers)),
        );
    }
    default_tier
}

/// Every `[occasions.<name>]` that could be read, each on channels that are configured.
pub(super) fn occasions(issues: &mut Issues<'_>, raw: &RawConfig) -> Vec<Occasion> {
    let mut occasions = Vec::new();
    for (name, o) in &raw.occasions {
        if let Some(occ) = occasion(issues, name, o) {
            occasions.push(occ);
        }
    }
    for o in &occasions {
        let configured = |c: Channel| match c {
            Channel::Sms => raw.channels.sms.is_some(),
            Channel::Webhook => raw.channels.webhook.is_some(),
            Channel::Email => true,
        };
        for c in o.channels.iter().filter(|c| !configured(**c)) {
            issues.push(
                &format!("occasions.{}.channels", o.name),
                format!("channel \"{c}\" is not configured (add a [channels.{c}] section)"),
            );
        }
    }
    occasions
}

/// An enabled `inactivity = "tier"` occasion needs a tier with a cadence.
pub(super) fn check_inactivity_cadence(
    issues: &mut Issues<'_>,
    occasions: &[Occasion],
    tiers: &[Tier],
) {
    for o in occasions.iter().filter(|o| o.enabled) {
        if matches!(o.trigger, Trigger::Inactivity { every: None })
            && !tiers.iter().any(|t| t.check_in_every.is_some())
        {
            issues.push(
                &format!("occasions.{}.trigger.inactivity", o.name),
                "\"tier\" takes the cadence from each tier's check_in_every, but no tier sets one",
            );
        }
    }
}

fn tier(issues: &mut Issues<'_>, name: &str, t: &RawTier) -> Tier {
    let p = |k: &str| format!("tiers.{name}.{k}");
    let channels = t
        .channels
        .as_ref()
        .map(|c| issues.channel_list(&p("channels"), c));
    if channels.as_ref().is_some_and(Vec::is_empty) {
        issues.push(&p("channels"), "must name at least one channel");
    }
    let mut channel_caps = Vec::new();
    for (channel, caps) in t.channel_caps.iter().flatten() {
        let at = p(&format!("channel_caps.{channel}"));
        match channel.parse::<Channel>() {
            Ok(channel) => channel_caps.push((channel, issues.caps(&at, Some(caps)))),
            Err(e) => issues.push(&at, e.to_string()),
        }
    }
    let check_in_every = t
        .check_in_every
        .as_deref()
        .and_then(|raw| match parse_duration(raw) {
            Ok(d) if d.as_secs() >= 3600 => Some(d),
            Ok(_) => {
                issues.push(&p("check_in_every"), "must be at least 1h");
                None
            }
            Err(e) => {
                issues.push(&p("check_in_every"), e);
                None
            }
        });
    Tier {
        name: name.to_owned(),
        description: t.description.clone(),
        send_window: issues.window(&p("send_window"), t.send_window.as_deref()),
        caps: issues.caps(&p("caps"), t.caps.as_ref()),
        min_gap: issues.duration(&p("min_gap"), t.min_gap.as_deref(), Duration::ZERO),
        channels,
        channel_caps,
        check_in_every,
    }
}

fn trigger(issues: &mut Issues<'_>, name: &str, o: &RawOccasion) -> Option<Trigger> {
    let p = |k: &str| format!("occasions.{name}.{k}");
    let example = "e.g. trigger = { date = \"birthday\" }, { event = \"purchase\", delay = \"2h\" } or { inactivity = \"tier\" }";
    let Some(t) = o.trigger.as_ref() else {
        issues.push(&p("trigger"), format!("missing: {example}"));
        return None;
    };
    let kinds = [t.date.is_some(), t.event.is_some(), t.inactivity.is_some()];
    if kinds.iter().filter(|k| **k).count() != 1 {
        issues.push(
            &p("trigger"),
            format!("needs exactly one of date, event, inactivity: {example}"),
        );
        return None;
    }
    if t.delay.is_some() && t.event.is_none() {
        issues.push(&p("trigger.delay"), "only event triggers take a delay");
    }
    if let Some(date) = t.date.as_deref() {
        return match date {
            "birthday" => Some(Trigger::Date(DateField::Birthday)),
            "customer_since" => Some(Trigger::Date(DateField::CustomerSince)),
            other => {
                issues.push(
                    &p("trigger.date"),
                    format!("unknown date field {other:?} (known: birthday, customer_since)"),
                );
                None
            }
        };
    }
    if let Some(kind) = t.event.as_deref() {
        if !valid_name(kind) {
            issues.push(
                &p("trigger.event"),
                "event types use lower-case letters, digits and _",
            );
            return None;
        }
        let delay = issues.duration(&p("trigger.delay"), t.delay.as_deref(), Duration::ZERO);
        return Some(Trigger::Event {
            kind: kind.to_owned(),
            delay,
        });
    }
    match t.inactivity.as_deref() {
        Some("tier") => Some(Trigger::Inactivity { every: None }),
        Some(raw) => match parse_duration(raw) {
            Ok(d) if d.as_secs() >= 3600 => Some(Trigger::Inactivity { every: Some(d) }),
            Ok(_) => {
                issues.push(&p("trigger.inactivity"), "must be at least 1h");
                None
            }
            Err(e) => {
                issues.push(
                    &p("trigger.inactivity"),
                    format!("\"tier\" (each tier's check_in_every) or a duration: {e}"),
                );
                None
            }
        },
        None => None,
    }
}

fn occasion(issues: &mut Issues<'_>, name: &str, o: &RawOccasion) -> Option<Occasion> {
    let p = |k: &str| format!("occasions.{name}.{k}");
    if !valid_name(name) {
        issues.push(
            &format!("occasions.{name}"),
            "occasion names use lower-case letters, digits and _",
        );
    }
    let trigger = trigger(issues, name, o);
    let is_event = matches!(trigger, Some(Trigger::Event { .. }));
    let schedule = schedule(issues, name, o, trigger.as_ref());
    let default_expiry = if is_event { 3 } else { 1 };
    let expires = issues.duration(
        &p("expires"),
        o.expires.as_deref(),
        Duration::from_secs(default_expiry * 86_400),
    );
    if expires.is_zero() {
        issues.push(&p("expires"), "must be longer than 0s");
    }
    let send_window = issues.window(&p("send_window"), o.send_window.as_deref());
    let channels = channels(issues, name, o);
    let on_throttle = on_throttle(issues, name, o);
    let trigger = trigger?;
    if schedule.is_none() && !is_event {
        return None;
    }
    Some(Occasion {
        name: name.to_owned(),
        enabled: o.enabled.unwrap_or(true),
        trigger,
        schedule,
        on_throttle,
        priority: o.priority.unwrap_or(50),
        expires,
        send_window,
        channels,
        transactional: o.transactional.unwrap_or(false),
    })
}

/// When the occasion's planner runs: its cron `schedule`, hourly for check-ins that set
/// none; event-triggered occasions have none (they are planned when the event arrives).
fn schedule(
    issues: &mut Issues<'_>,
    name: &str,
    o: &RawOccasion,
    trigger: Option<&Trigger>,
) -> Option<cron::Schedule> {
    let at = format!("occasions.{name}.schedule");
    let is_event = matches!(trigger, Some(Trigger::Event { .. }));
    match o.schedule.as_deref() {
        None if is_event => None,
        None if matches!(trigger, Some(Trigger::Inactivity { .. })) => {
            Some(cron::Schedule::from_str("0 0 * * * *").expect("valid literal"))
        }
        None => {
            issues.push(
                &at,
                "missing: a cron expression with a seconds field, e.g. \"0 */15 * * * *\"",
            );
            None
        }
        Some(_) if is_event => {
            issues.push(
                &at,
                "event-triggered occasions are planned when the event arrives; remove schedule",
            );
            None
        }
        Some(s) => match cron::Schedule::from_str(s) {
            Ok(sch) => Some(sch),
            Err(e) => {
                let why = e.to_string();
                let why = why.lines().next().unwrap_or("").trim().to_owned();
                issues.push(
                    &at,
                    format!(
                        "{s:?} is not a cron expression (sec min hour day month weekday): {why}"
                    ),
                );
                None
            }
        },
    }
}

/// `channel`, or `channels` (the ordered preference); email when neither is set.
fn channels(issues: &mut Issues<'_>, name: &str, o: &RawOccasion) -> Vec<Channel> {
    let p = |k: &str| format!("occasions.{name}.{k}");
    match (&o.channel, &o.channels) {
        (Some(_), Some(_)) => {
            issues.push(
                &p("channels"),
                "set either channel or channels (the ordered preference), not both",
            );
            vec![Channel::Email]
        }
        (Some(one), None) => match one.parse::<Channel>() {
            Ok(one) => vec![one],
            Err(e) => {
                issues.push(&p("channel"), e.to_string());
                vec![Channel::Email]
            }
        },
        (None, Some(list)) => {
            let list = issues.channel_list(&p("channels"), list);
            if list.is_empty()
                && !issues
                    .list
                    .iter()
                    .any(|i| i.path.starts_with(&p("channels")))
            {
                issues.push(&p("channels"), "must name at least one channel");
            }
            let mut seen = std::collections::HashSet::new();
            for c in &list {
                if !seen.insert(*c) {
                    issues.push(&p("channels"), format!("names \"{c}\" twice"));
                }
            }
            list
        }
        (None, None) => vec![Channel::Email],
    }
}

fn on_throttle(issues: &mut Issues<'_>, name: &str, o: &RawOccasion) -> OnThrottle {
    let p = |k: &str| format!("occasions.{name}.{k}");
    match o.on_throttle.as_deref() {
        None | Some("defer") => OnThrottle::Defer,
        Some("skip") => OnThrottle::Skip,
        Some(other) => {
            issues.push(
                &p("on_throttle"),
                format!("unknown value {other:?} (known: defer, skip)"),
            );
            OnThrottle::Defer
        }
    }
}
