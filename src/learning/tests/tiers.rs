//! Tier progression: rules, reasons and hysteresis.

use super::*;
use crate::learning::{TierMove, TierRule, review};

fn replies_at(at_days: &[f64]) -> Vec<Signal> {
    at_days
        .iter()
        .flat_map(|&d| touch_answered(ResponseKind::Reply, "email", day(d)))
        .collect()
}

fn moves(effects: &[Effect]) -> Vec<(String, String, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::MoveTier { from, to, reason } => {
                Some((from.clone(), to.clone(), reason.clone()))
            }
            _ => None,
        })
        .collect()
}

fn mv(from: &str, to: &str, reason: &str) -> (String, String, String) {
    (from.into(), to.into(), reason.into())
}

#[test]
fn promotion_needs_the_count_within_the_period() {
    let up = || vec![mv("acquaintance", "friend", "3 replies in 60 days")];
    let cases: &[(&[f64], bool)] = &[
        (&[0.0, 10.0, 20.0], true),
        (&[0.0, 10.0], false),
        // Within means less than: exactly 60 days between first and third is too long.
        (&[0.0, 30.0, 59.99], true),
        (&[0.0, 30.0, 60.0], false),
        (&[0.0, 30.0, 70.0, 80.0], true),
    ];
    for &(at, promoted) in cases {
        let (state, effects) = learn(replies_at(at));
        let want = if promoted { up() } else { vec![] };
        assert_eq!(moves(&effects), want, "{at:?}");
        assert_eq!(state.tier_history().len(), usize::from(promoted), "{at:?}");
    }
}

#[test]
fn reasons_name_what_was_counted() {
    let signals = [
        touch_answered(ResponseKind::Reply, "sms", day(0.0)),
        touch_answered(ResponseKind::Click, "email", day(1.0)),
        touch_answered(ResponseKind::Reply, "sms", day(2.0)),
    ]
    .concat();
    let (state, effects) = learn(signals);
    let reason = "3 responses in 60 days (2 replies, 1 click)";
    assert_eq!(moves(&effects), [mv("acquaintance", "friend", reason)]);
    let last = &state.tier_history()[0];
    assert_eq!(
        (last.at, last.reason.as_str()),
        (day(2.0) + chrono::Duration::hours(1), reason)
    );
}

#[test]
fn refusals_and_bounces_are_not_evidence() {
    let signals = [
        touch_answered(ResponseKind::Reply, "sms", day(0.0)),
        touch_answered(ResponseKind::Negative, "sms", day(1.0)),
        touch_answered(ResponseKind::BounceSoft, "sms", day(2.0)),
        touch_answered(ResponseKind::Reply, "sms", day(3.0)),
    ]
    .concat();
    assert_eq!(moves(&learn(signals).1), []);
}

#[test]
fn demotion_after_long_silence() {
    let cfg = LearningConfig::default();
    let (state, _) = learn(replies_at(&[0.0, 10.0, 20.0]));
    let promoted = state.tier_history()[0].at;
    let last = state.last_interaction().unwrap();
    assert_eq!(last, promoted);
    assert_eq!(
        review(&state, "friend", &cfg, last + chrono::Duration::days(179)),
        None
    );
    let at = last + chrono::Duration::days(183);
    assert_eq!(
        review(&state, "friend", &cfg, at),
        Some(TierMove {
            from: "friend".into(),
            to: "acquaintance".into(),
            at,
            reason: "no interaction for 183 days".into(),
        })
    );
    // Acquaintances have no demotion rule; a contact never seen is never judged.
    assert_eq!(review(&state, "acquaintance", &cfg, at), None);
    assert_eq!(
        review(&RelationshipState::default(), "friend", &cfg, at),
        None
    );
}

#[test]
fn silence_counts_from_the_first_touch_for_a_contact_who_never_answered() {
    let cfg = LearningConfig::default();
    let mut state = RelationshipState::default();
    let mut tier = "friend".to_owned();
    let mut signals = Vec::new();
    for i in 0..20 {
        signals.extend(touch_ignored("email", day(f64::from(i) * 10.0), &cfg));
    }
    let effects = feed(&mut state, &mut tier, signals, &cfg, UTC);
    assert_eq!(
        moves(&effects),
        [mv("friend", "acquaintance", "no interaction for 180 days")]
    );
    assert_eq!(tier, "acquaintance");
    assert_eq!(state.tier_history()[0].at, day(180.0));
}

/// Rules that would flip-flop without hysteresis: two replies promote, ten silent days
/// demote.
fn twitchy() -> LearningConfig {
    LearningConfig {
        rules: vec![
            TierRule::promote("acquaintance", "friend", 2, days(30)),
            TierRule::demote("friend", "acquaintance", days(10)),
        ],
        hold: days(45),
        ..LearningConfig::default()
    }
}

#[test]
fn no_move_within_the_hold() {
    let cfg = twitchy();
    let (state, effects) = learn_with(&cfg, replies_at(&[0.0, 1.0]));
    assert_eq!(moves(&effects).len(), 1);
    let promoted = state.tier_history()[0].at;
    for d in [11, 30, 44] {
        assert_eq!(
            review(&state, "friend", &cfg, promoted + chrono::Duration::days(d)),
            None,
            "day {d}"
        );
    }
    let back = review(
        &state,
        "friend",
        &cfg,
        promoted + chrono::Duration::days(45),
    )
    .unwrap();
    assert_eq!(back.reason, "no interaction for 45 days");
}

#[test]
fn promotion_is_earned_afresh_after_every_move() {
    // With no hold at all, the replies that promoted someone still cannot promote them
    // again along a second rule.
    let cfg = LearningConfig {
        rules: vec![
            TierRule::promote("acquaintance", "friend", 2, days(30)),
            TierRule::promote("friend", "family", 2, days(30)),
        ],
        hold: Duration::ZERO,
        ..LearningConfig::default()
    };
    let (_, effects) = learn_with(&cfg, replies_at(&[0.0, 1.0]));
    assert_eq!(
        moves(&effects),
        [mv("acquaintance", "friend", "2 replies in 30 days")]
    );
    let (_, effects) = learn_with(&cfg, replies_at(&[0.0, 1.0, 2.0]));
    assert_eq!(moves(&effects).len(), 1);
    let (_, effects) = learn_with(&cfg, replies_at(&[0.0, 1.0, 2.0, 3.0]));
    assert_eq!(moves(&effects).len(), 2);
}

#[test]
fn a_contact_on_the_threshold_does_not_flip_flop() {
    // Two replies every 25 days for two years: each burst is enough to promote and each
    // gap long enough to demote.
    let cfg = twitchy();
    let at: Vec<f64> = (0..30)
        .flat_map(|i| [f64::from(i) * 25.0, f64::from(i) * 25.0 + 1.0])
        .collect();
    let mut signals: Vec<Signal> = at
        .iter()
        .flat_map(|&d| {
            [
                touch_answered(ResponseKind::Reply, "email", day(d)),
                touch_ignored("email", day(d + 12.0), &cfg),
            ]
            .concat()
        })
        .collect();
    signals.sort_by_key(Signal::at);
    let (state, effects) = learn_with(&cfg, signals);
    let history = state.tier_history();
    assert_eq!(moves(&effects).len(), history.len());
    assert!(history.len() >= 2, "{history:#?}");
    for pair in history.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= chrono::Duration::days(45),
            "{pair:#?}"
        );
    }
    // Every promotion counted only replies given after the move before it.
    for (i, m) in history.iter().enumerate().filter(|(_, m)| m.to == "friend") {
        let previous = i.checked_sub(1).map(|p| history[p].at);
        let fresh = at
            .iter()
            .map(|&d| day(d) + chrono::Duration::hours(1))
            .filter(|&t| t <= m.at && previous.is_none_or(|p| t > p))
            .count();
        assert!(fresh >= 2, "{m:?} after {previous:?}");
    }
}

#[test]
fn a_move_recorded_by_hand_is_held_and_dated() {
    let cfg = LearningConfig::default();
    let (mut state, _) = learn(replies_at(&[0.0]));
    state.record_move(TierMove {
        from: "acquaintance".into(),
        to: "friend".into(),
        at: day(1.0),
        reason: "set by an operator".into(),
    });
    assert_eq!(state.entered("friend").map(|m| m.at), Some(day(1.0)));
    assert_eq!(state.entered("acquaintance"), None);
    assert_eq!(
        review(&state, "friend", &cfg, day(200.0)).map(|m| m.to),
        Some("acquaintance".into())
    );
    // The hand-made move is held like any other.
    state.record_move(TierMove {
        from: "friend".into(),
        to: "acquaintance".into(),
        at: day(200.0),
        reason: "x".into(),
    });
    let signals = replies_at(&[201.0, 202.0, 203.0]);
    let mut tier = "acquaintance".to_owned();
    let effects = feed(&mut state, &mut tier, signals, &cfg, UTC);
    assert_eq!(moves(&effects), []);
    assert_eq!(
        review(&state, "acquaintance", &cfg, day(230.0)).map(|m| m.to),
        Some("friend".into())
    );
}

#[test]
fn the_first_rule_that_fires_wins() {
    let rules = vec![
        TierRule::promote("acquaintance", "family", 2, days(60)),
        TierRule::promote("acquaintance", "friend", 2, days(60)),
    ];
    let cfg = LearningConfig {
        rules: rules.clone(),
        ..LearningConfig::default()
    };
    let (_, effects) = learn_with(&cfg, replies_at(&[0.0, 1.0]));
    assert_eq!(
        moves(&effects),
        [mv("acquaintance", "family", "2 replies in 60 days")]
    );
    let cfg = LearningConfig {
        rules: rules.into_iter().rev().collect(),
        ..cfg
    };
    let (_, effects) = learn_with(&cfg, replies_at(&[0.0, 1.0]));
    assert_eq!(
        moves(&effects),
        [mv("acquaintance", "friend", "2 replies in 60 days")]
    );
}

fn learn_with(
    cfg: &LearningConfig,
    signals: impl IntoIterator<Item = Signal>,
) -> (RelationshipState, Vec<Effect>) {
    let mut state = RelationshipState::default();
    let mut tier = "acquaintance".to_owned();
    let effects = feed(&mut state, &mut tier, signals, cfg, UTC);
    (state, effects)
}
