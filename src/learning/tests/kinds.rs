//! Response kinds, and the config's own checks.

use super::*;
use crate::domain::Channel;
use crate::learning::{RuleKind, TierRule, config::words};

#[test]
fn kinds_round_trip_through_their_names() {
    for kind in ResponseKind::ALL {
        assert_eq!(kind.as_str().parse::<ResponseKind>(), Ok(kind));
        assert_eq!(
            kind.as_str().to_uppercase().parse::<ResponseKind>(),
            Ok(kind)
        );
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"{}\"", kind.as_str()));
        assert_eq!(kind.to_string(), kind.as_str());
    }
    assert_eq!("STOP".parse(), Ok(ResponseKind::Unsubscribe));
    assert_eq!(" stop ".parse(), Ok(ResponseKind::Unsubscribe));
    let err = "purchase".parse::<ResponseKind>().unwrap_err().to_string();
    assert!(err.contains("\"purchase\""), "{err}");
    assert!(err.contains("bounce_hard"), "{err}");
}

#[test]
fn kinds_fall_in_exactly_one_class_except_soft_bounces() {
    use ResponseKind::*;
    let negative: Vec<_> = ResponseKind::ALL
        .into_iter()
        .filter(|k| k.is_negative())
        .collect();
    let engaged: Vec<_> = ResponseKind::ALL
        .into_iter()
        .filter(|k| k.is_engaged())
        .collect();
    assert_eq!(negative, [Negative, Unsubscribe, BounceHard, Complaint]);
    assert_eq!(engaged, [Reply, Click, Positive]);
    assert!(!BounceSoft.is_negative() && !BounceSoft.is_engaged());
}

/// `suppresses` names the addresses exactly for the kinds the learner suppresses for.
#[test]
fn the_kinds_that_suppress_are_the_ones_the_learner_suppresses_for() {
    let cfg = LearningConfig::default();
    for kind in ResponseKind::ALL {
        let (_, effects) = apply(
            &RelationshipState::default(),
            &loose(kind, "email", t0()),
            "friend",
            &cfg,
            UTC,
            t0(),
        );
        let learner = effects.iter().any(|e| matches!(e, Effect::Suppress { .. }));
        assert_eq!(
            kind.suppresses(Channel::Email, Channel::Email),
            learner,
            "{kind}"
        );
    }
    use ResponseKind::*;
    assert!(
        BounceHard.suppresses(Channel::Email, Channel::Email)
            && !BounceHard.suppresses(Channel::Email, Channel::Sms)
    );
    assert!(Complaint.suppresses(Channel::Email, Channel::Sms));
    assert_eq!(BounceHard.label(), "hard bounce");
}

#[test]
fn counted_reads_in_words() {
    assert_eq!(ResponseKind::Reply.counted(1), "1 reply");
    assert_eq!(ResponseKind::Reply.counted(3), "3 replies");
    assert_eq!(ResponseKind::Positive.counted(2), "2 positive responses");
}

#[test]
fn durations_read_in_days_when_whole() {
    assert_eq!(words(days(60)), "60 days");
    assert_eq!(words(days(1)), "1 day");
    assert_eq!(words(Duration::from_secs(36 * 3600)), "1d12h");
    assert_eq!(words(Duration::from_secs(3600)), "1h");
}

#[test]
fn the_default_config_is_coherent() {
    let cfg = LearningConfig::default();
    assert_eq!(cfg.issues(), Vec::<String>::new());
    assert_eq!(cfg.ignored_after(t0()), day(7.0));
    assert_eq!(cfg.weights.of(ResponseKind::Complaint), -10.0);
}

#[test]
fn every_config_problem_is_reported_at_once() {
    let mut cfg = LearningConfig {
        half_life: Duration::ZERO,
        fatigue_after: 4,
        sunset_after: 3,
        max_backoff: 0,
        rules: vec![
            TierRule::promote("friend", "friend", 0, Duration::ZERO),
            TierRule::demote("friend", "acquaintance", Duration::ZERO),
        ],
        ..LearningConfig::default()
    };
    cfg.weights.unsubscribe = 2.0;
    let issues = cfg.issues();
    for needle in [
        "half_life",
        "sunset_after (3) must not be below fatigue_after (4)",
        "max_backoff",
        "weights.unsubscribe is 2",
        "rules[0] moves \"friend\" to itself",
        "rules[0]: responses",
        "rules[0]: within",
        "rules[1]: silent_for",
    ] {
        assert!(
            issues.iter().any(|i| i.contains(needle)),
            "{needle} missing from {issues:#?}"
        );
    }
    assert_eq!(issues.len(), 8, "{issues:#?}");
}

#[test]
fn evidence_is_kept_for_the_longest_promotion_window() {
    let mut cfg = LearningConfig::default();
    assert_eq!(cfg.evidence_horizon(), days(60));
    cfg.rules
        .push(TierRule::promote("friend", "family", 10, days(365)));
    assert_eq!(cfg.evidence_horizon(), days(365));
    cfg.rules
        .retain(|r| matches!(r.kind, RuleKind::Demote { .. }));
    assert_eq!(cfg.evidence_horizon(), Duration::ZERO);
}
