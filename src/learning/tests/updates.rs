//! `apply`: engagement decay, negative signals, channel credit, hours, interactions.

use super::*;
use crate::domain::Channel;
use crate::learning::Weights;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn engagement_halves_every_half_life() {
    let cfg = LearningConfig::default();
    let (state, _) = learn(touch_answered(ResponseKind::Reply, "email", day(0.0)));
    let answered = day(0.0) + chrono::Duration::hours(1);
    assert!(close(state.engagement(&cfg, answered), 3.0));
    assert!(close(
        state.engagement(&cfg, answered + chrono::Duration::days(90)),
        1.5
    ));
    assert!(close(
        state.engagement(&cfg, answered + chrono::Duration::days(180)),
        0.75
    ));
    assert!(close(
        state.engagement(&cfg, answered + chrono::Duration::days(45)),
        3.0 / 2f64.sqrt()
    ));
    // Reading it at an earlier instant never inflates it.
    assert!(close(state.engagement(&cfg, day(0.0)), 3.0));

    // The next signal decays first, then adds its weight.
    let later = answered + chrono::Duration::days(90);
    let (state, _) = apply(
        &state,
        &loose(ResponseKind::Positive, "sms", later),
        "acquaintance",
        &cfg,
        UTC,
        later,
    );
    assert!(close(state.engagement(&cfg, later), 1.5 + 4.0));
}

#[test]
fn a_late_signal_adds_its_weight_without_moving_clocks_back() {
    let cfg = LearningConfig::default();
    let (state, _) = learn([loose(ResponseKind::Reply, "sms", day(10.0))]);
    let (state, _) = apply(
        &state,
        &loose(ResponseKind::Click, "email", day(5.0)),
        "acquaintance",
        &cfg,
        UTC,
        day(10.0),
    );
    assert!(close(state.engagement(&cfg, day(10.0)), 4.0));
    assert_eq!(state.last_interaction(), Some(day(10.0)));
    assert_eq!(state.first_seen(), Some(day(5.0)));
}

#[test]
fn each_kind_acts_on_its_own() {
    use ResponseKind::*;
    let w = Weights::default();
    let cases: [(ResponseKind, f64, Vec<Effect>, bool); 8] = [
        (Reply, w.reply, vec![], true),
        (Click, w.click, vec![], true),
        (Positive, w.positive, vec![], true),
        (Negative, w.negative, vec![], false),
        (
            Unsubscribe,
            w.unsubscribe,
            vec![Effect::WithdrawConsent {
                channel: Channel::Sms,
            }],
            false,
        ),
        (
            BounceHard,
            w.bounce_hard,
            vec![Effect::Suppress {
                reason: "hard bounce on SMS".into(),
            }],
            false,
        ),
        (BounceSoft, w.bounce_soft, vec![], false),
        (
            Complaint,
            w.complaint,
            vec![Effect::Suppress {
                reason: "complaint on SMS".into(),
            }],
            false,
        ),
    ];
    let cfg = LearningConfig::default();
    for (kind, weight, want, interaction) in cases {
        let (state, effects) = learn(touch_answered(kind, "sms", day(0.0)));
        let at = day(0.0) + chrono::Duration::hours(1);
        assert!(close(state.engagement(&cfg, at), weight), "{kind}");
        assert_eq!(effects, want, "{kind}");
        assert_eq!(state.last_interaction().is_some(), interaction, "{kind}");
        assert_eq!(
            state.channel(Channel::Sms).responded,
            u32::from(interaction),
            "{kind}"
        );
        assert_eq!(
            state.hours().iter().sum::<u32>(),
            u32::from(interaction),
            "{kind}"
        );
        assert_eq!(interaction, kind.is_engaged(), "{kind}");
    }
}

#[test]
fn negative_signals_drop_engagement_at_once_and_do_not_revive() {
    let cfg = LearningConfig::default();
    let mut signals = Vec::new();
    for i in 0..4 {
        signals.push(loose(ResponseKind::Reply, "email", day(f64::from(i))));
    }
    for i in 0..5 {
        signals.extend(touch_ignored(
            "email",
            day(10.0 + 10.0 * f64::from(i)),
            &cfg,
        ));
    }
    let (state, _) = learn(signals);
    assert!(state.is_sunset());
    let before = state.engagement(&cfg, day(60.0));
    for kind in [
        ResponseKind::Negative,
        ResponseKind::BounceSoft,
        ResponseKind::Complaint,
    ] {
        let (next, effects) = apply(
            &state,
            &loose(kind, "email", day(60.0)),
            "friend",
            &cfg,
            UTC,
            day(60.0),
        );
        assert!(next.engagement(&cfg, day(60.0)) < before, "{kind}");
        assert!(next.is_sunset(), "{kind}");
        assert_eq!(next.ignored_in_row(), 5, "{kind}");
        assert!(!effects.contains(&Effect::Revived), "{kind}");
    }
}

#[test]
fn an_interaction_resets_fatigue_and_lifts_a_sunset_once() {
    let cfg = LearningConfig::default();
    let mut signals = Vec::new();
    for i in 0..6 {
        signals.extend(touch_ignored("email", day(10.0 * f64::from(i)), &cfg));
    }
    let (state, _) = learn(signals);
    assert!(state.is_sunset());
    for signal in [
        Signal::Interaction { at: day(70.0) },
        loose(ResponseKind::Click, "email", day(70.0)),
    ] {
        let (next, effects) = apply(&state, &signal, "acquaintance", &cfg, UTC, day(70.0));
        assert_eq!(effects, [Effect::Revived]);
        assert!(!next.is_sunset());
        assert_eq!(next.ignored_in_row(), 0);
        assert_eq!(next.last_interaction(), Some(day(70.0)));
        let (again, effects) = apply(&next, &signal, "acquaintance", &cfg, UTC, day(70.0));
        assert_eq!(effects, []);
        assert_eq!(again.ignored_in_row(), 0);
    }
    // Below the sunset an interaction resets quietly.
    let (state, _) = learn(touch_ignored("sms", day(0.0), &cfg));
    let (next, effects) = apply(
        &state,
        &Signal::Interaction { at: day(9.0) },
        "acquaintance",
        &cfg,
        UTC,
        day(9.0),
    );
    assert_eq!((next.ignored_in_row(), effects), (0, vec![]));
}

#[test]
fn a_touch_is_credited_once_and_never_beyond_what_was_sent() {
    let at = day(0.0);
    let (state, _) = learn([
        sent("sms", at),
        sent("sms", day(0.05)),
        answer(ResponseKind::Reply, "sms", at, day(0.1)),
        answer(ResponseKind::Click, "sms", at, day(0.2)),
        // Unattributed: engagement and hour, no channel credit.
        loose(ResponseKind::Reply, "sms", day(0.3)),
        // A touch on a channel never sent: nothing to credit.
        answer(ResponseKind::Reply, "webhook", at, day(0.4)),
        sent("email", day(1.0)),
        sent("email", day(2.0)),
        answer(ResponseKind::Reply, "email", day(1.0), day(3.0)),
        answer(ResponseKind::Positive, "email", day(2.0), day(3.0)),
    ]);
    let stats = |c| {
        let s = state.channel(c);
        (s.sent, s.responded)
    };
    assert_eq!(stats(Channel::Sms), (2, 1));
    assert_eq!(stats(Channel::Email), (2, 2));
    assert_eq!(stats(Channel::Webhook), (0, 0));
    assert_eq!(state.hours().iter().sum::<u32>(), 6);
    assert_eq!(state.last_touch(), Some(day(2.0)));
}

#[test]
fn hours_are_the_contacts_local_hours() {
    let cfg = LearningConfig::default();
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
    // 17:00Z is 19:00 in Berlin in summer, 18:00 in winter, 02:00 next day in Tokyo.
    for (at, zone, hour) in [
        ("2026-07-01T17:00:00Z", berlin, 19),
        ("2026-01-15T17:30:00Z", berlin, 18),
        ("2026-07-01T17:00:00Z", tokyo, 2),
        ("2026-07-01T17:59:59Z", UTC, 17),
    ] {
        let signal = loose(ResponseKind::Reply, "sms", utc(at));
        let (state, _) = apply(
            &RelationshipState::default(),
            &signal,
            "friend",
            &cfg,
            zone,
            utc(at),
        );
        let mut want = [0; 24];
        want[hour] = 1;
        assert_eq!(state.hours(), &want, "{at} in {zone}");
    }
}

#[test]
fn the_hour_histogram_forgets_slowly() {
    let signals = (0..241).map(|i| loose(ResponseKind::Click, "email", day(f64::from(i))));
    let (state, _) = learn(signals);
    // 240 at 10:00Z, halved to 120 when the 241st arrived.
    assert_eq!(state.hours()[10], 121);
    assert_eq!(state.hours().iter().sum::<u32>(), 121);
}

#[test]
fn state_survives_json() {
    let cfg = LearningConfig::default();
    let mut signals = Vec::new();
    for i in 0..3 {
        signals.extend(touch_answered(
            ResponseKind::Reply,
            "sms",
            day(f64::from(i) * 5.0),
        ));
        signals.extend(touch_ignored("email", day(f64::from(i) * 5.0 + 1.0), &cfg));
    }
    let (state, effects) = learn(signals);
    assert!(!state.tier_history().is_empty(), "{effects:?}");
    let json = serde_json::to_string(&state).unwrap();
    let back: RelationshipState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, state);
    // A state from an older version, with fields missing, still reads.
    let old: RelationshipState = serde_json::from_str(r#"{"ignored_in_row": 3}"#).unwrap();
    assert_eq!(old.ignored_in_row(), 3);
    assert_eq!(old.channel(Channel::Sms).sent, 0);
}

#[test]
fn effects_read_as_timeline_entries() {
    let cases = [
        (
            Effect::WithdrawConsent {
                channel: Channel::Sms,
            },
            "consent withdrawn on SMS",
        ),
        (
            Effect::Suppress {
                reason: "complaint on email".into(),
            },
            "suppressed: complaint on email",
        ),
        (
            Effect::MoveTier {
                from: "acquaintance".into(),
                to: "friend".into(),
                reason: "3 replies in 60 days".into(),
            },
            "moved from acquaintance to friend: 3 replies in 60 days",
        ),
        (
            Effect::BackedOff {
                factor: 4,
                reason: "3 ignored in a row".into(),
            },
            "check-ins backed off to 4x the cadence: 3 ignored in a row",
        ),
        (
            Effect::Sunset {
                reason: "5 ignored in a row".into(),
            },
            "sunset: 5 ignored in a row; check-ins stop until the contact interacts",
        ),
        (
            Effect::Revived,
            "revived: the contact interacted; check-ins resume",
        ),
    ];
    for (effect, words) in cases {
        assert_eq!(effect.to_string(), words);
    }
    let json = serde_json::to_value(Effect::WithdrawConsent {
        channel: Channel::Sms,
    })
    .unwrap();
    assert_eq!(
        json,
        serde_json::json!({"effect": "withdraw_consent", "channel": "sms"})
    );
}

#[test]
fn a_flood_of_clicks_keeps_the_state_small() {
    let clicks = (0..300).map(|i| loose(ResponseKind::Click, "email", day(f64::from(i) / 1000.0)));
    let (state, effects) = learn(clicks);
    assert_eq!(state.evidence().len(), 256);
    assert_eq!(effects.len(), 1, "promoted once: {effects:?}");
}
