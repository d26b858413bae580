//! What a tier's contacts teach a contact with little history of its own: a prior over
//! channels, and the hour the tier answers at. The planner reads the tier's statistics
//! from the store and asks these for the pattern.

use super::ChannelPrior;
use crate::domain::Channel;

/// A tier's response rates weigh like this many touches of the contact's own: enough to
/// start a new contact off where its tier is, little enough that a few answers of its
/// own outweigh it.
pub const PRIOR_WEIGHT: f64 = 10.0;

/// A tier's answer hours are its pattern once there are this many.
pub const MIN_TIER_HOURS: u64 = 10;

/// A tier's channel prior from its statistics: per channel, touches whose outcome is
/// known and how many were answered, scaled down to [`PRIOR_WEIGHT`].
pub fn tier_prior<'a>(channels: impl IntoIterator<Item = (&'a str, u64, u64)>) -> ChannelPrior {
    let mut prior = ChannelPrior::new();
    for (channel, settled, responded) in channels {
        let (settled, responded) = (settled as f64, responded.min(settled) as f64);
        let scale = if settled > PRIOR_WEIGHT {
            PRIOR_WEIGHT / settled
        } else {
            1.0
        };
        // The statistics name a channel as text (`*` for all of them): only channels
        // make a prior.
        let Ok(channel) = channel.parse::<Channel>() else {
            continue;
        };
        prior = prior.with(channel, responded * scale, (settled - responded) * scale);
    }
    prior
}

/// The hour most answers came at (the earliest of a tie), once there are
/// [`MIN_TIER_HOURS`] of them.
pub fn answer_mode(hours: &[u64; 24]) -> Option<u32> {
    let total: u64 = hours.iter().sum();
    let (hour, _) = hours
        .iter()
        .enumerate()
        .max_by_key(|(h, n)| (**n, std::cmp::Reverse(*h)))?;
    (total >= MIN_TIER_HOURS).then_some(hour as u32)
}
