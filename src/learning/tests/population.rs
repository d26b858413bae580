//! A simulated population with known true preferences, run through the learner the way
//! the daemon would: choose a channel, send, and learn from the reply or the silence.

use crate::domain::Channel;
use rand::{Rng, SeedableRng, rngs::StdRng};

use super::*;
use crate::{
    domain::time::local_instant,
    learning::{ChannelPrior, best_hour, check_in_cadence, choose_channel, posterior_mean},
};

const CHANNELS: [Channel; 3] = Channel::ALL;
const ZONES: [&str; 4] = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC"];
const TOUCHES: u32 = 40;
/// The send window the simulated tier uses, `[start, end)`.
const WINDOW: (u32, u32) = (9, 18);

struct Truth {
    /// Reply probability per channel, in `CHANNELS` order.
    rates: [f64; 3],
    /// The local hour replies cluster around.
    hour: u32,
    zone: Tz,
}

impl Truth {
    fn random(rng: &mut StdRng) -> Self {
        let best = rng.random_range(0..3);
        let mut rates = [0.0; 3];
        for (i, r) in rates.iter_mut().enumerate() {
            *r = if i == best {
                rng.random_range(0.55..0.85)
            } else {
                rng.random_range(0.05..0.30)
            };
        }
        Self {
            rates,
            hour: rng.random_range(WINDOW.0..WINDOW.1),
            zone: ZONES[rng.random_range(0..ZONES.len())].parse().unwrap(),
        }
    }
    fn best(&self) -> Channel {
        let i = (0..3)
            .max_by(|&a, &b| self.rates[a].total_cmp(&self.rates[b]))
            .unwrap();
        CHANNELS[i]
    }
}

struct Run {
    state: RelationshipState,
    tier: String,
    effects: Vec<Effect>,
    /// The channel chosen for each touch.
    chosen: Vec<Channel>,
    /// The cadence (in days, `None` once sunset) before each touch.
    cadences: Vec<Option<u64>>,
}

/// `TOUCHES` touches nine days apart, each answered (at the true hour, give or take
/// one, on the next local day) with the chosen channel's true probability.
fn simulate(truth: &Truth, cfg: &LearningConfig, rng: &mut StdRng) -> Run {
    let prior = ChannelPrior::new();
    let mut run = Run {
        state: RelationshipState::default(),
        tier: "acquaintance".into(),
        effects: Vec::new(),
        chosen: Vec::new(),
        cadences: Vec::new(),
    };
    for k in 0..TOUCHES {
        let cadence = check_in_cadence(&run.state, cfg, days(30), days(365));
        run.cadences.push(cadence.map(|d| d.as_secs() / 86_400));
        let channel = choose_channel(&run.state, &CHANNELS, &prior, rng).unwrap();
        run.chosen.push(channel);
        let sent_at = day(f64::from(k) * 9.0);
        let i = CHANNELS.iter().position(|c| *c == channel).unwrap();
        let outcome = if rng.random_bool(truth.rates[i]) {
            let noise: i32 = match rng.random_range(0..10) {
                0..=5 => 0,
                6 | 7 => -1,
                _ => 1,
            };
            let minute = (truth.hour as i32 + noise) as u32 * 60 + rng.random_range(0..60);
            let next_day = sent_at
                .with_timezone(&truth.zone)
                .date_naive()
                .succ_opt()
                .unwrap();
            let at = local_instant(next_day, minute, truth.zone);
            answer(ResponseKind::Reply, channel.as_str(), sent_at, at)
        } else {
            ignored(channel.as_str(), cfg.ignored_after(sent_at))
        };
        let effects = feed(
            &mut run.state,
            &mut run.tier,
            [sent(channel.as_str(), sent_at), outcome],
            cfg,
            truth.zone,
        );
        run.effects.extend(effects);
    }
    run
}

fn learned_channel(state: &RelationshipState) -> Channel {
    let none = ChannelPrior::new();
    CHANNELS
        .into_iter()
        .max_by(|a, b| {
            posterior_mean(state, *a, &none).total_cmp(&posterior_mean(state, *b, &none))
        })
        .unwrap()
}

#[test]
fn most_of_a_population_is_learned() {
    let cfg = LearningConfig::default();
    let mut rng = StdRng::seed_from_u64(2026);
    let n = 300;
    let (mut channel_ok, mut hour_ok, mut exploiting) = (0, 0, 0);
    for _ in 0..n {
        let truth = Truth::random(&mut rng);
        let run = simulate(&truth, &cfg, &mut rng);
        channel_ok += usize::from(learned_channel(&run.state) == truth.best());
        let hour = best_hour(
            &run.state,
            WINDOW.0,
            WINDOW.1,
            None,
            cfg.min_hour_observations,
        );
        hour_ok += usize::from(hour == Some(truth.hour));
        let last = &run.chosen[run.chosen.len() - 10..];
        let mode = CHANNELS
            .into_iter()
            .max_by_key(|c| last.iter().filter(|x| *x == c).count())
            .unwrap();
        exploiting += usize::from(mode == truth.best());
    }
    let share = |k: usize| k as f64 / f64::from(n);
    assert!(
        share(channel_ok) >= 0.8,
        "channel learned for {channel_ok} of {n}"
    );
    assert!(share(hour_ok) >= 0.8, "hour learned for {hour_ok} of {n}");
    assert!(
        share(exploiting) >= 0.8,
        "best channel chosen most in the last 10 for {exploiting} of {n}"
    );
}

#[test]
fn a_contact_who_ignores_everything_is_backed_off_then_sunset() {
    let cfg = LearningConfig::default();
    let mut rng = StdRng::seed_from_u64(7);
    let truth = Truth {
        rates: [0.0; 3],
        hour: 12,
        zone: chrono_tz::UTC,
    };
    let run = simulate(&truth, &cfg, &mut rng);
    assert_eq!(
        run.cadences[..6],
        [Some(30), Some(30), Some(60), Some(120), Some(240), None]
    );
    assert!(run.cadences[6..].iter().all(Option::is_none));
    let sunsets = run
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::Sunset { .. }))
        .count();
    let backoffs = run
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::BackedOff { .. }))
        .count();
    assert_eq!((backoffs, sunsets), (3, 1), "{:#?}", run.effects);
    assert!(run.state.is_sunset());
    assert!(run.state.engagement(&cfg, day(400.0)) < 0.0);
    // Channels are still explored evenly: silence everywhere teaches no preference.
    for c in CHANNELS {
        assert!(
            run.chosen.iter().filter(|x| **x == c).count() >= 5,
            "{c}: {:?}",
            run.chosen
        );
    }
}

#[test]
fn a_contact_who_replies_is_promoted_once() {
    let cfg = LearningConfig::default();
    let mut rng = StdRng::seed_from_u64(11);
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let truth = Truth {
        rates: [0.2, 1.0, 0.2],
        hour: 19,
        zone: berlin,
    };
    let run = simulate(&truth, &cfg, &mut rng);
    let moves: Vec<_> = run
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::MoveTier { .. }))
        .collect();
    assert_eq!(moves.len(), 1, "{moves:#?}");
    assert_eq!(run.tier, "friend");
    assert_eq!(run.state.tier_history().len(), 1);
    assert!(run.state.tier_history()[0].reason.ends_with("in 60 days"));
    // Nor demoted afterwards, even when asked long after the last touch but within the
    // silence the rule allows.
    let last = run.state.last_interaction().unwrap();
    assert_eq!(
        crate::learning::review(
            &run.state,
            &run.tier,
            &cfg,
            last + chrono::Duration::days(150)
        ),
        None
    );
    assert_eq!(learned_channel(&run.state), Channel::Sms);
    // The hour is learned in the contact's own zone; 19:00 is outside 09-18, so the
    // window's last hour, and the whole-day answer hour is 19.
    assert_eq!(
        best_hour(
            &run.state,
            WINDOW.0,
            WINDOW.1,
            None,
            cfg.min_hour_observations
        ),
        Some(17)
    );
    assert_eq!(
        crate::learning::answer_hour(&run.state, cfg.min_hour_observations),
        Some(19)
    );
}
