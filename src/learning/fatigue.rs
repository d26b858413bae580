//! Fatigue: a contact who keeps ignoring check-ins hears from us less, then not at all,
//! until they interact again.

use std::time::Duration;

use super::{LearningConfig, RelationshipState};

/// How long after the last interaction the next routine check-in is due: `base` (the
/// tier's cadence) while fewer than `fatigue_after` touches in a row were ignored, then
/// doubling with each further one, bounded by `cfg.max_backoff` times `base` and by
/// `max`. `None` once sunset: routine check-ins stop, birthdays and thank-yous do not.
pub fn check_in_cadence(
    state: &RelationshipState,
    cfg: &LearningConfig,
    base: Duration,
    max: Duration,
) -> Option<Duration> {
    if state.is_sunset() {
        return None;
    }
    let factor = backoff_factor(state.ignored_in_row(), cfg);
    // A tier bound below its own cadence would shorten the gap; backing off never does.
    Some(base.saturating_mul(factor).min(max.max(base)))
}

/// `2^(ignored - fatigue_after + 1)` once fatigued, else 1; at most `max_backoff`.
pub(crate) fn backoff_factor(ignored: u32, cfg: &LearningConfig) -> u32 {
    if ignored < cfg.fatigue_after {
        return 1;
    }
    let doublings = (ignored - cfg.fatigue_after + 1).min(31);
    (1u32 << doublings).min(cfg.max_backoff.max(1))
}
