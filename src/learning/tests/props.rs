//! Invariants over random signal sequences: whatever arrives, the state stays coherent.

use proptest::prelude::*;

use super::*;
use crate::learning::{TierRule, check_in_cadence};

fn kind() -> impl Strategy<Value = ResponseKind> {
    prop::sample::select(ResponseKind::ALL.to_vec())
}

fn channel() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["email", "sms", "webhook"])
}

/// One step: a touch (answered or ignored) or a loose signal, some hours to some weeks
/// after the last.
#[derive(Debug, Clone)]
enum Step {
    Answered(ResponseKind, &'static str),
    Ignored(&'static str),
    Loose(ResponseKind, &'static str),
    Interaction,
    /// A touch still waiting for its answer.
    Sent(&'static str),
}

fn step() -> impl Strategy<Value = (Step, u32)> {
    let step = prop_oneof![
        4 => (kind(), channel()).prop_map(|(k, c)| Step::Answered(k, c)),
        4 => channel().prop_map(Step::Ignored),
        1 => (kind(), channel()).prop_map(|(k, c)| Step::Loose(k, c)),
        1 => Just(Step::Interaction),
        1 => channel().prop_map(Step::Sent),
    ];
    (step, 1u32..(40 * 24))
}

fn signals(steps: &[(Step, u32)], cfg: &LearningConfig) -> Vec<Signal> {
    let mut at = t0();
    let mut out = Vec::new();
    for (step, hours) in steps {
        at += chrono::Duration::hours(i64::from(*hours));
        match *step {
            Step::Answered(k, c) => out.extend(touch_answered(k, c, at)),
            Step::Ignored(c) => out.extend(touch_ignored(c, at, cfg)),
            Step::Loose(k, c) => out.push(loose(k, c, at)),
            Step::Interaction => out.push(Signal::Interaction { at }),
            Step::Sent(c) => out.push(sent(c, at)),
        }
    }
    out.sort_by_key(Signal::at);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_state_stays_coherent(steps in prop::collection::vec(step(), 0..60)) {
        let cfg = LearningConfig {
            rules: vec![
                TierRule::promote("acquaintance", "friend", 2, days(20)),
                TierRule::promote("friend", "family", 3, days(20)),
                TierRule::demote("family", "friend", days(15)),
                TierRule::demote("friend", "acquaintance", days(15)),
            ],
            hold: days(20),
            ..LearningConfig::default()
        };
        let mut state = RelationshipState::default();
        let mut tier = "acquaintance".to_owned();
        let effects = feed(&mut state, &mut tier, signals(&steps, &cfg), &cfg, UTC);

        for (c, s) in state.channels() {
            prop_assert!(s.responded <= s.sent, "{c}: {s:?}");
        }
        prop_assert_eq!(state.is_sunset(), state.ignored_in_row() >= cfg.sunset_after);
        let base = days(30);
        let max = days(200);
        match check_in_cadence(&state, &cfg, base, max) {
            None => prop_assert!(state.is_sunset()),
            Some(c) => prop_assert!(c >= base && c <= max),
        }
        let history = state.tier_history();
        let moved = effects.iter().filter(|e| matches!(e, Effect::MoveTier { .. })).count();
        prop_assert_eq!(moved, history.len());
        for pair in history.windows(2) {
            prop_assert!(pair[1].at - pair[0].at >= chrono::Duration::days(20));
            prop_assert_eq!(&pair[0].to, &pair[1].from);
        }
        prop_assert_eq!(history.last().map_or("acquaintance", |m| m.to.as_str()), tier.as_str());
        let sunsets = effects.iter().filter(|e| matches!(e, Effect::Sunset { .. })).count();
        let revivals = effects.iter().filter(|e| matches!(e, Effect::Revived)).count();
        prop_assert!(sunsets == revivals || sunsets == revivals + 1);
        prop_assert_eq!(sunsets == revivals + 1, state.is_sunset());
        prop_assert!(state.engagement(&cfg, day(10_000.0)).is_finite());
    }
}
