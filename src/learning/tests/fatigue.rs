//! Fatigue: back-off, then sunset, then revival.

use super::*;
use crate::learning::{check_in_cadence, fatigue::backoff_factor};

const BASE: u64 = 30;

/// The cadence, in days, after each of `n` ignored touches (index 0: before any).
fn cadences(cfg: &LearningConfig, n: u32, max_days: u64) -> Vec<Option<u64>> {
    let mut state = RelationshipState::default();
    let mut tier = "acquaintance".to_owned();
    let mut out = Vec::new();
    for i in 0..=n {
        let c = check_in_cadence(&state, cfg, days(BASE), days(max_days));
        out.push(c.map(|d| d.as_secs() / 86_400));
        let touch = touch_ignored("email", day(f64::from(i) * 10.0), cfg);
        feed(&mut state, &mut tier, touch, cfg, UTC);
    }
    out
}

#[test]
fn the_cadence_doubles_then_stops() {
    let cfg = LearningConfig::default();
    assert_eq!(
        cadences(&cfg, 7, 365),
        [
            Some(30),
            Some(30),
            Some(60),
            Some(120),
            Some(240),
            None,
            None,
            None
        ]
    );
}

#[test]
fn the_back_off_is_bounded_by_the_tier_and_the_factor() {
    let cfg = LearningConfig::default();
    assert_eq!(
        cadences(&cfg, 5, 100),
        [Some(30), Some(30), Some(60), Some(100), Some(100), None]
    );
    let cfg = LearningConfig {
        max_backoff: 4,
        ..LearningConfig::default()
    };
    assert_eq!(
        cadences(&cfg, 5, 365),
        [Some(30), Some(30), Some(60), Some(120), Some(120), None]
    );
    // A tier bound below the cadence never shortens it.
    assert_eq!(
        cadences(&LearningConfig::default(), 2, 10),
        [Some(30), Some(30), Some(30)]
    );
}

#[test]
fn other_thresholds() {
    let cfg = LearningConfig {
        fatigue_after: 1,
        sunset_after: 3,
        ..LearningConfig::default()
    };
    assert_eq!(
        cadences(&cfg, 3, 365),
        [Some(30), Some(60), Some(120), None]
    );
    // Equal thresholds: straight from the base to the sunset.
    let cfg = LearningConfig {
        fatigue_after: 3,
        sunset_after: 3,
        ..LearningConfig::default()
    };
    assert_eq!(cadences(&cfg, 3, 365), [Some(30), Some(30), Some(30), None]);
    assert_eq!(
        backoff_factor(
            u32::MAX,
            &LearningConfig {
                max_backoff: u32::MAX,
                ..cfg
            }
        ),
        1 << 31
    );
}

#[test]
fn effects_name_each_step_and_the_sunset_only_once() {
    let cfg = LearningConfig::default();
    let mut signals = Vec::new();
    for i in 0..8 {
        signals.extend(touch_ignored("sms", day(f64::from(i) * 10.0), &cfg));
    }
    let (state, effects) = learn(signals);
    let backed = |factor: u32, n: u32| Effect::BackedOff {
        factor,
        reason: format!("{n} ignored in a row"),
    };
    assert_eq!(
        effects,
        [
            backed(2, 2),
            backed(4, 3),
            backed(8, 4),
            Effect::Sunset {
                reason: "5 ignored in a row".into()
            },
        ]
    );
    assert_eq!(state.ignored_in_row(), 8);
}

#[test]
fn an_answer_restores_the_base_cadence() {
    let cfg = LearningConfig::default();
    let mut signals = Vec::new();
    for i in 0..3 {
        signals.extend(touch_ignored("sms", day(f64::from(i) * 10.0), &cfg));
    }
    let (state, _) = learn(signals.clone());
    assert_eq!(
        check_in_cadence(&state, &cfg, days(BASE), days(365)),
        Some(days(120))
    );
    signals.extend(touch_answered(ResponseKind::Reply, "sms", day(40.0)));
    let (state, _) = learn(signals.clone());
    assert_eq!(
        check_in_cadence(&state, &cfg, days(BASE), days(365)),
        Some(days(BASE))
    );
    // Counting starts again from zero.
    signals.extend(touch_ignored("sms", day(50.0), &cfg));
    signals.extend(touch_ignored("sms", day(60.0), &cfg));
    let (state, _) = learn(signals);
    assert_eq!(
        check_in_cadence(&state, &cfg, days(BASE), days(365)),
        Some(days(60))
    );
}
