//! Channel choice by Thompson sampling.

use crate::domain::Channel;
use rand::{Rng, SeedableRng, rngs::StdRng};

use super::*;
use crate::learning::{ChannelPrior, choose_channel, posterior, posterior_mean};

/// A state whose touches on each channel were answered as given: `(channel, sent,
/// answered)`.
fn with_stats(stats: &[(&str, u32, u32)]) -> RelationshipState {
    let mut signals = Vec::new();
    let mut t = 0.0;
    for &(channel, sent_n, answered) in stats {
        for i in 0..sent_n {
            t += 1.0;
            if i < answered {
                signals.extend(touch_answered(ResponseKind::Click, channel, day(t)));
            } else {
                signals.push(sent(channel, day(t)));
            }
        }
    }
    learn(signals).0
}

fn shares(
    state: &RelationshipState,
    allowed: &[Channel],
    prior: &ChannelPrior,
    seed: u64,
    n: u32,
) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut wins = vec![0u32; allowed.len()];
    for _ in 0..n {
        let c = choose_channel(state, allowed, prior, &mut rng).unwrap();
        wins[allowed.iter().position(|a| *a == c).unwrap()] += 1;
    }
    wins.into_iter()
        .map(|w| f64::from(w) / f64::from(n))
        .collect()
}

#[test]
fn posterior_adds_ignorance_prior_and_own_touches() {
    let state = with_stats(&[("sms", 6, 5)]);
    let prior = ChannelPrior::new().with(Channel::Sms, 2.0, 3.0);
    assert_eq!(posterior(&state, Channel::Sms, &prior), (8.0, 5.0));
    assert_eq!(posterior(&state, Channel::Email, &prior), (1.0, 1.0));
    assert_eq!(
        posterior_mean(&state, Channel::Email, &ChannelPrior::new()),
        0.5
    );
    assert_eq!(posterior_mean(&state, Channel::Sms, &prior), 8.0 / 13.0);
}

#[test]
fn one_channel_needs_no_draw_and_none_gives_none() {
    let state = with_stats(&[("sms", 10, 0)]);
    let mut rng = StdRng::seed_from_u64(7);
    let mut untouched = rng.clone();
    assert_eq!(
        choose_channel(&state, &[Channel::Sms], &ChannelPrior::new(), &mut rng),
        Some(Channel::Sms)
    );
    assert_eq!(rng.random::<u64>(), untouched.random::<u64>());
    assert_eq!(
        choose_channel(&state, &[], &ChannelPrior::new(), &mut rng),
        None
    );
}

#[test]
fn a_seed_gives_the_same_choices() {
    let state = with_stats(&[("sms", 4, 2), ("email", 4, 2)]);
    let run = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..50)
            .map(|_| {
                choose_channel(
                    &state,
                    &[Channel::Email, Channel::Sms, Channel::Webhook],
                    &ChannelPrior::new(),
                    &mut rng,
                )
                .unwrap()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn sampling_follows_the_evidence() {
    let none = ChannelPrior::new();
    // No evidence: a fair split.
    let s = shares(
        &RelationshipState::default(),
        &[Channel::Email, Channel::Sms],
        &none,
        3,
        4000,
    );
    assert!((s[0] - 0.5).abs() < 0.05, "{s:?}");
    // Clear evidence: the better channel nearly always.
    let state = with_stats(&[("email", 10, 1), ("sms", 10, 8)]);
    let s = shares(&state, &[Channel::Email, Channel::Sms], &none, 3, 2000);
    assert!(s[1] > 0.97, "{s:?}");
    // A channel never tried keeps being explored against a mediocre one.
    let state = with_stats(&[("email", 20, 6)]);
    let s = shares(&state, &[Channel::Email, Channel::Webhook], &none, 3, 2000);
    assert!(s[1] > 0.2 && s[1] < 0.8, "{s:?}");
}

#[test]
fn sampling_converges_as_evidence_grows() {
    // The same 70% vs 40% rates, seen over more and more touches.
    let none = ChannelPrior::new();
    let mut last = 0.0;
    for n in [5, 20, 80] {
        let state = with_stats(&[("email", n, n * 4 / 10), ("sms", n, n * 7 / 10)]);
        let s = shares(&state, &[Channel::Email, Channel::Sms], &none, 11, 2000)[1];
        assert!(s > last, "{n}: {s} after {last}");
        last = s;
    }
    assert!(last > 0.99, "{last}");
}

#[test]
fn the_tier_prior_guides_a_new_contact_and_yields_to_their_own_answers() {
    let prior = ChannelPrior::new()
        .with(Channel::Sms, 8.0, 2.0)
        .with(Channel::Email, 2.0, 8.0);
    let s = shares(
        &RelationshipState::default(),
        &[Channel::Email, Channel::Sms],
        &prior,
        5,
        2000,
    );
    assert!(s[1] > 0.9, "{s:?}");
    let state = with_stats(&[("sms", 20, 0), ("email", 20, 15)]);
    let s = shares(&state, &[Channel::Email, Channel::Sms], &prior, 5, 2000);
    assert!(s[0] > 0.9, "{s:?}");
}

#[test]
fn pooled_priors_keep_the_rate_but_not_the_weight() {
    let a = with_stats(&[("sms", 60, 45), ("email", 4, 1)]);
    let b = with_stats(&[("sms", 40, 30)]);
    let prior = ChannelPrior::pooled([&a, &b], 10.0);
    let (ok, failed) = prior.get(Channel::Sms);
    assert!(
        (ok - 7.5).abs() < 1e-9 && (failed - 2.5).abs() < 1e-9,
        "{ok} {failed}"
    );
    // Below the strength nothing is scaled.
    assert_eq!(prior.get(Channel::Email), (1.0, 3.0));
    assert_eq!(prior.get(Channel::Webhook), (0.0, 0.0));
}

#[test]
fn nonsense_prior_counts_are_taken_as_zero() {
    let prior = ChannelPrior::new().with(Channel::Sms, -3.0, f64::NAN).with(
        Channel::Email,
        f64::INFINITY,
        2.0,
    );
    assert_eq!(prior.get(Channel::Sms), (0.0, 0.0));
    assert_eq!(prior.get(Channel::Email), (0.0, 2.0));
    let mut rng = StdRng::seed_from_u64(1);
    let c = choose_channel(
        &RelationshipState::default(),
        &[Channel::Sms, Channel::Email],
        &prior,
        &mut rng,
    );
    assert!(c.is_some());
}
