//! `[learning]`: the shipped defaults, every key mapped onto the learner, and every
//! mistake reported at once, naming its key and file.

use std::{path::Path, time::Duration};

use rapport::{
    config::Config,
    learning::{LearningConfig, RuleKind, TierRule},
};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const DAY: u64 = 86_400;

fn load(overlay: &str) -> Result<Config, rapport::config::ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("overlay.toml");
    std::fs::write(&file, overlay).unwrap();
    Config::load_with(
        Path::new(&format!("{REPO}/config/rapport.toml")),
        Some(&file),
        [(
            "RAPPORT__TEMPLATES__DIR".to_owned(),
            format!("{REPO}/templates"),
        )],
    )
}

#[test]
fn without_a_section_the_defaults_apply_with_the_shipped_tiers() {
    let cfg = load("").unwrap();
    assert!(cfg.learning.enabled);
    assert_eq!(cfg.learning.model, LearningConfig::default());
}

#[test]
fn every_key_reaches_the_learner() {
    let cfg = load(
        r#"
[learning]
enabled = false
response_window = "3d"
half_life = "30d"
fatigue_after = 3
sunset_after = 6
max_backoff = 4
min_hour_observations = 2
hold = "10d"
weights = { reply = 5.0, ignored = -1.0, complaint = -20.0 }
rules = [
  { from = "acquaintance", to = "friend", responses = 2, within = "30d" },
  { from = "friend", to = "family", responses = 6, within = "90d" },
  { from = "family", to = "friend", silent_for = "365d" },
]
"#,
    )
    .unwrap();
    let m = &cfg.learning.model;
    assert!(!cfg.learning.enabled);
    assert_eq!(m.response_window, Duration::from_secs(3 * DAY));
    assert_eq!(m.half_life, Duration::from_secs(30 * DAY));
    assert_eq!((m.fatigue_after, m.sunset_after, m.max_backoff), (3, 6, 4));
    assert_eq!(m.min_hour_observations, 2);
    assert_eq!(m.hold, Duration::from_secs(10 * DAY));
    assert_eq!(
        (m.weights.reply, m.weights.ignored, m.weights.complaint),
        (5.0, -1.0, -20.0)
    );
    assert_eq!(m.weights.click, 1.0, "an unset weight keeps its default");
    assert_eq!(
        m.rules,
        [
            TierRule::promote("acquaintance", "friend", 2, Duration::from_secs(30 * DAY)),
            TierRule::promote("friend", "family", 6, Duration::from_secs(90 * DAY)),
            TierRule::demote("family", "friend", Duration::from_secs(365 * DAY)),
        ]
    );
    assert!(matches!(m.rules[2].kind, RuleKind::Demote { .. }));
}

#[test]
fn every_mistake_is_named_at_once() {
    let err = load(
        r#"
[learning]
response_window = "0s"
half_life = "soon"
fatigue_after = 4
sunset_after = 2
weights = { reply = 3.0, unsubscribe = 1.0, shrug = 2.0 }
rules = [
  { from = "acquaintance", to = "stranger", responses = 2, within = "30d" },
  { from = "friend", to = "acquaintance" },
  { from = "friend", to = "family", responses = 3 },
  { from = "friend", to = "family", responses = 3, within = "9d", silent_for = "9d" },
  { from = "friend", to = "friend", silent_for = "9d" },
  { from = "friend", to = "family", responses = 0, within = "0d" },
]
"#,
    )
    .unwrap_err();
    let text = err.to_string();
    for expected in [
        "learning.response_window: response_window must be longer than 0",
        "learning.half_life:",
        "learning.sunset_after: sunset_after (2) must not be below fatigue_after (4)",
        "learning.weights.unsubscribe: weights.unsubscribe is 1: a negative signal must not raise engagement",
        "learning.weights.shrug: unknown weight",
        "learning.rules[0].to: unknown tier \"stranger\"",
        "learning.rules[1]: needs responses and within",
        "learning.rules[2].within: missing",
        "learning.rules[3]: a rule is either a promotion",
        "learning.rules[4]: moves \"friend\" to itself",
        "learning.rules[5].within: must be longer than 0",
        "learning.rules[5].responses: must be at least 1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(text.contains("overlay.toml"), "the file is named:\n{text}");
}
