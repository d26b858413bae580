//! `[channels.sms]`: the outbox, or Twilio with its account, token and sender.

use std::{path::PathBuf, time::Duration};

use super::Issues;
use crate::{
    channels::sms::SmsSender,
    config::{SmsConfig, SmsTransport, raw::RawSms},
    domain::PhoneNumber,
};

const TRANSPORT: &str = "channels.sms.transport";

pub(super) fn sms(issues: &mut Issues<'_>, raw: Option<&RawSms>) -> Option<SmsConfig> {
    let raw = raw?;
    let rate = issues.rate("channels.sms.rate", raw.rate.as_deref());
    let transport = raw.transport.as_deref().unwrap_or("outbox");
    if transport == "outbox" {
        unused_twilio_keys(issues, raw);
    }
    let transport = match transport {
        "outbox" => SmsTransport::Outbox {
            dir: PathBuf::from(
                raw.outbox_dir
                    .clone()
                    .unwrap_or_else(|| "data/outbox".into()),
            ),
        },
        "twilio" => twilio(issues, raw)?,
        other => {
            issues.push(
                "channels.sms.transport",
                format!("unknown transport {other:?} (known: outbox, twilio)"),
            );
            return None;
        }
    };
    Some(SmsConfig { transport, rate })
}

/// Twilio keys with the outbox transport would be ignored: production SMS written to
/// files and recorded sent. Say so instead.
fn unused_twilio_keys(issues: &mut Issues<'_>, raw: &RawSms) {
    for (key, set) in [
        ("base_url", raw.base_url.is_some()),
        ("account_sid", raw.account_sid.is_some()),
        ("auth_token_env", raw.auth_token_env.is_some()),
        ("from", raw.from.is_some()),
        ("messaging_service_sid", raw.messaging_service_sid.is_some()),
    ] {
        if set {
            issues.push(
                &format!("channels.sms.{key}"),
                "only used with transport = \"twilio\" (the transport is \"outbox\": SMS are written to files)",
            );
        }
    }
}

/// `transport = "twilio"`: every key it needs is checked before any is given up on.
fn twilio(issues: &mut Issues<'_>, raw: &RawSms) -> Option<SmsTransport> {
    let allow_private = raw.allow_private.unwrap_or(false);
    let base_url = raw.base_url.as_deref().unwrap_or("https://api.twilio.com");
    let base_url = issues.endpoint("channels.sms.base_url", base_url, allow_private);
    let account_sid = account_sid(issues, raw);
    let auth_token_env = raw.auth_token_env.clone().filter(|s| !s.is_empty());
    if auth_token_env.is_none() {
        issues.missing_for(
            "channels.sms.auth_token_env",
            TRANSPORT,
            "the name of the environment variable holding the auth token",
        );
    }
    let sender = sender(issues, raw);
    let timeout = issues.duration(
        "channels.sms.timeout",
        raw.timeout.as_deref(),
        Duration::from_secs(15),
    );
    if timeout.is_zero() {
        issues.push("channels.sms.timeout", "must be longer than 0s");
    }
    Some(SmsTransport::Twilio {
        base_url: base_url?,
        account_sid: account_sid?,
        auth_token_env: auth_token_env?,
        sender: sender?,
        timeout,
        allow_private,
    })
}

/// The account SID: required, letters and digits.
fn account_sid(issues: &mut Issues<'_>, raw: &RawSms) -> Option<String> {
    let account_sid = raw.account_sid.clone().filter(|s| !s.is_empty());
    if let Some(sid) = account_sid
        .as_deref()
        .filter(|s| !s.chars().all(|c| c.is_ascii_alphanumeric()) || s.len() > 64)
    {
        issues.push(
            "channels.sms.account_sid",
            format!("{sid:?} is not an account SID (letters and digits, e.g. \"AC...\")"),
        );
    }
    if account_sid.is_none() {
        issues.missing_for(
            "channels.sms.account_sid",
            TRANSPORT,
            "the account SID, e.g. \"AC...\"",
        );
    }
    account_sid
}

/// Who the messages come from: `from`, or `messaging_service_sid`, exactly one.
fn sender(issues: &mut Issues<'_>, raw: &RawSms) -> Option<SmsSender> {
    match (&raw.from, &raw.messaging_service_sid) {
        (Some(_), Some(_)) => {
            issues.push(
                "channels.sms.from",
                "set either from or messaging_service_sid, not both",
            );
            None
        }
        (Some(from), None) => sender_from(issues, from),
        (None, Some(sid)) if sid.starts_with("MG") => {
            Some(SmsSender::MessagingService(sid.clone()))
        }
        (None, Some(sid)) => {
            issues.push(
                "channels.sms.messaging_service_sid",
                format!("{sid:?} is not a Messaging Service SID (it starts with MG)"),
            );
            None
        }
        (None, None) => {
            issues.missing_for(
                "channels.sms.from",
                TRANSPORT,
                "a sender number (E.164) or messaging_service_sid",
            );
            None
        }
    }
}

/// An E.164 number, a short code (5 or 6 digits), or an alphanumeric sender id (1 to 11
/// letters, digits, spaces, at least one letter).
fn sender_from(issues: &mut Issues<'_>, from: &str) -> Option<SmsSender> {
    if from.trim_start().starts_with('+') {
        return match PhoneNumber::parse(from) {
            Ok(p) => Some(SmsSender::From(p.as_str().to_owned())),
            Err(e) => {
                issues.push("channels.sms.from", e.0);
                None
            }
        };
    }
    let alphanumeric = (1..=11).contains(&from.len())
        && from.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ')
        && from.chars().any(|c| c.is_ascii_alphabetic());
    let short_code = (5..=6).contains(&from.len()) && from.chars().all(|c| c.is_ascii_digit());
    if alphanumeric || short_code {
        Some(SmsSender::From(from.to_owned()))
    } else {
        issues.push(
            "channels.sms.from",
            format!("{from:?} is neither an E.164 number, a short code (5 or 6 digits) nor an alphanumeric sender id (up to 11 letters and digits)"),
        );
        None
    }
}
