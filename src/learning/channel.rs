//! Channel choice: Thompson sampling over per-channel response rates, so a contact's
//! best channel wins most of the time while the others still get an occasional try
//! (which is how a contact who changes habits is noticed).

use std::collections::BTreeMap;

use rand::Rng;
use rand_distr::{Beta, Distribution};

use super::RelationshipState;
use crate::domain::Channel;

/// What a tier's contacts have taught about each channel: pseudo-counts added to every
/// contact's own, so a new contact starts from the tier's pattern, not a coin flip.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelPrior {
    counts: BTreeMap<Channel, (f64, f64)>,
}

impl ChannelPrior {
    pub fn new() -> Self {
        Self::default()
    }

    /// Negative or non-finite counts are taken as 0, so the Beta is always defined.
    pub fn with(mut self, channel: Channel, successes: f64, failures: f64) -> Self {
        let clean = |x: f64| if x.is_finite() { x.max(0.0) } else { 0.0 };
        self.counts
            .insert(channel, (clean(successes), clean(failures)));
        self
    }

    /// Whether it knows nothing about any channel.
    pub fn is_empty(&self) -> bool {
        self.counts.values().all(|(a, b)| *a + *b == 0.0)
    }

    /// `(successes, failures)`; `(0, 0)` for a channel it knows nothing about.
    pub fn get(&self, channel: Channel) -> (f64, f64) {
        self.counts.get(&channel).copied().unwrap_or((0.0, 0.0))
    }

    /// Pools the statistics of a tier's contacts, scaled down so no channel's prior
    /// weighs more than `strength` touches: the tier's rate, but a contact's own few
    /// answers still outweigh it.
    pub fn pooled<'a>(
        states: impl IntoIterator<Item = &'a RelationshipState>,
        strength: f64,
    ) -> Self {
        let mut sums: BTreeMap<Channel, (f64, f64)> = BTreeMap::new();
        for state in states {
            for (channel, s) in state.channels() {
                let e = sums.entry(channel).or_default();
                e.0 += f64::from(s.responded);
                e.1 += f64::from(s.sent.saturating_sub(s.responded));
            }
        }
        sums.into_iter()
            .fold(Self::new(), |prior, (channel, (ok, failed))| {
                let total = ok + failed;
                let scale = if total > strength {
                    strength / total
                } else {
                    1.0
                };
                prior.with(channel, ok * scale, failed * scale)
            })
    }
}

/// The Beta parameters for `channel`: one success and one failure of pure ignorance,
/// plus the tier's prior, plus the contact's own touches (answered, and not).
pub fn posterior(state: &RelationshipState, channel: Channel, prior: &ChannelPrior) -> (f64, f64) {
    let own = state.channel(channel);
    let (ok, failed) = prior.get(channel);
    (
        1.0 + ok + f64::from(own.responded),
        1.0 + failed + f64::from(own.sent.saturating_sub(own.responded)),
    )
}

/// The expected response rate on `channel`.
pub fn posterior_mean(state: &RelationshipState, channel: Channel, prior: &ChannelPrior) -> f64 {
    let (a, b) = posterior(state, channel, prior);
    a / (a + b)
}

/// Picks one of `allowed` (already filtered for tier, consent and a known address, in
/// preference order) by drawing a rate from each channel's posterior: the highest draw
/// wins, a tie goes to the earlier channel. One channel is returned without a draw;
/// none gives `None`. With a seeded `rng` the choice is reproducible.
pub fn choose_channel<R: Rng + ?Sized>(
    state: &RelationshipState,
    allowed: &[Channel],
    prior: &ChannelPrior,
    rng: &mut R,
) -> Option<Channel> {
    if let [only] = allowed {
        return Some(*only);
    }
    let mut best: Option<(Channel, f64)> = None;
    for &channel in allowed {
        let (a, b) = posterior(state, channel, prior);
        // Both parameters are at least 1 and finite, so `new` cannot fail; the mean is
        // an honest stand-in if it ever did.
        let draw = Beta::new(a, b).map_or(a / (a + b), |beta| beta.sample(rng));
        if best.is_none_or(|(_, top)| draw > top) {
            best = Some((channel, draw));
        }
    }
    best.map(|(channel, _)| channel)
}
