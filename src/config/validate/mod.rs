//! Raw config -> [`Config`], collecting every problem instead of stopping at the first.
//! Tiers and occasions are checked in `relationship`, the email and SMS channels in
//! `email` and `sms`, the webhook channel and `[api]` in `channels`, `[storage]` and
//! `[dispatch]` in their own files, the templates on disk in `templates`; `issues` holds
//! what is found, and the checks of the value kinds every section shares.

use std::path::PathBuf;

use chrono_tz::Tz;

use super::{Config, ConfigError, Defaults, Layered, Rules, Tier, raw::RawConfig};
use crate::domain::Channel;
use crate::domain::contact::parse_timezone;

mod channels;
mod dispatch;
mod email;
mod issues;
mod learning;
mod paths;
mod relationship;
mod sms;
mod storage;
mod templates;

use dispatch::{channel_timeouts, check_timeouts, dispatch};
use email::email;
use issues::Issues;
use paths::{ignored_path, remove_path};
use relationship::{check_inactivity_cadence, default_tier, occasions, tiers};
use storage::storage;
use templates::check_templates;

pub(super) fn validate(layered: &Layered) -> Result<Config, ConfigError> {
    let mut issues = Issues::new(layered);
    let raw = deserialize(layered, &mut issues);

    let storage = storage(&mut issues, &raw);
    let timezone = default_timezone(&mut issues, &raw);
    let send_window = issues
        .window("defaults.send_window", raw.defaults.send_window.as_deref())
        .unwrap_or("09:00-18:00".parse().expect("valid literal"));
    let tiers = tiers(&mut issues, &raw);
    let default_tier = default_tier(&mut issues, &raw, &tiers);

    let email = email(&mut issues, raw.channels.email.as_ref());
    let sms = sms::sms(&mut issues, raw.channels.sms.as_ref());
    let webhook = channels::webhook(&mut issues, raw.channels.webhook.as_ref());
    let api = channels::api(&mut issues, &raw.api);
    if email.as_ref().is_some_and(|e| e.track_clicks) && api.public_url.is_none() {
        issues.push(
            "channels.email.track_clicks",
            "needs api.public_url (the https base the tracked links point at)",
        );
    }
    let learning = learning::learning(&mut issues, &raw.learning, &tiers);
    let templates_dir = PathBuf::from(
        raw.templates
            .dir
            .clone()
            .unwrap_or_else(|| "templates".into()),
    );
    let occasions = occasions(&mut issues, &raw);
    check_templates(&mut issues, &templates_dir, &occasions, &tiers);
    let dispatch = dispatch(&mut issues, &raw.dispatch);
    let contact_caps = issues.caps("policy.caps", raw.policy.caps.as_ref());
    check_inactivity_cadence(&mut issues, &occasions, &tiers);
    check_timeouts(
        &mut issues,
        &dispatch,
        &channel_timeouts(&email, &sms, &webhook),
    );

    if !issues.list.is_empty() {
        return Err(ConfigError {
            issues: issues.list,
        });
    }
    let channels = Channel::ALL
        .into_iter()
        .filter(|c| match c {
            Channel::Email => true,
            Channel::Sms => sms.is_some(),
            Channel::Webhook => webhook.is_some(),
        })
        .collect();
    Ok(Config {
        storage,
        rules: Rules {
            defaults: Defaults {
                timezone,
                send_window,
                tier: default_tier,
            },
            tiers,
            occasions,
            contact_caps,
            channels,
        },
        brand_name: raw.brand.name.clone().unwrap_or_else(|| "Rapport".into()),
        templates_dir,
        email: email.expect("no issues means email parsed"),
        dispatch,
        sms,
        webhook,
        api,
        learning,
    })
}

/// `defaults.timezone`, an IANA zone; UTC when unset (or unusable, reported).
fn default_timezone(issues: &mut Issues<'_>, raw: &RawConfig) -> Tz {
    match raw.defaults.timezone.as_deref().map(parse_timezone) {
        None => chrono_tz::UTC,
        Some(Ok(tz)) => tz,
        Some(Err(e)) => {
            issues.push("defaults.timezone", e.0);
            chrono_tz::UTC
        }
    }
}

/// Serde stops at the first value of the wrong type. To still report every problem, a
/// leaf that fails is recorded, removed, and the document deserialized again, until it
/// goes through; the later checks then run on what is left.
fn deserialize(layered: &Layered, issues: &mut Issues<'_>) -> RawConfig {
    let mut doc = toml::Value::Table(layered.doc.clone());
    let mut unknown = Vec::new();
    for _ in 0..64 {
        unknown.clear();
        let attempt = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
            doc.clone(),
            &mut |path| unknown.push(ignored_path(&path.to_string())),
        ));
        match attempt {
            Ok(raw) => {
                for u in &unknown {
                    issues.push(u, "unknown key");
                }
                return raw;
            }
            Err(e) => {
                let path = e.path().to_string();
                issues.push(&path, e.into_inner().message().to_owned());
                if !remove_path(&mut doc, &path) {
                    break;
                }
            }
        }
    }
    for u in &unknown {
        issues.push(u, "unknown key");
    }
    RawConfig::default()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn names(tiers: &[Tier]) -> String {
    tiers
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
