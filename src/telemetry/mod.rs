//! Logging. Typed events: one function per thing that happens, so every log line for it
//! looks the same. Ids are logged; addresses, bodies and secrets never are.

use tracing_subscriber::{EnvFilter, fmt};

use crate::{
    domain::{Touch, TouchId},
    store::Outcome,
};

/// Logs to stderr; `RAPPORT_LOG` (or `RUST_LOG`) sets the filter, default `info`.
pub fn init() {
    let filter = std::env::var("RAPPORT_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| {
            "info,sqlx=warn,apalis=warn,apalis_core=warn,apalis_sqlite=warn".into()
        });
    let _ = fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, not in journald or log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
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
