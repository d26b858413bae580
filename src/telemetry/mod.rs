//! Logging. Typed events: one function per thing that happens, so every log line for it
//! looks the same. Ids are logged; addresses, bodies and secrets never are.

use std::str::FromStr;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::{EnvFilter, fmt};

use crate::domain::{Outcome, Touch, TouchId};

/// Logs to stderr, filtered by `RAPPORT_LOG` (or `RUST_LOG`) as [`directives`] reads it.
pub fn init() {
    let raw = std::env::var("RAPPORT_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let _ = fmt()
        .with_env_filter(EnvFilter::new(directives(raw.as_deref())))
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, not in journald or log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // The target says which directive a line answers to (`rapport::dispatch`,
        // `sqlx::query`): what to name in RAPPORT_LOG to see more or less of it.
        .with_target(true)
        .try_init();
}

/// The filter for a `RAPPORT_LOG` value. A bare level (`debug`) is rapport's own
/// (`rapport=debug`); every other crate stays at `warn` (or quieter, if the level is)
/// unless a directive names it (`debug,handlebars=debug`). Why: at debug, libraries log
/// what passes through them (Handlebars the values it renders, sqlx the statements),
/// and those carry names, addresses and event data. Unset or empty: `info` for rapport.
pub fn directives(raw: Option<&str>) -> String {
    let mut ours = LevelFilter::INFO;
    let mut named = Vec::new();
    for part in raw.unwrap_or("").split(',').map(str::trim) {
        match LevelFilter::from_str(part) {
            _ if part.is_empty() => {}
            Ok(level) => ours = level,
            Err(_) => named.push(part),
        }
    }
    let level = |l: LevelFilter| l.to_string().to_lowercase();
    let others = ours.min(LevelFilter::WARN);
    let mut out = vec![level(others), format!("rapport={}", level(ours))];
    out.extend(named.into_iter().map(str::to_owned));
    out.join(",")
}

pub fn touch_outcome(t: &Touch, outcome: &Outcome) {
    let (touch, contact, occasion, attempt) = (
        t.id.as_str(),
        t.contact_id.as_str(),
        t.occasion.as_str(),
        t.attempts,
    );
    match outcome {
        Outcome::Sent { .. } => tracing::info!(touch, contact, occasion, attempt, "touch sent"),
        Outcome::Defer { at, reason, .. } => {
            let reason = reason.as_deref().unwrap_or("");
            tracing::info!(touch, contact, occasion, at = %at.to_rfc3339(), reason, "touch deferred");
        }
        Outcome::Skipped { reason, .. } => {
            tracing::info!(touch, contact, occasion, %reason, "touch skipped")
        }
        Outcome::Retry { at, reason, .. } => {
            tracing::warn!(touch, contact, occasion, attempt, %reason, retry_at = %at.to_rfc3339(), "touch send failed; retry scheduled");
        }
        Outcome::Fallback {
            channel, reason, ..
        } => {
            tracing::warn!(touch, contact, occasion, %reason, next_channel = %channel, "touch moves to its next channel")
        }
        Outcome::Failed { reason, .. } => {
            tracing::error!(touch, contact, occasion, attempt, %reason, "touch failed")
        }
        Outcome::Suppressed { reason, .. } => {
            tracing::info!(touch, contact, occasion, %reason, "touch suppressed")
        }
        Outcome::Expired { reason, .. } => {
            tracing::warn!(touch, contact, occasion, %reason, "touch expired")
        }
    }
}

pub fn touch_expired(id: &TouchId) {
    tracing::warn!(touch = id.as_str(), "touch expired before it could be sent");
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn bare_levels_are_rapports_own_and_other_crates_stay_at_warn() {
        for (raw, want) in [
            (None, "warn,rapport=info"),
            (Some(""), "warn,rapport=info"),
            (Some(" , "), "warn,rapport=info"),
            (Some("info"), "warn,rapport=info"),
            (Some("debug"), "warn,rapport=debug"),
            (Some("TRACE"), "warn,rapport=trace"),
            (Some("warn"), "warn,rapport=warn"),
            // Quieter than warn: nothing else is louder than what was asked for.
            (Some("error"), "error,rapport=error"),
            (Some("off"), "off,rapport=off"),
            // Named crates and modules are taken as written.
            (
                Some("debug,handlebars=debug"),
                "warn,rapport=debug,handlebars=debug",
            ),
            (Some("sqlx=info"), "warn,rapport=info,sqlx=info"),
            (
                Some("info, rapport::dispatch=trace"),
                "warn,rapport=info,rapport::dispatch=trace",
            ),
            // The last bare level wins.
            (Some("debug,error"), "error,rapport=error"),
            // A bare name is a target (EnvFilter: all its levels), not a level.
            (Some("handlebars"), "warn,rapport=info,handlebars"),
            (
                Some("rapport[send{touch=Birthday}]=trace"),
                "warn,rapport=info,rapport[send{touch=Birthday}]=trace",
            ),
        ] {
            assert_eq!(directives(raw), want, "RAPPORT_LOG={raw:?}");
        }
    }
}
