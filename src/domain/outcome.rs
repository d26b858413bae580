//! How a claimed touch ended: what the dispatcher decides and the ledger records.

use chrono::{DateTime, Utc};

use super::{Channel, TouchId};

/// How a claimed touch ended, as the dispatcher reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Sent {
        id: TouchId,
    },
    Failed {
        id: TouchId,
        reason: String,
    },
    Suppressed {
        id: TouchId,
        reason: String,
    },
    Expired {
        id: TouchId,
        reason: String,
    },
    /// The relationship policy decided against it (final).
    Skipped {
        id: TouchId,
        reason: String,
    },
    /// Not attempted after all (held by the policy, or the daemon is stopping): back to
    /// `planned` at `at` without counting the attempt, with the reason if any; a job is
    /// queued for it.
    Defer {
        id: TouchId,
        at: DateTime<Utc>,
        reason: Option<String>,
    },
    Retry {
        id: TouchId,
        at: DateTime<Utc>,
        reason: String,
        /// The attempt ended without an answer (it may have been delivered): counted in
        /// [`Touch::uncertain`], which bounds such resends.
        uncertain: bool,
    },
    /// Its channel cannot take it (opted out, failed permanently, endpoint gone): back
    /// to `planned` at once on the occasion's next `channel`, with the reason (which
    /// the ledger keeps, so it shows which channel was tried and why it was left). Its
    /// attempts count from zero again: the new channel has its own retries.
    Fallback {
        id: TouchId,
        channel: Channel,
        reason: String,
    },
}

impl Outcome {
    pub fn id(&self) -> &TouchId {
        match self {
            Self::Sent { id }
            | Self::Failed { id, .. }
            | Self::Suppressed { id, .. }
            | Self::Expired { id, .. }
            | Self::Skipped { id, .. }
            | Self::Retry { id, .. }
            | Self::Fallback { id, .. }
            | Self::Defer { id, .. } => id,
        }
    }
}
