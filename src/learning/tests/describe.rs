//! The learned state in words.

use super::*;
use crate::learning::describe;

fn reply(channel: &str, at: &str) -> [Signal; 2] {
    let at = utc(at);
    let sent_at = at - chrono::Duration::hours(2);
    [
        sent(channel, sent_at),
        answer(ResponseKind::Reply, channel, sent_at, at),
    ]
}

#[test]
fn the_issue_example() {
    let cfg = LearningConfig::default();
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    // 18:30Z is 19:30 in Berlin before the clocks change on 29 March.
    let mut signals = [
        reply("sms", "2026-02-10T18:30:00Z"),
        reply("sms", "2026-02-20T18:30:00Z"),
        reply("sms", "2026-03-02T18:30:00Z"),
        reply("sms", "2026-03-10T18:30:00Z"),
        reply("sms", "2026-03-20T18:30:00Z"),
        reply("email", "2026-03-25T18:30:00Z"),
    ]
    .concat();
    for (channel, at) in [
        ("sms", "2026-04-01T09:00:00Z"),
        ("sms", "2026-04-20T09:00:00Z"),
        ("email", "2026-05-10T09:00:00Z"),
    ] {
        signals.extend(touch_ignored(channel, utc(at), &cfg));
    }
    let mut state = RelationshipState::default();
    let mut tier = "acquaintance".to_owned();
    feed(&mut state, &mut tier, signals, &cfg, berlin);
    assert_eq!(tier, "friend");
    assert_eq!(
        describe(&state, &tier, &cfg, berlin),
        [
            "prefers SMS (5 of 6 responses)",
            "answers around 19:00",
            "friend since 2026-03-02 (3 replies in 60 days)",
            "backed off: 3 ignored in a row",
            "last interaction 2026-03-25",
        ]
    );
    // Dates are the contact's: in Tokyo the promotion was already on the 3rd.
    let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
    assert!(
        describe(&state, &tier, &cfg, tokyo)
            .contains(&"friend since 2026-03-03 (3 replies in 60 days)".to_owned())
    );
}

#[test]
fn nothing_is_claimed_without_evidence() {
    let cfg = LearningConfig::default();
    assert_eq!(
        describe(&RelationshipState::default(), "friend", &cfg, UTC),
        Vec::<String>::new()
    );
    let (one, _) = learn(reply("sms", "2026-02-10T18:30:00Z"));
    assert_eq!(
        describe(&one, "acquaintance", &cfg, UTC),
        ["last interaction 2026-02-10"]
    );
    // One answer each: no preference.
    let (tied, _) = learn(
        [
            reply("sms", "2026-02-10T18:30:00Z"),
            reply("email", "2026-02-11T18:30:00Z"),
        ]
        .concat(),
    );
    assert!(
        !describe(&tied, "acquaintance", &cfg, UTC)
            .iter()
            .any(|l| l.starts_with("prefers"))
    );
}

#[test]
fn equal_answers_go_to_the_better_rate() {
    let cfg = LearningConfig::default();
    let mut signals = [
        reply("sms", "2026-02-10T08:00:00Z"),
        reply("sms", "2026-02-11T08:00:00Z"),
    ]
    .concat();
    signals.extend(
        [
            reply("email", "2026-02-12T08:00:00Z"),
            reply("email", "2026-02-13T08:00:00Z"),
        ]
        .concat(),
    );
    for i in 0..8 {
        signals.push(sent(
            "email",
            utc("2026-02-14T08:00:00Z") + chrono::Duration::days(i),
        ));
    }
    let (state, _) = learn(signals);
    let lines = describe(&state, "friend", &cfg, UTC);
    assert_eq!(lines[0], "prefers SMS (2 of 4 responses)");
}

#[test]
fn a_sunset_and_a_tier_set_elsewhere() {
    let cfg = LearningConfig::default();
    let mut signals = [
        reply("email", "2026-02-10T08:00:00Z"),
        reply("email", "2026-02-11T08:00:00Z"),
        reply("email", "2026-02-12T08:00:00Z"),
    ]
    .concat();
    for i in 0..6 {
        signals.extend(touch_ignored(
            "email",
            utc("2026-03-01T08:00:00Z") + chrono::Duration::days(i * 10),
            &cfg,
        ));
    }
    let (state, _) = learn(signals);
    let lines = describe(&state, "family", &cfg, UTC);
    assert!(
        lines.contains(
            &"sunset: 6 ignored in a row; check-ins stop until the contact interacts".to_owned()
        ),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("backed off")),
        "{lines:#?}"
    );
    // The contact's tier was changed to family outside the learner: no "since".
    assert!(!lines.iter().any(|l| l.contains(" since ")), "{lines:#?}");
    assert!(
        describe(&state, "friend", &cfg, UTC)
            .iter()
            .any(|l| l.starts_with("friend since 2026-02-12"))
    );
}
