//! Learning: signals (touches sent and ignored, responses, interactions) turned into
//! relationship state, and the decisions read from it. Pure: time, the contact's zone
//! and randomness are passed in, so every behaviour is a unit test.
//!
//! - [`apply`]: one signal -> the next state and the [`Effect`]s the caller carries out
//!   (consent, suppression, tier moves, back-off, sunset), each with its reason.
//! - [`choose_channel`]: Thompson sampling among the allowed, consented channels.
//! - [`best_hour`]: the hour inside the send window the contact answers at.
//! - [`check_in_cadence`]: the tier's cadence, backed off by fatigue; `None` once sunset.
//! - [`review`]: tier promotion and demotion by the configured rules, with hysteresis.
//! - [`describe`]: the learned state in words.

mod apply;
mod channel;
pub(crate) mod config;
mod describe;
mod fatigue;
mod hour;
mod prior;
mod signal;
mod state;
mod tiers;

#[cfg(test)]
mod tests;

pub use apply::{Effect, apply};
pub use channel::{ChannelPrior, choose_channel, posterior, posterior_mean};
pub use config::{LearningConfig, RuleKind, TierRule, Weights};
pub use describe::describe;
pub use fatigue::check_in_cadence;
pub use hour::{answer_hour, best_hour};
pub use prior::{MIN_TIER_HOURS, PRIOR_WEIGHT, answer_mode, tier_prior};
pub use signal::{Response, ResponseKind, Signal, TouchRef, UnknownKind};
pub use state::{ChannelStats, RelationshipState, TierMove};
pub use tiers::review;
